"""SQL for dead letters: parked once per consumer message, listed and replayed per org."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from schemas.dead_letters import DeadLetterEntry, json_or_text


@dataclass(frozen=True)
class Parked:
    """A message to park: where it came from, why, and its bytes."""

    consumer: str
    reason: str
    detail: str
    subject: str
    stream: str
    stream_seq: int
    num_delivered: int
    data: bytes
    org_id: uuid.UUID | None


async def park(conn: asyncpg.Connection, parked: Parked) -> uuid.UUID:
    """Store ``parked`` (once per consumer and stream message); returns the row's id."""
    row_id: uuid.UUID = await conn.fetchval(
        """WITH new AS (
               INSERT INTO dead_letters (org_id, consumer, reason, detail, subject, stream,
                                         stream_seq, num_delivered, data)
               -- An org named by a message but unknown here is not an org to scope it to.
               VALUES ((SELECT id FROM orgs WHERE id = $1), $2, $3, left($4, 4000), $5, $6,
                       $7, $8, $9)
               ON CONFLICT (consumer, stream, stream_seq) DO NOTHING
               RETURNING id)
           SELECT id FROM new
           UNION ALL
           SELECT id FROM dead_letters WHERE consumer = $2 AND stream = $6 AND stream_seq = $7
           LIMIT 1""",
        parked.org_id,
        parked.consumer,
        parked.reason,
        parked.detail,
        parked.subject,
        parked.stream,
        parked.stream_seq,
        parked.num_delivered,
        parked.data,
    )
    return row_id


_COLUMNS = """id, consumer, reason, detail, subject, stream_seq, num_delivered, data, created_at,
    replayed_at, replayed_by"""


def _entry(row: asyncpg.Record) -> DeadLetterEntry:
    data, text = json_or_text(bytes(row["data"]))
    return DeadLetterEntry(
        id=row["id"],
        consumer=row["consumer"],
        reason=row["reason"],
        detail=row["detail"],
        subject=row["subject"],
        stream_seq=row["stream_seq"],
        num_delivered=row["num_delivered"],
        data=data,
        data_text=text,
        created_at=row["created_at"],
        replayed_at=row["replayed_at"],
        replayed_by=row["replayed_by"],
    )


async def list_for_org(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    *,
    consumer: str | None = None,
    before: datetime | None = None,
    limit: int = 50,
) -> list[DeadLetterEntry]:
    """The org's dead letters, newest first, optionally of one consumer."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM dead_letters
            WHERE org_id = $1 AND ($2::text IS NULL OR consumer = $2)
              AND ($3::timestamptz IS NULL OR created_at < $3)
            ORDER BY created_at DESC LIMIT $4""",
        org_id,
        consumer,
        before,
        limit,
    )
    return [_entry(r) for r in rows]


async def get_for_org(
    conn: asyncpg.Connection, org_id: uuid.UUID, dead_letter_id: uuid.UUID
) -> DeadLetterEntry | None:
    """One dead letter of the org."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM dead_letters WHERE id = $1 AND org_id = $2",
        dead_letter_id,
        org_id,
    )
    return None if row is None else _entry(row)


class AlreadyReplayed(Exception):
    """The dead letter was replayed before (a replay republishes a message once)."""


@dataclass(frozen=True)
class Replay:
    """What a replay publishes: the original subject and bytes."""

    subject: str
    data: bytes


async def begin_replay(
    conn: asyncpg.Connection, org_id: uuid.UUID, dead_letter_id: uuid.UUID, user_id: uuid.UUID
) -> Replay | None:
    """Mark the org's dead letter replayed by ``user_id`` and return what to publish; None
    if the org has no such dead letter, :class:`AlreadyReplayed` if it was replayed."""
    row = await conn.fetchrow(
        """UPDATE dead_letters SET replayed_at = now(), replayed_by = $3
           WHERE id = $1 AND org_id = $2 AND replayed_at IS NULL
           RETURNING subject, data""",
        dead_letter_id,
        org_id,
        user_id,
    )
    if row is not None:
        return Replay(subject=row["subject"], data=bytes(row["data"]))
    exists = await conn.fetchval(
        "SELECT true FROM dead_letters WHERE id = $1 AND org_id = $2", dead_letter_id, org_id
    )
    if exists:
        raise AlreadyReplayed(str(dead_letter_id))
    return None


async def undo_replay(conn: asyncpg.Connection, dead_letter_id: uuid.UUID) -> None:
    """The replay could not be published: the dead letter may be replayed again."""
    await conn.execute(
        "UPDATE dead_letters SET replayed_at = NULL, replayed_by = NULL WHERE id = $1",
        dead_letter_id,
    )


async def counts(conn: asyncpg.Connection) -> dict[tuple[str, str], int]:
    """(consumer, reason) → dead letters stored, across every org (metrics)."""
    rows = await conn.fetch(
        "SELECT consumer, reason, count(*) AS n FROM dead_letters GROUP BY consumer, reason"
    )
    return {(r["consumer"], r["reason"]): r["n"] for r in rows}
