"""SQL for the outbox (claim with SKIP LOCKED, retry with backoff, stuck-row recovery) and
the side-effect ledger that makes external calls happen at most once per idempotency key."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

import asyncpg
import msgspec

from schemas.automations import OutboxKind, OutboxStatus

MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_CAP_SECONDS = 300.0
STUCK_AFTER_SECONDS = 300.0
CLAIM_LIMIT = 50


class OutboxRow(msgspec.Struct, frozen=True, kw_only=True):
    """One claimed outbox row."""

    id: int
    org_id: uuid.UUID
    run_id: uuid.UUID | None
    kind: OutboxKind
    payload: dict[str, Any]
    status: OutboxStatus
    attempts: int
    available_at: datetime
    last_error: str | None


async def enqueue(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    run_id: uuid.UUID | None,
    kind: OutboxKind,
    payload: dict[str, Any] | None = None,
) -> int:
    """Add a pending row, due now; call inside the transaction that makes it necessary."""
    row_id: int = await conn.fetchval(
        "INSERT INTO outbox (org_id, run_id, kind, payload) VALUES ($1, $2, $3, $4) RETURNING id",
        org_id,
        run_id,
        kind,
        payload or {},
    )
    return row_id


async def recover_stuck(
    conn: asyncpg.Connection,
    *,
    stuck_after: float = STUCK_AFTER_SECONDS,
    max_attempts: int = MAX_ATTEMPTS,
) -> int:
    """Return rows left in ``processing`` longer than ``stuck_after`` s to ``pending``.

    A dispatcher that died mid-row used up an attempt, so a row that kills its dispatcher
    ends ``failed`` instead of looping forever.
    """
    status: str = await conn.execute(
        """UPDATE outbox SET
               attempts = attempts + 1,
               status = CASE WHEN attempts + 1 >= $2 THEN 'failed' ELSE 'pending' END,
               available_at = now(), claimed_at = NULL, claimed_by = NULL,
               last_error = 'recovered: stuck in processing'
           WHERE status = 'processing'
             AND claimed_at < now() - make_interval(secs => $1)""",
        stuck_after,
        max_attempts,
    )
    return int(status.rsplit(" ", 1)[1])


async def claim_due(
    conn: asyncpg.Connection, worker: str, limit: int = CLAIM_LIMIT
) -> list[OutboxRow]:
    """Move up to ``limit`` due pending rows to ``processing`` for ``worker``, oldest first."""
    rows = await conn.fetch(
        """WITH due AS (
               SELECT id FROM outbox
               WHERE status = 'pending' AND available_at <= now()
               ORDER BY available_at, id
               LIMIT $1
               FOR UPDATE SKIP LOCKED)
           UPDATE outbox o SET status = 'processing', claimed_at = now(), claimed_by = $2
           FROM due WHERE o.id = due.id
           RETURNING o.id, o.org_id, o.run_id, o.kind, o.payload, o.status, o.attempts,
                     o.available_at, o.last_error""",
        limit,
        worker,
    )
    return [msgspec.convert(dict(r), OutboxRow) for r in rows]


async def mark_dispatched(conn: asyncpg.Connection, ids: list[int], worker: str) -> int:
    """Mark rows this worker still holds as dispatched; returns how many."""
    status: str = await conn.execute(
        """UPDATE outbox SET status = 'dispatched', dispatched_at = now(),
               claimed_at = NULL, last_error = NULL
           WHERE id = ANY($1::bigint[]) AND status = 'processing' AND claimed_by = $2""",
        ids,
        worker,
    )
    return int(status.rsplit(" ", 1)[1])


async def mark_failed_attempt(
    conn: asyncpg.Connection,
    row_id: int,
    worker: str,
    error: str,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    base: float = BACKOFF_BASE_SECONDS,
    cap: float = BACKOFF_CAP_SECONDS,
    permanent: bool = False,
) -> OutboxStatus | None:
    """Count a failed attempt: back to ``pending`` after the backoff (computed in SQL as
    :func:`core.backoff.exponential_delay` of the failures so far), or ``failed`` at the
    max (or at once when ``permanent``: retrying cannot help).

    Returns the new status, or None when the row is no longer this worker's.
    """
    status: str | None = await conn.fetchval(
        """UPDATE outbox SET
               attempts = attempts + 1,
               status = CASE WHEN $7 OR attempts + 1 >= $4 THEN 'failed' ELSE 'pending' END,
               available_at = now() + make_interval(secs => least($5 * power(2, attempts), $6)),
               claimed_at = NULL, claimed_by = NULL, last_error = left($3, 2000)
           WHERE id = $1 AND status = 'processing' AND claimed_by = $2
           RETURNING status""",
        row_id,
        worker,
        error,
        max_attempts,
        base,
        cap,
        permanent,
    )
    return None if status is None else cast(OutboxStatus, status)


async def get_row(conn: asyncpg.Connection, row_id: int) -> OutboxRow | None:
    """One outbox row by id (tests and operators)."""
    row = await conn.fetchrow(
        """SELECT id, org_id, run_id, kind, payload, status, attempts, available_at, last_error
           FROM outbox WHERE id = $1""",
        row_id,
    )
    return None if row is None else msgspec.convert(dict(row), OutboxRow)


# --- side effects -----------------------------------------------------------------------------


async def begin_side_effect(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID,
    run_id: uuid.UUID | None,
    effect_id: str,
    kind: str,
    provider: str,
    request_hash: str,
) -> bool:
    """Record that an effect is about to happen; False if it was already recorded.

    Must be committed *before* the external call: when it returns False the effect has
    happened, or its outcome is unknown, and it must not be attempted again.
    """
    inserted: int | None = await conn.fetchval(
        """INSERT INTO automation_side_effects
               (org_id, run_id, effect_id, kind, provider, request_hash, status)
           VALUES ($1, $2, $3, $4, $5, $6, 'started')
           ON CONFLICT (org_id, effect_id) DO NOTHING
           RETURNING 1""",
        org_id,
        run_id,
        effect_id,
        kind,
        provider,
        request_hash,
    )
    return inserted is not None


async def complete_side_effect(
    conn: asyncpg.Connection, org_id: uuid.UUID, effect_id: str, response: dict[str, Any]
) -> None:
    """Record the provider's answer to an effect that happened."""
    await conn.execute(
        """UPDATE automation_side_effects SET status = 'completed', response_json = $3,
               completed_at = now()
           WHERE org_id = $1 AND effect_id = $2""",
        org_id,
        effect_id,
        response,
    )


async def forget_side_effect(conn: asyncpg.Connection, org_id: uuid.UUID, effect_id: str) -> None:
    """Drop a started effect the provider definitely refused, so a retry may try again."""
    await conn.execute(
        """DELETE FROM automation_side_effects
           WHERE org_id = $1 AND effect_id = $2 AND status = 'started'""",
        org_id,
        effect_id,
    )
