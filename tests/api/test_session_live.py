"""End to end with the real agent: Serve → session actor → local sandbox running the real
OpenCode binary → the scripted model; the agent calls Warren's save_snapshot tool back
through the API. Nothing of Warren is faked here."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import msgspec
import pytest

from llm.scripted import ScriptedModelServer
from schemas.llm import Script, ScriptRule, ScriptStep, ScriptToolCall
from store import sessions as session_store
from tests.api.accounts import call
from tests.api.conftest import AccountFactory
from tests.fixtures.llm import use_script

SCRIPT = Script(
    rules=(
        ScriptRule(
            when_user="snapshot",
            steps=(
                ScriptStep(
                    tool_calls=(ScriptToolCall(name="save_snapshot", arguments={"message": "e2e"}),)
                ),
                ScriptStep(text="Snapshot saved, all good.", chunk_chars=6),
            ),
        ),
    ),
    final_text="Hello from the scripted model.",
)


@pytest.fixture
def model(scripted_model: ScriptedModelServer) -> Iterator[ScriptedModelServer]:
    """The run's scripted model (which every session reaches), answering :data:`SCRIPT`."""
    with use_script(scripted_model, SCRIPT) as server:
        yield server


async def receive_until_complete(
    ws: aiohttp.ClientWebSocketResponse, frames: list[dict[str, Any]], completes: int
) -> None:
    async with asyncio.timeout(90):
        while sum(f["type"] == "message_complete" for f in frames) < completes:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data)
            frames.append(msgspec.json.decode(msg.data))


async def test_real_agent_streams_and_calls_back(
    account: AccountFactory,
    api_url: str,
    model: ScriptedModelServer,
    db: Any,
) -> None:
    owner = await account()
    status, created = await call(owner.client, "POST", "/api/sessions", json={"title": "E2E"})
    assert status == 201
    sid = created["session_id"]
    status, token = await call(owner.client, "POST", "/api/auth/ws-token")
    ws = await owner.client.ws_connect(f"{api_url}/api/sessions/{sid}/ws?token={token['token']}")
    frames: list[dict[str, Any]] = []
    try:
        init = msgspec.json.decode((await ws.receive()).data)
        assert init["type"] == "init"
        await ws.send_json({"type": "prompt", "content": "please take a snapshot"})
        await receive_until_complete(ws, frames, 2)
        kinds = [f["type"] for f in frames]
        tool_end = next(f for f in frames if f["type"] == "tool_end")
        assert tool_end["tool"] == "save_snapshot" and tool_end["status"] == "completed"
        assert "Saved snapshot snap_" in tool_end["result"]
        result = next(f for f in frames if f["type"] == "snapshot_result")
        assert result["success"] and result["target"] == "session"
        assert kinds.index("tool_start") < kinds.index("tool_end")
        assert "token" in kinds and kinds[-1] == "message_complete"
        texts = [f for f in frames if f["type"] == "text_part_complete"]
        assert texts[-1]["text"] == "Snapshot saved, all good."
        record = await session_store.get_session(db, uuid.UUID(sid))
        assert record is not None and record.snapshot_id == result["snapshot_id"]

        # A second prompt on the running sandbox.
        frames.clear()
        await ws.send_json({"type": "prompt", "content": "hi"})
        await receive_until_complete(ws, frames, 1)
        assert "".join(f["token"] for f in frames if f["type"] == "token") == (
            "Hello from the scripted model."
        )
    finally:
        await ws.close()
        status, _ = await call(owner.client, "DELETE", f"/api/sessions/{sid}")
        assert status == 204
