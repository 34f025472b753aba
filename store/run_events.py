"""SQL for a run's history: one ``automation_run_events`` row per transition, enrichment,
completion, claim or requeue, written inside the transaction that made the change."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec

from schemas.automations import RunEvent


async def add_event(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    type_: str,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the run's history."""
    await conn.execute(
        """INSERT INTO automation_run_events (run_id, type, from_status, to_status, data)
           VALUES ($1, $2, $3, $4, $5)""",
        run_id,
        type_,
        from_status,
        to_status,
        data or {},
    )


async def list_events(conn: asyncpg.Connection, run_id: uuid.UUID) -> list[RunEvent]:
    """A run's history, oldest first (caller checked the org)."""
    rows = await conn.fetch(
        """SELECT id, type, from_status, to_status, data, created_at
           FROM automation_run_events WHERE run_id = $1 ORDER BY id""",
        run_id,
    )
    return [msgspec.convert(dict(r), RunEvent) for r in rows]


async def count_events(conn: asyncpg.Connection, run_id: uuid.UUID, type_: str) -> int:
    """How many ``type_`` entries the run's history holds."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM automation_run_events WHERE run_id = $1 AND type = $2",
        run_id,
        type_,
    )
    return count
