"""argon2id password hashing, and verification of the scrypt hashes stored before it."""

from __future__ import annotations

import base64
import hashlib

import pytest

from security import passwords


def legacy_scrypt_hash(password: str, salt: bytes = b"0123456789abcdef") -> str:
    """A hash in the exact form Warren stored before argon2id (scrypt N=2^14, r=8, p=1)."""
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt$16384$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def test_hash_is_argon2id_with_the_configured_cost() -> None:
    stored = passwords.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.verify_password("correct horse battery", stored)
    assert not passwords.verify_password("correct horse batterY", stored)
    assert not passwords.needs_rehash(stored)


def test_each_hash_has_its_own_salt() -> None:
    a = passwords.hash_password("same password")
    b = passwords.hash_password("same password")
    assert a != b
    assert a.split("$")[4] != b.split("$")[4]
    assert passwords.verify_password("same password", a)
    assert passwords.verify_password("same password", b)


def test_hash_does_not_contain_the_password() -> None:
    assert "hunter2hunter2" not in passwords.hash_password("hunter2hunter2")


def test_legacy_scrypt_hash_verifies_and_needs_rehash() -> None:
    stored = legacy_scrypt_hash("old password")
    assert passwords.verify_password("old password", stored)
    assert not passwords.verify_password("old passworD", stored)
    assert passwords.needs_rehash(stored)


def test_weaker_argon2_parameters_need_rehash() -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("pw pw pw pw")
    assert passwords.verify_password("pw pw pw pw", weak)
    assert passwords.needs_rehash(weak)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "bcrypt$1$2$3$4$5",
        "$argon2id$garbage",
        "$argon2id$v=19$m=19456,t=2,p=1$AAAA$AAAA",
        "scrypt$16384$8$1$not base64!$AAAA",
        "scrypt$x$8$1$AAAA$AAAA",
        "scrypt$3$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$1073741824$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
    ],
)
def test_malformed_stored_hash_is_a_mismatch(stored: str) -> None:
    assert passwords.verify_password("whatever1", stored) is False
    assert passwords.needs_rehash(stored)


def test_burn_verification_raises_nothing() -> None:
    passwords.burn_verification("anything at all")
