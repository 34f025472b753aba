"""SQL for triggers, their events, and the one-transaction hand-off event → run → outbox.

Secrets and poll tokens arrive sealed (security.sealing); this module never sees them in
clear. Hidden triggers (Run now, schedules) are internal: never listed, never addressable.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from schemas.automations import SkipReason, Trigger, TriggerEvent
from schemas.triggers import TriggerContext
from store import runs

_COLUMNS = """t.id, t.org_id, t.automation_id, t.name, t.trigger_type, t.provider, t.enabled,
    CASE WHEN t.webhook_url_path IS NOT NULL AND t.webhook_route IS NOT NULL
         THEN '/webhooks/' || t.webhook_route || '/' || t.webhook_url_path END AS webhook_path,
    t.polling_cron, t.timezone, t.next_fire_at, t.last_polled_at, t.config,
    t.connection_id, t.integration_id, (t.poll_token_sealed IS NOT NULL) AS poll_token_configured,
    t.last_error, t.last_error_at, t.created_at, t.updated_at"""

_UPDATABLE = (
    "automation_id",
    "name",
    "trigger_type",
    "provider",
    "enabled",
    "hidden",
    "webhook_url_path",
    "webhook_route",
    "webhook_secret_sealed",
    "polling_cron",
    "timezone",
    "next_fire_at",
    "poll_token_sealed",
    "config",
    "connection_id",
    "integration_id",
    "last_error",
    "consecutive_errors",
)


def _trigger(row: asyncpg.Record) -> Trigger:
    return msgspec.convert(dict(row), Trigger)


class ConnectionTakenError(Exception):
    """The Nango connection id is already bound to another org's triggers."""


class WebhookTarget(msgspec.Struct, frozen=True, kw_only=True):
    """What the ingress needs to verify a delivery to a trigger's URL."""

    id: uuid.UUID
    provider: str
    secret_sealed: str | None
    config: dict[str, Any]


class EventTarget(msgspec.Struct, frozen=True, kw_only=True):
    """A trigger an event may fire, with its automation's state."""

    id: uuid.UUID
    org_id: uuid.UUID
    provider: str
    enabled: bool
    hidden: bool
    config: dict[str, Any]
    automation_id: uuid.UUID | None
    automation_enabled: bool | None


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome of recording one event: ``duplicate`` when its dedup key was already seen."""

    event_id: uuid.UUID | None
    run_id: uuid.UUID | None
    duplicate: bool
    skip_reason: str | None = None


# --- CRUD -------------------------------------------------------------------------------------


async def create_trigger(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    created_by: uuid.UUID | None,
    fields: dict[str, Any],
) -> Trigger:
    """Insert a trigger; ``fields`` uses column names."""
    names = [n for n in _UPDATABLE if n in fields]
    cols = ", ".join(["org_id", "created_by", *names])
    params = ", ".join(f"${i}" for i in range(1, len(names) + 3))
    row = await conn.fetchrow(
        f"""WITH t AS (INSERT INTO triggers ({cols}) VALUES ({params}) RETURNING *)
            SELECT {_COLUMNS} FROM t""",
        org_id,
        created_by,
        *[fields[n] for n in names],
    )
    assert row is not None
    return _trigger(row)


async def get_trigger(
    conn: asyncpg.Connection, org_id: uuid.UUID, trigger_id: uuid.UUID
) -> Trigger | None:
    """A visible trigger of the org."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM triggers t WHERE t.id = $1 AND t.org_id = $2 AND NOT t.hidden",
        trigger_id,
        org_id,
    )
    return None if row is None else _trigger(row)


async def list_triggers(
    conn: asyncpg.Connection, org_id: uuid.UUID, automation_id: uuid.UUID | None = None
) -> list[Trigger]:
    """The org's visible triggers (optionally those of one automation), newest first."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM triggers t
            WHERE t.org_id = $1 AND NOT t.hidden AND ($2::uuid IS NULL OR t.automation_id = $2)
            ORDER BY t.created_at DESC""",
        org_id,
        automation_id,
    )
    return [_trigger(r) for r in rows]


async def update_trigger(
    conn: asyncpg.Connection, org_id: uuid.UUID, trigger_id: uuid.UUID, fields: dict[str, Any]
) -> Trigger | None:
    """Set the given columns of a visible trigger of the org."""
    names = [n for n in _UPDATABLE if n in fields]
    sets = "".join(f"{n} = ${i}, " for i, n in enumerate(names, start=3))
    row = await conn.fetchrow(
        f"""WITH t AS (UPDATE triggers SET {sets}updated_at = now()
                       WHERE id = $1 AND org_id = $2 AND NOT hidden RETURNING *)
            SELECT {_COLUMNS} FROM t""",
        trigger_id,
        org_id,
        *[fields[n] for n in names],
    )
    return None if row is None else _trigger(row)


async def delete_trigger(
    conn: asyncpg.Connection, org_id: uuid.UUID, trigger_id: uuid.UUID
) -> bool:
    """Delete a visible trigger (its events and their runs go with it)."""
    status: str = await conn.execute(
        "DELETE FROM triggers WHERE id = $1 AND org_id = $2 AND NOT hidden", trigger_id, org_id
    )
    return status.endswith(" 1")


async def bind_connection(
    conn: asyncpg.Connection, org_id: uuid.UUID, connection_id: str | None
) -> None:
    """Check, inside the caller's transaction, that no other org's trigger uses the
    connection id; raises :class:`ConnectionTakenError`. Holds a transaction lock on the
    id so two orgs cannot bind it at once."""
    if connection_id is None:
        return
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('trigger-connection:' || $1, 0))",
        connection_id,
    )
    taken = await conn.fetchval(
        "SELECT 1 FROM triggers WHERE connection_id = $1 AND org_id <> $2 LIMIT 1",
        connection_id,
        org_id,
    )
    if taken:
        raise ConnectionTakenError(connection_id)


async def manual_trigger(
    conn: asyncpg.Connection, org_id: uuid.UUID, automation_id: uuid.UUID
) -> uuid.UUID:
    """The automation's hidden, disabled Run-now trigger, created on first use."""
    async with conn.transaction():
        # Serialize creators of the same automation's manual trigger.
        await conn.execute("SELECT 1 FROM automations WHERE id = $1 FOR UPDATE", automation_id)
        found: uuid.UUID | None = await conn.fetchval(
            """SELECT id FROM triggers WHERE automation_id = $1 AND trigger_type = 'manual'""",
            automation_id,
        )
        if found is not None:
            return found
        created: uuid.UUID = await conn.fetchval(
            """INSERT INTO triggers (org_id, automation_id, name, trigger_type, provider,
                   enabled, hidden, config)
               VALUES ($1, $2, 'Run now', 'manual', 'webhook', false, true, '{"_manual": true}')
               RETURNING id""",
            org_id,
            automation_id,
        )
        return created


# --- ingestion --------------------------------------------------------------------------------


async def webhook_target(
    conn: asyncpg.Connection, route: str, url_path: str
) -> WebhookTarget | None:
    """The trigger addressed by a webhook URL (route segment and path)."""
    row = await conn.fetchrow(
        """SELECT id, provider, webhook_secret_sealed AS secret_sealed, config FROM triggers
           WHERE webhook_url_path = $2 AND webhook_route = $1 AND NOT hidden""",
        route,
        url_path,
    )
    return None if row is None else msgspec.convert(dict(row), WebhookTarget)


_TARGET_SELECT = """SELECT t.id, t.org_id, t.provider, t.enabled, t.hidden, t.config,
    t.automation_id, a.enabled AS automation_enabled
  FROM triggers t LEFT JOIN automations a ON a.id = t.automation_id"""


async def target_by_id(conn: asyncpg.Connection, trigger_id: uuid.UUID) -> EventTarget | None:
    """The trigger an event names, with its automation's state."""
    row = await conn.fetchrow(f"{_TARGET_SELECT} WHERE t.id = $1", trigger_id)
    return None if row is None else msgspec.convert(dict(row), EventTarget)


async def targets_by_connection(
    conn: asyncpg.Connection, connection_id: str, providers: tuple[str, ...]
) -> list[EventTarget]:
    """Enabled, visible triggers of a Nango connection for these providers, in the org
    that owns the connection (the org of its first trigger: see :func:`bind_connection`)."""
    rows = await conn.fetch(
        f"""{_TARGET_SELECT}
            WHERE t.connection_id = $1 AND t.provider = ANY($2::text[])
              AND t.enabled AND NOT t.hidden
              AND t.org_id = (SELECT o.org_id FROM triggers o WHERE o.connection_id = $1
                              ORDER BY o.created_at, o.id LIMIT 1)""",
        connection_id,
        list(providers),
    )
    return [msgspec.convert(dict(r), EventTarget) for r in rows]


async def record_event(
    conn: asyncpg.Connection,
    target: EventTarget,
    ctx: TriggerContext,
    *,
    received_at: datetime,
    raw_payload: Any = None,
    skip_reason: SkipReason | None = None,
    dedup_window_seconds: float | None = None,
) -> Recorded:
    """In one transaction: the trigger event (deduplicated on (trigger, dedup key)), and
    unless skipped, its queued run and ``enqueue_enrich`` outbox row.

    With ``dedup_window_seconds`` an equal key only counts as a duplicate when the earlier
    delivery was received within that window (custom webhooks hashing their body).
    """
    async with conn.transaction():
        if dedup_window_seconds is not None:
            # An older event with this key is out of the window: rename its key aside.
            await conn.execute(
                """UPDATE trigger_events SET dedup_key = dedup_key || '@' || id::text
                   WHERE trigger_id = $1 AND dedup_key = $2
                     AND received_at < $3::timestamptz - make_interval(secs => $4)""",
                target.id,
                ctx.dedup_key,
                received_at,
                dedup_window_seconds,
            )
        event_id: uuid.UUID | None = await conn.fetchval(
            """INSERT INTO trigger_events (trigger_id, org_id, automation_id, external_event_id,
                   provider_event_type, status, skip_reason, raw_payload, parsed_context,
                   dedup_key, received_at, processed_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                       CASE WHEN $6 = 'skipped' THEN now() END)
               ON CONFLICT (trigger_id, dedup_key) DO NOTHING
               RETURNING id""",
            target.id,
            target.org_id,
            target.automation_id,
            ctx.external_id,
            ctx.event_type,
            "skipped" if skip_reason else "processing",
            skip_reason,
            raw_payload,
            msgspec.to_builtins(ctx),
            ctx.dedup_key,
            received_at,
        )
        if event_id is None:
            return Recorded(event_id=None, run_id=None, duplicate=True)
        if skip_reason is not None or target.automation_id is None:
            await _action(conn, event_id, "skip", "skipped", {"reason": skip_reason})
            return Recorded(
                event_id=event_id, run_id=None, duplicate=False, skip_reason=skip_reason
            )
        try:
            async with conn.transaction():
                run_id = await runs.insert_run(
                    conn,
                    org_id=target.org_id,
                    automation_id=target.automation_id,
                    trigger_id=target.id,
                    trigger_event_id=event_id,
                )
        except asyncpg.PostgresError as exc:
            await conn.execute(
                """UPDATE trigger_events SET status = 'skipped', skip_reason = 'run_create_failed',
                       error = $2, processed_at = now() WHERE id = $1""",
                event_id,
                type(exc).__name__,
            )
            await _action(conn, event_id, "create_run", "failed", {"error": type(exc).__name__})
            return Recorded(
                event_id=event_id, run_id=None, duplicate=False, skip_reason="run_create_failed"
            )
        await _action(conn, event_id, "create_run", "completed", {"run_id": str(run_id)})
        return Recorded(event_id=event_id, run_id=run_id, duplicate=False)


async def record_failed_event(
    conn: asyncpg.Connection,
    target: EventTarget,
    *,
    dedup_key: str,
    error: str,
    received_at: datetime,
    raw_payload: Any = None,
) -> bool:
    """Record a delivery that could not be processed (e.g. malformed) on its trigger."""
    inserted: int | None = await conn.fetchval(
        """INSERT INTO trigger_events (trigger_id, org_id, automation_id, status, error,
               raw_payload, dedup_key, received_at, processed_at)
           VALUES ($1, $2, $3, 'failed', left($4, 2000), $5, $6, $7, now())
           ON CONFLICT (trigger_id, dedup_key) DO NOTHING RETURNING 1""",
        target.id,
        target.org_id,
        target.automation_id,
        error,
        raw_payload,
        dedup_key,
        received_at,
    )
    return inserted is not None


async def _action(
    conn: asyncpg.Connection,
    event_id: uuid.UUID,
    action: str,
    status: str,
    detail: dict[str, Any],
) -> None:
    await conn.execute(
        """INSERT INTO trigger_event_actions (trigger_event_id, action, status, detail)
           VALUES ($1, $2, $3, $4)""",
        event_id,
        action,
        status,
        detail,
    )


async def event_run(
    conn: asyncpg.Connection, trigger_id: uuid.UUID, dedup_key: str
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(event id, run id) of the event recorded under a dedup key, if it made a run."""
    row = await conn.fetchrow(
        """SELECT e.id, r.id FROM trigger_events e
           JOIN automation_runs r ON r.trigger_event_id = e.id
           WHERE e.trigger_id = $1 AND e.dedup_key = $2""",
        trigger_id,
        dedup_key,
    )
    return None if row is None else (row[0], row[1])


async def list_events(
    conn: asyncpg.Connection, org_id: uuid.UUID, trigger_id: uuid.UUID, *, limit: int = 100
) -> list[TriggerEvent]:
    """A trigger's recorded events, newest first, with the run each created."""
    rows = await conn.fetch(
        """SELECT e.id, e.trigger_id, e.automation_id, r.id AS run_id, e.status, e.skip_reason,
               e.provider_event_type, e.external_event_id, e.dedup_key, e.error,
               e.parsed_context, e.received_at, e.created_at, e.processed_at
           FROM trigger_events e LEFT JOIN automation_runs r ON r.trigger_event_id = e.id
           WHERE e.trigger_id = $1 AND e.org_id = $2
           ORDER BY e.created_at DESC LIMIT $3""",
        trigger_id,
        org_id,
        limit,
    )
    return [msgspec.convert(dict(r), TriggerEvent) for r in rows]


# --- polling ------------------------------------------------------------------------------------


class DueTrigger(msgspec.Struct, frozen=True, kw_only=True):
    """A polling trigger (cron firing or provider poll) whose slot has come."""

    id: uuid.UUID
    org_id: uuid.UUID
    provider: str
    polling_cron: str
    timezone: str
    next_fire_at: datetime
    polling_cursor: str | None
    poll_token_sealed: str | None
    config: dict[str, Any]


async def due_polling(conn: asyncpg.Connection, *, limit: int = 100) -> list[DueTrigger]:
    """Enabled polling triggers whose ``next_fire_at`` has passed (caller locks them)."""
    rows = await conn.fetch(
        """SELECT id, org_id, provider, polling_cron, timezone, next_fire_at, polling_cursor,
               poll_token_sealed, config
           FROM triggers
           WHERE enabled AND trigger_type = 'polling' AND next_fire_at <= now()
             AND polling_cron IS NOT NULL
           ORDER BY next_fire_at LIMIT $1
           FOR UPDATE SKIP LOCKED""",
        limit,
    )
    return [msgspec.convert(dict(r), DueTrigger) for r in rows]


async def advance(
    conn: asyncpg.Connection, trigger_id: uuid.UUID, expected: datetime, next_fire_at: datetime
) -> bool:
    """Move a polling trigger to its next slot if it is still at ``expected`` (claims the slot)."""
    status: str = await conn.execute(
        """UPDATE triggers SET next_fire_at = $3, last_polled_at = now()
           WHERE id = $1 AND next_fire_at = $2""",
        trigger_id,
        expected,
        next_fire_at,
    )
    return status.endswith(" 1")


async def save_cursor(conn: asyncpg.Connection, trigger_id: uuid.UUID, cursor: str | None) -> None:
    """Persist a poll's cursor once its events are durably enqueued; clears the last error."""
    await conn.execute(
        """UPDATE triggers SET polling_cursor = $2, last_error = NULL, consecutive_errors = 0
           WHERE id = $1""",
        trigger_id,
        cursor,
    )


async def stop_firing(conn: asyncpg.Connection, trigger_id: uuid.UUID, error: str) -> None:
    """Take a polling trigger off the schedule (no next slot) with the reason shown."""
    await conn.execute(
        """UPDATE triggers SET next_fire_at = NULL, last_error = left($2, 2000),
               last_error_at = now(), consecutive_errors = consecutive_errors + 1
           WHERE id = $1""",
        trigger_id,
        error,
    )


async def record_poll_error(
    conn: asyncpg.Connection, trigger_id: uuid.UUID, error: str, *, max_backoff_seconds: float
) -> int:
    """Record a failed poll and back the next slot off: not before ``2^n`` s (n = failures
    in a row, capped at ``max_backoff_seconds``). Returns n."""
    failures: int | None = await conn.fetchval(
        """UPDATE triggers SET last_error = left($2, 2000), last_error_at = now(),
               consecutive_errors = consecutive_errors + 1,
               next_fire_at = GREATEST(next_fire_at, now() + make_interval(
                   secs => least(power(2, consecutive_errors + 1), $3)))
           WHERE id = $1 RETURNING consecutive_errors""",
        trigger_id,
        error,
        max_backoff_seconds,
    )
    return failures or 0
