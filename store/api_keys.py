"""API keys: raw SQL over ``api_keys``. Every query but the hash lookup takes the org id.

A key acts as its creator within its org, with the creator's *current* role: a key whose
creator has left the org stops working.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast

import asyncpg

from schemas.auth import ApiKey, Role

_COLUMNS = "id, name, prefix, created_by, created_at, last_used_at"


@dataclass(frozen=True)
class KeyOwner:
    """Who an authenticated API key acts as."""

    key_id: uuid.UUID
    org_id: uuid.UUID
    user_id: uuid.UUID
    role: Role


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
    )


async def create_key(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID,
    created_by: uuid.UUID,
    name: str,
    prefix: str,
    key_hash: bytes,
) -> ApiKey:
    """Store a new key's hash and metadata."""
    row = await conn.fetchrow(
        f"""INSERT INTO api_keys (org_id, created_by, name, prefix, key_hash)
            VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}""",
        org_id,
        created_by,
        name,
        prefix,
        key_hash,
    )
    return _key(row)


async def list_keys(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[ApiKey]:
    """The org's unrevoked keys, newest first."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM api_keys WHERE org_id = $1 AND revoked_at IS NULL
            ORDER BY created_at DESC, id""",
        org_id,
    )
    return [_key(r) for r in rows]


async def get_key(conn: asyncpg.Connection, org_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
    """One unrevoked key of ``org_id``, or None (also when it belongs to another org)."""
    row = await conn.fetchrow(
        f"""SELECT {_COLUMNS} FROM api_keys
            WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL""",
        org_id,
        key_id,
    )
    return None if row is None else _key(row)


async def revoke_key(conn: asyncpg.Connection, org_id: uuid.UUID, key_id: uuid.UUID) -> bool:
    """Revoke a key of ``org_id``; False if it does not exist there or is already revoked."""
    status: str = await conn.execute(
        """UPDATE api_keys SET revoked_at = now()
           WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL""",
        org_id,
        key_id,
    )
    return status != "UPDATE 0"


async def authenticate(conn: asyncpg.Connection, key_hash: bytes) -> KeyOwner | None:
    """Who the unrevoked key with ``key_hash`` acts as, or None.

    Also stamps ``last_used_at``, at most once a minute per key to spare writes.
    """
    row = await conn.fetchrow(
        """WITH k AS (
               SELECT k.id, k.org_id, k.created_by, m.role
               FROM api_keys k
               JOIN org_members m ON m.org_id = k.org_id AND m.user_id = k.created_by
               WHERE k.key_hash = $1 AND k.revoked_at IS NULL
           ), touched AS (
               UPDATE api_keys SET last_used_at = now()
               WHERE id IN (SELECT id FROM k)
                 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
           )
           SELECT id, org_id, created_by, role FROM k""",
        key_hash,
    )
    if row is None:
        return None
    return KeyOwner(
        key_id=row["id"],
        org_id=row["org_id"],
        user_id=row["created_by"],
        role=cast(Role, row["role"]),
    )
