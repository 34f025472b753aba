"""scrypt password hashing."""

from __future__ import annotations

import pytest

from security import passwords


def test_hash_then_verify() -> None:
    stored = passwords.hash_password("correct horse battery")
    assert stored.startswith("scrypt$16384$8$1$")
    assert passwords.verify_password("correct horse battery", stored)
    assert not passwords.verify_password("correct horse batterY", stored)


def test_each_hash_has_its_own_salt() -> None:
    a = passwords.hash_password("same password")
    b = passwords.hash_password("same password")
    assert a != b
    assert a.split("$")[4] != b.split("$")[4]
    assert passwords.verify_password("same password", a)
    assert passwords.verify_password("same password", b)


def test_hash_does_not_contain_the_password() -> None:
    assert "hunter2hunter2" not in passwords.hash_password("hunter2hunter2")


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "bcrypt$1$2$3$4$5",
        "scrypt$16384$8$1$not base64!$AAAA",
        "scrypt$x$8$1$AAAA$AAAA",
        "scrypt$3$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$1073741824$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
    ],
)
def test_malformed_stored_hash_is_a_mismatch(stored: str) -> None:
    assert passwords.verify_password("whatever1", stored) is False


def test_burn_verification_raises_nothing() -> None:
    passwords.burn_verification("anything at all")
