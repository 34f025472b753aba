"""Password hashing with scrypt (stdlib ``hashlib.scrypt``), a random salt per password.

Stored form: ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``, so the cost can be raised later
without invalidating existing hashes. Hashing takes tens of milliseconds of CPU by design:
callers in async code should run these functions in a thread (``asyncio.to_thread``);
``hashlib.scrypt`` releases the GIL while it works.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
N = 2**14
R = 8
P = 1
SALT_BYTES = 16
KEY_BYTES = 32
# 128 * n * r bytes are needed; leave headroom above that for OpenSSL.
_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _derive(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=_MAXMEM
    )


def hash_password(password: str) -> str:
    """The storable scrypt hash of ``password`` with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _derive(password, salt, N, R, P, KEY_BYTES)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches ``stored``; compares in constant time.

    A malformed ``stored`` value is a mismatch, never an exception.
    """
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        expected = base64.b64decode(parts[5], validate=True)
    except ValueError:
        return False
    # Refuse parameters that would make verification absurdly expensive or invalid.
    if not (2 <= n <= 2**20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        return False
    if not 16 <= len(expected) <= 64:
        return False
    actual = _derive(password, salt, n, r, p, len(expected))
    return hmac.compare_digest(actual, expected)


@functools.cache
def _dummy_hash() -> str:
    # A valid hash of a random password nobody knows, verified against when the email is
    # unknown so that "no such user" costs the same time as "wrong password".
    return hash_password(secrets.token_urlsafe(24))


def burn_verification(password: str) -> None:
    """Spend the time of one :func:`verify_password` and learn nothing (timing equaliser)."""
    verify_password(password, _dummy_hash())
