"""Migration before sandbox expiry end to end: Serve → session actor → local sandbox running
the real OpenCode → the scripted model. Nothing of Warren is faked.

The actor gets settings with a short sandbox lifetime, so the expiry check comes a few
seconds after the sandbox is up while a client is connected.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from core.settings import Settings
from llm.scripted import ScriptedModelServer
from sandboxes.local_layout import SandboxLayout
from sandboxes.proctree import process_alive
from tests.api.accounts import call
from tests.api.conftest import AccountFactory
from tests.api.test_session_pause import (
    Lifecycle,
    completes,
    eventually,
    lifecycle_events,
    model,
    open_ws,
    receive,
    record_of,
    start_actor,
    watched_session,
    workspace,
)

__all__ = ["lifecycle_events", "model"]  # fixtures used here

EXPIRY_SECONDS = 25
LEAD_SECONDS = 15.0
"""The check comes 10 s after each sandbox is up."""


def index_of(frames: list[dict[str, Any]], check: Any, start: int = 0) -> int:
    return next(i for i in range(start, len(frames)) if check(frames[i]))


def is_status(status: str) -> Any:
    return lambda f: f["type"] == "status" and f["status"] == status


def running_after_migrating(frames: list[dict[str, Any]]) -> bool:
    try:
        index_of(frames, is_status("running"), index_of(frames, is_status("migrating")))
    except StopIteration:
        return False
    return True


async def test_migration_moves_workspace_and_delivers_queued_prompt_once(
    account: AccountFactory,
    api_url: str,
    settings: Settings,
    model: ScriptedModelServer,
    db: Any,
    lifecycle_events: dict[str, Lifecycle],
) -> None:
    owner = await account()
    sid, events = await watched_session(owner, "Move", lifecycle_events)
    start_actor(
        sid,
        msgspec.structs.replace(
            settings,
            llm_base_url=model.base_url,
            sandbox_expiry_seconds=EXPIRY_SECONDS,
            migration_lead_seconds=LEAD_SECONDS,
            migration_agent_wait_seconds=5.0,
        ),
    )
    ws = await open_ws(owner, api_url, sid)
    frames: list[dict[str, Any]] = []
    try:
        await ws.send_json({"type": "prompt", "content": "please write the file"})
        await receive(ws, frames, completes(2))
        first = await record_of(db, sid)
        assert first.status == "running" and first.sandbox_id
        old_files = workspace(settings, first.sandbox_id)
        data, rnd = (old_files / "data.bin").read_bytes(), (old_files / "rnd.bin").read_bytes()
        assert data == b"bytes\x00\xff of the agent\n" and len(rnd) == 4096
        old_meta = SandboxLayout(old_files.parent).read_meta()
        assert old_meta is not None and old_meta.processes

        # The expiry check: the client sees `migrating` and prompts right then.
        await receive(ws, frames, lambda fs: any(is_status("migrating")(f) for f in fs))
        migrating_at = index_of(frames, is_status("migrating"))
        await ws.send_json({"type": "prompt", "content": "hi"})
        await receive(ws, frames, running_after_migrating)
        running_at = index_of(frames, is_status("running"), migrating_at)
        # The prompt was shown while migrating, and answered only after the migration.
        user_at = index_of(
            frames,
            lambda f: f["type"] == "message" and f["message"]["content"] == "hi",
            migrating_at,
        )
        assert user_at < running_at
        await receive(ws, frames, completes(3))
        after = frames[running_at:]
        assert "".join(f["token"] for f in after if f["type"] == "token") == "Hello again."
        assert not any(f["type"] == "error" for f in frames[migrating_at:])

        moved = await record_of(db, sid)
        assert moved.status == "running" and moved.sandbox_id
        assert moved.sandbox_id != first.sandbox_id
        assert moved.snapshot_id
        # The agent's files came along byte for byte; the old sandbox is gone.
        new_files = workspace(settings, moved.sandbox_id)
        assert (new_files / "data.bin").read_bytes() == data
        assert (new_files / "rnd.bin").read_bytes() == rnd
        assert not old_files.parent.exists()
        assert not any(process_alive(p.pid, p.start_time) for p in old_meta.processes)
        await eventually(lambda: asyncio.sleep(0, "migrated" in events.kinds()), within=10)
        migrated = next(e for e in events.events if e["event"] == "migrated")
        assert migrated["sandbox_id"] == moved.sandbox_id
        assert "running" not in events.kinds()[events.kinds().index("migrated") :]
    finally:
        await ws.close()

    # Exactly once: the queued prompt and its answer are each in the transcript one time.
    ws = await open_ws(owner, api_url, sid)
    try:
        init = msgspec.json.decode((await ws.receive()).data)
        texts = [m["content"] for m in init["messages"]]
        assert texts.count("hi") == 1 and texts.count("Hello again.") == 1, texts
    finally:
        await ws.close()
        status, _ = await call(owner.client, "DELETE", f"/api/sessions/{sid}")
        assert status == 204
