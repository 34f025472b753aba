"""SQL for automations and their integration connections. Every query is org-scoped."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec

from schemas.automations import Automation, AutomationConnection

_COLUMNS = """a.id, a.org_id, a.name, a.description, a.enabled, a.agent_instructions, a.model_id,
    a.default_configuration_id, a.allow_agentic_repo_selection, a.enabled_tools,
    a.max_run_seconds, a.notify_slack_channel,
    (a.notify_slack_token_sealed IS NOT NULL) AS slack_configured,
    a.created_by, a.created_at, a.updated_at"""

# Columns a PATCH may set, in the order of UpdateAutomation's fields.
_UPDATABLE = (
    "name",
    "description",
    "enabled",
    "agent_instructions",
    "model_id",
    "default_configuration_id",
    "allow_agentic_repo_selection",
    "enabled_tools",
    "max_run_seconds",
    "notify_slack_channel",
    "notify_slack_token_sealed",
)


def _automation(row: asyncpg.Record) -> Automation:
    return msgspec.convert(dict(row), Automation)


class SlackTarget(msgspec.Struct, frozen=True, kw_only=True):
    """Where an automation's run notifications go; the token is still sealed."""

    channel: str
    token_sealed: str


async def create_automation(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    created_by: uuid.UUID | None,
    fields: dict[str, Any],
) -> Automation:
    """Insert an automation; ``fields`` uses column names (token already sealed)."""
    names = [n for n in _UPDATABLE if n in fields]
    values = [fields[n] for n in names]
    cols = ", ".join(["org_id", "created_by", *names])
    params = ", ".join(f"${i}" for i in range(1, len(names) + 3))
    row = await conn.fetchrow(
        f"""WITH a AS (INSERT INTO automations ({cols}) VALUES ({params}) RETURNING *)
            SELECT {_COLUMNS} FROM a""",
        org_id,
        created_by,
        *values,
    )
    assert row is not None
    return _automation(row)


async def get_automation(
    conn: asyncpg.Connection, org_id: uuid.UUID, automation_id: uuid.UUID
) -> Automation | None:
    """One automation of the org, or None."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM automations a WHERE a.id = $1 AND a.org_id = $2",
        automation_id,
        org_id,
    )
    return None if row is None else _automation(row)


async def list_automations(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[Automation]:
    """The org's automations, newest first."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM automations a WHERE a.org_id = $1 ORDER BY a.created_at DESC",
        org_id,
    )
    return [_automation(r) for r in rows]


async def update_automation(
    conn: asyncpg.Connection, org_id: uuid.UUID, automation_id: uuid.UUID, fields: dict[str, Any]
) -> Automation | None:
    """Set the given columns; None if the automation is not the org's."""
    names = [n for n in _UPDATABLE if n in fields]
    sets = ", ".join(f"{n} = ${i}" for i, n in enumerate(names, start=3))
    assignments = f"{sets}, updated_at = now()" if sets else "updated_at = now()"
    row = await conn.fetchrow(
        f"""WITH a AS (UPDATE automations SET {assignments}
                       WHERE id = $1 AND org_id = $2 RETURNING *)
            SELECT {_COLUMNS} FROM a""",
        automation_id,
        org_id,
        *[fields[n] for n in names],
    )
    return None if row is None else _automation(row)


async def delete_automation(
    conn: asyncpg.Connection, org_id: uuid.UUID, automation_id: uuid.UUID
) -> bool:
    """Delete an automation with its runs, schedules and hidden (Run now, schedule)
    triggers; its visible triggers stay, unbound. False if not the org's."""
    async with conn.transaction():
        status: str = await conn.execute(
            "DELETE FROM automations WHERE id = $1 AND org_id = $2", automation_id, org_id
        )
        if not status.endswith(" 1"):
            return False
        # Hidden triggers were unbound by the delete (SET NULL); they serve nothing now.
        await conn.execute(
            "DELETE FROM triggers WHERE org_id = $1 AND hidden AND automation_id IS NULL",
            org_id,
        )
        return True


async def slack_target(conn: asyncpg.Connection, automation_id: uuid.UUID) -> SlackTarget | None:
    """The automation's Slack channel and sealed bot token, when both are set."""
    row = await conn.fetchrow(
        """SELECT notify_slack_channel, notify_slack_token_sealed FROM automations
           WHERE id = $1 AND notify_slack_channel IS NOT NULL
             AND notify_slack_token_sealed IS NOT NULL""",
        automation_id,
    )
    if row is None:
        return None
    return SlackTarget(channel=row[0], token_sealed=row[1])


async def list_connections(
    conn: asyncpg.Connection, automation_id: uuid.UUID
) -> list[AutomationConnection]:
    """Integrations bound to an automation (caller checked the org)."""
    rows = await conn.fetch(
        """SELECT integration_id, created_at FROM automation_connections
           WHERE automation_id = $1 ORDER BY created_at""",
        automation_id,
    )
    return [msgspec.convert(dict(r), AutomationConnection) for r in rows]


async def add_connection(
    conn: asyncpg.Connection, automation_id: uuid.UUID, integration_id: uuid.UUID
) -> AutomationConnection:
    """Bind an integration (idempotent)."""
    row = await conn.fetchrow(
        """INSERT INTO automation_connections (automation_id, integration_id) VALUES ($1, $2)
           ON CONFLICT (automation_id, integration_id)
           DO UPDATE SET automation_id = EXCLUDED.automation_id
           RETURNING integration_id, created_at""",
        automation_id,
        integration_id,
    )
    assert row is not None
    return msgspec.convert(dict(row), AutomationConnection)


async def remove_connection(
    conn: asyncpg.Connection, automation_id: uuid.UUID, integration_id: uuid.UUID
) -> bool:
    """Unbind an integration; False if it was not bound."""
    status: str = await conn.execute(
        "DELETE FROM automation_connections WHERE automation_id = $1 AND integration_id = $2",
        automation_id,
        integration_id,
    )
    return status.endswith(" 1")
