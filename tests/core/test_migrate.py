"""Migrations: applied once each, re-runs apply nothing, concurrent starters apply once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from core.migrate import apply_migrations, discover, pending_migrations
from deploy.scratch import create_database, drop_database


@pytest.fixture
async def fresh_dsn(pg_admin_dsn: str) -> AsyncIterator[str]:
    """An empty database of its own, dropped afterwards."""
    dsn = await create_database(pg_admin_dsn)
    yield dsn
    await drop_database(pg_admin_dsn, dsn)


async def test_second_run_applies_nothing(fresh_dsn: str) -> None:
    every = [m.version for m in discover()]
    conn = await asyncpg.connect(fresh_dsn)
    try:
        assert await pending_migrations(conn) == every
        assert await apply_migrations(conn) == every
        assert await apply_migrations(conn) == []
        assert await pending_migrations(conn) == []
        rows = await conn.fetch("SELECT version FROM warren_migrations ORDER BY version")
        assert [r["version"] for r in rows] == every
        assert await conn.fetchval("SELECT to_regclass('users') IS NOT NULL")
    finally:
        await conn.close()


async def test_concurrent_starters_apply_once(fresh_dsn: str) -> None:
    every = [m.version for m in discover()]
    a, b = await asyncpg.connect(fresh_dsn), await asyncpg.connect(fresh_dsn)
    try:
        done_a, done_b = await asyncio.gather(apply_migrations(a), apply_migrations(b))
        assert sorted([done_a, done_b]) == [[], every]
        count = await a.fetchval("SELECT count(*) FROM warren_migrations")
        assert count == len(every)
        # The advisory lock was released by both.
        held = await a.fetchval(
            """SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
               WHERE l.locktype = 'advisory' AND d.datname = current_database()"""
        )
        assert held == 0
    finally:
        await a.close()
        await b.close()
