"""SQL for automation runs as the run pool drives them: creation, leased claims, the
enrichment and execution steps, activity and artifact references; and the API's reads.

Every status change writes an ``automation_run_events`` row (store.run_events) in the same
transaction; terminal transitions live in store.run_outcomes, the finalizer's queries in
store.run_finalizer, the attention inbox in store.attention.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from schemas.automations import Run, RunStatus
from store import outbox
from store.run_events import add_event

LEASE_SECONDS = 300.0
ACTIVE_STATUSES: tuple[str, ...] = ("queued", "enriching", "ready", "running")


RUN_COLUMNS = """r.id, r.org_id, r.automation_id, a.name AS automation_name, r.trigger_id,
    r.trigger_event_id, r.status, r.status_reason, r.failure_stage, r.session_id,
    r.target_configuration_id, r.completion_id, r.completion_json AS completion,
    r.completion_artifact_ref, r.enrichment_json AS enrichment, r.enrichment_artifact_ref,
    r.summary, r.error_code, r.error_message, r.assigned_to, r.assigned_at, r.resolved_by,
    r.resolved_at, r.resolution_note, r.queued_at, r.started_at, r.completed_at, r.deadline_at,
    r.created_at, r.updated_at"""
"""The API columns of a run (``automation_runs r`` joined with ``automations a``)."""


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


RECORD_SELECT = """SELECT r.id, r.org_id, r.automation_id, r.trigger_id, r.trigger_event_id,
    r.status, r.lease_owner, r.lease_version, r.session_id, r.completion_id, r.enrichment_json,
    r.completion_json, r.last_activity_at, r.deadline_at,
    a.name AS automation_name, a.enabled AS automation_enabled, a.agent_instructions,
    a.model_id, a.default_configuration_id, a.max_run_seconds, a.created_by,
    t.provider, e.parsed_context
  FROM automation_runs r
  JOIN automations a ON a.id = r.automation_id
  JOIN trigger_events e ON e.id = r.trigger_event_id
  LEFT JOIN triggers t ON t.id = r.trigger_id"""
"""The query of :class:`RunRecord` rows (add a WHERE clause)."""


def run_from_row(row: asyncpg.Record) -> Run:
    """A row of :data:`RUN_COLUMNS` as the API's :class:`Run`."""
    return msgspec.convert(dict(row), Run)


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
    row = await conn.fetchrow(f"{RECORD_SELECT} WHERE r.id = $1", run_id)
    return None if row is None else msgspec.convert(dict(row), RunRecord)


async def find_by_session(conn: asyncpg.Connection, session_id: uuid.UUID) -> RunRecord | None:
    """The run a session was started for, if any."""
    row = await conn.fetchrow(f"{RECORD_SELECT} WHERE r.session_id = $1", session_id)
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


async def get_run(conn: asyncpg.Connection, org_id: uuid.UUID, run_id: uuid.UUID) -> Run | None:
    """One run of the org."""
    row = await conn.fetchrow(
        f"""SELECT {RUN_COLUMNS} FROM automation_runs r
            JOIN automations a ON a.id = r.automation_id
            WHERE r.id = $1 AND r.org_id = $2""",
        run_id,
        org_id,
    )
    return None if row is None else run_from_row(row)


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
        f"""SELECT {RUN_COLUMNS} FROM automation_runs r
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
    return [run_from_row(r) for r in rows]
