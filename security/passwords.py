"""Password hashing with argon2id (argon2-cffi); scrypt hashes of earlier versions still verify.

New hashes are argon2id in the PHC string form (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``)
with OWASP's recommended cost (19 MiB, 2 passes, 1 lane). A stored hash that is scrypt, or
argon2 with other parameters, verifies as before and :func:`needs_rehash` says so, so sign-in
can replace it while it has the password in hand. Hashing takes tens of milliseconds of CPU by
design: callers in async code run these functions in a thread (``asyncio.to_thread``); both
argon2-cffi and ``hashlib.scrypt`` release the GIL while they work.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error, InvalidHashError

MEMORY_KIB = 19 * 1024
TIME_COST = 2
PARALLELISM = 1

_hasher = PasswordHasher(
    time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM, hash_len=32, salt_len=16
)

LEGACY_SCRYPT = "scrypt"
"""Prefix of the hashes Warren stored before argon2id: ``scrypt$n$r$p$salt b64$hash b64``."""
_SCRYPT_MAXMEM = 64 * 1024 * 1024  # 128 * n * r bytes plus headroom for OpenSSL


def hash_password(password: str) -> str:
    """The storable argon2id hash of ``password`` with a fresh random salt."""
    return _hasher.hash(password)


def _verify_scrypt(password: str, stored: str) -> bool:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != LEGACY_SCRYPT:
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
    actual = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        dklen=len(expected),
        maxmem=_SCRYPT_MAXMEM,
    )
    return hmac.compare_digest(actual, expected)


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches ``stored`` (argon2id, or a legacy scrypt hash).

    Constant-time comparison; a malformed ``stored`` value is a mismatch, never an exception.
    """
    if stored.startswith(LEGACY_SCRYPT + "$"):
        return _verify_scrypt(password, stored)
    try:
        return _hasher.verify(stored, password)
    except (Argon2Error, ValueError):  # a mismatch, or a malformed/unsupported hash
        return False


def needs_rehash(stored: str) -> bool:
    """True if ``stored`` is not an argon2id hash with today's parameters (rehash on sign-in)."""
    if not stored.startswith("$argon2id$"):
        return True
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True


@functools.cache
def _dummy_hash() -> str:
    # A valid hash of a random password nobody knows, verified against when the email is
    # unknown so that "no such user" costs the same time as "wrong password".
    return hash_password(secrets.token_urlsafe(24))


def burn_verification(password: str) -> None:
    """Spend the time of one :func:`verify_password` and learn nothing (timing equaliser)."""
    verify_password(password, _dummy_hash())
