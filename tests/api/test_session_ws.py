"""The session WebSocket through the real Serve app, with a synthetic OpenCode source.

Each test creates a session over HTTP, then pre-creates its actor (``session:<id>``) with a
provider whose sandbox is a FakeOpenCode; the ingress finds that actor by name. Everything
else is Warren's own: Serve, the actor, Postgres, JetStream.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
import ray

from actors import session_client
from actors.transcript import Transcript
from core.settings import Settings
from schemas.session_ws import ServerMessage
from security import tokens
from tests.api.accounts import Account, call
from tests.api.conftest import AccountFactory
from tests.fakes.opencode import FakeOpenCode, Reply, ToolCall, fake_provider

_decode = msgspec.json.Decoder(ServerMessage).decode


class Client:
    """A WebSocket client that keeps every frame it received."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    async def recv(self, within: float = 20.0) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=within)
        assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data)
        frame: dict[str, Any] = msgspec.json.decode(msg.data)
        self.frames.append(frame)
        return frame

    async def until(self, done: Callable[[dict[str, Any]], bool], within: float = 30.0) -> None:
        async with asyncio.timeout(within):
            while not done(await self.recv()):
                pass

    async def until_completes(self, count: int, within: float = 30.0) -> None:
        await self.until(lambda _: self.count("message_complete") >= count, within)

    def streamed(self) -> str:
        """The text of every token frame so far (token frames may merge several deltas)."""
        return "".join(f["token"] for f in self.frames if f.get("type") == "token")

    def count(self, kind: str) -> int:
        return sum(1 for f in self.frames if f["type"] == kind)

    def logged(self) -> list[dict[str, Any]]:
        """The event-log frames (seq > 0, not init), in arrival order."""
        return [f for f in self.frames if f.get("seq", 0) > 0 and f["type"] != "init"]

    async def send(self, **message: Any) -> None:
        await self.ws.send_json(message)


def transcript_of(*clients: Client) -> Transcript:
    """What a client shows: init's messages, then every logged event folded in."""
    transcript = Transcript()
    for client in clients:
        for frame in client.frames:
            event = _decode(msgspec.json.encode(frame))
            if frame["type"] == "init":
                transcript = Transcript(list(event.messages))
            else:
                transcript.apply(event)
    return transcript


def assert_exactly_once_in_order(frames: list[dict[str, Any]]) -> None:
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(seqs), "events out of order"
    assert len(seqs) == len(set(seqs)), "an event was delivered twice"


class Live:
    """A session whose actor's sandbox is the fake OpenCode."""

    def __init__(self, owner: Account, session_id: str, fake: FakeOpenCode, api_url: str) -> None:
        self.owner = owner
        self.session_id = session_id
        self.fake = fake
        self.api_url = api_url
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []

    async def token(self, who: Account | None = None) -> str:
        status, body = await call((who or self.owner).client, "POST", "/api/auth/ws-token")
        assert status == 200, body
        return str(body["token"])

    async def connect(self, *, after_seq: int | None = None, who: Account | None = None) -> Client:
        query = f"?token={await self.token(who)}"
        if after_seq is not None:
            query += f"&after_seq={after_seq}"
        ws = await self.owner.client.ws_connect(
            f"{self.api_url}/api/sessions/{self.session_id}/ws{query}", autoping=True
        )
        self.sockets.append(ws)
        return Client(ws)

    def actor(self) -> Any:
        return ray.get_actor(session_client.actor_name(self.session_id), namespace="warren")


@pytest.fixture
async def live(
    account: AccountFactory, api_url: str, settings: Settings, tmp_path: Path
) -> AsyncIterator[Live]:
    owner = await account()
    status, created = await call(owner.client, "POST", "/api/sessions", json={"title": "Live"})
    assert status == 201, created
    sid = created["session_id"]
    async with FakeOpenCode(heartbeat_interval=1.0) as fake:
        factory = functools.partial(fake_provider, fake.url, str(tmp_path / "sandbox"))
        session_client.session_actor(sid, settings, factory)
        session = Live(owner, sid, fake, api_url)
        try:
            yield session
        finally:
            for ws in session.sockets:
                await ws.close()
            await session_client.kill_session_actor(sid)


async def test_prompt_streams_tokens_and_tools_to_message_complete(live: Live) -> None:
    live.fake.reply = Reply(tokens=["Hel", "lo", "!"], tool=ToolCall(args={"command": "ls"}))
    client = await live.connect()
    init = await client.recv()
    assert init["type"] == "init" and init["messages"] == []
    assert init["config"]["title"] == "Live"
    await client.send(type="prompt", content="list files")
    await client.until_completes(2)
    kinds = [f["type"] for f in client.logged()]
    assert kinds.index("message") < kinds.index("tool_start") < kinds.index("tool_end")
    assert kinds.index("tool_end") < kinds.index("token") < kinds.index("text_part_complete")
    assert kinds[-1] == "message_complete"
    statuses = [f["status"] for f in client.logged() if f["type"] == "status"]
    assert statuses == ["resuming", "running"]
    user = next(f for f in client.logged() if f["type"] == "message")
    assert user["message"]["role"] == "user" and user["message"]["content"] == "list files"
    tool_end = next(f for f in client.logged() if f["type"] == "tool_end")
    assert tool_end["tool"] == "bash" and tool_end["result"] == "hi\n"
    assert_exactly_once_in_order(client.logged())
    answer = transcript_of(client).snapshot()[-1]
    assert answer.content == "Hello!" and answer.is_complete
    # Ping and status requests are answered on this socket only.
    await client.send(type="ping")
    assert (await client.recv())["type"] == "pong"
    await client.send(type="get_status")
    assert await client.recv() == {"type": "status", "seq": 0, "status": "running", "message": None}
    # Git runs in the sandbox, which here runs no commands: a failed result, to this socket.
    await client.send(type="git_push")
    reply = await client.recv()
    assert reply["type"] == "git_result" and reply["seq"] == 0, reply
    assert (reply["action"], reply["success"]) == ("push", False)


async def test_two_clients_see_the_whole_stream(live: Live) -> None:
    tokens = [f"w{i} " for i in range(20)]
    live.fake.reply = Reply(tokens=tokens, token_delay=0.005)
    first, second = await live.connect(), await live.connect()
    assert (await first.recv())["type"] == "init" and (await second.recv())["type"] == "init"
    await first.send(type="prompt", content="hi")
    await first.until_completes(1)
    await second.until_completes(1)
    assert first.logged() == second.logged()
    # Under load the actor merges deltas that arrive together into one token event, so the
    # stream is checked by its text, not by how many token frames carried it.
    assert first.streamed() == "".join(tokens)
    assert 1 <= first.count("token") <= len(tokens)


async def test_reconnect_with_cursor_gets_every_event_once(live: Live) -> None:
    tokens = [f"t{i} " for i in range(60)]
    live.fake.reply = Reply(tokens=tokens, token_delay=0.02)
    control, dropping = await live.connect(), await live.connect()
    await control.recv()
    await dropping.recv()
    await control.send(type="prompt", content="stream")
    await dropping.until(lambda _: len(dropping.streamed()) >= 30)
    cursor = dropping.logged()[-1]["seq"]
    await dropping.ws.close()
    await asyncio.sleep(0.3)  # events the dropped client misses while away
    resumed = await live.connect(after_seq=cursor)
    await resumed.until_completes(1)
    await control.until_completes(1)
    assert resumed.frames[0]["type"] != "init"
    assert resumed.frames[0]["seq"] > cursor
    combined = dropping.logged() + resumed.logged()
    assert_exactly_once_in_order(combined)
    assert combined == control.logged()
    assert transcript_of(dropping, resumed).snapshot()[-1].content == "".join(tokens)


async def test_actor_killed_mid_stream_client_still_gets_everything(live: Live) -> None:
    tokens = [f"k{i} " for i in range(80)]
    live.fake.reply = Reply(tokens=tokens, token_delay=0.02)
    client = await live.connect()
    await client.recv()
    await client.send(type="prompt", content="survive")
    await client.until(lambda _: len(client.streamed()) >= 30)
    ray.kill(live.actor(), no_restart=False)
    await client.until_completes(1, within=60)
    assert_exactly_once_in_order(client.logged())
    answer = transcript_of(client).snapshot()[-1]
    assert answer.content == "".join(tokens) and answer.is_complete
    # A fresh client (no cursor) gets the same transcript from Postgres, once the answer
    # is stored there (right after its completion's ack).
    async with asyncio.timeout(30):
        while True:
            fresh = await live.connect()
            init = await fresh.recv()
            assert init["type"] == "init"
            if len(init["messages"]) == 2:
                break
            await fresh.ws.close()
            await asyncio.sleep(0.1)
    assert [m["content"] for m in init["messages"]] == ["survive", "".join(tokens)]
    # And a client resuming from the very start of the prompt replays it exactly.
    first_seq = client.logged()[0]["seq"]
    replay = await live.connect(after_seq=first_seq)
    await replay.until_completes(1)
    assert [client.logged()[0], *replay.logged()[: len(client.logged()) - 1]] == client.logged()


async def test_http_prompt_eager_start_status_and_cancel(live: Live, settings: Settings) -> None:
    service = {"Authorization": f"Bearer {tokens.mint_service_token(settings.secret_key, 'slack')}"}
    client = live.owner.client
    base = f"/api/sessions/{live.session_id}"
    status, body = await call(client, "POST", f"{base}/eager-start", headers=service)
    assert status == 202 and body["accepted"] is True
    live.fake.reply = Reply(tokens=["slow "] * 200, token_delay=0.02)
    key = {**service, "Idempotency-Key": "prompt-1"}
    prompt = {"content": "from slack", "source": "slack"}
    status, first = await call(client, "POST", f"{base}/message", json=prompt, headers=key)
    status2, again = await call(client, "POST", f"{base}/message", json=prompt, headers=key)
    assert status == status2 == 202 and first == again
    assert [text for _, text in live.fake.prompts] == ["from slack"]
    status, state = await call(client, "GET", f"{base}/status", headers=service)
    assert state["state"] == "running" and state["status"] == "running"
    status, cancelled = await call(client, "POST", f"{base}/cancel", headers=service)
    assert status == 200 and cancelled["accepted"] is True
    status, _ = await call(client, "POST", f"{base}/heartbeat")
    assert status == 200
    # The transcript shows the prompt once, from slack, and the cancelled answer.
    viewer = await live.connect()
    init = await viewer.recv()
    await live.fake.wait_idle()
    messages = init["messages"]
    assert messages[0]["content"] == "from slack" and messages[0]["source"] == "slack"
    async with client.get("/metrics") as resp:
        metrics = await resp.text()
    assert "warren_session_ws_clients" in metrics
    assert 'warren_session_resyncs_total{reason="no_cursor"}' in metrics


async def test_stale_cursor_gets_init(live: Live) -> None:
    client = await live.connect(after_seq=1)
    assert (await client.recv())["type"] == "init"


async def test_other_org_and_bad_tokens_are_refused(live: Live, account: AccountFactory) -> None:
    stranger = await account()
    for query in (f"?token={await live.token(stranger)}", "?token=forged", ""):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await stranger.client.ws_connect(
                f"{live.api_url}/api/sessions/{live.session_id}/ws{query}"
            )
        assert refused.value.status == 403


async def test_slow_consumer_is_closed_and_others_keep_streaming(live: Live) -> None:
    tokens = [f"{i:05d}" for i in range(3000)]
    # A text part per token: 6000 events (token + text_part_complete) that can't be merged.
    live.fake.reply = Reply(tokens=tokens, part_per_token=True)
    fast, slow = await live.connect(), await live.connect()
    await fast.recv()
    init = await slow.recv()
    # The slow client acks once (so the server holds it to the ack window), then stops
    # reading and acking.
    await slow.send(type="ack", seq=init["seq"])
    await fast.send(type="prompt", content="flood")
    await fast.until_completes(1, within=120)
    assert fast.count("token") == len(tokens)
    assert_exactly_once_in_order(fast.logged())
    async with asyncio.timeout(60):
        while True:
            msg = await slow.ws.receive()
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break
            slow.frames.append(msgspec.json.decode(msg.data))
    assert slow.ws.close_code == 4008
    assert slow.count("message_complete") == 0  # closed while far behind
    # It reconnects with its cursor and catches up.
    cursor = max([init["seq"], *(f["seq"] for f in slow.logged())])
    resumed = await live.connect(after_seq=cursor)
    await resumed.until_completes(1, within=60)
    assert [*slow.logged(), *resumed.logged()] == fast.logged()
