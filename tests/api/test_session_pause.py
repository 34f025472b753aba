"""Pause, resume and the idle snapshot end to end: Serve → session actor → local sandbox
running the real OpenCode → the scripted model. Nothing of Warren is faked.

The actor is created by the test with the model endpoint in its settings (the deployment's
settings have none); after a pause the actor is gone, so the test creates the next one the
same way before resuming.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
import ray

from actors import session_client
from core.bus import Subjects, connect
from core.settings import Settings
from llm.scripted import ScriptedModelServer, run_scripted_model
from schemas.llm import Script, ScriptRule, ScriptStep, ScriptToolCall
from schemas.sessions import SessionRecord
from store import sessions as session_store
from tests.api.accounts import Account, call
from tests.api.conftest import AccountFactory

PAYLOAD_CMD = (
    "printf 'bytes\\000\\377 of the agent\\n' > data.bin && head -c 4096 /dev/urandom > rnd.bin"
)
SCRIPT = Script(
    rules=(
        ScriptRule(
            when_user="write the file",
            steps=(
                ScriptStep(
                    tool_calls=(
                        ScriptToolCall(
                            name="bash",
                            arguments={"command": PAYLOAD_CMD, "description": "Write files"},
                        ),
                    )
                ),
                ScriptStep(text="Files written."),
            ),
        ),
    ),
    final_text="Hello again.",
)


@pytest.fixture(scope="module")
async def model() -> AsyncIterator[ScriptedModelServer]:
    async with run_scripted_model(SCRIPT) as server:
        yield server


class Lifecycle:
    """Collects ``sessions.lifecycle`` events of one session (core NATS subscription)."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.events: list[dict[str, Any]] = []

    def kinds(self) -> list[str]:
        return [e["event"] for e in self.events]


@pytest.fixture
async def lifecycle_events(settings: Settings) -> AsyncIterator[dict[str, Lifecycle]]:
    watched: dict[str, Lifecycle] = {}
    nc = await connect(settings.nats_url, name="warren-test-lifecycle")

    async def on_msg(msg: Any) -> None:
        event = msgspec.json.decode(msg.data)
        found = watched.get(event["session_id"])
        if found is not None:
            found.events.append(event)

    await nc.subscribe(Subjects(settings.nats_prefix).session_lifecycle, cb=on_msg)
    yield watched
    await nc.close()


async def eventually(check: Any, within: float = 60.0, every: float = 0.1) -> Any:
    async with asyncio.timeout(within):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(every)


def actor_alive(session_id: str) -> bool:
    try:
        ray.get_actor(session_client.actor_name(session_id), namespace="warren")
    except ValueError:
        return False
    return True


def start_actor(session_id: str, settings: Settings) -> None:
    """Create the session's actor with ``settings`` (the model endpoint, test timings)."""
    session_client.forget_actor(session_id)
    session_client.session_actor(session_id, settings)


def workspace(settings: Settings, sandbox_id: str) -> Path:
    return Path(settings.data_dir) / "sandboxes" / sandbox_id / "workspace"


async def open_ws(owner: Account, api_url: str, sid: str) -> aiohttp.ClientWebSocketResponse:
    _, token = await call(owner.client, "POST", "/api/auth/ws-token")
    return await owner.client.ws_connect(f"{api_url}/api/sessions/{sid}/ws?token={token['token']}")


async def receive(
    ws: aiohttp.ClientWebSocketResponse, frames: list[dict[str, Any]], until: Any
) -> None:
    try:
        async with asyncio.timeout(60):
            while not until(frames):
                msg = await ws.receive()
                assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data)
                frames.append(msgspec.json.decode(msg.data))
    except TimeoutError:
        raise AssertionError(f"timed out; got {frames}") from None


def completes(n: int) -> Any:
    return lambda frames: sum(f["type"] == "message_complete" for f in frames) >= n


def status_seen(status: str) -> Any:
    return lambda frames: any(f["type"] == "status" and f["status"] == status for f in frames)


async def record_of(db: Any, sid: str) -> SessionRecord:
    record = await session_store.get_session(db, uuid.UUID(sid))
    assert record is not None
    return record


async def watched_session(
    owner: Account, title: str, lifecycle_events: dict[str, Lifecycle]
) -> tuple[str, Lifecycle]:
    """Create a session for ``owner`` and start recording its lifecycle events."""
    status, created = await call(owner.client, "POST", "/api/sessions", json={"title": title})
    assert status == 201
    sid = str(created["session_id"])
    events = lifecycle_events[sid] = Lifecycle(sid)
    return sid, events


async def test_manual_pause_then_resume_restores_workspace_and_transcript(
    account: AccountFactory,
    api_url: str,
    settings: Settings,
    model: ScriptedModelServer,
    db: Any,
    lifecycle_events: dict[str, Lifecycle],
) -> None:
    owner = await account()
    sid, events = await watched_session(owner, "Pause", lifecycle_events)
    agent_settings = msgspec.structs.replace(settings, llm_base_url=model.base_url)
    start_actor(sid, agent_settings)
    ws = await open_ws(owner, api_url, sid)
    frames: list[dict[str, Any]] = []
    try:
        await ws.send_json({"type": "prompt", "content": "please write the file"})
        await receive(ws, frames, completes(2))
        first = await record_of(db, sid)
        assert first.status == "running" and first.sandbox_id
        files = workspace(settings, first.sandbox_id)
        data, rnd = (files / "data.bin").read_bytes(), (files / "rnd.bin").read_bytes()
        assert data == b"bytes\x00\xff of the agent\n" and len(rnd) == 4096

        status, paused = await call(owner.client, "POST", f"/api/sessions/{sid}/pause")
        assert status == 200, paused
        assert paused["status"] == "paused" and paused["snapshot_id"]
        await receive(ws, frames, status_seen("paused"))
        record = await record_of(db, sid)
        assert (record.status, record.pause_reason) == ("paused", "manual")
        assert record.sandbox_id is None and record.snapshot_id == paused["snapshot_id"]
        assert not files.exists()  # the sandbox was removed
        await eventually(lambda: asyncio.sleep(0, not actor_alive(sid)), within=15)
        # Pausing again is a no-op answering the same snapshot.
        status, again = await call(owner.client, "POST", f"/api/sessions/{sid}/pause")
        assert status == 200 and again["snapshot_id"] == paused["snapshot_id"]
    finally:
        await ws.close()

    # The next connect resumes from the snapshot.
    start_actor(sid, agent_settings)
    ws = await open_ws(owner, api_url, sid)
    frames = []
    try:
        await receive(ws, frames, lambda fs: any(f["type"] == "init" for f in fs))
        init = next(f for f in frames if f["type"] == "init")
        texts = [m["content"] for m in init["messages"]]
        assert "please write the file" in texts and "Files written." in texts
        await receive(ws, frames, status_seen("running"))
        assert status_seen("resuming")(frames)
        resumed = await record_of(db, sid)
        assert resumed.status == "running" and resumed.sandbox_id not in (None, first.sandbox_id)
        assert resumed.sandbox_id is not None
        files = workspace(settings, resumed.sandbox_id)
        assert (files / "data.bin").read_bytes() == data
        assert (files / "rnd.bin").read_bytes() == rnd
        # The conversation goes on.
        frames.clear()
        await ws.send_json({"type": "prompt", "content": "hi"})
        await receive(ws, frames, completes(1))
        tokens = "".join(f["token"] for f in frames if f["type"] == "token")
        assert tokens == "Hello again."
        await eventually(lambda: asyncio.sleep(0, "resumed" in events.kinds()), within=10)
        paused_event = next(e for e in events.events if e["event"] == "paused")
        assert paused_event["reason"] == "manual"
        assert paused_event["sandbox_id"] == first.sandbox_id
    finally:
        await ws.close()
        status, _ = await call(owner.client, "DELETE", f"/api/sessions/{sid}")
        assert status == 204


async def idle_control(
    owner: Account, idle_settings: Settings, lifecycle_events: dict[str, Lifecycle]
) -> None:
    """A control session under the same idle timings, prompted now (so idle since later
    than anything before) and without clients: returns once it was paused for inactivity,
    i.e. once a grace period and an idle check have passed for every earlier session."""
    sid, events = await watched_session(owner, "Control", lifecycle_events)
    start_actor(sid, idle_settings)
    status, sent = await call(
        owner.client, "POST", f"/api/sessions/{sid}/message", json={"content": "hi"}
    )
    assert status == 202, sent
    await eventually(lambda: asyncio.sleep(0, "paused" in events.kinds()), within=60)


async def test_idle_snapshot_waits_for_clients_and_proxies_then_a_prompt_resumes(
    account: AccountFactory,
    api_url: str,
    settings: Settings,
    model: ScriptedModelServer,
    db: Any,
    lifecycle_events: dict[str, Lifecycle],
) -> None:
    owner = await account()
    sid, events = await watched_session(owner, "Idle", lifecycle_events)
    idle_settings = msgspec.structs.replace(
        settings,
        llm_base_url=model.base_url,
        idle_check_seconds=0.2,
        idle_grace_web_seconds=1.0,
    )
    start_actor(sid, idle_settings)
    ws = await open_ws(owner, api_url, sid)
    frames: list[dict[str, Any]] = []
    try:
        await ws.send_json({"type": "prompt", "content": "hi"})
        await receive(ws, frames, completes(1))
        # A connected client keeps the session running past the grace period: a session
        # idle since later, with no client, is paused first.
        await idle_control(owner, idle_settings, lifecycle_events)
        running = await record_of(db, sid)
        assert running.status == "running" and running.sandbox_id
        assert "paused" not in events.kinds()
        handle = await session_client.get_session_actor(sid, idle_settings)
        await handle.proxy_opened.remote("proxy:test")
    finally:
        await ws.close()
    # An open proxy connection keeps it running too.
    await idle_control(owner, idle_settings, lifecycle_events)
    assert (await record_of(db, sid)).status == "running"
    assert actor_alive(sid) and "paused" not in events.kinds()
    await handle.proxy_closed.remote("proxy:test")

    async def paused() -> SessionRecord | None:
        record = await record_of(db, sid)
        return record if record.status == "paused" else None

    record = await eventually(paused, within=30)
    assert record.pause_reason == "inactivity" and record.sandbox_id is None
    assert record.snapshot_id
    assert not workspace(settings, running.sandbox_id or "").exists()
    await eventually(lambda: asyncio.sleep(0, not actor_alive(sid)), within=15)
    assert "paused" in events.kinds()

    # A prompt over HTTP resumes it (and is answered).
    start_actor(sid, msgspec.structs.replace(settings, llm_base_url=model.base_url))
    status, sent = await call(
        owner.client, "POST", f"/api/sessions/{sid}/message", json={"content": "hi again"}
    )
    assert status == 202, sent
    resumed = await record_of(db, sid)
    assert resumed.status == "running" and resumed.sandbox_id != running.sandbox_id
    await eventually(lambda: asyncio.sleep(0, "resumed" in events.kinds()), within=10)

    async def answered() -> bool:
        ws2 = await open_ws(owner, api_url, sid)
        try:
            init = msgspec.json.decode((await ws2.receive()).data)
        finally:
            await ws2.close()
        return [m["content"] for m in init["messages"]].count("Hello again.") == 2

    await eventually(answered, within=30, every=0.5)
    status, _ = await call(owner.client, "DELETE", f"/api/sessions/{sid}")
    assert status == 204


async def test_pause_resume_snapshot_routes_without_a_sandbox(
    account: AccountFactory, api_url: str
) -> None:
    owner = await account()
    _, created = await call(owner.client, "POST", "/api/sessions", json={"title": "None"})
    sid = created["session_id"]
    status, err = await call(owner.client, "POST", f"/api/sessions/{sid}/pause")
    assert status == 409 and err["error"]["code"] == "not_running"
    status, err = await call(owner.client, "POST", f"/api/sessions/{sid}/snapshot")
    assert status == 409 and err["error"]["code"] == "not_running"
    status, media = await call(owner.client, "GET", f"/api/sessions/{sid}/verification-media")
    assert status == 200 and media == {"items": []}
    status, _ = await call(owner.client, "DELETE", f"/api/sessions/{sid}")
    assert status == 204
