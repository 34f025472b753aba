"""OpenCode events → client messages: the session's event processor (pure, no I/O).

Feed it OpenCode's SSE events (``{"type", "properties"}`` dicts) with :meth:`handle`; it
returns the client messages to publish, in order, and folds each into its own
:class:`~actors.transcript.Transcript`, so what it decides next is based on exactly what
clients were shown. It holds only the in-progress agent messages; the actor removes a
message once it is stored complete (:meth:`forget`).

Mapping (contracts.md §2, SSE bridge):

- ``server.*``, other OpenCode sessions' events and unknown types are dropped.
- ``message.updated``: user messages are remembered (their parts are skipped: Warren
  broadcasts prompts itself); a new assistant message → ``message`` stub; an abort error →
  ``message_cancelled``; another error → ``error``; ``time.completed`` → ``message_complete``.
- ``message.part.delta`` on a text part → ``token``.
- ``message.part.updated``: text → ``token`` for text beyond what was streamed, and
  ``text_part_complete`` once it has ended (or when it diverged); tools → ``tool_start`` once
  (again when the arguments change), ``tool_metadata`` on a new summary, ``tool_end`` when
  completed or failed. Other part types (reasoning, steps, files) are not shown.
- ``session.idle`` / ``session.status{idle}`` → ``message_complete`` for in-progress
  messages with no running tool; repeated idles emit nothing.
- ``session.error`` → ``error`` (abort → ``message_cancelled``).
- ``session.updated`` with a new title → ``title_update``.
- ``permission.asked`` → recorded in :attr:`permission_requests` for the actor to answer.

Every rule is idempotent and never moves state backwards, so replaying an OpenCode message
snapshot (:func:`snapshot_events`, after an SSE reconnect) only emits what clients missed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from actors.transcript import MessageState, TextState, ToolState, Transcript
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
    ToolMetadataBody,
    ToolStart,
    ToolSummaryItem,
    ToolSummaryState,
)
from schemas.transcript import Message

ABORTED = "MessageAbortedError"
INLINE_TEXT_LIMIT = 32 * 1024
"""Longer final texts that equal what was streamed are not repeated in text_part_complete."""
Event = dict[str, Any]


def _dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (events are untrusted input)."""
    return value if isinstance(value, dict) else {}


def _ms_to_datetime(value: Any) -> datetime:
    if isinstance(value, (int, float)) and value > 0:
        return datetime.fromtimestamp(value / 1000, UTC)
    return datetime.now(UTC)


def _error_text(error: Any) -> str:
    if not isinstance(error, dict):
        return "the agent failed"
    data = error.get("data")
    message = data.get("message") if isinstance(data, dict) else None
    name = str(error.get("name") or "Error")
    return f"{name}: {message}" if message else name


def _summary(metadata: Any) -> list[dict[str, Any]] | None:
    """A tool's sub-step summary in the shape clients get, or None if it has none."""
    if not isinstance(metadata, dict) or not isinstance(metadata.get("summary"), list):
        return None
    items: list[dict[str, Any]] = []
    for raw in metadata["summary"]:
        if not isinstance(raw, dict):
            continue
        state = _dict(raw.get("state"))
        items.append(
            {
                "id": str(raw.get("id", "")),
                "tool": str(raw.get("tool", "")),
                "state": {"status": str(state.get("status", "")), "title": state.get("title")},
            }
        )
    return items


class EventProcessor:
    """Turns one OpenCode session's events into client messages."""

    def __init__(
        self,
        agent_session_id: str,
        *,
        transcript: Transcript | None = None,
        done: set[str] | None = None,
        title: str | None = None,
    ) -> None:
        self.agent_session_id = agent_session_id
        self.transcript = transcript or Transcript()
        self.done: set[str] = done if done is not None else set()
        """Messages stored complete: their late events are ignored (shared with the caller)."""
        self.title = title
        self.busy = False
        self.permission_requests: list[str] = []
        """Permission request ids OpenCode asked for, for the actor to reply to."""
        self._roles: dict[str, str] = {m.id: m.role for m in self.transcript.messages.values()}
        self._part_types: dict[str, str] = {}
        self._errored: set[str] = set()
        for message in self.transcript.messages.values():
            for part in message.parts.values():
                if isinstance(part, TextState):
                    self._part_types[part.id] = "text"
        self._out: list[ServerMessage] = []

    # -- output -------------------------------------------------------------------------

    def _emit(self, message: ServerMessage) -> None:
        self.transcript.apply(message)
        self._out.append(message)

    def forget(self, message_id: str) -> None:
        """The message is stored complete: drop it from the in-progress transcript."""
        self.transcript.remove(message_id)
        self.done.add(message_id)

    # -- input --------------------------------------------------------------------------

    def handle(self, event: Event) -> list[ServerMessage]:
        """The client messages one OpenCode event produces (often none)."""
        self._out = []
        kind = event.get("type")
        props = event.get("properties")
        if not isinstance(kind, str) or not isinstance(props, dict):
            return []
        if not self._ours(kind, props):
            return []
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, props)
        return self._out

    def handle_all(self, events: list[Event]) -> list[ServerMessage]:
        """``handle`` over several events, outputs concatenated."""
        out: list[ServerMessage] = []
        for event in events:
            out.extend(self.handle(event))
        return out

    def _ours(self, kind: str, props: dict[str, Any]) -> bool:
        session = props.get("sessionID")
        if session is None:
            info = props.get("info")
            part = props.get("part")
            if isinstance(info, dict):
                session = info.get("sessionID") if kind.startswith("message") else info.get("id")
            elif isinstance(part, dict):
                session = part.get("sessionID")
        # session.error may come without a session id (errors of the whole server).
        if session is None:
            return kind == "session.error"
        return bool(session == self.agent_session_id)

    def _on_message_updated(self, props: dict[str, Any]) -> None:
        info = props.get("info")
        if not isinstance(info, dict) or not isinstance(info.get("id"), str):
            return
        message_id: str = info["id"]
        role = info.get("role")
        if role == "user":
            self._roles[message_id] = "user"
            return
        if role != "assistant" or message_id in self.done:
            return
        self._roles[message_id] = "assistant"
        state = self.transcript.messages.get(message_id)
        if state is None:
            time = _dict(info.get("time"))
            self._emit(
                MessageEvent(
                    message=Message(
                        id=message_id,
                        role="assistant",
                        created_at=_ms_to_datetime(time.get("created")),
                        source="agent",
                    )
                )
            )
            state = self.transcript.messages[message_id]
        if state.is_complete:
            return
        error = info.get("error")
        if isinstance(error, dict):
            if error.get("name") == ABORTED:
                self._emit(MessageCancelled(message_id=message_id))
                return
            if message_id not in self._errored:
                self._errored.add(message_id)
                self._emit(Error(message=_error_text(error), code="agent_error"))
        if _dict(info.get("time")).get("completed"):
            self._finish(state)

    def _finish(self, state: MessageState) -> None:
        for part in list(state.parts.values()):
            # A text part still streaming when its message completes keeps what was
            # streamed; mark it complete so clients stop waiting for it.
            if isinstance(part, TextState) and not part.is_complete:
                self._emit(TextPartComplete(message_id=state.id, part_id=part.id, text=None))
        self._emit(MessageComplete(message_id=state.id))

    def _known_assistant(self, message_id: Any) -> bool:
        if not isinstance(message_id, str) or message_id in self.done:
            return False
        if self._roles.get(message_id) != "assistant":
            return False
        state = self.transcript.messages.get(message_id)
        return state is not None and not state.is_complete

    def _on_part_delta(self, props: dict[str, Any]) -> None:
        message_id = props.get("messageID")
        part_id = props.get("partID")
        delta = props.get("delta")
        if props.get("field") != "text" or not isinstance(delta, str) or not delta:
            return
        if not isinstance(part_id, str) or self._part_types.get(part_id) != "text":
            return
        if not self._known_assistant(message_id):
            return
        assert isinstance(message_id, str)
        known = self.transcript.text(message_id, part_id)
        if known is not None and known.is_complete:
            return
        self._emit(Token(message_id=message_id, part_id=part_id, token=delta))

    def _on_part_updated(self, props: dict[str, Any]) -> None:
        part = props.get("part")
        if not isinstance(part, dict) or not isinstance(part.get("id"), str):
            return
        kind = part.get("type")
        self._part_types[part["id"]] = str(kind)
        message_id = part.get("messageID")
        if not self._known_assistant(message_id):
            return
        assert isinstance(message_id, str)
        if kind == "text":
            self._text_part(message_id, part, props.get("delta"))
        elif kind == "tool" and isinstance(part.get("callID"), str):
            self._tool_part(message_id, part)

    def _text_part(self, message_id: str, part: dict[str, Any], delta: Any) -> None:
        part_id: str = part["id"]
        full = part.get("text") if isinstance(part.get("text"), str) else ""
        assert isinstance(full, str)
        time = _dict(part.get("time"))
        ended = bool(time.get("end"))
        known = self.transcript.text(message_id, part_id)
        streamed = "" if known is None else known.text
        if known is not None and known.is_complete:
            if full and full != streamed:
                self._emit(TextPartComplete(message_id=message_id, part_id=part_id, text=full))
            return
        if isinstance(delta, str) and delta and streamed + delta == full and not ended:
            self._emit(Token(message_id=message_id, part_id=part_id, token=delta))
            return
        if ended:
            same = len(full) > INLINE_TEXT_LIMIT and full == streamed
            text = None if same else full
            self._emit(TextPartComplete(message_id=message_id, part_id=part_id, text=text))
        elif full.startswith(streamed) and len(full) > len(streamed):
            self._emit(Token(message_id=message_id, part_id=part_id, token=full[len(streamed) :]))
        # Otherwise the part diverged from what was streamed (duplicate deltas around an
        # SSE reconnect): its final text_part_complete replaces it.

    def _tool_part(self, message_id: str, part: dict[str, Any]) -> None:
        call_id: str = part["callID"]
        tool_name = str(part.get("tool") or "")
        state = _dict(part.get("state"))
        status = state.get("status")
        args = _dict(state.get("input"))
        known = self.transcript.tool(call_id)
        if known is not None and known.ended:
            return
        if known is None or (args and args != known.args):
            self._emit(
                ToolStart(
                    message_id=message_id,
                    part_id=part["id"],
                    tool_call_id=call_id,
                    tool=tool_name,
                    args=args,
                )
            )
            known = self.transcript.tool(call_id)
            assert known is not None
        summary = _summary(state.get("metadata"))
        if summary is not None and (known.metadata or {}).get("summary") != summary:
            title = state.get("title")
            self._emit(
                ToolMetadata(
                    tool_call_id=call_id,
                    tool=tool_name,
                    title=title if isinstance(title, str) else None,
                    metadata=ToolMetadataBody(
                        summary=tuple(
                            ToolSummaryItem(
                                id=item["id"],
                                tool=item["tool"],
                                state=ToolSummaryState(
                                    status=item["state"]["status"],
                                    title=item["state"]["title"],
                                ),
                            )
                            for item in summary
                        )
                    ),
                )
            )
        if status in ("completed", "error"):
            self._tool_end(message_id, part, known, status, state)

    def _tool_end(
        self,
        message_id: str,
        part: dict[str, Any],
        known: ToolState,
        status: str,
        state: dict[str, Any],
    ) -> None:
        result = state.get("output") if status == "completed" else state.get("error")
        time = _dict(state.get("time"))
        start, end = time.get("start"), time.get("end")
        duration = int(end - start) if isinstance(start, int) and isinstance(end, int) else 0
        self._emit(
            ToolEnd(
                message_id=message_id,
                part_id=part["id"],
                tool_call_id=known.tool_call_id,
                tool=known.tool_name,
                result=result if isinstance(result, str) else "",
                status="completed" if status == "completed" else "error",
                duration_ms=max(duration, 0),
            )
        )

    def _on_status(self, props: dict[str, Any]) -> None:
        status = props.get("status")
        kind = status.get("type") if isinstance(status, dict) else None
        if kind == "idle":
            self._on_idle(props)
        elif kind in ("busy", "retry"):
            self.busy = True

    def _on_idle(self, props: dict[str, Any]) -> None:
        self.busy = False
        for state in list(self.transcript.messages.values()):
            if state.role == "assistant" and not state.is_complete and not state.tools_running():
                self._finish(state)

    def _on_session_error(self, props: dict[str, Any]) -> None:
        error = props.get("error")
        if isinstance(error, dict) and error.get("name") == ABORTED:
            open_ids = [
                m.id
                for m in self.transcript.messages.values()
                if m.role == "assistant" and not m.is_complete
            ]
            for message_id in open_ids:
                self._emit(MessageCancelled(message_id=message_id))
            return
        self._emit(Error(message=_error_text(error), code="agent_error"))

    def _on_session_updated(self, props: dict[str, Any]) -> None:
        info = props.get("info")
        title = info.get("title") if isinstance(info, dict) else None
        if isinstance(title, str) and title and title != self.title:
            self.title = title
            self._emit(TitleUpdate(title=title))

    def _on_permission(self, props: dict[str, Any]) -> None:
        request_id = props.get("id")
        if isinstance(request_id, str) and request_id not in self.permission_requests:
            self.permission_requests.append(request_id)


_HANDLERS = {
    "message.updated": EventProcessor._on_message_updated,
    "message.part.delta": EventProcessor._on_part_delta,
    "message.part.updated": EventProcessor._on_part_updated,
    "session.status": EventProcessor._on_status,
    "session.idle": EventProcessor._on_idle,
    "session.error": EventProcessor._on_session_error,
    "session.updated": EventProcessor._on_session_updated,
    "permission.asked": EventProcessor._on_permission,
}


COALESCE_LIMIT = 64 * 1024
"""Tokens are merged up to this many characters (events must stay small)."""


def coalesce_tokens(messages: list[ServerMessage]) -> list[ServerMessage]:
    """Merge consecutive tokens of one text part into one (same transcript, fewer events):
    under load the actor publishes what arrived together as one event."""
    out: list[ServerMessage] = []
    run: list[Token] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if len(run) == 1:
            out.append(run[0])
        elif run:
            first = run[0]
            joined = "".join(t.token for t in run)
            out.append(Token(message_id=first.message_id, part_id=first.part_id, token=joined))
        run.clear()
        size = 0

    for message in messages:
        if isinstance(message, Token):
            same_part = bool(run) and (run[0].message_id, run[0].part_id) == (
                message.message_id,
                message.part_id,
            )
            if run and (not same_part or size + len(message.token) > COALESCE_LIMIT):
                flush()
            run.append(message)
            size += len(message.token)
            continue
        flush()
        out.append(message)
    flush()
    return out


def snapshot_events(
    agent_session_id: str, messages: list[dict[str, Any]], *, idle: bool
) -> list[Event]:
    """Synthetic events that replay OpenCode's stored messages (``GET /session/{id}/message``)
    through the processor after an SSE (re)connect: each message opens as a stub, then its
    parts, then its final state; ``idle`` adds a closing ``session.idle``."""
    events: list[Event] = []
    for entry in messages:
        info = entry.get("info") if isinstance(entry, dict) else None
        if not isinstance(info, dict):
            continue
        opening = {k: v for k, v in info.items() if k != "error"}
        opening["time"] = {"created": (info.get("time") or {}).get("created")}
        events.append(
            {
                "type": "message.updated",
                "properties": {"sessionID": agent_session_id, "info": opening},
            }
        )
        for part in entry.get("parts") or ():
            events.append(
                {
                    "type": "message.part.updated",
                    "properties": {"sessionID": agent_session_id, "part": part},
                }
            )
        events.append(
            {"type": "message.updated", "properties": {"sessionID": agent_session_id, "info": info}}
        )
    if idle:
        events.append({"type": "session.idle", "properties": {"sessionID": agent_session_id}})
    return events
