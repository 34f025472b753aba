"""The transcript: a session's messages and their parts (text, images, tool calls), as
clients, Postgres and the event log hold them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

# --- vocabularies ------------------------------------------------------------------------------

Role = Literal["user", "assistant"]
ToolStatus = Literal["pending", "running", "completed", "error"]
MessageSource = Literal["web", "slack", "automation", "api", "cli", "agent", "system"]


# --- transcript ----------------------------------------------------------------------------------


class TextPart(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="text"):
    """Text the user wrote or the agent streamed."""

    id: str
    text: str = ""
    is_complete: bool = True


class ImagePart(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="image"):
    """An image attached to a user prompt (a data URI)."""

    id: str
    url: str


class ToolPart(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="tool"):
    """One tool call of the agent, with its result once it ended."""

    id: str
    """The part id (OpenCode's)."""
    tool_call_id: str
    tool_name: str
    args: dict[str, Any] = {}
    result: str | None = None
    status: ToolStatus = "running"
    title: str | None = None
    metadata: dict[str, Any] | None = None
    duration_ms: int | None = None


Part = TextPart | ImagePart | ToolPart


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """One message of the transcript (a user prompt or one agent message)."""

    id: str
    role: Role
    content: str = ""
    """The concatenated text of the text parts."""
    is_complete: bool = False
    cancelled: bool = False
    created_at: datetime
    sender_id: str | None = None
    source: MessageSource = "agent"
    parts: tuple[Part, ...] = ()
