"""Public shares of sessions (``session_shares``).

A share id is a random capability (192 bits, URL-safe): whoever holds the link may read
the session's public page. A session has at most one active share; revoking it sets
``revoked_at`` and the id never works again (a new share gets a new id).
"""

from __future__ import annotations

import re
import secrets
import uuid

import asyncpg
import msgspec

from schemas.shares import ShareRecord
from store.conn import Conn

SHARE_ID_BYTES = 24
_SHARE_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")
_COLUMNS = "id, session_id, org_id, created_by, created_at, revoked_at"


def new_share_id() -> str:
    """A fresh random share id (32 URL-safe characters)."""
    return secrets.token_urlsafe(SHARE_ID_BYTES)


def valid_share_id(value: str) -> bool:
    """True if ``value`` has the form of a share id (checked before any query)."""
    return bool(_SHARE_ID.match(value))


def _record(row: asyncpg.Record) -> ShareRecord:
    return msgspec.convert(dict(row), ShareRecord)


async def create_share(
    conn: Conn, session_id: uuid.UUID, org_id: uuid.UUID, created_by: uuid.UUID | None
) -> tuple[ShareRecord, bool]:
    """Share the session: (the new share, True), or (its active share, False) if it has one."""
    while True:
        row = await conn.fetchrow(
            f"""INSERT INTO session_shares (id, session_id, org_id, created_by)
                VALUES ($1, $2, $3, $4)
                ON CONFLICT (session_id) WHERE revoked_at IS NULL DO NOTHING
                RETURNING {_COLUMNS}""",
            new_share_id(),
            session_id,
            org_id,
            created_by,
        )
        if row is not None:
            return _record(row), True
        existing = await active_share(conn, session_id, org_id)
        if existing is not None:
            return existing, False
        # The active share was revoked between the two statements: try again.


async def active_share(conn: Conn, session_id: uuid.UUID, org_id: uuid.UUID) -> ShareRecord | None:
    """The session's active share in ``org_id``, if any."""
    row = await conn.fetchrow(
        f"""SELECT {_COLUMNS} FROM session_shares
            WHERE session_id = $1 AND org_id = $2 AND revoked_at IS NULL""",
        session_id,
        org_id,
    )
    return None if row is None else _record(row)


async def revoke_share(
    conn: Conn, session_id: uuid.UUID, org_id: uuid.UUID, revoked_by: uuid.UUID | None
) -> bool:
    """Revoke the session's active share; False if it had none."""
    status = await conn.execute(
        """UPDATE session_shares SET revoked_at = now(), revoked_by = $3
           WHERE session_id = $1 AND org_id = $2 AND revoked_at IS NULL""",
        session_id,
        org_id,
        revoked_by,
    )
    return bool(status.endswith(" 1"))


async def get_active_share(conn: Conn, share_id: str) -> ShareRecord | None:
    """The share named ``share_id`` unless it is unknown or revoked."""
    if not valid_share_id(share_id):
        return None
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM session_shares WHERE id = $1 AND revoked_at IS NULL", share_id
    )
    return None if row is None else _record(row)
