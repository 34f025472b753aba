"""SQL for the run finalizer: overdue runs, the session a run waits on, and the bounded
retries (requeue a lost step, revive a failed session)."""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

from schemas.automations import OutboxKind
from store import outbox
from store.run_events import add_event, count_events
from store.runs import ACTIVE_STATUSES, RECORD_SELECT, RunRecord


async def requeue(conn: asyncpg.Connection, run: RunRecord, *, max_requeues: int = 3) -> bool:
    """Enqueue a stalled run's current stage again (its work message was lost); False once
    it was requeued ``max_requeues`` times already (the caller then fails it)."""
    async with conn.transaction():
        done = await count_events(conn, run.id, "requeued")
        if done >= max_requeues:
            return False
        kind: OutboxKind = "enqueue_execute" if run.status == "ready" else "enqueue_enrich"
        await outbox.enqueue(conn, run.org_id, run.id, kind, {"run_id": str(run.id)})
        await add_event(conn, run.id, "requeued", data={"stage": kind, "attempt": done + 1})
        await conn.execute(
            """UPDATE automation_runs SET last_activity_at = now(), lease_owner = NULL,
                   lease_expires_at = NULL WHERE id = $1""",
            run.id,
        )
        return True


async def note_revival(conn: asyncpg.Connection, run: RunRecord, *, max_revivals: int) -> bool:
    """Record that the finalizer asks the run's failed session to boot again; False once it
    asked ``max_revivals`` times already (the caller then fails the run)."""
    async with conn.transaction():
        done = await count_events(conn, run.id, "revived")
        if done >= max_revivals:
            return False
        await add_event(
            conn, run.id, "revived", data={"session_id": str(run.session_id), "attempt": done + 1}
        )
        await conn.execute(
            "UPDATE automation_runs SET last_activity_at = now() WHERE id = $1", run.id
        )
        return True


class SessionState(msgspec.Struct, frozen=True, kw_only=True):
    """What a run needs to know about its session row."""

    status: str
    completion_id: str | None
    outcome: str | None
    summary: str | None


async def session_state(conn: asyncpg.Connection, session_id: uuid.UUID) -> SessionState | None:
    """The session's status and the completion it recorded, if any."""
    row = await conn.fetchrow(
        "SELECT status, completion_id, outcome, summary FROM sessions WHERE id = $1", session_id
    )
    return None if row is None else msgspec.convert(dict(row), SessionState)


async def overdue(
    conn: asyncpg.Connection, *, idle_seconds: float, limit: int = 50
) -> list[RunRecord]:
    """Active runs past their deadline, idle for ``idle_seconds``, or whose session ended."""
    rows = await conn.fetch(
        f"""{RECORD_SELECT}
            LEFT JOIN sessions s ON s.id = r.session_id
            WHERE r.status = ANY($1::text[])
              AND (r.deadline_at < now()
                   OR r.last_activity_at < now() - make_interval(secs => $2)
                   OR (r.status = 'running' AND s.status IN ('stopped', 'failed')))
            ORDER BY r.last_activity_at LIMIT $3""",
        list(ACTIVE_STATUSES),
        idle_seconds,
        limit,
    )
    return [msgspec.convert(dict(r), RunRecord) for r in rows]
