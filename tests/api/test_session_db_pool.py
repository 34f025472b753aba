"""Idle session actors hold no Postgres connections.

Every live session actor has its own asyncpg pool; with hundreds of actors, pools that
keep connections would exhaust Postgres' ``max_connections`` (100 by default). Actor
pools close idle connections within seconds (actors/session/core.py), so after a quiet
spell 30 live actors hold none. Sandboxes are the fake OpenCode (the subject is the pool).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from actors import session_client
from actors.session.core import ACTOR_POOL_IDLE_SECONDS
from core.settings import Settings
from tests.api.accounts import call
from tests.api.conftest import AccountFactory
from tests.fakes.opencode import FakeOpenCode, fake_provider

ACTORS = 30
QUIET_SECONDS = 10.0

_COUNT = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenCode]:
    async with FakeOpenCode(heartbeat_interval=1.0) as server:
        yield server


async def test_idle_session_actors_hold_no_connections(
    account: AccountFactory,
    api_url: str,
    settings: Settings,
    fake: FakeOpenCode,
    tmp_path: Path,
    db: Any,
) -> None:
    assert ACTOR_POOL_IDLE_SECONDS < QUIET_SECONDS
    owner = await account()
    factory = functools.partial(fake_provider, fake.url, str(tmp_path / "sandbox"))
    sids: list[str] = []
    try:
        for i in range(ACTORS):
            status, created = await call(
                owner.client, "POST", "/api/sessions", json={"title": f"pool {i}"}
            )
            assert status == 201, created
            sids.append(created["session_id"])
        await asyncio.sleep(QUIET_SECONDS)  # earlier tests' idle actors let go too
        baseline = await db.fetchval(_COUNT)
        handles = [await session_client.get_session_actor(sid, settings, factory) for sid in sids]
        infos = await asyncio.gather(
            *(session_client.call_actor(h, "ensure_runtime_ready") for h in handles)
        )
        assert all(info.runtime_ready for info in infos)
        busy = await db.fetchval(_COUNT)
        ready_at = time.monotonic()
        await asyncio.sleep(QUIET_SECONDS)
        idle = await db.fetchval(_COUNT)
        print(
            f"\n{ACTORS} live actors: baseline {baseline} connections, {busy} right after "
            f"start, {idle} after {time.monotonic() - ready_at:.1f} s idle"
        )
        # The actors did use Postgres (a pool per actor) ...
        assert busy >= baseline + ACTORS // 2
        # ... and, idle, hold none of it (one of slack: the API's own pool may grow).
        assert idle <= baseline + 1
    finally:
        for sid in sids:
            await session_client.kill_session_actor(sid)
