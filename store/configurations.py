"""Configurations (minimal: what sessions read and the setup tools write), org-scoped."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from store.conn import Conn


class ConfigurationRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A ``configurations`` row."""

    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    service_commands: list[dict[str, Any]]
    active_snapshot_id: str | None
    sandbox_provider: str | None


_CONFIG_COLUMNS = "id, org_id, name, service_commands, active_snapshot_id, sandbox_provider"


async def create_configuration(conn: Conn, org_id: uuid.UUID, name: str) -> ConfigurationRecord:
    """Create a configuration (unique name per org)."""
    row = await conn.fetchrow(
        f"INSERT INTO configurations (org_id, name) VALUES ($1, $2) RETURNING {_CONFIG_COLUMNS}",
        org_id,
        name,
    )
    return msgspec.convert(dict(row), ConfigurationRecord)


async def get_configuration(
    conn: Conn, configuration_id: uuid.UUID, org_id: uuid.UUID
) -> ConfigurationRecord | None:
    """The org's configuration, or None."""
    row = await conn.fetchrow(
        f"SELECT {_CONFIG_COLUMNS} FROM configurations WHERE id = $1 AND org_id = $2",
        configuration_id,
        org_id,
    )
    return None if row is None else msgspec.convert(dict(row), ConfigurationRecord)


async def set_configuration_snapshot(
    conn: Conn, configuration_id: uuid.UUID, org_id: uuid.UUID, snapshot_id: str
) -> None:
    """Sessions of this configuration start from ``snapshot_id`` from now on."""
    await conn.execute(
        """UPDATE configurations SET active_snapshot_id = $3, updated_at = now()
           WHERE id = $1 AND org_id = $2""",
        configuration_id,
        org_id,
        snapshot_id,
    )


async def set_service_commands(
    conn: Conn, configuration_id: uuid.UUID, org_id: uuid.UUID, commands: list[dict[str, Any]]
) -> None:
    """Replace the configuration's service commands."""
    await conn.execute(
        """UPDATE configurations SET service_commands = $3, updated_at = now()
           WHERE id = $1 AND org_id = $2""",
        configuration_id,
        org_id,
        commands,
    )
