"""Wire shapes of dead letters: the NATS notice a pool publishes when it gives up on a
message (``<prefix>.<source>.dead.<reason>``), and the API's view of the stored row."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """What a pool publishes on ``<prefix>.<source>.dead.<reason>``."""

    reason: str
    detail: str
    subject: str
    """The original message's subject (a replay publishes it there again)."""
    stream_seq: int
    trigger_id: str | None = None
    """The trigger, when the trigger pool knew it."""
    consumer: str = "trigger-pool"
    """The durable consumer that gave up (``trigger-pool``, ``run-pool``, ``run-lifecycle``)."""
    org_id: str | None = None
    dead_letter_id: str | None = None
    """The stored row (``GET /api/dead-letters``)."""
    data: msgspec.Raw = msgspec.Raw(b"null")
    """The original message when it was JSON, else ``null`` (see ``data_text``)."""
    data_text: str | None = None


class DeadLetterEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A stored dead letter of the caller's org."""

    id: uuid.UUID
    consumer: str
    reason: str
    detail: str
    subject: str
    stream_seq: int
    num_delivered: int
    data: msgspec.Raw
    """The original message when it was JSON, else ``null`` (see ``data_text``)."""
    data_text: str | None
    created_at: datetime
    replayed_at: datetime | None
    replayed_by: uuid.UUID | None


class DeadLetterList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/dead-letters``: newest first."""

    dead_letters: list[DeadLetterEntry]


TEXT_LIMIT = 65536
"""How much of a message that is not JSON is shown as ``data_text``."""


def json_or_text(data: bytes) -> tuple[msgspec.Raw, str | None]:
    """``data`` as raw JSON (and no text), or JSON ``null`` and its first 64 KiB as text."""
    try:
        msgspec.json.decode(data)
    except msgspec.DecodeError:
        return msgspec.Raw(b"null"), data[:TEXT_LIMIT].decode("utf-8", "replace")
    return msgspec.Raw(data), None
