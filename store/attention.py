"""SQL for the attention inbox: failed, needs_human and timed_out runs of an org, and a
member's claim, unclaim and resolution of them (each written to the run's history)."""

from __future__ import annotations

import uuid

import asyncpg

from schemas.automations import ATTENTION_RUN_STATUSES, Run
from store.run_events import add_event
from store.runs import RUN_COLUMNS, run_from_row


async def list_attention(
    conn: asyncpg.Connection, org_id: uuid.UUID, *, days: int = 7, limit: int = 200
) -> list[Run]:
    """The attention inbox: failed, needs_human and timed_out runs of the last ``days``."""
    rows = await conn.fetch(
        f"""SELECT {RUN_COLUMNS} FROM automation_runs r
            JOIN automations a ON a.id = r.automation_id
            WHERE r.org_id = $1 AND r.status = ANY($2::text[])
              AND r.completed_at > now() - make_interval(days => $3)
            ORDER BY r.completed_at DESC LIMIT $4""",
        org_id,
        list(ATTENTION_RUN_STATUSES),
        days,
        limit,
    )
    return [run_from_row(r) for r in rows]


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
