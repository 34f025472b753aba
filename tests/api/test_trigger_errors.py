"""What the scheduler could not do shows on the trigger and in /metrics, through the real
Serve app and its scheduler actor: a cron that no longer parses takes the trigger off the
schedule with ``last_error`` set (it used to be retried every second, silently), until the
user edits it."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import asyncpg

from tests.api.accounts import call
from tests.api.conftest import AccountFactory
from tests.fixtures.automations import eventually


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

    async def surfaced() -> dict[str, Any] | None:
        status, found = await call(me.client, "GET", f"/api/triggers/{trigger_id}")
        assert status == 200
        return found if found["last_error"] else None

    shown = await eventually(surfaced)
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
