"""Transcript persistence and the transcript cursor against the real test database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from schemas.sessions import NewSession
from schemas.transcript import Message, TextPart, ToolPart
from store import messages, orgs, sessions
from tests.store.conftest import UserFactory


def test_cut_cursor_is_the_last_seq_when_everything_is_complete() -> None:
    assert messages.cut_cursor([(0, 5), (5, 9)], 12) == 12
    assert messages.cut_cursor([], 7) == 7


def test_cut_cursor_moves_before_incomplete_messages() -> None:
    # m1 complete at 5; m2 started after 6 and is still streaming.
    assert messages.cut_cursor([(0, 5), (6, None)], 20) == 6


def test_cut_cursor_fixpoint_excludes_messages_completed_after_the_cut() -> None:
    # m1 started after 10, completed at 20; m2 started after 15, open. Cutting at 15 would
    # leave m1 (done at 20 > 15) out of the transcript with its first events before 15, so
    # the cursor must move before m1 as well.
    assert messages.cut_cursor([(10, 20), (15, None)], 30) == 10
    # A completion beyond the stream position read first is "not complete yet".
    assert messages.cut_cursor([(3, 9)], 8) == 3


async def _session(pool: asyncpg.Pool, make_user: UserFactory) -> uuid.UUID:
    user = await make_user()
    async with pool.acquire() as conn:
        org = await orgs.create_org(conn, name="T", owner_id=user.id)
    record, _ = await sessions.insert_session(
        pool, NewSession(org_id=org.id, created_by=user.id, sandbox_provider="local")
    )
    return record.id


def _assistant(message_id: str, text: str, complete: bool) -> Message:
    return Message(
        id=message_id,
        role="assistant",
        content=text,
        is_complete=complete,
        created_at=datetime.now(UTC),
        parts=(
            TextPart(id=f"{message_id}-p", text=text),
            ToolPart(
                id=f"{message_id}-t",
                tool_call_id="c1",
                tool_name="bash",
                args={"command": "ls"},
                result="a\n",
                status="completed",
            ),
        ),
    )


async def test_load_transcript_is_consistent_with_the_cursor(
    pool: asyncpg.Pool, make_user: UserFactory
) -> None:
    sid = await _session(pool, make_user)
    user_msg = Message(
        id="u1",
        role="user",
        content="hi",
        is_complete=True,
        created_at=datetime.now(UTC),
        source="web",
        parts=(TextPart(id="u1-text", text="hi"),),
    )
    assert await messages.begin_message(pool, sid, user_msg, after_seq=100)
    assert not await messages.begin_message(pool, sid, user_msg, after_seq=100)
    await messages.set_completed_seq(pool, sid, "u1", 101)
    await messages.begin_message(pool, sid, _assistant("a1", "", False), after_seq=101)
    await messages.complete_message(pool, sid, _assistant("a1", "done", True), 110)
    await messages.begin_message(pool, sid, _assistant("a2", "", False), after_seq=111)

    transcript, cursor = await messages.load_transcript(pool, sid, 120)
    assert cursor == 111
    assert [m.id for m in transcript] == ["u1", "a1"]
    assert transcript[1].content == "done" and transcript[1].parts[1] == ToolPart(
        id="a1-t",
        tool_call_id="c1",
        tool_name="bash",
        args={"command": "ls"},
        result="a\n",
        status="completed",
    )
    assert await messages.transcript_cursor(pool, sid, 120) == 111
    assert await messages.incomplete_message_ids(pool, sid) == {"a2"}
    assert await messages.completed_message_ids(pool, sid) == {"u1", "a1"}

    state = await messages.user_message_state(pool, sid, "u1")
    assert state is not None and state.completed_seq == 101 and not state.delivered
    await messages.mark_delivered(pool, sid, "u1")
    state = await messages.user_message_state(pool, sid, "u1")
    assert state is not None and state.delivered

    await messages.delete_message(pool, sid, "a2")
    assert (await messages.load_transcript(pool, sid, 120))[1] == 120


async def test_transcripts_are_per_session(pool: asyncpg.Pool, make_user: UserFactory) -> None:
    first = await _session(pool, make_user)
    second = await _session(pool, make_user)
    await messages.complete_message(pool, first, _assistant("x", "one", True), 5, after_seq=1)
    assert (await messages.load_transcript(pool, second, 10))[0] == []
    assert [m.id for m in (await messages.load_transcript(pool, first, 10))[0]] == ["x"]
