"""The asyncpg connection pool: one per process, JSON codecs registered on every connection."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb/json columns go in and out as Python values, encoded by msgspec.
    for typename in ("jsonb", "json"):
        await conn.set_type_codec(
            typename,
            encoder=lambda v: msgspec.json.encode(v).decode(),
            decoder=msgspec.json.decode,
            schema="pg_catalog",
        )


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    max_inactive_connection_lifetime: float = 300.0,
) -> asyncpg.Pool:
    """Open a pool against ``dsn``; raises if Postgres is unreachable.

    Connections idle for ``max_inactive_connection_lifetime`` seconds are closed (down to
    ``min_size``); many small pools (one per session actor) keep it short.
    """
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_inactive_connection_lifetime=max_inactive_connection_lifetime,
        init=_init_connection,
        command_timeout=30,
    )
    return pool


def record_to_dict(record: asyncpg.Record | None) -> dict[str, Any] | None:
    """A row as a plain dict, or None."""
    return None if record is None else dict(record)
