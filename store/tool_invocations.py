"""Tool callbacks a session's agent made (``session_tool_invocations``): begun once per call
id, finished with the response a retry gets again."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from store.conn import Conn


class ToolInvocation(msgspec.Struct, frozen=True, kw_only=True):
    """A recorded tool callback."""

    status: str
    output: Any
    error: str | None
    created_at: datetime
    completed_at: datetime | None


async def begin_tool_invocation(
    conn: Conn,
    *,
    session_id: uuid.UUID,
    org_id: uuid.UUID,
    tool_name: str,
    tool_call_id: str,
    args: dict[str, Any],
) -> ToolInvocation | None:
    """Record a call as executing; None if new, else the existing record (a retry).

    An existing record that is still ``executing`` was left by an actor that died mid-call;
    its attempt counter is bumped and the caller decides whether to run it again.
    """
    inserted = await conn.fetchval(
        """INSERT INTO session_tool_invocations
               (session_id, org_id, tool_name, tool_call_id, status, input)
           VALUES ($1, $2, $3, $4, 'executing', $5)
           ON CONFLICT (session_id, tool_name, tool_call_id) DO NOTHING
           RETURNING id""",
        session_id,
        org_id,
        tool_name,
        tool_call_id,
        args,
    )
    if inserted is not None:
        return None
    row = await conn.fetchrow(
        """UPDATE session_tool_invocations
           SET attempts = attempts + CASE WHEN status = 'executing' THEN 1 ELSE 0 END
           WHERE session_id = $1 AND tool_name = $2 AND tool_call_id = $3
           RETURNING status, output, error, created_at, completed_at""",
        session_id,
        tool_name,
        tool_call_id,
    )
    assert row is not None
    return ToolInvocation(**dict(row))


async def finish_tool_invocation(
    conn: Conn,
    *,
    session_id: uuid.UUID,
    tool_name: str,
    tool_call_id: str,
    output: Any,
    error: str | None,
    duration_ms: int,
) -> None:
    """Record a call's outcome: completed with ``output``, or failed with ``error``."""
    await conn.execute(
        """UPDATE session_tool_invocations
           SET status = CASE WHEN $4::text IS NULL THEN 'completed' ELSE 'failed' END,
               output = $5, error = $4, duration_ms = $6, completed_at = now()
           WHERE session_id = $1 AND tool_name = $2 AND tool_call_id = $3""",
        session_id,
        tool_name,
        tool_call_id,
        error,
        output,
        duration_ms,
    )


async def recorded_tool_response(
    conn: Conn, session_id: uuid.UUID, tool_name: str, tool_call_id: str
) -> Any:
    """The stored response of a finished call, or None (never called, or still running)."""
    return await conn.fetchval(
        """SELECT output FROM session_tool_invocations
           WHERE session_id = $1 AND tool_name = $2 AND tool_call_id = $3
             AND status IN ('completed', 'failed')""",
        session_id,
        tool_name,
        tool_call_id,
    )


async def count_tool_invocations(conn: Conn, session_id: uuid.UUID, tool_name: str) -> int:
    """How many distinct calls of a tool a session made (audit, tests)."""
    value: int = await conn.fetchval(
        "SELECT count(*) FROM session_tool_invocations WHERE session_id = $1 AND tool_name = $2",
        session_id,
        tool_name,
    )
    return value
