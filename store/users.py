"""Users: raw SQL over the ``users`` table. Emails are stored lower-cased and trimmed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from schemas.auth import User

_COLUMNS = "id, email, name, created_at"


class EmailTaken(Exception):
    """Another user already has this email."""


@dataclass(frozen=True, repr=False)
class Credentials:
    """A user and their stored password hash (for sign-in only; never serialised)."""

    user: User
    password_hash: str


def normalize_email(email: str) -> str:
    """The canonical form an email is stored and looked up in."""
    return email.strip().lower()


def _user(row: asyncpg.Record) -> User:
    return User(id=row["id"], email=row["email"], name=row["name"], created_at=row["created_at"])


async def create_user(
    conn: asyncpg.Connection, *, email: str, name: str, password_hash: str
) -> User:
    """Insert a user; raises :class:`EmailTaken` if the email is in use."""
    try:
        row = await conn.fetchrow(
            f"INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3)"
            f" RETURNING {_COLUMNS}",
            normalize_email(email),
            name,
            password_hash,
        )
    except asyncpg.UniqueViolationError:
        raise EmailTaken(email) from None
    return _user(row)


async def get_user(conn: asyncpg.Connection, user_id: uuid.UUID) -> User | None:
    """The user with ``user_id``, or None."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)
    return None if row is None else _user(row)


async def get_user_by_email(conn: asyncpg.Connection, email: str) -> User | None:
    """The user with ``email`` (case-insensitive), or None."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM users WHERE lower(email) = $1", normalize_email(email)
    )
    return None if row is None else _user(row)


async def get_credentials(conn: asyncpg.Connection, email: str) -> Credentials | None:
    """The user with ``email`` and their password hash, or None."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, password_hash FROM users WHERE lower(email) = $1",
        normalize_email(email),
    )
    return None if row is None else Credentials(_user(row), row["password_hash"])


async def set_password_hash(
    conn: asyncpg.Connection, user_id: uuid.UUID, password_hash: str
) -> None:
    """Replace a user's stored password hash (e.g. an old scheme rehashed on sign-in)."""
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)
