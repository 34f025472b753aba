"""Browser sign-in sessions: raw SQL over ``auth_sessions``.

The cookie carries a random token; only its SHA-256 (``token_hash``) is stored, so a
database leak does not leak usable sessions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

_COLUMNS = "id, user_id, active_org_id, refreshed_at, expires_at"


@dataclass(frozen=True)
class AuthSession:
    """One signed-in browser session (its token is never held here)."""

    id: uuid.UUID
    user_id: uuid.UUID
    active_org_id: uuid.UUID | None
    refreshed_at: datetime
    expires_at: datetime


def _session(row: asyncpg.Record) -> AuthSession:
    return AuthSession(
        id=row["id"],
        user_id=row["user_id"],
        active_org_id=row["active_org_id"],
        refreshed_at=row["refreshed_at"],
        expires_at=row["expires_at"],
    )


async def create_session(
    conn: asyncpg.Connection,
    *,
    token_hash: bytes,
    user_id: uuid.UUID,
    active_org_id: uuid.UUID | None,
    ttl: timedelta,
) -> AuthSession:
    """Record a new session expiring ``ttl`` from now."""
    row = await conn.fetchrow(
        f"""INSERT INTO auth_sessions (token_hash, user_id, active_org_id, expires_at)
            VALUES ($1, $2, $3, now() + $4::interval) RETURNING {_COLUMNS}""",
        token_hash,
        user_id,
        active_org_id,
        ttl,
    )
    return _session(row)


async def get_session(conn: asyncpg.Connection, token_hash: bytes) -> AuthSession | None:
    """The unexpired session with ``token_hash``, or None."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM auth_sessions WHERE token_hash = $1 AND expires_at > now()",
        token_hash,
    )
    return None if row is None else _session(row)


async def refresh_session(
    conn: asyncpg.Connection, session_id: uuid.UUID, *, ttl: timedelta, every: timedelta
) -> datetime | None:
    """Push expiry to now + ``ttl`` if the last refresh is at least ``every`` old.

    Returns the new expiry, or None when no refresh was due. The condition sits in the
    UPDATE itself, so concurrent requests refresh once.
    """
    expires: datetime | None = await conn.fetchval(
        """UPDATE auth_sessions SET refreshed_at = now(), expires_at = now() + $2::interval
           WHERE id = $1 AND expires_at > now() AND refreshed_at <= now() - $3::interval
           RETURNING expires_at""",
        session_id,
        ttl,
        every,
    )
    return expires


async def set_active_org(
    conn: asyncpg.Connection, session_id: uuid.UUID, org_id: uuid.UUID | None
) -> None:
    """Make ``org_id`` the session's active org."""
    await conn.execute(
        "UPDATE auth_sessions SET active_org_id = $2 WHERE id = $1", session_id, org_id
    )


async def delete_session(conn: asyncpg.Connection, token_hash: bytes) -> bool:
    """Sign a session out; False if there was none."""
    status: str = await conn.execute("DELETE FROM auth_sessions WHERE token_hash = $1", token_hash)
    return status != "DELETE 0"


async def delete_expired(conn: asyncpg.Connection) -> int:
    """Remove expired sessions; returns how many (for a periodic sweeper)."""
    status: str = await conn.execute("DELETE FROM auth_sessions WHERE expires_at <= now()")
    return int(status.split()[-1])
