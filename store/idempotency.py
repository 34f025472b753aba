"""``Idempotency-Key`` records (``idempotency_keys``): a retried request replays the stored
response; one still in flight is a conflict."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from store.conn import Conn


class IdempotencyHit(msgspec.Struct, frozen=True, kw_only=True):
    """A key seen before: still in flight, or done with a stored response."""

    in_flight: bool
    request_hash: str
    status_code: int | None = None
    response: Any = None


# A request that claimed a key and never finished (its replica died) stops blocking retries.
ABANDONED_AFTER_SECONDS = 120


async def claim_idempotency_key(
    conn: Conn, org_id: uuid.UUID, scope: str, key: str, request_hash: str
) -> IdempotencyHit | None:
    """Claim ``key`` for a new request (None), or report how it was used before."""
    claimed = await conn.fetchval(
        """INSERT INTO idempotency_keys (org_id, scope, key, request_hash, status)
           VALUES ($1, $2, $3, $4, 'in_flight')
           ON CONFLICT (org_id, scope, key) DO UPDATE
               SET request_hash = EXCLUDED.request_hash, created_at = now()
               WHERE idempotency_keys.status = 'in_flight'
                 AND idempotency_keys.created_at
                     < now() - make_interval(secs => $5)
           RETURNING true""",
        org_id,
        scope,
        key,
        request_hash,
        ABANDONED_AFTER_SECONDS,
    )
    if claimed:
        return None
    row = await conn.fetchrow(
        """SELECT status, request_hash, status_code, response FROM idempotency_keys
           WHERE org_id = $1 AND scope = $2 AND key = $3""",
        org_id,
        scope,
        key,
    )
    assert row is not None
    return IdempotencyHit(
        in_flight=row["status"] == "in_flight",
        request_hash=row["request_hash"],
        status_code=row["status_code"],
        response=row["response"],
    )


async def complete_idempotency_key(
    conn: Conn, org_id: uuid.UUID, scope: str, key: str, status_code: int, response: Any
) -> None:
    """Store the response a replay of ``key`` answers with."""
    await conn.execute(
        """UPDATE idempotency_keys
           SET status = 'done', status_code = $4, response = $5, completed_at = now()
           WHERE org_id = $1 AND scope = $2 AND key = $3""",
        org_id,
        scope,
        key,
        status_code,
        response,
    )


async def release_idempotency_key(conn: Conn, org_id: uuid.UUID, scope: str, key: str) -> None:
    """The request failed: forget the key so a retry runs again."""
    await conn.execute(
        """DELETE FROM idempotency_keys
           WHERE org_id = $1 AND scope = $2 AND key = $3 AND status = 'in_flight'""",
        org_id,
        scope,
        key,
    )
