"""SQL for automation runs: creation, leased claims, transitions, completion, the attention
inbox and its claim/unclaim/resolve, and the finalizer's queries.

Every status change writes an ``automation_run_events`` row in the same transaction.
Terminal transitions also settle the trigger event and enqueue ``write_artifacts`` and
``notify_run_terminal`` in that transaction, so no terminal run is ever left unannounced.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from schemas.automations import (
    ATTENTION_RUN_STATUSES,
    CompletionOutcome,
    OutboxKind,
    Run,
    RunEvent,
    RunStatus,
)
from store import outbox

LEASE_SECONDS = 300.0
ACTIVE_STATUSES: tuple[str, ...] = ("queued", "enriching", "ready", "running")

_RUN_COLUMNS = """r.id, r.org_id, r.automation_id, a.name AS automation_name, r.trigger_id,
    r.trigger_event_id, r.status, r.status_reason, r.failure_stage, r.session_id,
    r.target_configuration_id, r.completion_id, r.completion_json AS completion,
    r.completion_artifact_ref, r.enrichment_json AS enrichment, r.enrichment_artifact_ref,
    r.summary, r.error_code, r.error_message, r.assigned_to, r.assigned_at, r.resolved_by,
    r.resolved_at, r.resolution_note, r.queued_at, r.started_at, r.completed_at, r.deadline_at,
    r.created_at, r.updated_at"""


class RunRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What the run pool needs about a run, its automation and its trigger event."""

    id: uuid.UUID
    org_id: uuid.UUID
    automation_id: uuid.UUID
    trigger_id: uuid.UUID | None
    trigger_event_id: uuid.UUID
    status: RunStatus
    lease_owner: str | None
    lease_version: int
    session_id: uuid.UUID | None
    completion_id: str | None
    enrichment_json: dict[str, Any] | None
    completion_json: dict[str, Any] | None
    last_activity_at: datetime
    deadline_at: datetime | None
    automation_name: str
    automation_enabled: bool
    agent_instructions: str
    model_id: str | None
    default_configuration_id: uuid.UUID | None
    max_run_seconds: int
    created_by: uuid.UUID | None
    provider: str | None
    parsed_context: dict[str, Any] | None


_RECORD_SELECT = """SELECT r.id, r.org_id, r.automation_id, r.trigger_id, r.trigger_event_id,
    r.status, r.lease_owner, r.lease_version, r.session_id, r.completion_id, r.enrichment_json,
    r.completion_json, r.last_activity_at, r.deadline_at,
    a.name AS automation_name, a.enabled AS automation_enabled, a.agent_instructions,
    a.model_id, a.default_configuration_id, a.max_run_seconds, a.created_by,
    t.provider, e.parsed_context
  FROM automation_runs r
  JOIN automations a ON a.id = r.automation_id
  JOIN trigger_events e ON e.id = r.trigger_event_id
  LEFT JOIN triggers t ON t.id = r.trigger_id"""


def _run(row: asyncpg.Record) -> Run:
    return msgspec.convert(dict(row), Run)


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


async def insert_run(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID,
    automation_id: uuid.UUID,
    trigger_id: uuid.UUID,
    trigger_event_id: uuid.UUID,
) -> uuid.UUID:
    """A queued run for a trigger event, and its ``enqueue_enrich`` outbox row (same tx)."""
    run_id: uuid.UUID = await conn.fetchval(
        """INSERT INTO automation_runs (org_id, automation_id, trigger_id, trigger_event_id, status)
           VALUES ($1, $2, $3, $4, 'queued') RETURNING id""",
        org_id,
        automation_id,
        trigger_id,
        trigger_event_id,
    )
    await add_event(conn, run_id, "status_transition", to_status="queued")
    await outbox.enqueue(conn, org_id, run_id, "enqueue_enrich", {"run_id": str(run_id)})
    return run_id


async def get_record(conn: asyncpg.Connection, run_id: uuid.UUID) -> RunRecord | None:
    """A run with its automation and trigger context (pool use, no org scope)."""
    row = await conn.fetchrow(f"{_RECORD_SELECT} WHERE r.id = $1", run_id)
    return None if row is None else msgspec.convert(dict(row), RunRecord)


async def claim(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    *,
    from_statuses: tuple[RunStatus, ...],
    to_status: RunStatus,
    owner: str,
    lease_seconds: float = LEASE_SECONDS,
) -> RunRecord | None:
    """Take the run's lease and move it to ``to_status`` if it is in ``from_statuses`` and
    nobody else holds a live lease. Bumps ``lease_version``; None when not claimable."""
    async with conn.transaction():
        previous: str | None = await conn.fetchval(
            """WITH old AS (SELECT id, status, session_id FROM automation_runs
                           WHERE id = $1 FOR UPDATE)
               UPDATE automation_runs r SET status = $3, lease_owner = $4,
                   lease_expires_at = now() + make_interval(secs => $5),
                   lease_version = lease_version + 1, last_activity_at = now(),
                   updated_at = now(),
                   enrichment_started_at = CASE WHEN $3 = 'enriching' THEN now()
                                                ELSE enrichment_started_at END
               FROM old
               WHERE r.id = old.id AND r.status = ANY($2::text[])
                 AND (r.lease_owner IS NULL OR r.lease_owner = $4 OR r.lease_expires_at < now())
               RETURNING old.status""",
            run_id,
            list(from_statuses),
            to_status,
            owner,
            lease_seconds,
        )
        if previous is None:
            return None
        if previous != to_status:
            await add_event(
                conn,
                run_id,
                "status_transition",
                from_status=previous,
                to_status=to_status,
                data={"lease_owner": owner},
            )
        return await get_record(conn, run_id)


async def release_leases(conn: asyncpg.Connection, owner: str) -> int:
    """Drop every lease ``owner`` holds (a restarted pool member holds none)."""
    status: str = await conn.execute(
        """UPDATE automation_runs SET lease_owner = NULL, lease_expires_at = NULL
           WHERE lease_owner = $1""",
        owner,
    )
    return int(status.rsplit(" ", 1)[1])


async def release_lease(conn: asyncpg.Connection, run_id: uuid.UUID, version: int) -> bool:
    """Hand back a lease taken at ``version`` without changing the run."""
    status: str = await conn.execute(
        """UPDATE automation_runs SET lease_owner = NULL, lease_expires_at = NULL
           WHERE id = $1 AND lease_version = $2""",
        run_id,
        version,
    )
    return status.endswith(" 1")


async def save_enrichment(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    version: int,
    enrichment: dict[str, Any],
) -> bool:
    """enriching → ready: store the payload, enqueue its artifact and the execute step.

    Only the lease holder at ``version`` may do it; False otherwise.
    """
    async with conn.transaction():
        org_id: uuid.UUID | None = await conn.fetchval(
            """UPDATE automation_runs SET status = 'ready', enrichment_json = $3,
                   ready_at = now(), lease_owner = NULL, lease_expires_at = NULL,
                   last_activity_at = now(), updated_at = now()
               WHERE id = $1 AND lease_version = $2 AND status = 'enriching'
               RETURNING org_id""",
            run_id,
            version,
            enrichment,
        )
        if org_id is None:
            return False
        await add_event(conn, run_id, "enrichment_saved", data={"version": 1})
        await add_event(
            conn, run_id, "status_transition", from_status="enriching", to_status="ready"
        )
        await outbox.enqueue(conn, org_id, run_id, "write_artifacts", {"artifacts": ["enrichment"]})
        await outbox.enqueue(conn, org_id, run_id, "enqueue_execute", {"run_id": str(run_id)})
        return True


async def mark_running(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    version: int,
    *,
    session_id: uuid.UUID,
    configuration_id: uuid.UUID,
    max_run_seconds: int,
) -> bool:
    """ready/running → running with its session; sets the deadline and releases the lease."""
    async with conn.transaction():
        previous: str | None = await conn.fetchval(
            """WITH old AS (SELECT id, status, session_id FROM automation_runs
                           WHERE id = $1 FOR UPDATE)
               UPDATE automation_runs r SET status = 'running', session_id = $3,
                   target_configuration_id = $4,
                   started_at = coalesce(r.started_at, now()),
                   deadline_at = coalesce(r.deadline_at, now() + make_interval(secs => $5)),
                   lease_owner = NULL, lease_expires_at = NULL,
                   last_activity_at = now(), updated_at = now()
               FROM old
               WHERE r.id = old.id AND r.lease_version = $2
                 AND r.status = 'running'
               RETURNING old.session_id IS NULL""",
            run_id,
            version,
            session_id,
            configuration_id,
            max_run_seconds,
        )
        if previous is None:
            return False
        if previous:
            await add_event(
                conn,
                run_id,
                "target_resolved",
                data={"configuration_id": str(configuration_id)},
            )
            await add_event(conn, run_id, "session_started", data={"session_id": str(session_id)})
            await conn.execute(
                """UPDATE trigger_events SET session_id = $2
                   WHERE id = (SELECT trigger_event_id FROM automation_runs WHERE id = $1)""",
                run_id,
                session_id,
            )
        return True


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


async def set_artifact_refs(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    *,
    completion_ref: str | None = None,
    enrichment_ref: str | None = None,
) -> None:
    """Remember where the run's artifacts were written."""
    await conn.execute(
        """UPDATE automation_runs SET
               completion_artifact_ref = coalesce($2, completion_artifact_ref),
               enrichment_artifact_ref = coalesce($3, enrichment_artifact_ref),
               updated_at = now()
           WHERE id = $1""",
        run_id,
        completion_ref,
        enrichment_ref,
    )


async def touch(conn: asyncpg.Connection, run_id: uuid.UUID) -> None:
    """Note activity on an active run (defers the finalizer's idle check)."""
    await conn.execute(
        """UPDATE automation_runs SET last_activity_at = now()
           WHERE id = $1 AND status = ANY($2::text[])""",
        run_id,
        list(ACTIVE_STATUSES),
    )


async def requeue(conn: asyncpg.Connection, run: RunRecord, *, max_requeues: int = 3) -> bool:
    """Enqueue a stalled run's current stage again (its work message was lost); False once
    it was requeued ``max_requeues`` times already (the caller then fails it)."""
    async with conn.transaction():
        done: int = await conn.fetchval(
            "SELECT count(*) FROM automation_run_events WHERE run_id = $1 AND type = 'requeued'",
            run.id,
        )
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
        done: int = await conn.fetchval(
            "SELECT count(*) FROM automation_run_events WHERE run_id = $1 AND type = 'revived'",
            run.id,
        )
        if done >= max_revivals:
            return False
        await add_event(
            conn, run.id, "revived", data={"session_id": str(run.session_id), "attempt": done + 1}
        )
        await conn.execute(
            "UPDATE automation_runs SET last_activity_at = now() WHERE id = $1", run.id
        )
        return True


async def find_by_session(conn: asyncpg.Connection, session_id: uuid.UUID) -> RunRecord | None:
    """The run a session was started for, if any."""
    row = await conn.fetchrow(f"{_RECORD_SELECT} WHERE r.session_id = $1", session_id)
    return None if row is None else msgspec.convert(dict(row), RunRecord)


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
        f"""{_RECORD_SELECT}
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


# --- API reads --------------------------------------------------------------------------------


async def get_run(conn: asyncpg.Connection, org_id: uuid.UUID, run_id: uuid.UUID) -> Run | None:
    """One run of the org."""
    row = await conn.fetchrow(
        f"""SELECT {_RUN_COLUMNS} FROM automation_runs r
            JOIN automations a ON a.id = r.automation_id
            WHERE r.id = $1 AND r.org_id = $2""",
        run_id,
        org_id,
    )
    return None if row is None else _run(row)


async def list_runs(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    *,
    automation_id: uuid.UUID | None = None,
    status: str | None = None,
    limit: int = 50,
    before: datetime | None = None,
) -> list[Run]:
    """The org's runs, newest first, optionally of one automation or status."""
    rows = await conn.fetch(
        f"""SELECT {_RUN_COLUMNS} FROM automation_runs r
            JOIN automations a ON a.id = r.automation_id
            WHERE r.org_id = $1
              AND ($2::uuid IS NULL OR r.automation_id = $2)
              AND ($3::text IS NULL OR r.status = $3)
              AND ($4::timestamptz IS NULL OR r.created_at < $4)
            ORDER BY r.created_at DESC LIMIT $5""",
        org_id,
        automation_id,
        status,
        before,
        limit,
    )
    return [_run(r) for r in rows]


async def list_attention(
    conn: asyncpg.Connection, org_id: uuid.UUID, *, days: int = 7, limit: int = 200
) -> list[Run]:
    """The attention inbox: failed, needs_human and timed_out runs of the last ``days``."""
    rows = await conn.fetch(
        f"""SELECT {_RUN_COLUMNS} FROM automation_runs r
            JOIN automations a ON a.id = r.automation_id
            WHERE r.org_id = $1 AND r.status = ANY($2::text[])
              AND r.completed_at > now() - make_interval(days => $3)
            ORDER BY r.completed_at DESC LIMIT $4""",
        org_id,
        list(ATTENTION_RUN_STATUSES),
        days,
        limit,
    )
    return [_run(r) for r in rows]


async def list_events(conn: asyncpg.Connection, run_id: uuid.UUID) -> list[RunEvent]:
    """A run's history, oldest first (caller checked the org)."""
    rows = await conn.fetch(
        """SELECT id, type, from_status, to_status, data, created_at
           FROM automation_run_events WHERE run_id = $1 ORDER BY id""",
        run_id,
    )
    return [msgspec.convert(dict(r), RunEvent) for r in rows]


# --- attention inbox: claim, unclaim, resolve ---------------------------------------------------


class AssignmentConflict(Exception):
    """The run is held by someone else (``holder``) or is not awaiting attention."""

    def __init__(self, message: str, holder: uuid.UUID | None = None) -> None:
        super().__init__(message)
        self.holder = holder


async def _lock_attention(
    conn: asyncpg.Connection, org_id: uuid.UUID, run_id: uuid.UUID
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT status, assigned_to FROM automation_runs
           WHERE id = $1 AND org_id = $2 FOR UPDATE""",
        run_id,
        org_id,
    )


async def assign(
    conn: asyncpg.Connection, org_id: uuid.UUID, run_id: uuid.UUID, user_id: uuid.UUID
) -> bool:
    """Claim an attention run for ``user_id``; idempotent for the holder.

    False if the run is not the org's; :class:`AssignmentConflict` if someone else holds it.
    """
    async with conn.transaction():
        row = await _lock_attention(conn, org_id, run_id)
        if row is None:
            return False
        if row["assigned_to"] is not None and row["assigned_to"] != user_id:
            raise AssignmentConflict("run is claimed by someone else", row["assigned_to"])
        if row["assigned_to"] is None:
            await conn.execute(
                """UPDATE automation_runs SET assigned_to = $2, assigned_at = now(),
                       updated_at = now() WHERE id = $1""",
                run_id,
                user_id,
            )
            await add_event(conn, run_id, "assigned", data={"user_id": str(user_id)})
        return True


async def unassign(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    run_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    force: bool = False,
) -> bool:
    """Release a claim: the holder may, or anyone with ``force`` (org admins)."""
    async with conn.transaction():
        row = await _lock_attention(conn, org_id, run_id)
        if row is None:
            return False
        holder = row["assigned_to"]
        if holder is None:
            return True
        if holder != user_id and not force:
            raise AssignmentConflict("run is claimed by someone else", holder)
        await conn.execute(
            """UPDATE automation_runs SET assigned_to = NULL, assigned_at = NULL,
                   updated_at = now() WHERE id = $1""",
            run_id,
        )
        await add_event(
            conn, run_id, "unassigned", data={"user_id": str(user_id), "previous": str(holder)}
        )
        return True


async def resolve(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    run_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    outcome: str,
    note: str,
) -> bool:
    """A human closes an attention run as succeeded or failed, with a note."""
    async with conn.transaction():
        row = await _lock_attention(conn, org_id, run_id)
        if row is None:
            return False
        if row["status"] not in ATTENTION_RUN_STATUSES:
            raise AssignmentConflict(f"run is {row['status']}, not awaiting attention")
        holder = row["assigned_to"]
        if holder is not None and holder != user_id:
            raise AssignmentConflict("run is claimed by someone else", holder)
        await conn.execute(
            """UPDATE automation_runs SET status = $2, status_reason = 'manual_resolution',
                   resolved_by = $3, resolved_at = now(), resolution_note = $4,
                   assigned_to = coalesce(assigned_to, $3),
                   assigned_at = coalesce(assigned_at, now()), updated_at = now()
               WHERE id = $1""",
            run_id,
            outcome,
            user_id,
            note,
        )
        await add_event(
            conn,
            run_id,
            "status_transition",
            from_status=row["status"],
            to_status=outcome,
            data={"reason": "manual_resolution", "user_id": str(user_id), "note": note},
        )
        return True
