"""The session actor's logic in-process (no Ray): real Postgres and JetStream, a synthetic
OpenCode server. Restarts are simulated by dropping one SessionCore and starting another,
exactly what Ray does when it restarts the actor."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import asyncpg
import msgspec
from nats.js import JetStreamContext

from actors.session.core import SessionCore
from actors.session.log import read_events, subject_last_seq
from actors.session.runtime import ProviderFactory
from actors.session.tools import ToolRunner
from actors.session_client import build_init
from actors.transcript import Transcript
from artifacts.factory import artifact_store_from_settings
from core.bus import Subjects
from core.settings import Settings
from schemas.session_ws import (
    MessageComplete,
    MessageEvent,
    ServerMessage,
    SnapshotResult,
    Status,
    Token,
)
from schemas.sessions import SessionLifecycleEvent
from store import messages, sessions
from tests.actors.conftest import SessionFactory, eventually
from tests.fakes.opencode import FakeOpenCode, Reply, ToolCall


async def events_of(
    js: JetStreamContext, settings: Settings, session_id: str, after: int = 0
) -> list[tuple[int, ServerMessage]]:
    return [e async for e in read_events(js, Subjects(settings.nats_prefix), session_id, after)]


async def wait_for(
    js: JetStreamContext,
    settings: Settings,
    session_id: str,
    predicate: type[ServerMessage],
    count: int = 1,
    within: float = 20.0,
) -> list[tuple[int, ServerMessage]]:
    """Poll the event log until ``count`` events of type ``predicate`` are in it."""
    async with asyncio.timeout(within):
        while True:
            found = await events_of(js, settings, session_id)
            if sum(isinstance(e, predicate) for _, e in found) >= count:
                return found
            await asyncio.sleep(0.05)


async def agent_text(fake: FakeOpenCode) -> str:
    """The text of the agent's newest answer as OpenCode has it so far (its message API)."""
    async with aiohttp.ClientSession(fake.url) as http:
        session_id = next(iter(fake.sessions))
        async with http.get(f"/session/{session_id}/message") as resp:
            messages = await resp.json()
    parts = messages[-1]["parts"] if messages else []
    return "".join(p.get("text", "") for p in parts if p.get("type") == "text")


def fold(events: list[tuple[int, ServerMessage]]) -> Transcript:
    transcript = Transcript()
    for _, event in events:
        transcript.apply(event)
    return transcript


async def test_prompt_streams_persists_and_inits(
    settings: Settings,
    pool: asyncpg.Pool,
    js: JetStreamContext,
    make_session: SessionFactory,
    fake_opencode: FakeOpenCode,
    provider_factory: ProviderFactory,
) -> None:
    fake_opencode.reply = Reply(tokens=["a", "b", "c"], tool=ToolCall())
    record = await make_session(title="Hello")
    sid = str(record.id)
    core = SessionCore(sid, settings, provider_factory)
    try:
        await core.prompt("prompt-1", "do it", sender_id="u1")
        found = await wait_for(js, settings, sid, MessageComplete, count=2)
        kinds = [type(e).__name__ for _, e in found]
        assert kinds[:2] == ["MessageEvent", "Status"]  # the prompt shows before the boot
        assert found[1][1] == Status(status="resuming")
        assert Status(status="running") in [e for _, e in found]
        seqs = [s for s, _ in found]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        transcript = fold(found)
        user, tool_msg, answer = transcript.snapshot()
        assert (user.role, user.content, user.source) == ("user", "do it", "web")
        assert tool_msg.parts[0].tool_name == "bash"  # type: ignore[union-attr]
        assert answer.content == "abc" and answer.is_complete
        # Prompting again with the same id changes nothing.
        await core.prompt("prompt-1", "do it")
        assert len(fake_opencode.prompts) == 1
        # Postgres has the same transcript, and init is consistent with the log.
        init = await build_init(pool, js, Subjects(settings.nats_prefix), record)
        assert [m.id for m in init.messages] == [m.id for m in transcript.snapshot()]
        assert init.messages[2].content == "abc"
        assert init.seq == await subject_last_seq(js, Subjects(settings.nats_prefix), sid)
        row = await sessions.get_session(pool, record.id)
        assert row is not None and row.status == "running" and row.coding_agent_session_id
    finally:
        await core.close()


async def test_restart_mid_stream_recovers_and_completes(
    settings: Settings,
    pool: asyncpg.Pool,
    js: JetStreamContext,
    make_session: SessionFactory,
    fake_opencode: FakeOpenCode,
    provider_factory: ProviderFactory,
) -> None:
    tokens = [f"t{i} " for i in range(40)]
    fake_opencode.reply = Reply(tokens=tokens, token_delay=0.03)
    record = await make_session()
    sid = str(record.id)
    first = SessionCore(sid, settings, provider_factory)
    await first.prompt("p1", "stream please")
    await wait_for(js, settings, sid, Token, count=5)
    # The process dies: nothing is shut down cleanly, its stream reader just stops.
    await first.close()
    # OpenCode goes on: wait until it has streamed tokens that reached nobody.
    heard = sum(len(e.token) for _, e in await events_of(js, settings, sid) if isinstance(e, Token))
    async with asyncio.timeout(20):
        while True:
            if len(await agent_text(fake_opencode)) >= heard + 3 * len(tokens[0]):
                break
            await asyncio.sleep(0.01)
    second = SessionCore(sid, settings, provider_factory)
    try:
        await second.started()
        # Recovery reconnects on its own (the row says running), no call needed.
        found = await wait_for(js, settings, sid, MessageComplete)
        await fake_opencode.wait_idle()
        answer = [m for m in fold(found).snapshot() if m.role == "assistant"][-1]
        assert answer.content == "".join(tokens) and answer.is_complete
        seqs = [s for s, _ in found]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        # The answer reaches Postgres right after its completion's ack: wait for it there.
        async with asyncio.timeout(30):
            while True:
                stored, _ = await messages.load_transcript(pool, record.id, 10**12)
                if stored[-1].role == "assistant":
                    break
                await asyncio.sleep(0.05)
        assert stored[-1].content == "".join(tokens)
        # Only one stub for the answer: the restart did not start it over.
        stubs = [e for _, e in found if isinstance(e, MessageEvent)]
        assert len(stubs) == 2
        assert len(fake_opencode.prompts) == 1
    finally:
        await second.close()


async def test_tools_run_once_per_call_id(
    settings: Settings,
    pool: asyncpg.Pool,
    js: JetStreamContext,
    make_session: SessionFactory,
    fake_opencode: FakeOpenCode,
    provider_factory: ProviderFactory,
    tmp_path: Path,
) -> None:
    record = await make_session()
    sid = str(record.id)
    core = SessionCore(sid, settings, provider_factory)
    tools = ToolRunner(core)
    try:
        await core.ensure_ready()
        first, second = await asyncio.gather(
            tools.call("save_snapshot", "call-1", {}), tools.call("save_snapshot", "call-1", {})
        )
        again = await tools.call("save_snapshot", "call-1", {})
        assert first == second == again and first.success
        snapshots = (tmp_path / "sandbox" / "snapshots.log").read_text().split()
        assert len(snapshots) == 1
        assert first.data["snapshotId"] == snapshots[0]
        row = await sessions.get_session(pool, record.id)
        assert row is not None and row.snapshot_id == snapshots[0]
        # A restarted actor (fresh cache) still answers from Postgres.
        restarted = ToolRunner(SessionCore(sid, settings, provider_factory))
        try:
            replay = await restarted.call("save_snapshot", "call-1", {})
        finally:
            await restarted.core.close()
        assert replay == first
        assert len((tmp_path / "sandbox" / "snapshots.log").read_text().split()) == 1
        found = await wait_for(js, settings, sid, SnapshotResult)
        results = [e for _, e in found if isinstance(e, SnapshotResult)]
        assert results == [SnapshotResult(success=True, snapshot_id=snapshots[0], target="session")]

        refused = await tools.call(
            "save_service_commands", "call-2", {"commands": [{"name": "web", "command": "x"}]}
        )
        assert not refused.success and "setup" in refused.result

        files = tmp_path / "sandbox" / "files" / ".warren" / "verification"
        files.mkdir(parents=True)
        (files / "shot.txt").write_text("evidence")
        verified = await tools.call("verify", "call-3", {})
        assert verified.success and verified.data["files"] == ["shot.txt"]
        prefix = verified.data["prefix"]
        assert prefix.startswith(f"sessions/{sid}/verification/")
        store = artifact_store_from_settings(settings)
        try:
            assert (await store.get(prefix + "shot.txt")).data == b"evidence"
        finally:
            await store.close()
    finally:
        await tools.close()
        await core.close()


async def test_automation_complete_announces_and_stops(
    settings: Settings,
    pool: asyncpg.Pool,
    js: JetStreamContext,
    make_session: SessionFactory,
    provider_factory: ProviderFactory,
    tmp_path: Path,
) -> None:
    record = await make_session(client_type="automation")
    sid = str(record.id)
    subjects = Subjects(settings.nats_prefix)
    seen: list[SessionLifecycleEvent] = []

    async def collect(msg: object) -> None:
        event = msgspec.json.decode(msg.data, type=SessionLifecycleEvent)  # type: ignore[attr-defined]
        if event.session_id == sid:
            seen.append(event)

    sub = await js.subscribe(subjects.session_lifecycle, cb=collect, ordered_consumer=True)
    core = SessionCore(sid, settings, provider_factory)
    tools = ToolRunner(core)
    try:
        await core.ensure_ready()
        args = {
            "run_id": "run-1",
            "completion_id": "done-1",
            "outcome": "succeeded",
            "summary_markdown": "Fixed it.",
        }
        response = await tools.call("automation_complete", "done-1", args)
        assert response.success
        await eventually(lambda: any(e.event == "stopped" for e in seen), 15)
        completed = next(e for e in seen if e.event == "completed")
        assert (completed.run_id, completed.completion_id, completed.outcome) == (
            "run-1",
            "done-1",
            "succeeded",
        )
        assert [e.event for e in seen] == ["running", "completed", "stopped"]
        row = await sessions.get_session(pool, record.id)
        assert row is not None and row.status == "stopped" and row.stop_reason == "completed"
        assert row.outcome == "succeeded" and row.summary == "Fixed it."
        terminated = (tmp_path / "sandbox" / "terminated.log").read_text().split()
        assert terminated == [row.sandbox_id or terminated[0]]
    finally:
        await sub.unsubscribe()
        await tools.close()
        await core.close()


async def test_initial_prompt_is_sent_once(
    settings: Settings,
    pool: asyncpg.Pool,
    js: JetStreamContext,
    make_session: SessionFactory,
    fake_opencode: FakeOpenCode,
    provider_factory: ProviderFactory,
) -> None:
    record = await make_session(initial_prompt="start here", client_type="slack")
    sid = str(record.id)
    core = SessionCore(sid, settings, provider_factory)
    try:
        await core.ensure_ready()
        found = await wait_for(js, settings, sid, MessageComplete)
        user = next(e for _, e in found if isinstance(e, MessageEvent))
        assert user.message.content == "start here" and user.message.source == "slack"
    finally:
        await core.close()
    # A restarted actor boots again but does not send it a second time.
    again = SessionCore(sid, settings, provider_factory)
    try:
        await again.ensure_ready()
        # A later prompt, answered, proves the boot (and its initial-prompt step) is done.
        await again.prompt("later", "after the restart")
        await wait_for(js, settings, sid, MessageComplete, count=2)
    finally:
        await again.close()
    assert [text for _, text in fake_opencode.prompts] == ["start here", "after the restart"]
    row = await sessions.get_session(pool, record.id)
    assert row is not None and row.initial_prompt_sent_at is not None
