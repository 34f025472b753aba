"""Sessions: create, read, list, rename, delete, and the status changes of their life.

Raw SQL over ``sessions`` (tool invocations, Idempotency-Key records and configurations have
modules of their own). Every query a user can reach takes the ``org_id`` so another org's rows
are invisible (the API turns "not found" into 404). Queries without an org are for the
session's own actor and for sandbox/service callers that were authenticated per session.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from schemas.sessions import NewSession, SessionRecord
from store.conn import Conn

_COLUMNS = ", ".join(field.name for field in msgspec.structs.fields(SessionRecord))
_LIVE = "deleted_at IS NULL"


def _record(row: asyncpg.Record) -> SessionRecord:
    return msgspec.convert(dict(row), SessionRecord)


# --- sessions --------------------------------------------------------------------------------


async def insert_session(conn: Conn, new: NewSession) -> tuple[SessionRecord, bool]:
    """Insert a session; returns (row, True), or (the existing row, False) when a session
    with the same ``(org_id, idempotency_key)`` exists already."""
    row = await conn.fetchrow(
        f"""INSERT INTO sessions (org_id, created_by, configuration_id, session_type,
                client_type, client_metadata, sandbox_mode, sandbox_provider, initial_prompt,
                title, agent_config, system_prompt, automation_id, trigger_id,
                trigger_event_id, trigger_context, snapshot_id, idempotency_key, repos)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                    $17, $18, $19)
            ON CONFLICT (org_id, idempotency_key) DO NOTHING
            RETURNING {_COLUMNS}""",
        new.org_id,
        new.created_by,
        new.configuration_id,
        new.session_type,
        new.client_type,
        new.client_metadata,
        new.sandbox_mode,
        new.sandbox_provider,
        new.initial_prompt,
        new.title,
        new.agent_config,
        new.system_prompt,
        new.automation_id,
        new.trigger_id,
        new.trigger_event_id,
        new.trigger_context,
        new.snapshot_id,
        new.idempotency_key,
        new.repos,
    )
    if row is not None:
        return _record(row), True
    existing = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM sessions WHERE org_id = $1 AND idempotency_key = $2",
        new.org_id,
        new.idempotency_key,
    )
    assert existing is not None  # the conflict row cannot vanish: sessions are soft-deleted
    return _record(existing), False


async def get_session(
    conn: Conn, session_id: uuid.UUID, *, org_id: uuid.UUID | None = None
) -> SessionRecord | None:
    """The live (not deleted) session, scoped to ``org_id`` when given."""
    if org_id is None:
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM sessions WHERE id = $1 AND {_LIVE}", session_id
        )
    else:
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM sessions WHERE id = $1 AND org_id = $2 AND {_LIVE}",
            session_id,
            org_id,
        )
    return None if row is None else _record(row)


def _encode_cursor(created_at: datetime, session_id: uuid.UUID) -> str:
    raw = msgspec.json.encode([created_at.isoformat(), str(session_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) position a list cursor names; ValueError if malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, sid = msgspec.json.decode(raw, type=tuple[str, str])
        return datetime.fromisoformat(created), uuid.UUID(sid)
    except (ValueError, msgspec.DecodeError) as exc:
        raise ValueError("malformed cursor") from exc


async def list_sessions(
    conn: Conn,
    org_id: uuid.UUID,
    *,
    status: str | None = None,
    client_type: str | None = None,
    created_by: uuid.UUID | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[SessionRecord], str | None]:
    """An org's sessions, newest first, with a keyset cursor for the next page."""
    where = ["org_id = $1", _LIVE]
    args: list[Any] = [org_id]
    for column, value in (
        ("status", status),
        ("client_type", client_type),
        ("created_by", created_by),
    ):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    if cursor is not None:
        created_at, after_id = decode_cursor(cursor)
        args.extend([created_at, after_id])
        where.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM sessions WHERE {" AND ".join(where)}
            ORDER BY created_at DESC, id DESC LIMIT ${len(args)}""",
        *args,
    )
    records = [_record(r) for r in rows[:limit]]
    more = len(rows) > limit
    next_cursor = _encode_cursor(records[-1].created_at, records[-1].id) if more else None
    return records, next_cursor


async def rename_session(
    conn: Conn, session_id: uuid.UUID, title: str, *, org_id: uuid.UUID | None = None
) -> SessionRecord | None:
    """Set the title; None if there is no such live session (in ``org_id``)."""
    row = await conn.fetchrow(
        f"""UPDATE sessions SET title = $2, updated_at = now()
            WHERE id = $1 AND ($3::uuid IS NULL OR org_id = $3) AND {_LIVE}
            RETURNING {_COLUMNS}""",
        session_id,
        title,
        org_id,
    )
    return None if row is None else _record(row)


async def soft_delete(conn: Conn, session_id: uuid.UUID, org_id: uuid.UUID) -> bool:
    """Mark the session deleted (and stopped if it was not over); False if not found."""
    status = await conn.execute(
        f"""UPDATE sessions
            SET deleted_at = now(), updated_at = now(),
                status = CASE WHEN status IN ('stopped', 'failed') THEN status ELSE 'stopped' END,
                stop_reason = CASE WHEN status IN ('stopped', 'failed') THEN stop_reason
                                   ELSE 'manual' END,
                ended_at = COALESCE(ended_at, now())
            WHERE id = $1 AND org_id = $2 AND {_LIVE}""",
        session_id,
        org_id,
    )
    return bool(status.endswith(" 1"))


async def mark_starting(conn: Conn, session_id: uuid.UUID) -> None:
    """The runtime is being prepared (first client, prompt or eager start)."""
    await conn.execute(
        """UPDATE sessions SET status = 'starting', updated_at = now()
           WHERE id = $1 AND status IN ('pending', 'paused', 'failed', 'starting')""",
        session_id,
    )


async def mark_running(
    conn: Conn,
    session_id: uuid.UUID,
    *,
    sandbox_id: str,
    provider: str,
    opencode_url: str,
    sandbox_agent_url: str,
    preview_url: str | None,
    expires_at: datetime,
) -> None:
    """The sandbox is up: record it and its URLs; clears pause state."""
    await conn.execute(
        """UPDATE sessions
           SET status = 'running', sandbox_id = $2, sandbox_provider = $3, opencode_url = $4,
               sandbox_agent_url = $5, preview_url = $6, sandbox_expires_at = $7,
               pause_reason = NULL, paused_at = NULL, stop_reason = NULL,
               started_at = COALESCE(started_at, now()), last_activity_at = now(),
               updated_at = now()
           WHERE id = $1 AND status NOT IN ('stopped')""",
        session_id,
        sandbox_id,
        provider,
        opencode_url,
        sandbox_agent_url,
        preview_url,
        expires_at,
    )


async def set_agent_session(conn: Conn, session_id: uuid.UUID, agent_session_id: str) -> None:
    """Remember the OpenCode session id (reused while the sandbox lives)."""
    await conn.execute(
        "UPDATE sessions SET coding_agent_session_id = $2, updated_at = now() WHERE id = $1",
        session_id,
        agent_session_id,
    )


async def set_title(conn: Conn, session_id: uuid.UUID, title: str) -> None:
    """Store a title the agent produced."""
    await conn.execute(
        "UPDATE sessions SET title = $2, updated_at = now() WHERE id = $1", session_id, title
    )


async def mark_failed(conn: Conn, session_id: uuid.UUID) -> None:
    """Starting the runtime failed; a later connect retries."""
    await conn.execute(
        """UPDATE sessions SET status = 'failed', updated_at = now()
           WHERE id = $1 AND status IN ('pending', 'starting', 'running')""",
        session_id,
    )


async def mark_stopped(
    conn: Conn,
    session_id: uuid.UUID,
    reason: str,
    *,
    outcome: str | None = None,
    summary: str | None = None,
) -> bool:
    """Stop the session for good (sandbox gone); False if it was stopped already."""
    status = await conn.execute(
        """UPDATE sessions
           SET status = 'stopped', stop_reason = $2, outcome = COALESCE($3, outcome),
               summary = COALESCE($4, summary), sandbox_id = NULL, opencode_url = NULL,
               sandbox_agent_url = NULL, ended_at = COALESCE(ended_at, now()), updated_at = now()
           WHERE id = $1 AND status <> 'stopped'""",
        session_id,
        reason,
        outcome,
        summary,
    )
    return bool(status.endswith(" 1"))


async def clear_sandbox(conn: Conn, session_id: uuid.UUID, sandbox_id: str) -> None:
    """Forget a sandbox that is gone (compare-and-set on its id)."""
    await conn.execute(
        """UPDATE sessions SET sandbox_id = NULL, opencode_url = NULL, sandbox_agent_url = NULL,
               updated_at = now()
           WHERE id = $1 AND sandbox_id = $2""",
        session_id,
        sandbox_id,
    )


async def set_snapshot(conn: Conn, session_id: uuid.UUID, snapshot_id: str) -> None:
    """The session resumes from this snapshot from now on."""
    await conn.execute(
        "UPDATE sessions SET snapshot_id = $2, updated_at = now() WHERE id = $1",
        session_id,
        snapshot_id,
    )


async def add_pr_url(conn: Conn, session_id: uuid.UUID, url: str) -> None:
    """Remember a pull request the session opened (each URL once)."""
    await conn.execute(
        """UPDATE sessions SET pr_urls = array_append(pr_urls, $2), updated_at = now()
           WHERE id = $1 AND NOT ($2 = ANY (pr_urls))""",
        session_id,
        url,
    )


async def record_completion(
    conn: Conn, session_id: uuid.UUID, *, completion_id: str, outcome: str, summary: str
) -> None:
    """Store an automation run's completion on its session."""
    await conn.execute(
        """UPDATE sessions SET completion_id = $2, outcome = $3, summary = $4, updated_at = now()
           WHERE id = $1""",
        session_id,
        completion_id,
        outcome,
        summary,
    )


async def touch_activity(conn: Conn, session_id: uuid.UUID) -> None:
    """Record activity (heartbeat, prompt) for the idle logic."""
    await conn.execute("UPDATE sessions SET last_activity_at = now() WHERE id = $1", session_id)


async def claim_actor_epoch(conn: Conn, session_id: uuid.UUID) -> int | None:
    """Claim the next actor epoch of the session (a new actor incarnation); None if gone."""
    value: int | None = await conn.fetchval(
        "UPDATE sessions SET actor_epoch = actor_epoch + 1 WHERE id = $1 RETURNING actor_epoch",
        session_id,
    )
    return value


async def actor_epoch(conn: Conn, session_id: uuid.UUID) -> int | None:
    """The epoch of the session's live actor incarnation; None if the session is gone."""
    value: int | None = await conn.fetchval(
        "SELECT actor_epoch FROM sessions WHERE id = $1", session_id
    )
    return value


async def claim_initial_prompt(conn: Conn, session_id: uuid.UUID) -> str | None:
    """The initial prompt if it was never sent, marking it sent; else None (send once)."""
    value: str | None = await conn.fetchval(
        """UPDATE sessions SET initial_prompt_sent_at = now()
           WHERE id = $1 AND initial_prompt IS NOT NULL AND initial_prompt_sent_at IS NULL
           RETURNING initial_prompt""",
        session_id,
    )
    return value


async def release_initial_prompt(conn: Conn, session_id: uuid.UUID) -> None:
    """Sending the initial prompt failed: let the next attempt send it."""
    await conn.execute(
        "UPDATE sessions SET initial_prompt_sent_at = NULL WHERE id = $1", session_id
    )


# --- pause and resume -------------------------------------------------------------------


async def mark_paused(
    conn: Conn, session_id: uuid.UUID, *, sandbox_id: str, snapshot_id: str, reason: str
) -> bool:
    """The sandbox was snapshotted and stopped: paused, resumable from ``snapshot_id``.

    Compare-and-set on ``sandbox_id``: False (nothing written) if the row has moved on
    to another sandbox or was stopped meanwhile.
    """
    status = await conn.execute(
        """UPDATE sessions
           SET status = 'paused', pause_reason = $4, paused_at = now(), snapshot_id = $3,
               sandbox_id = NULL, opencode_url = NULL, sandbox_agent_url = NULL, preview_url = NULL,
               sandbox_expires_at = NULL, updated_at = now()
           WHERE id = $1 AND sandbox_id = $2 AND status <> 'stopped'""",
        session_id,
        sandbox_id,
        snapshot_id,
        reason,
    )
    return bool(status.endswith(" 1"))


# --- migration ------------------------------------------------------------------------------


async def move_sandbox(
    conn: Conn,
    session_id: uuid.UUID,
    *,
    old_sandbox_id: str,
    sandbox_id: str,
    opencode_url: str,
    sandbox_agent_url: str,
    preview_url: str | None,
    expires_at: datetime,
    snapshot_id: str,
) -> bool:
    """The session migrated from ``old_sandbox_id`` to ``sandbox_id`` (booted from
    ``snapshot_id``, which it resumes from should the new sandbox be lost).

    Compare-and-set on the old sandbox id: False (nothing written) if the row moved on to
    another sandbox, or was paused or stopped meanwhile.
    """
    status = await conn.execute(
        """UPDATE sessions
           SET sandbox_id = $3, opencode_url = $4, sandbox_agent_url = $5, preview_url = $6,
               sandbox_expires_at = $7, snapshot_id = $8, updated_at = now()
           WHERE id = $1 AND sandbox_id = $2 AND status = 'running'""",
        session_id,
        old_sandbox_id,
        sandbox_id,
        opencode_url,
        sandbox_agent_url,
        preview_url,
        expires_at,
        snapshot_id,
    )
    return bool(status.endswith(" 1"))
