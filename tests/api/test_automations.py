"""Automations, triggers and schedules over HTTP: CRUD, validation, write-only secrets."""

from __future__ import annotations

import re

from tests.api.accounts import assert_error, call
from tests.api.conftest import AccountFactory


async def test_automation_crud_and_write_only_slack_token(account: AccountFactory) -> None:
    me = await account()
    status, made = await call(
        me.client,
        "POST",
        "/api/automations",
        json={
            "name": "Triage",
            "agent_instructions": "Fix bugs",
            "notify_slack_channel": "C0RUNS",
            "notify_slack_token": "xoxb-secret-value",
        },
    )
    assert status == 201, made
    assert made["slack_configured"] is True and "xoxb" not in str(made)
    aid = made["id"]
    status, listed = await call(me.client, "GET", "/api/automations")
    assert status == 200 and [a["id"] for a in listed["automations"]] == [aid]
    status, patched = await call(
        me.client,
        "PATCH",
        f"/api/automations/{aid}",
        json={"name": "Triage 2", "notify_slack_token": None},
    )
    assert status == 200 and patched["name"] == "Triage 2" and not patched["slack_configured"]
    assert patched["agent_instructions"] == "Fix bugs"
    status, off = await call(me.client, "POST", f"/api/automations/{aid}/disable")
    assert status == 200 and off["enabled"] is False
    status, on = await call(me.client, "POST", f"/api/automations/{aid}/enable")
    assert status == 200 and on["enabled"] is True
    status, err = await call(
        me.client,
        "PATCH",
        f"/api/automations/{aid}",
        json={"default_configuration_id": "6f0d2c55-6c1e-4f9e-9a4e-2b7f3f1e8a10"},
    )
    assert status == 400, err
    assert_error(err, "invalid", "default_configuration_id")
    status, err = await call(me.client, "POST", "/api/automations", json={"name": ""})
    assert status == 400, err
    status, _ = await call(me.client, "DELETE", f"/api/automations/{aid}")
    assert status == 204
    status, err = await call(me.client, "GET", f"/api/automations/{aid}")
    assert status == 404
    assert_error(err, "not_found")


async def test_webhook_trigger_secret_is_shown_once(account: AccountFactory) -> None:
    me = await account()
    _, auto = await call(me.client, "POST", "/api/automations", json={"name": "A"})
    status, created = await call(
        me.client,
        "POST",
        "/api/triggers",
        json={
            "provider": "github",
            "automation_id": auto["id"],
            "config": {"event_types": ["issues"], "labels": ["bug"]},
        },
    )
    assert status == 201, created
    secret, trigger = created["webhook_secret"], created["trigger"]
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    assert re.fullmatch(r"/webhooks/github/t_[0-9a-f]{12}", trigger["webhook_path"])
    status, fetched = await call(me.client, "GET", f"/api/triggers/{trigger['id']}")
    assert status == 200 and secret not in str(fetched) and "webhook_secret" not in fetched
    status, listed = await call(me.client, "GET", f"/api/automations/{auto['id']}/triggers")
    assert [t["id"] for t in listed["triggers"]] == [trigger["id"]]
    # Unbind, then bind again.
    status, _ = await call(
        me.client, "DELETE", f"/api/automations/{auto['id']}/triggers/{trigger['id']}"
    )
    assert status == 204
    _, listed = await call(me.client, "GET", f"/api/automations/{auto['id']}/triggers")
    assert listed["triggers"] == []
    status, bound = await call(
        me.client,
        "POST",
        f"/api/automations/{auto['id']}/triggers",
        json={"trigger_id": trigger["id"]},
    )
    assert status == 200 and bound["automation_id"] == auto["id"]
    status, _ = await call(
        me.client, "PATCH", f"/api/triggers/{trigger['id']}", json={"enabled": False}
    )
    assert status == 200


async def test_trigger_validation(account: AccountFactory) -> None:
    me = await account()
    cases = [
        ({"provider": "github", "config": {"event_types": ["nope"]}}, "config"),
        ({"provider": "gmail"}, "provider"),
        ({"provider": "linear", "trigger_type": "polling"}, "polling_cron"),
        (
            {"provider": "linear", "trigger_type": "polling", "polling_cron": "*/5 * * * *"},
            "poll_access_token",
        ),
        (
            {"provider": "scheduled", "trigger_type": "polling", "polling_cron": "61 * * * *"},
            "polling_cron",
        ),
        (
            {"provider": "github", "automation_id": "6f0d2c55-6c1e-4f9e-9a4e-2b7f3f1e8a10"},
            "automation_id",
        ),
    ]
    for body, field in cases:
        status, err = await call(me.client, "POST", "/api/triggers", json=body)
        assert status == 400, (body, err)
        assert_error(err, "invalid", field)
    status, made = await call(
        me.client,
        "POST",
        "/api/triggers",
        json={
            "provider": "linear",
            "trigger_type": "polling",
            "polling_cron": "*/5 * * * *",
            "timezone": "America/New_York",
            "poll_access_token": "lin_oauth_secret",
        },
    )
    assert status == 201, made
    assert made["webhook_secret"] is None and made["trigger"]["poll_token_configured"]
    assert made["trigger"]["next_fire_at"] is not None and "lin_oauth" not in str(made)


async def test_connections(account: AccountFactory) -> None:
    me = await account()
    _, auto = await call(me.client, "POST", "/api/automations", json={"name": "A"})
    integration = "0b9f4a52-97a4-4f3b-8d9c-0e1c2d3b4a59"
    path = f"/api/automations/{auto['id']}/connections"
    assert (await call(me.client, "POST", path, json={"integration_id": integration}))[0] == 201
    assert (await call(me.client, "POST", path, json={"integration_id": integration}))[0] == 201
    _, listed = await call(me.client, "GET", path)
    assert [c["integration_id"] for c in listed["connections"]] == [integration]
    assert (await call(me.client, "DELETE", f"{path}/{integration}"))[0] == 204
    assert (await call(me.client, "DELETE", f"{path}/{integration}"))[0] == 404


async def test_schedule_crud_with_time_zone(account: AccountFactory) -> None:
    me = await account()
    _, auto = await call(me.client, "POST", "/api/automations", json={"name": "Nightly"})
    status, made = await call(
        me.client,
        "POST",
        "/api/schedules",
        json={
            "automation_id": auto["id"],
            "cron_expression": "0 9 * * 1-5",
            "timezone": "Europe/Paris",
            "name": "weekday mornings",
        },
    )
    assert status == 201, made
    # 09:00 in Paris is 07:00 or 08:00 UTC depending on DST.
    assert made["next_run_at"][11:16] in ("07:00", "08:00"), made
    status, six = await call(
        me.client,
        "PATCH",
        f"/api/schedules/{made['id']}",
        json={"cron_expression": "30 0 12 * * *", "timezone": "UTC"},
    )
    assert status == 200 and six["next_run_at"][11:19] == "12:00:30", six
    for body, field in [
        ({"cron_expression": "every day"}, "cron_expression"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
    ]:
        status, err = await call(me.client, "PATCH", f"/api/schedules/{made['id']}", json=body)
        assert status == 400, err
        assert_error(err, "invalid", field)
    _, listed = await call(me.client, "GET", f"/api/schedules?automation_id={auto['id']}")
    assert [s["id"] for s in listed["schedules"]] == [made["id"]]
    # The schedule's own trigger is internal: never listed.
    _, triggers = await call(me.client, "GET", "/api/triggers")
    assert triggers["triggers"] == []
    assert (await call(me.client, "DELETE", f"/api/schedules/{made['id']}"))[0] == 204
    assert (await call(me.client, "GET", f"/api/schedules/{made['id']}"))[0] == 404
