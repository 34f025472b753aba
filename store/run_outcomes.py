"""SQL for how runs end: failures (and time-outs) and the agent's completion.

Each terminal transition, in its transaction, writes its history row, settles the trigger
event and enqueues ``write_artifacts`` and ``notify_run_terminal``, so no terminal run is
ever left unannounced.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from schemas.automations import CompletionOutcome, RunStatus
from store import outbox
from store.run_events import add_event
from store.runs import ACTIVE_STATUSES


async def _settle(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    previous: str,
    status: str,
    org_id: uuid.UUID,
    data: dict[str, Any],
    artifacts: list[str],
) -> None:
    """Bookkeeping of every terminal transition (caller holds the transaction)."""
    await add_event(
        conn, run_id, "status_transition", from_status=previous, to_status=status, data=data
    )
    await conn.execute(
        """UPDATE trigger_events SET status = $2, processed_at = now()
           WHERE id = (SELECT trigger_event_id FROM automation_runs WHERE id = $1)""",
        run_id,
        "completed" if status == "succeeded" else "failed",
    )
    if artifacts:
        await outbox.enqueue(conn, org_id, run_id, "write_artifacts", {"artifacts": artifacts})
    await outbox.enqueue(conn, org_id, run_id, "notify_run_terminal", {"status": status})


async def fail(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    *,
    stage: str,
    code: str,
    message: str,
    status: RunStatus = "failed",
    version: int | None = None,
) -> bool:
    """Move an active run to ``failed`` (or ``timed_out``) with a reason; False if it is
    already terminal or (given ``version``) someone else moved it."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """WITH old AS (SELECT id, status, session_id FROM automation_runs
                           WHERE id = $1 FOR UPDATE)
               UPDATE automation_runs r SET status = $3, status_reason = $4, failure_stage = $5,
                   error_code = $4, error_message = left($6, 4000), completed_at = now(),
                   lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
               FROM old
               WHERE r.id = old.id AND r.status = ANY($7::text[])
                 AND ($2::int IS NULL OR r.lease_version = $2)
               RETURNING old.status, r.org_id""",
            run_id,
            version,
            status,
            code,
            stage,
            message,
            list(ACTIVE_STATUSES),
        )
        if row is None:
            return False
        await _settle(conn, run_id, row[0], status, row[1], {"reason": code, "stage": stage}, [])
        return True


async def complete(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    *,
    completion_id: str,
    outcome: CompletionOutcome,
    summary: str | None,
    completion: dict[str, Any],
) -> bool:
    """Record the agent's ``automation.complete`` once: the first completion of an active
    run wins; the same (or any later) completion is a no-op returning False."""
    async with conn.transaction():
        row = await conn.fetchrow(
            """WITH old AS (SELECT id, status, session_id FROM automation_runs
                           WHERE id = $1 FOR UPDATE)
               UPDATE automation_runs r SET status = $3, completion_id = $2,
                   completion_json = $5, summary = $4, completed_at = now(),
                   status_reason = CASE WHEN $3 = 'succeeded' THEN NULL ELSE 'agent_reported' END,
                   lease_owner = NULL, lease_expires_at = NULL,
                   last_activity_at = now(), updated_at = now()
               FROM old
               WHERE r.id = old.id AND r.completion_id IS NULL
                 AND r.status = ANY($6::text[])
               RETURNING old.status, r.org_id""",
            run_id,
            completion_id,
            outcome,
            summary,
            completion,
            list(ACTIVE_STATUSES),
        )
        if row is None:
            return False
        await add_event(
            conn, run_id, "completion", data={"completion_id": completion_id, "outcome": outcome}
        )
        await _settle(
            conn, run_id, row[0], outcome, row[1], {"completion_id": completion_id}, ["completion"]
        )
        return True
