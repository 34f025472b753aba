"""A session's transcript in Postgres, and the cursor that makes it consistent with JetStream.

A message row is written *before* its first event is published, with ``after_seq``: a
stream sequence every one of its events comes after. When the event that completes it has
been stored in JetStream, the row gets its final content and ``completed_seq``.

To show a transcript together with a live stream (``init`` then events), read the stream's
last sequence ``S`` first, then the rows, and cut at :func:`cut_cursor` ``R``: the complete
rows with ``completed_seq <= R`` are the transcript, and every event after ``R`` rebuilds
the rest. Rows not complete by ``R`` started after ``R`` (``after_seq >= R``), so none of
their events is lost; events of messages begun after the rows were read are all after
``S >= R``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import asyncpg
import msgspec

from schemas.transcript import Message, Part
from store.conn import Conn


class UserMessageState(msgspec.Struct, frozen=True, kw_only=True):
    """Where a user prompt is: recorded, published (``completed_seq``), delivered."""

    completed_seq: int | None
    delivered: bool


def cut_cursor(spans: Iterable[tuple[int, int | None]], last_seq: int) -> int:
    """The largest cursor ``R <= last_seq`` such that every message not complete by ``R``
    has all its events after ``R``.

    ``spans`` are ``(after_seq, completed_seq)`` per message. A message completed after
    ``R`` must be left out of the transcript, so ``R`` may have to move before its start;
    that can exclude more messages, hence the fixpoint (it only ever moves down).
    """
    pairs = list(spans)
    cursor = last_seq
    while True:
        lowest = min(
            (after for after, done in pairs if done is None or done > cursor),
            default=cursor,
        )
        if lowest >= cursor:
            return cursor
        cursor = lowest


async def _write_parts(conn: asyncpg.Connection, session_id: uuid.UUID, message: Message) -> None:
    await conn.execute(
        "DELETE FROM session_message_parts WHERE session_id = $1 AND message_id = $2",
        session_id,
        message.id,
    )
    if message.parts:
        await conn.executemany(
            """INSERT INTO session_message_parts (session_id, message_id, id, position, part)
               VALUES ($1, $2, $3, $4, $5)""",
            [
                (session_id, message.id, part.id, position, msgspec.to_builtins(part))
                for position, part in enumerate(message.parts)
            ],
        )


def _message_values(session_id: uuid.UUID, message: Message) -> tuple[object, ...]:
    """The first eight ``session_messages`` columns of both inserts, in their order."""
    return (
        session_id,
        message.id,
        message.role,
        message.content,
        message.sender_id,
        message.source,
        message.is_complete,
        message.cancelled,
    )


async def begin_message(
    pool: asyncpg.Pool, session_id: uuid.UUID, message: Message, after_seq: int
) -> bool:
    """Record a message before its first event is published; False if it exists already."""
    async with pool.acquire() as conn, conn.transaction():
        inserted = await conn.fetchval(
            """INSERT INTO session_messages (session_id, id, role, content, sender_id, source,
                   is_complete, cancelled, after_seq, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (session_id, id) DO NOTHING
               RETURNING true""",
            *_message_values(session_id, message),
            after_seq,
            message.created_at,
        )
        if inserted:
            await _write_parts(conn, session_id, message)
        return bool(inserted)


async def complete_message(
    pool: asyncpg.Pool,
    session_id: uuid.UUID,
    message: Message,
    completed_seq: int,
    *,
    after_seq: int = 0,
) -> None:
    """Store a message's final content once its completing event (``completed_seq``) is in
    JetStream. Creates the row if it is missing (``after_seq`` then applies)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """INSERT INTO session_messages (session_id, id, role, content, sender_id, source,
                   is_complete, cancelled, after_seq, completed_seq, created_at, completed_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now())
               ON CONFLICT (session_id, id) DO UPDATE
                   SET content = EXCLUDED.content, is_complete = EXCLUDED.is_complete,
                       cancelled = EXCLUDED.cancelled, completed_seq = EXCLUDED.completed_seq,
                       completed_at = now()""",
            *_message_values(session_id, message),
            after_seq,
            completed_seq,
            message.created_at,
        )
        await _write_parts(conn, session_id, message)


async def set_completed_seq(
    conn: Conn, session_id: uuid.UUID, message_id: str, completed_seq: int
) -> None:
    """A complete-on-arrival message (a user prompt) was published at ``completed_seq``."""
    await conn.execute(
        """UPDATE session_messages SET completed_seq = $3, completed_at = now()
           WHERE session_id = $1 AND id = $2 AND completed_seq IS NULL""",
        session_id,
        message_id,
        completed_seq,
    )


async def mark_delivered(conn: Conn, session_id: uuid.UUID, message_id: str) -> None:
    """OpenCode accepted the user prompt."""
    await conn.execute(
        "UPDATE session_messages SET delivered_at = now() WHERE session_id = $1 AND id = $2",
        session_id,
        message_id,
    )


async def user_message_state(
    conn: Conn, session_id: uuid.UUID, message_id: str
) -> UserMessageState | None:
    """How far a prompt got, or None if it was never recorded."""
    row = await conn.fetchrow(
        """SELECT completed_seq, delivered_at IS NOT NULL AS delivered FROM session_messages
           WHERE session_id = $1 AND id = $2""",
        session_id,
        message_id,
    )
    return None if row is None else UserMessageState(**dict(row))


async def completed_message_ids(conn: Conn, session_id: uuid.UUID) -> set[str]:
    """Ids of the messages stored complete (the actor ignores late events for them)."""
    rows = await conn.fetch(
        "SELECT id FROM session_messages WHERE session_id = $1 AND completed_seq IS NOT NULL",
        session_id,
    )
    return {r["id"] for r in rows}


async def load_transcript(
    conn: Conn, session_id: uuid.UUID, last_seq: int
) -> tuple[list[Message], int]:
    """The transcript and its cursor ``R`` (see the module docstring).

    ``last_seq`` must have been read from JetStream *before* this call.
    """
    rows = await conn.fetch(
        """SELECT id, role, content, sender_id, source, is_complete, cancelled, after_seq,
                  completed_seq, created_at
           FROM session_messages WHERE session_id = $1 ORDER BY ordinal""",
        session_id,
    )
    cursor = cut_cursor(((r["after_seq"], r["completed_seq"]) for r in rows), last_seq)
    keep = [r for r in rows if r["completed_seq"] is not None and r["completed_seq"] <= cursor]
    if not keep:
        return [], cursor
    part_rows = await conn.fetch(
        """SELECT message_id, part FROM session_message_parts
           WHERE session_id = $1 AND message_id = ANY($2::text[]) ORDER BY message_id, position""",
        session_id,
        [r["id"] for r in keep],
    )
    parts: dict[str, list[Part]] = {}
    for pr in part_rows:
        parts.setdefault(pr["message_id"], []).append(msgspec.convert(pr["part"], Part))
    messages = [
        Message(
            id=r["id"],
            role=r["role"],
            content=r["content"],
            is_complete=r["is_complete"],
            cancelled=r["cancelled"],
            created_at=r["created_at"],
            sender_id=r["sender_id"],
            source=r["source"],
            parts=tuple(parts.get(r["id"], ())),
        )
        for r in keep
    ]
    return messages, cursor


async def transcript_cursor(conn: Conn, session_id: uuid.UUID, last_seq: int) -> int:
    """Only the cursor of :func:`load_transcript` (the actor's rebuild needs no content)."""
    rows = await conn.fetch(
        "SELECT after_seq, completed_seq FROM session_messages WHERE session_id = $1",
        session_id,
    )
    return cut_cursor(((r["after_seq"], r["completed_seq"]) for r in rows), last_seq)


async def incomplete_message_ids(conn: Conn, session_id: uuid.UUID) -> set[str]:
    """Ids of messages recorded but never stored complete."""
    rows = await conn.fetch(
        "SELECT id FROM session_messages WHERE session_id = $1 AND completed_seq IS NULL",
        session_id,
    )
    return {r["id"] for r in rows}


async def delete_message(conn: Conn, session_id: uuid.UUID, message_id: str) -> None:
    """Drop a message row no event was ever published for (and its parts)."""
    await conn.execute(
        "DELETE FROM session_messages WHERE session_id = $1 AND id = $2", session_id, message_id
    )


async def message_count(conn: Conn, session_id: uuid.UUID) -> int:
    """How many messages a session has (complete or not)."""
    value: int = await conn.fetchval(
        "SELECT count(*) FROM session_messages WHERE session_id = $1", session_id
    )
    return value
