"""store.auth_sessions against real Postgres: lookup by hash, expiry, daily refresh."""

from __future__ import annotations

import secrets
from datetime import timedelta

import asyncpg

from store import auth_sessions, orgs
from tests.store.conftest import UserFactory

WEEK = timedelta(days=7)
DAY = timedelta(days=1)


async def test_create_get_delete(pool: asyncpg.Pool, make_user: UserFactory) -> None:
    user = await make_user()
    token_hash = secrets.token_bytes(32)
    async with pool.acquire() as conn:
        org = await orgs.create_org(conn, name="S", owner_id=user.id)
        created = await auth_sessions.create_session(
            conn, token_hash=token_hash, user_id=user.id, active_org_id=org.id, ttl=WEEK
        )
        found = await auth_sessions.get_session(conn, token_hash)
        assert found == created and found.active_org_id == org.id
        assert await auth_sessions.get_session(conn, secrets.token_bytes(32)) is None
        assert await auth_sessions.delete_session(conn, token_hash) is True
        assert await auth_sessions.get_session(conn, token_hash) is None
        assert await auth_sessions.delete_session(conn, token_hash) is False


async def test_expired_session_is_not_found_and_swept(
    pool: asyncpg.Pool, make_user: UserFactory
) -> None:
    user = await make_user()
    token_hash = secrets.token_bytes(32)
    async with pool.acquire() as conn:
        await auth_sessions.create_session(
            conn, token_hash=token_hash, user_id=user.id, active_org_id=None, ttl=-timedelta(1)
        )
        assert await auth_sessions.get_session(conn, token_hash) is None
        assert await auth_sessions.delete_expired(conn) >= 1
        count = await conn.fetchval(
            "SELECT count(*) FROM auth_sessions WHERE token_hash = $1", token_hash
        )
        assert count == 0


async def test_refresh_happens_at_most_once_a_day(
    pool: asyncpg.Pool, make_user: UserFactory
) -> None:
    user = await make_user()
    token_hash = secrets.token_bytes(32)
    async with pool.acquire() as conn:
        session = await auth_sessions.create_session(
            conn, token_hash=token_hash, user_id=user.id, active_org_id=None, ttl=WEEK
        )
        assert await auth_sessions.refresh_session(conn, session.id, ttl=WEEK, every=DAY) is None
        # Pretend the last refresh was two days ago and expiry is five days out.
        await conn.execute(
            """UPDATE auth_sessions SET refreshed_at = now() - interval '2 days',
                      expires_at = now() + interval '5 days' WHERE id = $1""",
            session.id,
        )
        new_expiry = await auth_sessions.refresh_session(conn, session.id, ttl=WEEK, every=DAY)
        assert new_expiry is not None and new_expiry > session.expires_at - timedelta(minutes=1)
        assert await auth_sessions.refresh_session(conn, session.id, ttl=WEEK, every=DAY) is None


async def test_set_active_org(pool: asyncpg.Pool, make_user: UserFactory) -> None:
    user = await make_user()
    token_hash = secrets.token_bytes(32)
    async with pool.acquire() as conn:
        org = await orgs.create_org(conn, name="A", owner_id=user.id)
        session = await auth_sessions.create_session(
            conn, token_hash=token_hash, user_id=user.id, active_org_id=None, ttl=WEEK
        )
        await auth_sessions.set_active_org(conn, session.id, org.id)
        found = await auth_sessions.get_session(conn, token_hash)
        assert found is not None and found.active_org_id == org.id
