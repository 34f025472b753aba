"""store.users against real Postgres."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from store import users


async def test_create_and_look_up_case_insensitively(pool: asyncpg.Pool) -> None:
    email = f"Mixed.{uuid.uuid4().hex[:8]}@Example.TEST"
    async with pool.acquire() as conn:
        user = await users.create_user(conn, email=f"  {email} ", name="Ann", password_hash="h1")
        assert user.email == email.lower()
        assert await users.get_user(conn, user.id) == user
        assert await users.get_user_by_email(conn, email.upper()) == user
        creds = await users.get_credentials(conn, email)
        assert creds is not None and creds.user == user and creds.password_hash == "h1"
        assert "h1" not in repr(creds)


async def test_duplicate_email_in_any_case_is_taken(pool: asyncpg.Pool) -> None:
    email = f"dup-{uuid.uuid4().hex[:8]}@example.test"
    async with pool.acquire() as conn:
        await users.create_user(conn, email=email, name="A", password_hash="h")
        with pytest.raises(users.EmailTaken):
            await users.create_user(conn, email=email.upper(), name="B", password_hash="h")


async def test_unknown_user_is_none(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await users.get_user(conn, uuid.uuid4()) is None
        assert await users.get_user_by_email(conn, "nobody@nowhere.test") is None
        assert await users.get_credentials(conn, "nobody@nowhere.test") is None
