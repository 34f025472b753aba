"""SQL for cron schedules. Each schedule owns a hidden trigger its firings are recorded on,
so a firing is an ordinary trigger event deduplicated per (trigger, slot)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from schemas.automations import Schedule

_COLUMNS = """s.id, s.org_id, s.automation_id, s.name, s.cron_expression, s.timezone, s.enabled,
    s.last_run_at, s.next_run_at, s.last_error, s.last_error_at, s.created_at, s.updated_at"""
_UPDATABLE = (
    "name",
    "cron_expression",
    "timezone",
    "enabled",
    "next_run_at",
    "last_error",
    "last_error_at",
)


def _schedule(row: asyncpg.Record) -> Schedule:
    return msgspec.convert(dict(row), Schedule)


class DueSchedule(msgspec.Struct, frozen=True, kw_only=True):
    """A schedule whose next slot has come (row-locked by the caller's transaction)."""

    id: uuid.UUID
    org_id: uuid.UUID
    automation_id: uuid.UUID
    trigger_id: uuid.UUID
    cron_expression: str
    timezone: str
    next_run_at: datetime


async def create_schedule(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    created_by: uuid.UUID | None,
    automation_id: uuid.UUID,
    fields: dict[str, Any],
) -> Schedule:
    """Insert a schedule and its hidden trigger in one transaction."""
    async with conn.transaction():
        trigger_id: uuid.UUID = await conn.fetchval(
            """INSERT INTO triggers (org_id, automation_id, created_by, name, trigger_type,
                   provider, enabled, hidden, config)
               VALUES ($1, $2, $3, 'Schedule', 'manual', 'scheduled', false, true,
                       '{"_schedule": true}')
               RETURNING id""",
            org_id,
            automation_id,
            created_by,
        )
        names = [n for n in _UPDATABLE if n in fields]
        cols = ", ".join(["org_id", "created_by", "automation_id", "trigger_id", *names])
        params = ", ".join(f"${i}" for i in range(1, len(names) + 5))
        row = await conn.fetchrow(
            f"""WITH s AS (INSERT INTO schedules ({cols}) VALUES ({params}) RETURNING *)
                SELECT {_COLUMNS} FROM s""",
            org_id,
            created_by,
            automation_id,
            trigger_id,
            *[fields[n] for n in names],
        )
    assert row is not None
    return _schedule(row)


async def get_schedule(
    conn: asyncpg.Connection, org_id: uuid.UUID, schedule_id: uuid.UUID
) -> Schedule | None:
    """One schedule of the org."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM schedules s WHERE s.id = $1 AND s.org_id = $2",
        schedule_id,
        org_id,
    )
    return None if row is None else _schedule(row)


async def list_schedules(
    conn: asyncpg.Connection, org_id: uuid.UUID, automation_id: uuid.UUID | None = None
) -> list[Schedule]:
    """The org's schedules (optionally of one automation), newest first."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM schedules s
            WHERE s.org_id = $1 AND ($2::uuid IS NULL OR s.automation_id = $2)
            ORDER BY s.created_at DESC""",
        org_id,
        automation_id,
    )
    return [_schedule(r) for r in rows]


async def update_schedule(
    conn: asyncpg.Connection, org_id: uuid.UUID, schedule_id: uuid.UUID, fields: dict[str, Any]
) -> Schedule | None:
    """Set the given columns of the org's schedule."""
    names = [n for n in _UPDATABLE if n in fields]
    sets = "".join(f"{n} = ${i}, " for i, n in enumerate(names, start=3))
    row = await conn.fetchrow(
        f"""WITH s AS (UPDATE schedules SET {sets}updated_at = now()
                       WHERE id = $1 AND org_id = $2 RETURNING *)
            SELECT {_COLUMNS} FROM s""",
        schedule_id,
        org_id,
        *[fields[n] for n in names],
    )
    return None if row is None else _schedule(row)


async def delete_schedule(
    conn: asyncpg.Connection, org_id: uuid.UUID, schedule_id: uuid.UUID
) -> bool:
    """Delete a schedule with its hidden trigger (the trigger's delete cascades to it)."""
    status: str = await conn.execute(
        """DELETE FROM triggers t USING schedules s
           WHERE s.id = $1 AND s.org_id = $2 AND t.id = s.trigger_id""",
        schedule_id,
        org_id,
    )
    return status.endswith(" 1")


async def due_schedules(conn: asyncpg.Connection, *, limit: int = 100) -> list[DueSchedule]:
    """Enabled schedules whose ``next_run_at`` has passed, row-locked (SKIP LOCKED) so two
    schedulers never work on the same one; call inside a transaction."""
    rows = await conn.fetch(
        """SELECT id, org_id, automation_id, trigger_id, cron_expression, timezone, next_run_at
           FROM schedules WHERE enabled AND next_run_at <= now()
           ORDER BY next_run_at LIMIT $1
           FOR UPDATE SKIP LOCKED""",
        limit,
    )
    return [msgspec.convert(dict(r), DueSchedule) for r in rows]


async def mark_fired(
    conn: asyncpg.Connection,
    schedule_id: uuid.UUID,
    fired_at: datetime | None,
    next_run_at: datetime | None,
) -> None:
    """Record a firing and the next slot (None: no later slot, never due again)."""
    await conn.execute(
        """UPDATE schedules SET last_run_at = coalesce($2, last_run_at), next_run_at = $3
           WHERE id = $1""",
        schedule_id,
        fired_at,
        next_run_at,
    )


async def stop_firing(conn: asyncpg.Connection, schedule_id: uuid.UUID, error: str) -> None:
    """Take a schedule off (no next run) with the reason shown, until it is edited."""
    await conn.execute(
        """UPDATE schedules SET next_run_at = NULL, last_error = left($2, 2000),
               last_error_at = now()
           WHERE id = $1""",
        schedule_id,
        error,
    )
