"""Automation SQL: org-scoped CRUD, the Slack target, and cleanup on delete."""

from __future__ import annotations

import asyncpg

from store import automations, schedules, triggers
from tests.fixtures.automations import iso_pool, iso_settings, make_org  # noqa: F401


async def test_crud_is_org_scoped(iso_pool: asyncpg.Pool) -> None:
    org, other = await make_org(iso_pool), await make_org(iso_pool, "Other")
    async with iso_pool.acquire() as conn:
        made = await automations.create_automation(
            conn, org.id, org.owner_id, {"name": "A", "enabled_tools": ["verify"]}
        )
        assert made.enabled_tools == ("verify",) and not made.slack_configured
        assert await automations.get_automation(conn, other.id, made.id) is None
        assert await automations.update_automation(conn, other.id, made.id, {"name": "x"}) is None
        assert not await automations.delete_automation(conn, other.id, made.id)
        updated = await automations.update_automation(
            conn,
            org.id,
            made.id,
            {"notify_slack_channel": "C1", "notify_slack_token_sealed": "v1.sealed"},
        )
        assert updated is not None and updated.slack_configured
        target = await automations.slack_target(conn, made.id)
        assert target is not None and (target.channel, target.token_sealed) == ("C1", "v1.sealed")
        assert [a.id for a in await automations.list_automations(conn, org.id)] == [made.id]
        assert await automations.list_automations(conn, other.id) == []


async def test_delete_keeps_visible_triggers_and_drops_hidden_ones(iso_pool: asyncpg.Pool) -> None:
    org = await make_org(iso_pool)
    async with iso_pool.acquire() as conn:
        auto = await automations.create_automation(conn, org.id, org.owner_id, {"name": "A"})
        visible = await triggers.create_trigger(
            conn,
            org.id,
            org.owner_id,
            {
                "automation_id": auto.id,
                "trigger_type": "webhook",
                "provider": "github",
                "webhook_url_path": f"t_{org.id.hex[:12]}",
            },
        )
        manual = await triggers.manual_trigger(conn, org.id, auto.id)
        schedule = await schedules.create_schedule(
            conn, org.id, org.owner_id, auto.id, {"cron_expression": "0 0 1 1 *"}
        )
        assert await automations.delete_automation(conn, org.id, auto.id)
        kept = await triggers.get_trigger(conn, org.id, visible.id)
        hidden = await conn.fetchval(
            "SELECT count(*) FROM triggers WHERE id = $1 OR automation_id IS NULL AND hidden"
            " AND org_id = $2",
            manual,
            org.id,
        )
        assert await schedules.get_schedule(conn, org.id, schedule.id) is None
    assert kept is not None and kept.automation_id is None
    assert hidden == 0
