"""A session actor killed five times while the real OpenCode streams long answers.

Serve ingress → session actor → local sandbox running the real OpenCode binary → the
scripted model, which streams each answer slowly in small chunks. Between kills the test
waits for more text to reach a client (the restarted actor is streaming again), never for
a fixed time. One client stays connected throughout; another drops before every kill and
reconnects with ``after_seq`` (its last seq) after it. Both must see every event of the
session's log exactly once, in order, with no gap (compared with what JetStream stores),
and the transcript, live and from Postgres, must hold every answer whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest
import ray

from actors import session_client
from actors.session.log import read_events
from core.bus import Subjects, connect
from core.settings import Settings
from llm.scripted import ScriptedModelServer
from schemas.llm import Script, ScriptRule, ScriptStep
from tests.api.accounts import call
from tests.api.conftest import AccountFactory
from tests.api.test_session_ws import Client, assert_exactly_once_in_order, transcript_of
from tests.fixtures.llm import use_script

KILLS = 5
PROMPTS = ("first long story", "second long story", "third long story")


def story(n: int) -> str:
    """A long answer whose every word is distinct, so a lost or doubled chunk shows."""
    return " ".join(f"s{n}w{i:03d}" for i in range(500)) + "."


SCRIPT = Script(
    rules=tuple(
        ScriptRule(
            when_user=prompt,
            steps=(ScriptStep(text=story(n), chunk_chars=7, delay_ms=25),),
        )
        for n, prompt in enumerate(PROMPTS)
    ),
)


@pytest.fixture
def model(scripted_model: ScriptedModelServer) -> Iterator[ScriptedModelServer]:
    """The run's scripted model, answering each prompt with its long story."""
    with use_script(scripted_model, SCRIPT) as server:
        yield server


class Reader:
    """A client whose frames are read continuously in the background (an unread socket
    would miss the server's pings and be closed)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        with contextlib.suppress(AssertionError, TimeoutError, aiohttp.ClientError):
            while True:
                await self.client.recv(within=600)

    async def until(self, done: Callable[[], bool], within: float = 90.0) -> None:
        """Until ``done()`` holds for the frames read so far."""
        async with asyncio.timeout(within):
            while not done():
                assert not self._task.done(), "the socket closed"
                await asyncio.sleep(0.02)

    def last_seq(self) -> int:
        """The seq of the newest logged frame (0 if none)."""
        logged = self.client.logged()
        return int(logged[-1]["seq"]) if logged else 0

    async def close(self) -> None:
        """Close the socket and stop reading."""
        await self.client.ws.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def _connect(owner: Any, api_url: str, sid: str, after_seq: int | None = None) -> Reader:
    status, token = await call(owner.client, "POST", "/api/auth/ws-token")
    assert status == 200, token
    query = f"?token={token['token']}" + ("" if after_seq is None else f"&after_seq={after_seq}")
    return Reader(Client(await owner.client.ws_connect(f"{api_url}/api/sessions/{sid}/ws{query}")))


async def _stored_seqs(settings: Settings, sid: str) -> list[int]:
    nc = await connect(settings.nats_url, name="warren-test-reliability")
    try:
        subjects = Subjects(settings.nats_prefix)
        return [seq async for seq, _ in read_events(nc.jetstream(), subjects, sid, 0)]
    finally:
        await nc.close()


def _progressed(client: Client, chars: int, answers: int) -> bool:
    """The client has ``chars`` characters of streamed text, or ``answers`` complete ones."""
    return len(client.streamed()) >= chars or client.count("message_complete") >= answers


def _reached(reader: Reader, seq: int) -> bool:
    """The reader has read the event at ``seq`` (or a later one)."""
    return reader.last_seq() >= seq


def _kill_actor(sid: str) -> None:
    ray.kill(ray.get_actor(session_client.actor_name(sid), namespace="warren"), no_restart=False)


async def test_five_actor_kills_mid_stream_with_real_opencode(
    account: AccountFactory, api_url: str, settings: Settings, model: ScriptedModelServer
) -> None:
    owner = await account()
    status, created = await call(owner.client, "POST", "/api/sessions", json={"title": "Kills"})
    assert status == 201, created
    sid = created["session_id"]
    steady = await _connect(owner, api_url, sid)
    visits = [await _connect(owner, api_url, sid)]
    """The dropping client's visits, one socket each; together they are its view."""
    readers = [steady, *visits]
    live = steady.client
    try:
        await steady.until(lambda: bool(live.frames), within=60)
        assert live.frames[0]["type"] == "init"
        sent = kills = 0
        while kills < KILLS:
            if live.count("message_complete") >= sent:  # the last answer is done: ask again
                assert sent < len(PROMPTS), "ran out of prompts before the kills were done"
                await live.send(type="prompt", content=PROMPTS[sent])
                sent += 1
            # The (restarted) actor streams: more text reaches the client than before.
            more = len(live.streamed()) + 40
            await steady.until(functools.partial(_progressed, live, more, sent))
            if live.count("message_complete") >= sent:
                continue  # the answer ended first; kill during the next one
            # The dropping client catches up with the steady one, leaves with its cursor,
            # the actor dies, and the client comes back while the answer goes on.
            await visits[-1].until(functools.partial(_reached, visits[-1], steady.last_seq()))
            cursor = visits[-1].last_seq()
            await visits[-1].close()
            _kill_actor(sid)
            kills += 1
            visits.append(await _connect(owner, api_url, sid, after_seq=cursor))
            readers.append(visits[-1])
        await steady.until(lambda: live.count("message_complete") >= sent, within=120)
        # What the log stores now (the actor may still add events: both clients must have
        # everything up to here, and nothing else in between).
        stored = await _stored_seqs(settings, sid)
        await steady.until(lambda: steady.last_seq() >= stored[-1])
        await visits[-1].until(lambda: visits[-1].last_seq() >= stored[-1])

        # Every event exactly once, in order, and none missing from what the log stores.
        assert_exactly_once_in_order(live.logged())
        rejoined = [f for v in visits for f in v.client.logged()]
        assert_exactly_once_in_order(rejoined)
        assert all(v.client.frames[0]["type"] != "init" for v in visits[1:]), (
            "a reconnect with a valid cursor must replay, not resync"
        )
        assert [f["seq"] for f in live.logged()][: len(stored)] == stored
        assert [f["seq"] for f in rejoined][: len(stored)] == stored
        assert rejoined[: len(stored)] == live.logged()[: len(stored)]

        # The transcript, as the clients built it and as Postgres has it, is complete.
        answers = [story(n) for n in range(sent)]
        for shown in (transcript_of(live), transcript_of(*(v.client for v in visits))):
            assistant = [m for m in shown.snapshot() if m.role == "assistant"]
            assert [m.content for m in assistant] == answers
            assert all(m.is_complete for m in assistant)
        fresh = await _connect(owner, api_url, sid)
        readers.append(fresh)
        await fresh.until(lambda: bool(fresh.client.frames), within=30)
        init = fresh.client.frames[0]
        assert init["type"] == "init"
        contents = [m["content"] for m in init["messages"]]
        assert contents == [x for pair in zip(PROMPTS[:sent], answers, strict=True) for x in pair]
        assert init["seq"] >= stored[-1]
    finally:
        for reader in readers:
            await reader.close()
        status, _ = await call(owner.client, "DELETE", f"/api/sessions/{sid}")
        assert status == 204
