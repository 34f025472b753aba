"""Routes racing a session's changes of state, through the real Serve app and session actor
(sandbox = FakeOpenCode behind the fake provider):

- ``DELETE`` while ``POST .../resume`` or ``.../message`` is booting the sandbox: the
  in-flight request answers 409/410 with a JSON error, never a 500.
- After an idle pause the ingress's cached actor handle is dead: cancel, snapshot and delete
  still answer (not 500).
- ``POST .../heartbeat`` keeps the idle watcher from pausing the session; once heartbeats
  stop it pauses.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from actors import session_client
from core.settings import Settings
from store import sessions
from tests.api.accounts import Account, call
from tests.api.conftest import AccountFactory
from tests.api.test_session_pause import actor_alive, eventually
from tests.fakes.opencode import FakeOpenCode, fake_provider


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenCode]:
    async with FakeOpenCode() as server:
        yield server


async def _new_session(owner: Account) -> str:
    status, created = await call(owner.client, "POST", "/api/sessions", json={"title": "Race"})
    assert status == 201, created
    return str(created["session_id"])


def _start_actor(sid: str, settings: Settings, fake: FakeOpenCode, state: Path) -> Any:
    """The session's actor, built with the fake provider (the ingress finds it by name)."""
    session_client.forget_actor(sid)
    factory = functools.partial(fake_provider, fake.url, str(state))
    return session_client.session_actor(sid, settings, factory)


async def _status(db: asyncpg.Pool, sid: str) -> str | None:
    record = await sessions.get_session(db, uuid.UUID(sid))
    return record.status if record is not None else None


async def _idle_paused(db: asyncpg.Pool, sid: str) -> None:
    """Wait until the idle watcher paused the session and its actor exited."""

    async def paused() -> bool:
        return await _status(db, sid) == "paused"

    await eventually(paused, within=60)
    record = await sessions.get_session(db, uuid.UUID(sid))
    assert record is not None and record.pause_reason == "inactivity"
    await eventually(lambda: asyncio.sleep(0, not actor_alive(sid)), within=30)


async def _held(state: Path) -> bool:
    """The boot reached the provider and waits there (the fake's hold barrier)."""
    return (state / "held.log").exists()


@pytest.mark.parametrize("route", ["resume", "message"])
async def test_delete_during_a_boot_answers_the_inflight_request_409_or_410(
    route: str,
    account: AccountFactory,
    settings: Settings,
    db: asyncpg.Pool,
    fake: FakeOpenCode,
    tmp_path: Path,
) -> None:
    owner = await account()
    sid = await _new_session(owner)
    state = tmp_path / "sandbox"
    state.mkdir()
    hold = state / "hold-create"
    hold.touch()
    _start_actor(sid, settings, fake, state)
    body = {"content": "hello"} if route == "message" else None
    inflight = asyncio.create_task(
        call(owner.client, "POST", f"/api/sessions/{sid}/{route}", json=body)
    )
    try:
        await eventually(lambda: _held(state), within=60)
        assert not inflight.done()
        status, _ = await call(owner.client, "DELETE", f"/api/sessions/{sid}")
        assert status == 204
        status, answer = await asyncio.wait_for(inflight, 60)
    finally:
        hold.unlink(missing_ok=True)
    assert status in (409, 410), (status, answer)
    assert answer["error"]["code"] in ("session_stopped", "session_gone")
    await eventually(lambda: asyncio.sleep(0, not actor_alive(sid)), within=30)
    status, _ = await call(owner.client, "GET", f"/api/sessions/{sid}")
    assert status == 404


async def test_routes_after_an_idle_pause_drop_the_dead_handle(
    account: AccountFactory,
    settings: Settings,
    db: asyncpg.Pool,
    fake: FakeOpenCode,
    tmp_path: Path,
) -> None:
    owner = await account()
    sid = await _new_session(owner)
    idle = msgspec.structs.replace(settings, idle_check_seconds=0.2, idle_grace_web_seconds=1.0)
    _start_actor(sid, idle, fake, tmp_path / "sandbox")
    # The prompt goes through the ingress, which keeps the actor's handle.
    status, sent = await call(
        owner.client, "POST", f"/api/sessions/{sid}/message", json={"content": "hi"}
    )
    assert status == 202, sent
    await _idle_paused(db, sid)

    status, cancelled = await call(owner.client, "POST", f"/api/sessions/{sid}/cancel")
    assert status == 200 and cancelled["accepted"] is False
    status, error = await call(owner.client, "POST", f"/api/sessions/{sid}/snapshot")
    assert status == 409 and error["error"]["code"] == "not_running"
    status, _ = await call(owner.client, "POST", f"/api/sessions/{sid}/heartbeat")
    assert status == 200
    status, _ = await call(owner.client, "DELETE", f"/api/sessions/{sid}")
    assert status == 204
    status, _ = await call(owner.client, "GET", f"/api/sessions/{sid}")
    assert status == 404


async def test_heartbeats_keep_a_session_from_the_idle_pause(
    account: AccountFactory,
    settings: Settings,
    db: asyncpg.Pool,
    fake: FakeOpenCode,
    tmp_path: Path,
) -> None:
    owner = await account()
    sid = await _new_session(owner)
    grace = 1.0
    idle = msgspec.structs.replace(settings, idle_check_seconds=0.1, idle_grace_web_seconds=grace)
    handle = _start_actor(sid, idle, fake, tmp_path / "sandbox")
    await handle.ensure_runtime_ready.remote()
    try:
        # Heartbeats for four grace periods, each well inside the grace: never idle.
        for _ in range(16):
            status, _ = await call(owner.client, "POST", f"/api/sessions/{sid}/heartbeat")
            assert status == 200
            assert await _status(db, sid) == "running"
            await asyncio.sleep(grace / 4)
        assert actor_alive(sid)
        # Without them it is paused (reason inactivity) and its actor exits.
        await _idle_paused(db, sid)
    finally:
        await session_client.kill_session_actor(sid)
