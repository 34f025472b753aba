"""What the scheduler could not do shows on the trigger (or schedule) and in /metrics,
through the real Serve app and its scheduler actor: a cron that no longer parses takes it
off the schedule with ``last_error`` set (it used to be retried every second, silently),
until the user edits it."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import asyncpg

from tests.api.accounts import Account, call
from tests.api.conftest import AccountFactory
from tests.fixtures.automations import eventually


async def _error_shown(me: Account, url: str) -> dict[str, Any]:
    """The resource at ``url`` once the scheduler has set its ``last_error``."""

    async def surfaced() -> dict[str, Any] | None:
        status, found = await call(me.client, "GET", url)
        assert status == 200
        return found if found["last_error"] else None

    return await eventually(surfaced)


async def test_bad_cron_is_shown_on_the_trigger_and_counted(
    account: AccountFactory, http: aiohttp.ClientSession, db: asyncpg.Pool
) -> None:
    me = await account()
    _, auto = await call(me.client, "POST", "/api/automations", json={"name": "Nightly"})
    status, made = await call(
        me.client,
        "POST",
        "/api/triggers",
        json={
            "provider": "scheduled",
            "trigger_type": "polling",
            "automation_id": auto["id"],
            "polling_cron": "0 3 1 1 *",
        },
    )
    assert status == 201, made
    trigger_id = made["trigger"]["id"]
    assert made["trigger"]["last_error"] is None
    # A cron stored before validation (or one a later parser rejects), due now.
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE triggers SET polling_cron = '61 * * * *', next_fire_at = now() WHERE id = $1",
            uuid.UUID(trigger_id),
        )

    shown = await _error_shown(me, f"/api/triggers/{trigger_id}")
    assert "polling_cron" in shown["last_error"] and shown["last_error_at"] is not None
    assert shown["next_fire_at"] is None  # off the schedule, not retried every second
    async with http.get("/metrics") as resp:
        metrics = await resp.text()
    assert "warren_scheduler_errors_total{" in metrics and 'reason="bad_cron"' in metrics
    status, fixed = await call(
        me.client, "PATCH", f"/api/triggers/{trigger_id}", json={"polling_cron": "0 3 1 1 *"}
    )
    assert status == 200, fixed
    assert fixed["last_error"] is None and fixed["next_fire_at"] is not None


async def test_bad_cron_is_shown_on_the_schedule(
    account: AccountFactory, http: aiohttp.ClientSession, db: asyncpg.Pool
) -> None:
    me = await account()
    _, auto = await call(me.client, "POST", "/api/automations", json={"name": "Yearly"})
    status, made = await call(
        me.client,
        "POST",
        "/api/schedules",
        json={"automation_id": auto["id"], "name": "New year", "cron_expression": "0 3 1 1 *"},
    )
    assert status == 201, made
    schedule_id = made["id"]
    assert made["last_error"] is None and made["last_error_at"] is None
    # A cron stored before validation (or one a later parser rejects), due now.
    async with db.acquire() as conn:
        await conn.execute(
            """UPDATE schedules SET cron_expression = '61 * * * *', next_run_at = now()
               WHERE id = $1""",
            uuid.UUID(schedule_id),
        )

    shown = await _error_shown(me, f"/api/schedules/{schedule_id}")
    assert "61 * * * *" in shown["last_error"] and shown["last_error_at"] is not None
    assert shown["next_run_at"] is None  # off the schedule, not retried every second
    status, listed = await call(me.client, "GET", "/api/schedules")
    assert status == 200
    assert [s["last_error"] for s in listed["schedules"]] == [shown["last_error"]]
    status, fixed = await call(
        me.client, "PATCH", f"/api/schedules/{schedule_id}", json={"cron_expression": "0 3 * * *"}
    )
    assert status == 200, fixed
    assert fixed["last_error"] is None and fixed["last_error_at"] is None
    assert fixed["next_run_at"] is not None
