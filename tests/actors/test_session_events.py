"""The event processor against a real OpenCode 1.18 event stream (recorded with the scripted
model: a text answer, a bash tool call then text, and a prompt aborted mid-stream)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from actors.session.events import EventProcessor, coalesce_tokens, snapshot_events
from actors.transcript import Transcript
from schemas.session_ws import (
    Error,
    MessageCancelled,
    MessageComplete,
    MessageEvent,
    ServerMessage,
    TextPartComplete,
    TitleUpdate,
    Token,
    ToolEnd,
    ToolMetadata,
    ToolStart,
)

DATA = Path(__file__).parent / "data"
EVENTS: list[dict[str, Any]] = [
    json.loads(line) for line in (DATA / "opencode_events.jsonl").read_text().splitlines()
]
STORED: list[dict[str, Any]] = json.loads((DATA / "opencode_events_messages.json").read_text())
SESSION = EVENTS[1]["properties"]["sessionID"]


def kinds(messages: list[ServerMessage]) -> list[str]:
    return [type(m).__name__ for m in messages]


def fold(messages: list[ServerMessage]) -> Transcript:
    transcript = Transcript()
    for message in messages:
        transcript.apply(message)
    return transcript


def assistant_texts() -> dict[str, str]:
    """What OpenCode stored for each assistant message: its text parts joined."""
    return {
        m["info"]["id"]: "".join(p.get("text", "") for p in m["parts"] if p["type"] == "text")
        for m in STORED
        if m["info"]["role"] == "assistant"
    }


def test_recorded_stream_maps_to_the_contract_messages() -> None:
    out = EventProcessor(SESSION, title="capture").handle_all(EVENTS)
    assert kinds(out) == [
        # "say hello": a stub, two streamed tokens, the final text, completion
        "MessageEvent", "Token", "Token", "TextPartComplete", "MessageComplete",
        # "use a tool": the pending call, its arguments, its end, the message completes...
        "MessageEvent", "ToolStart", "ToolStart", "ToolEnd", "MessageComplete",
        # ...then the answer after the tool
        "MessageEvent", "Token", "Token", "Token", "Token", "Token", "Token",
        "TextPartComplete", "MessageComplete",
        # "slow" aborted after three tokens
        "MessageEvent", "Token", "Token", "Token", "MessageCancelled",
    ]  # fmt: skip
    tool_starts = [m for m in out if isinstance(m, ToolStart)]
    assert tool_starts[0].args == {} and tool_starts[1].args == {
        "command": "echo hi",
        "description": "say hi",
    }
    end = next(m for m in out if isinstance(m, ToolEnd))
    assert (end.tool, end.status, end.result) == ("bash", "completed", "hi\n")
    assert end.tool_call_id == tool_starts[0].tool_call_id and end.duration_ms > 0
    # User prompts are never echoed from OpenCode (Warren broadcasts them itself).
    stubs = [m for m in out if isinstance(m, MessageEvent)]
    assert all(s.message.role == "assistant" and not s.message.is_complete for s in stubs)


def test_client_transcript_matches_what_opencode_stored() -> None:
    out = EventProcessor(SESSION).handle_all(EVENTS)
    transcript = fold(out)
    stored = assistant_texts()
    assert list(transcript.messages) == list(stored)
    for message_id, text in stored.items():
        message = transcript.messages[message_id].to_message()
        assert message.is_complete
        assert message.content == text
    aborted = transcript.messages[list(stored)[-1]].to_message()
    assert aborted.cancelled and aborted.content == "slow text slow "
    tool_message = transcript.messages[list(stored)[1]].to_message()
    [tool] = [p for p in tool_message.parts if p.__class__.__name__ == "ToolPart"]
    assert msgspec.to_builtins(tool)["status"] == "completed"


def test_other_sessions_events_are_dropped() -> None:
    foreign = json.loads(json.dumps(EVENTS).replace(SESSION, "ses_someoneelse"))
    assert EventProcessor(SESSION).handle_all(foreign) == []


def test_repeated_idle_is_tolerated() -> None:
    processor = EventProcessor(SESSION)
    processor.handle_all(EVENTS)
    idle = {"type": "session.idle", "properties": {"sessionID": SESSION}}
    status_idle = {
        "type": "session.status",
        "properties": {"sessionID": SESSION, "status": {"type": "idle"}},
    }
    assert processor.handle_all([idle, status_idle, idle]) == []


def test_idle_completes_an_open_message_without_running_tools() -> None:
    # Cut the first answer right after its text completed: no message.updated completion.
    first_text_done = next(
        i
        for i, e in enumerate(EVENTS)
        if e["type"] == "message.part.updated"
        and e["properties"]["part"].get("time", {}).get("end")
    )
    processor = EventProcessor(SESSION)
    processor.handle_all(EVENTS[: first_text_done + 1])
    out = processor.handle({"type": "session.idle", "properties": {"sessionID": SESSION}})
    assert kinds(out) == ["MessageComplete"]


def test_idle_waits_while_a_tool_runs() -> None:
    running = next(
        i
        for i, e in enumerate(EVENTS)
        if e["type"] == "message.part.updated"
        and e["properties"]["part"].get("state", {}).get("status") == "running"
    )
    processor = EventProcessor(SESSION)
    processor.handle_all(EVENTS[: running + 1])
    idle = {"type": "session.idle", "properties": {"sessionID": SESSION}}
    assert not any(isinstance(m, MessageComplete) for m in processor.handle(idle)[-1:])
    open_messages = [m for m in processor.transcript.messages.values() if not m.is_complete]
    assert len(open_messages) == 1 and open_messages[0].tools_running()


def test_snapshot_replay_after_a_gap_emits_only_what_was_missed() -> None:
    """An SSE gap (actor restart): the processor is rebuilt from the events clients saw,
    then OpenCode's stored messages are replayed; only the missing events come out."""
    full = EventProcessor(SESSION).handle_all(EVENTS)
    # Clients saw events up to the second token of the post-tool answer.
    cut = [i for i, m in enumerate(full) if isinstance(m, Token)][3]
    seen = full[: cut + 1]
    rebuilt = fold(seen)
    done = {m.message_id for m in seen if isinstance(m, MessageComplete)}
    for message_id in done:
        rebuilt.remove(message_id)
    processor = EventProcessor(SESSION, transcript=rebuilt, done=done)
    missing = processor.handle_all(snapshot_events(SESSION, STORED, idle=True))
    client = fold(seen + missing)
    for message_id, text in assistant_texts().items():
        assert client.messages[message_id].to_message().content == text
        assert client.messages[message_id].is_complete
    # Nothing already shown is repeated: no second stub, token or tool event for old messages.
    assert not any(isinstance(m, MessageEvent) and m.message.id in done for m in missing)
    assert not any(isinstance(m, (ToolStart, ToolEnd)) for m in missing)
    assert isinstance(missing[0], TextPartComplete)
    # Replaying the same snapshot again changes nothing.
    assert processor.handle_all(snapshot_events(SESSION, STORED, idle=True)) == []


def test_duplicate_deltas_heal_with_the_final_text() -> None:
    processor = EventProcessor(SESSION)
    out = processor.handle_all(EVENTS[:30])
    token_events = [e for e in EVENTS if e["type"] == "message.part.delta"]
    # A delta seen twice (SSE reconnect overlap) then the part's final update.
    out += processor.handle(token_events[0])
    out += processor.handle_all(EVENTS[30:])
    client = fold(out)
    for message_id, text in assistant_texts().items():
        assert client.messages[message_id].to_message().content == text


def test_errors_titles_and_permissions() -> None:
    processor = EventProcessor(SESSION, title="old")
    error = {
        "type": "session.error",
        "properties": {
            "sessionID": SESSION,
            "error": {"name": "APIError", "data": {"message": "rate limited", "isRetryable": True}},
        },
    }
    assert processor.handle(error) == [Error(message="APIError: rate limited", code="agent_error")]
    updated = {
        "type": "session.updated",
        "properties": {"sessionID": SESSION, "info": {"id": SESSION, "title": "new"}},
    }
    assert processor.handle(updated) == [TitleUpdate(title="new")]
    assert processor.handle(updated) == []
    asked = {
        "type": "permission.asked",
        "properties": {
            "id": "per_1",
            "sessionID": SESSION,
            "permission": "bash",
            "patterns": [],
            "metadata": {},
            "always": [],
        },
    }
    processor.handle(asked)
    processor.handle(asked)
    assert processor.permission_requests == ["per_1"]


def test_abort_without_a_message_cancels_nothing_open() -> None:
    processor = EventProcessor(SESSION)
    aborted = {
        "type": "session.error",
        "properties": {
            "sessionID": SESSION,
            "error": {"name": "MessageAbortedError", "data": {"message": "x"}},
        },
    }
    assert processor.handle(aborted) == []
    assert not any(isinstance(m, MessageCancelled) for m in processor.handle(aborted))


def test_coalescing_tokens_keeps_the_transcript() -> None:
    out = EventProcessor(SESSION).handle_all(EVENTS)
    merged = coalesce_tokens(out)
    assert len(merged) < len(out)
    assert [type(m).__name__ for m in merged].count("Token") == 3  # one run per text part
    original, folded = fold(out), fold(merged)
    assert [m.to_message() for m in original.messages.values()] == [
        m.to_message() for m in folded.messages.values()
    ]
    # Runs are cut at the size limit and at part boundaries.
    big = [Token(message_id="m", part_id="p", token="x" * 30_000) for _ in range(3)]
    other = Token(message_id="m", part_id="q", token="y")
    merged_big = coalesce_tokens([*big, other])
    assert [len(t.token) for t in merged_big if isinstance(t, Token)] == [60_000, 30_000, 1]


def test_tool_metadata_on_new_summary_only() -> None:
    processor = EventProcessor(SESSION)
    processor.handle(
        next(
            e
            for e in EVENTS
            if e["type"] == "message.updated" and e["properties"]["info"]["role"] == "assistant"
        )
    )
    stub = next(iter(processor.transcript.messages))

    def task_part(summary: list[dict[str, Any]], status: str = "running") -> dict[str, Any]:
        return {
            "type": "message.part.updated",
            "properties": {
                "sessionID": SESSION,
                "part": {
                    "id": "prt_task",
                    "messageID": stub,
                    "sessionID": SESSION,
                    "type": "tool",
                    "tool": "task",
                    "callID": "call_task",
                    "state": {
                        "status": status,
                        "input": {"prompt": "look"},
                        "title": "Sub-agent",
                        "metadata": {"summary": summary},
                        "output": "done",
                        "time": {"start": 1, "end": 5},
                    },
                },
            },
        }

    step = {"id": "s1", "tool": "read", "state": {"status": "running", "title": "a.py"}}
    first = processor.handle(task_part([step]))
    assert [type(m).__name__ for m in first] == ["ToolStart", "ToolMetadata"]
    meta = first[1]
    assert isinstance(meta, ToolMetadata) and meta.title == "Sub-agent"
    assert meta.metadata.summary[0].state.title == "a.py"
    assert processor.handle(task_part([step])) == []  # same summary: nothing new
    done = {**step, "state": {"status": "completed", "title": "a.py"}}
    assert [type(m).__name__ for m in processor.handle(task_part([done]))] == ["ToolMetadata"]
    end = processor.handle(task_part([done], "completed"))
    assert [type(m).__name__ for m in end] == ["ToolEnd"]
