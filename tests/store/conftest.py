"""Store tests run against the session's real test database, migrated."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from core.migrate import apply_migrations
from schemas.auth import User
from store import users


@pytest.fixture(scope="session")
async def pool(db: asyncpg.Pool) -> asyncpg.Pool:
    """The test database's pool with every migration applied."""
    async with db.acquire() as conn:
        await apply_migrations(conn)
    return db


UserFactory = Callable[..., Awaitable[User]]


@pytest.fixture
def make_user(pool: asyncpg.Pool) -> UserFactory:
    """Create a user with a unique email (tests never share rows)."""

    async def factory(name: str = "Test User") -> User:
        async with pool.acquire() as conn:
            return await users.create_user(
                conn,
                email=f"{uuid.uuid4().hex[:12]}@example.test",
                name=name,
                password_hash="scrypt$not-a-real-hash",
            )

    return factory
