"""The OpenCode HTTP/SSE client against the synthetic OpenCode server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors.opencode_client import EventStream, OpenCodeClient, OpenCodeError, StreamStalled
from core.backoff import Backoff
from tests.actors.conftest import eventually
from tests.fakes.opencode import FakeOpenCode, Reply


async def test_session_calls_and_events(fake_opencode: FakeOpenCode) -> None:
    client = OpenCodeClient(fake_opencode.url)
    try:
        assert await client.get_session("ses_missing") is None
        sid = await client.create_session("A title")
        assert (await client.get_session(sid) or {})["title"] == "A title"
        events: list[dict[str, Any]] = []

        async def read() -> None:
            async for event in client.events(heartbeat_timeout=5):
                events.append(event)
                if event["type"] == "session.idle":
                    return

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.1)
        fake_opencode.reply = Reply(tokens=["a", "b"])
        await client.prompt(sid, "hello", ("data:image/png;base64,AAAA",))
        await asyncio.wait_for(reader, 10)
        kinds = [e["type"] for e in events]
        assert kinds[0] == "server.connected" and kinds.count("message.part.delta") == 2
        assert fake_opencode.prompts == [(sid, "hello")]
        prompt_body = fake_opencode.requests_to(f"/session/{sid}/prompt_async")[0].json()
        assert prompt_body["parts"][1] == {
            "type": "file",
            "mime": "image/png",
            "url": "data:image/png;base64,AAAA",
        }
        stored = await client.messages(sid)
        assert [m["info"]["role"] for m in stored] == ["user", "assistant"]
        assert await client.statuses() == {}
        await client.reply_permission("per_1", "once")
        await client.abort(sid)
    finally:
        await client.close()


async def test_transient_errors_are_retried_then_reported(fake_opencode: FakeOpenCode) -> None:
    client = OpenCodeClient(fake_opencode.url)
    try:
        fake_opencode.fail_next = 2
        assert await client.create_session("t")
        fake_opencode.fail_next = 100
        with pytest.raises(OpenCodeError) as failed:
            await client.create_session("t")
        assert failed.value.status == 503
        fake_opencode.fail_next = 0
    finally:
        await client.close()


async def test_stream_reconnects_after_a_drop_and_a_stall() -> None:
    async with FakeOpenCode(heartbeat_interval=0.1) as fake:
        await _reconnects(fake)


async def _reconnects(fake_opencode: FakeOpenCode) -> None:
    client = OpenCodeClient(fake_opencode.url)
    connects = 0
    retries: list[tuple[int, str]] = []
    seen: list[str] = []

    async def on_connected() -> None:
        nonlocal connects
        connects += 1

    async def on_events(events: list[dict[str, Any]]) -> None:
        seen.extend(event["type"] for event in events)

    async def on_reconnect(failures: int, reason: str) -> bool:
        retries.append((failures, reason))
        return True

    stream = EventStream(
        client,
        on_events=on_events,
        on_connected=on_connected,
        on_reconnect=on_reconnect,
        heartbeat_timeout=0.6,
        backoff=Backoff(0.01, 0.05),
    )
    task = asyncio.create_task(stream.run())
    try:
        await asyncio.wait_for(stream.connected.wait(), 10)
        await fake_opencode.drop_streams()  # the connection ends
        await eventually(lambda: connects >= 2)
        fake_opencode.heartbeats_paused = True  # the connection goes silent
        await eventually(lambda: len(retries) >= 2)
        fake_opencode.heartbeats_paused = False
        await eventually(lambda: connects >= 3 and "server.heartbeat" in seen)
        assert retries[0] == (1, "closed")
        assert retries[1][1].startswith(StreamStalled.__name__)
        # Heartbeats reach the handler; a successful connect resets the failure count.
        assert "server.heartbeat" in seen and "server.connected" not in seen
        assert all(failures == 1 for failures, _ in retries)
    finally:
        task.cancel()
        await client.close()


async def test_stream_gives_up_when_told(fake_opencode: FakeOpenCode) -> None:
    client = OpenCodeClient("http://127.0.0.1:9")  # nothing listens there
    calls: list[int] = []

    async def on_reconnect(failures: int, reason: str) -> bool:
        calls.append(failures)
        return failures < 3

    async def nothing(*_: Any) -> None:
        return None

    stream = EventStream(
        client,
        on_events=nothing,
        on_connected=nothing,
        on_reconnect=on_reconnect,
        backoff=Backoff(0.01, 0.02),
    )
    await asyncio.wait_for(stream.run(), 10)
    assert calls == [1, 2, 3]
    await client.close()
