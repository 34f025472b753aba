"""A transcript rebuilt from server → client events: what a client shows, as data.

:meth:`Transcript.apply` folds one event into the transcript, exactly as a client does.
The event processor keeps its in-progress messages this way (so the state it acts on is
the state clients saw), the actor rebuilds that state from JetStream after a restart, and
tests replay a client's events to compare transcripts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas.session_ws import (
    MessageCancelled,
    MessageComplete,
    MessageEvent,
    ServerMessage,
    TextPartComplete,
    Token,
    ToolEnd,
    ToolMetadata,
    ToolStart,
)
from schemas.transcript import (
    ImagePart,
    Message,
    MessageSource,
    Part,
    Role,
    TextPart,
    ToolPart,
    ToolStatus,
)


@dataclass
class TextState:
    """A text part being streamed (chunks joined lazily: tokens are appended often)."""

    id: str
    chunks: list[str] = field(default_factory=list)
    is_complete: bool = False

    @property
    def text(self) -> str:
        """The text so far."""
        if len(self.chunks) > 1:
            self.chunks = ["".join(self.chunks)]
        return self.chunks[0] if self.chunks else ""

    def to_part(self) -> TextPart:
        """As a wire part."""
        return TextPart(id=self.id, text=self.text, is_complete=self.is_complete)


@dataclass
class ToolState:
    """A tool call and what is known of it."""

    id: str
    tool_call_id: str
    tool_name: str
    args: dict[str, Any] = field(default_factory=dict)
    result: str | None = None
    status: ToolStatus = "running"
    title: str | None = None
    metadata: dict[str, Any] | None = None
    duration_ms: int | None = None

    @property
    def ended(self) -> bool:
        """True once the tool completed or failed."""
        return self.status in ("completed", "error")

    def to_part(self) -> ToolPart:
        """As a wire part."""
        return ToolPart(
            id=self.id,
            tool_call_id=self.tool_call_id,
            tool_name=self.tool_name,
            args=self.args,
            result=self.result,
            status=self.status,
            title=self.title,
            metadata=self.metadata,
            duration_ms=self.duration_ms,
        )


PartState = TextState | ToolState | ImagePart


@dataclass
class MessageState:
    """A message as events build it up."""

    id: str
    role: Role
    created_at: datetime
    source: MessageSource = "agent"
    sender_id: str | None = None
    is_complete: bool = False
    cancelled: bool = False
    parts: dict[str, PartState] = field(default_factory=dict)

    @classmethod
    def from_message(cls, message: Message) -> MessageState:
        """State seeded from a complete wire message (``message`` events)."""
        state = cls(
            id=message.id,
            role=message.role,
            created_at=message.created_at,
            source=message.source,
            sender_id=message.sender_id,
            is_complete=message.is_complete,
            cancelled=message.cancelled,
        )
        for part in message.parts:
            state.parts[part.id] = _part_state(part)
        return state

    def tools_running(self) -> bool:
        """True while one of the message's tools has not ended."""
        return any(isinstance(p, ToolState) and not p.ended for p in self.parts.values())

    def to_message(self) -> Message:
        """As a wire message; ``content`` joins the text parts."""
        parts: list[Part] = [
            p.to_part() if isinstance(p, (TextState, ToolState)) else p for p in self.parts.values()
        ]
        content = "".join(p.text for p in parts if isinstance(p, TextPart))
        return Message(
            id=self.id,
            role=self.role,
            content=content,
            is_complete=self.is_complete,
            cancelled=self.cancelled,
            created_at=self.created_at,
            sender_id=self.sender_id,
            source=self.source,
            parts=tuple(parts),
        )


def _part_state(part: Part) -> PartState:
    if isinstance(part, TextPart):
        return TextState(id=part.id, chunks=[part.text], is_complete=part.is_complete)
    if isinstance(part, ToolPart):
        return ToolState(
            id=part.id,
            tool_call_id=part.tool_call_id,
            tool_name=part.tool_name,
            args=dict(part.args),
            result=part.result,
            status=part.status,
            title=part.title,
            metadata=part.metadata,
            duration_ms=part.duration_ms,
        )
    return part


class Transcript:
    """Messages in arrival order, folded from events."""

    def __init__(self, messages: list[Message] | None = None) -> None:
        self.messages: dict[str, MessageState] = {}
        self._tools: dict[str, tuple[str, str]] = {}
        for message in messages or ():
            self._put(MessageState.from_message(message))

    def _put(self, state: MessageState) -> None:
        self.messages[state.id] = state
        for part in state.parts.values():
            if isinstance(part, ToolState):
                self._tools[part.tool_call_id] = (state.id, part.id)

    def _ensure(self, message_id: str) -> MessageState:
        state = self.messages.get(message_id)
        if state is None:
            # Events of a message whose stub this transcript never saw (a client that
            # joined mid-message without a cursor): start an assistant message.
            state = MessageState(id=message_id, role="assistant", created_at=datetime.now(UTC))
            self.messages[message_id] = state
        return state

    def tool(self, tool_call_id: str) -> ToolState | None:
        """The tool call with this id, wherever it is."""
        where = self._tools.get(tool_call_id)
        if where is None:
            return None
        message = self.messages.get(where[0])
        part = None if message is None else message.parts.get(where[1])
        return part if isinstance(part, ToolState) else None

    def text(self, message_id: str, part_id: str) -> TextState | None:
        """The text part, if known."""
        message = self.messages.get(message_id)
        part = None if message is None else message.parts.get(part_id)
        return part if isinstance(part, TextState) else None

    def remove(self, message_id: str) -> None:
        """Forget a message (stored complete elsewhere)."""
        state = self.messages.pop(message_id, None)
        if state is not None:
            for part in state.parts.values():
                if isinstance(part, ToolState):
                    self._tools.pop(part.tool_call_id, None)

    def snapshot(self) -> list[Message]:
        """Every message as wire messages, in order."""
        return [m.to_message() for m in self.messages.values()]

    def apply(self, event: ServerMessage) -> str | None:
        """Fold ``event`` in; returns the id of the message it touched, if any."""
        if isinstance(event, MessageEvent):
            self._put(MessageState.from_message(event.message))
            return event.message.id
        if isinstance(event, Token):
            state = self._ensure(event.message_id)
            part = state.parts.get(event.part_id)
            if not isinstance(part, TextState):
                part = TextState(id=event.part_id)
                state.parts[event.part_id] = part
            part.chunks.append(event.token)
            return state.id
        if isinstance(event, TextPartComplete):
            state = self._ensure(event.message_id)
            part = state.parts.get(event.part_id)
            if event.text is not None or not isinstance(part, TextState):
                part = TextState(id=event.part_id, chunks=[event.text or ""])
                state.parts[event.part_id] = part
            part.is_complete = True
            return state.id
        if isinstance(event, ToolStart):
            return self._tool_start(event)
        if isinstance(event, ToolMetadata):
            tool = self.tool(event.tool_call_id)
            if tool is not None:
                tool.title = event.title or tool.title
                tool.metadata = {"summary": [item for item in _summary(event)]}
            where = self._tools.get(event.tool_call_id)
            return None if where is None else where[0]
        if isinstance(event, ToolEnd):
            return self._tool_end(event)
        if isinstance(event, MessageComplete):
            self._ensure(event.message_id).is_complete = True
            return event.message_id
        if isinstance(event, MessageCancelled) and event.message_id is not None:
            state = self._ensure(event.message_id)
            state.is_complete = True
            state.cancelled = True
            return state.id
        return None

    def _tool_start(self, event: ToolStart) -> str | None:
        tool = self.tool(event.tool_call_id)
        if tool is not None:
            tool.args = dict(event.args)
            where = self._tools[event.tool_call_id]
            return where[0]
        if event.message_id is None:
            return None
        state = self._ensure(event.message_id)
        state.parts[event.part_id] = ToolState(
            id=event.part_id,
            tool_call_id=event.tool_call_id,
            tool_name=event.tool,
            args=dict(event.args),
        )
        self._tools[event.tool_call_id] = (state.id, event.part_id)
        return state.id

    def _tool_end(self, event: ToolEnd) -> str | None:
        tool = self.tool(event.tool_call_id)
        if tool is None:
            if event.message_id is None:
                return None
            self._tool_start(
                ToolStart(
                    message_id=event.message_id,
                    part_id=event.part_id,
                    tool_call_id=event.tool_call_id,
                    tool=event.tool,
                )
            )
            tool = self.tool(event.tool_call_id)
            assert tool is not None
        tool.result = event.result
        tool.status = event.status
        tool.duration_ms = event.duration_ms
        return self._tools[event.tool_call_id][0]


def _summary(event: ToolMetadata) -> list[dict[str, Any]]:
    return [
        {
            "id": item.id,
            "tool": item.tool,
            "state": {"status": item.state.status, "title": item.state.title},
        }
        for item in event.metadata.summary
    ]
