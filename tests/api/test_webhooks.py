"""Webhook ingestion through the real Serve app and background pools: a signed GitHub
delivery becomes a trigger event, a run and outbox rows; retries are deduplicated; bad
signatures, oversize and malformed bodies are refused and store nothing."""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

import aiohttp
import asyncpg

from core.settings import Settings
from tests.api.accounts import Account, assert_error, call
from tests.api.conftest import AccountFactory
from tests.fakes.signing import (
    SignedDelivery,
    linear_payload,
    sign_custom,
    sign_github,
    sign_linear,
    sign_nango,
    sign_sentry,
)
from tests.fixtures.automations import eventually, trigger_pool_caught_up
from tests.integrations.helpers import payload

ISSUE = {
    "action": "opened",
    "issue": {
        "id": 4242,
        "number": 42,
        "title": "Checkout crashes",
        "body": "Stack trace...",
        "html_url": "https://github.com/acme/shop/issues/42",
        "labels": [{"name": "bug"}],
    },
    "repository": {"full_name": "acme/shop", "html_url": "https://github.com/acme/shop"},
    "sender": {"login": "octocat"},
}


async def _create(me: Account, provider: str = "github", **fields: Any) -> tuple[int, Any]:
    """Create a trigger bound to a new automation: (status, answer)."""
    _, auto = await call(me.client, "POST", "/api/automations", json={"name": "Triage"})
    return await call(
        me.client,
        "POST",
        "/api/triggers",
        json={"provider": provider, "automation_id": auto["id"], **fields},
    )


async def _trigger(me: Account, provider: str = "github", **fields: Any) -> tuple[str, str, str]:
    """(trigger id, webhook path, secret) of a new trigger bound to a new automation."""
    status, made = await _create(me, provider, **fields)
    assert status == 201, made
    return made["trigger"]["id"], made["trigger"]["webhook_path"], made["webhook_secret"]


async def _post(
    http: aiohttp.ClientSession, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, Any]:
    async with http.post(path, data=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def _rows(db: asyncpg.Pool, trigger_id: str) -> list[asyncpg.Record]:
    async with db.acquire() as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            """SELECT e.id, e.status, e.dedup_key, e.raw_payload, r.id AS run_id,
                      array(SELECT o.kind FROM outbox o WHERE o.run_id = r.id ORDER BY o.id)
                        AS outbox
               FROM trigger_events e LEFT JOIN automation_runs r ON r.trigger_event_id = e.id
               WHERE e.trigger_id = $1""",
            uuid.UUID(trigger_id),
        )
    return rows


PULL_REQUEST: dict[str, Any] = {
    "action": "synchronize",
    "number": 7,
    "before": "6dcb09b5b57875f334f61aebed695e2e4193db5e",
    "after": "c0ffee5b57875f334f61aebed695e2e4193db5e",
    "pull_request": {
        "id": 1712345678,
        "number": 7,
        "title": "Fix checkout",
        "body": "Closes #42",
        "html_url": "https://github.com/acme/shop/pull/7",
        "state": "open",
        "draft": False,
        "merged": False,
        "labels": [],
        "base": {"ref": "main", "sha": "9049f1265b7d61be4a8904a9a27120d2064dab3b"},
        "head": {"ref": "fix-checkout", "sha": "c0ffee5b57875f334f61aebed695e2e4193db5e"},
    },
    "repository": {"full_name": "acme/shop", "html_url": "https://github.com/acme/shop"},
    "sender": {"login": "octocat"},
}


def _synchronize(head_sha: str, labels: tuple[str, ...] = ()) -> dict[str, Any]:
    """A ``pull_request.synchronize`` delivery of PR #7 after a push of ``head_sha``."""
    body = copy.deepcopy(PULL_REQUEST)
    body["after"] = head_sha
    body["pull_request"]["head"]["sha"] = head_sha
    body["pull_request"]["labels"] = [{"name": n} for n in labels]
    return body


async def test_signed_github_delivery_becomes_one_run(
    account: AccountFactory, http: aiohttp.ClientSession, db: asyncpg.Pool, settings: Settings
) -> None:
    me = await account()
    trigger_id, path, secret = await _trigger(me)
    signed = sign_github(ISSUE, secret, event="issues")
    status, body = await _post(http, path, signed.body, signed.headers)
    assert status == 202 and body == {"status": "accepted", "events": 1}
    rows = await eventually(lambda: _rows(db, trigger_id))
    # GitHub retries the delivery (same body and headers): accepted, nothing new.
    status, _ = await _post(http, path, signed.body, signed.headers)
    assert status == 202
    # A redelivery with the same X-GitHub-Delivery in a different body (as after
    # JetStream's duplicate window): another message, the same dedup key.
    delivery = signed.headers["X-GitHub-Delivery"]
    resent = sign_github(
        {**ISSUE, "installation": {"id": 1}}, secret, event="issues", delivery=delivery
    )
    assert (await _post(http, path, resent.body, resent.headers))[0] == 202
    await trigger_pool_caught_up(settings, "github")
    rows = await _rows(db, trigger_id)
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["dedup_key"] == f"github:{delivery}" and row["run_id"] is not None
    assert row["raw_payload"]["issue"]["title"] == "Checkout crashes"
    assert row["outbox"][0] == "enqueue_enrich"
    status, run = await call(me.client, "GET", f"/api/runs/{row['run_id']}")
    assert status == 200 and run["trigger_event_id"] == str(row["id"])
    status, events = await call(me.client, "GET", f"/api/triggers/{trigger_id}/events")
    assert [e["run_id"] for e in events["events"]] == [str(row["run_id"])]


async def test_every_delivery_of_one_item_is_its_own_event(
    account: AccountFactory, http: aiohttp.ClientSession, db: asyncpg.Pool, settings: Settings
) -> None:
    """Two pushes to one PR: two ``synchronize`` deliveries, two events and two runs (the
    item+action key stored the second as a duplicate). A delivery skipped by a filter
    does not use up the key of a later matching one."""
    me = await account()
    trigger_id, path, secret = await _trigger(me, config={"labels": ["agent"]})
    unlabelled = sign_github(_synchronize("a" * 40), secret, event="pull_request")
    labelled = sign_github(_synchronize("b" * 40, ("agent",)), secret, event="pull_request")
    labelled_again = sign_github(_synchronize("c" * 40, ("agent",)), secret, event="pull_request")
    for delivery in (unlabelled, labelled, labelled_again):
        status, body = await _post(http, path, delivery.body, delivery.headers)
        assert status == 202 and body == {"status": "accepted", "events": 1}
    rows = await eventually(lambda: _at_least(db, trigger_id, 3))
    by_key = {r["dedup_key"]: r for r in rows}
    assert set(by_key) == {
        f"github:{d.headers['X-GitHub-Delivery']}" for d in (unlabelled, labelled, labelled_again)
    }
    assert by_key[f"github:{unlabelled.headers['X-GitHub-Delivery']}"]["run_id"] is None
    runs = [r for r in rows if r["run_id"] is not None]
    assert len(runs) == 2


async def _at_least(db: asyncpg.Pool, trigger_id: str, n: int) -> list[asyncpg.Record]:
    rows = await _rows(db, trigger_id)
    return rows if len(rows) >= n else []


async def test_bad_signature_is_401_and_stores_nothing(
    account: AccountFactory, http: aiohttp.ClientSession, db: asyncpg.Pool, settings: Settings
) -> None:
    me = await account()
    trigger_id, path, secret = await _trigger(me)
    forged = sign_github(ISSUE, "0" * 64, event="issues")
    status, err = await _post(http, path, forged.body, forged.headers)
    assert status == 401
    assert_error(err, "bad_signature")
    unsigned = {
        k: v
        for k, v in sign_github(ISSUE, secret, event="issues").headers.items()
        if k != "X-Hub-Signature-256"
    }
    status, err = await _post(http, path, forged.body, unsigned)
    assert status == 401
    assert_error(err, "missing_signature")
    tampered = sign_github(ISSUE, secret, event="issues")
    status, _ = await _post(http, path, tampered.body + b" ", tampered.headers)
    assert status == 401
    # Barrier: a good delivery sent after them is stored; it is the only row.
    good = sign_github(ISSUE, secret, event="issues")
    assert (await _post(http, path, good.body, good.headers))[0] == 202
    [row] = await eventually(lambda: _rows(db, trigger_id))
    await trigger_pool_caught_up(settings, "github")
    [row] = await _rows(db, trigger_id)
    assert row["dedup_key"] == f"github:{good.headers['X-GitHub-Delivery']}"


async def test_linear_replay_window(account: AccountFactory, http: aiohttp.ClientSession) -> None:
    me = await account()
    _, path, secret = await _trigger(me, "linear")
    issue = {
        "action": "create",
        "type": "Issue",
        "data": {"id": "lin-1", "title": "Broken", "identifier": "ENG-1"},
    }
    stale = sign_linear(linear_payload(issue, now=time.time() - 120), secret)
    status, err = await _post(http, path, stale.body, stale.headers)
    assert status == 401
    assert_error(err, "stale_timestamp")
    fresh = sign_linear(linear_payload(issue), secret)
    status, body = await _post(http, path, fresh.body, fresh.headers)
    assert status == 202, body


async def test_every_linear_update_is_an_event(
    account: AccountFactory, http: aiohttp.ClientSession, db: asyncpg.Pool
) -> None:
    """Linear sends one delivery per change; each update of one issue is an event."""
    me = await account()
    trigger_id, path, secret = await _trigger(me, "linear")
    update = payload("linear_issue_update")
    first = sign_linear(linear_payload(update), secret)
    moved = {
        **update,
        "data": {
            **update["data"],
            "state": {"id": "state-done", "name": "Done", "type": "completed"},
        },
    }
    second = sign_linear(linear_payload(moved, now=time.time() + 1), secret)
    for delivery in (first, second):
        status, body = await _post(http, path, delivery.body, delivery.headers)
        assert status == 202, body
    rows = await eventually(lambda: _at_least(db, trigger_id, 2))
    assert {r["dedup_key"] for r in rows} == {
        f"linear:{d.headers['Linear-Delivery']}" for d in (first, second)
    }
    assert all(r["run_id"] is not None for r in rows)


async def test_sentry_alerts_and_errors_become_events(
    account: AccountFactory, http: aiohttp.ClientSession, db: asyncpg.Pool
) -> None:
    """Issue alerts (data.event) and error.created (data.error) are events; the trigger's
    ``resources`` picks which fire it."""
    me = await account()
    trigger_id, path, secret = await _trigger(
        me, "sentry", config={"resources": ["event_alert", "error"]}
    )
    status, err = await call(
        me.client,
        "PATCH",
        f"/api/triggers/{trigger_id}",
        json={"config": {"resources": ["alert"]}},
    )
    assert status == 400 and err["error"]["field"] == "config"
    alert = sign_sentry(payload("sentry_event_alert"), secret, resource="event_alert")
    error = sign_sentry(payload("sentry_error_created"), secret, resource="error")
    issue = sign_sentry(payload("sentry_issue_created"), secret, resource="issue")
    for delivery in (alert, error, issue):
        status, body = await _post(http, path, delivery.body, delivery.headers)
        assert status == 202 and body == {"status": "accepted", "events": 1}, body
    rows = await eventually(lambda: _at_least(db, trigger_id, 3))
    by_key = {r["dedup_key"]: r for r in rows}
    made_runs = {k for k, r in by_key.items() if r["run_id"] is not None}
    assert made_runs == {f"sentry:{d.headers['Request-ID']}" for d in (alert, error)}
    skipped = by_key[f"sentry:{issue.headers['Request-ID']}"]
    assert skipped["status"] == "skipped"
    status, events = await call(me.client, "GET", f"/api/triggers/{trigger_id}/events")
    types = {e["provider_event_type"] for e in events["events"]}
    assert types == {"event_alert:triggered", "error:created", "issue:created"}


async def test_oversize_malformed_unknown_and_ignored(
    account: AccountFactory, http: aiohttp.ClientSession, settings: Settings
) -> None:
    me = await account()
    _, path, secret = await _trigger(me)
    huge = b"x" * (settings.max_webhook_bytes + 1)
    status, err = await _post(http, path, huge, {"Content-Type": "application/json"})
    assert status == 413
    assert_error(err, "payload_too_large")
    broken = sign_github(b'{"action": "opened", "issue": ', secret, event="issues")
    status, err = await _post(http, path, broken.body, broken.headers)
    assert status == 400
    assert_error(err, "malformed")
    ping = sign_github({"zen": "Keep it simple", "hook_id": 1}, secret, event="ping")
    status, body = await _post(http, path, ping.body, ping.headers)
    assert status == 200 and body == {"status": "ignored", "events": 0}
    status, err = await _post(http, "/webhooks/github/t_000000000000", ping.body, ping.headers)
    assert status == 404
    status, err = await _post(http, path.replace("/github/", "/sentry/"), ping.body, ping.headers)
    assert status == 404  # a GitHub trigger's path on another provider's route
    async with http.get("/metrics") as resp:
        metrics = await resp.text()
    for outcome, reason in (
        ("rejected", "payload_too_large"),
        ("rejected", "malformed"),
        ("rejected", "not_found"),
        ("ignored", "no_event"),
    ):
        sample = f'warren_webhooks_total{{outcome="{outcome}",provider="github",reason="{reason}"}}'
        assert sample in metrics, sample


async def test_custom_webhook(
    account: AccountFactory, http: aiohttp.ClientSession, db: asyncpg.Pool
) -> None:
    me = await account()
    trigger_id, path, secret = await _trigger(me, "custom")
    assert path.startswith("/webhooks/custom/t_")
    signed = sign_custom({"deploy": "done", "sha": "abc"}, secret, prefixed=True)
    status, body = await _post(http, path, signed.body, signed.headers)
    assert status == 202, body
    [row] = await eventually(lambda: _rows(db, trigger_id))
    assert row["run_id"] is not None and row["dedup_key"].startswith("webhook:")


def _nango(settings: Settings, envelope: Any) -> SignedDelivery:
    return sign_nango(envelope, settings.nango_secret_key)


def _forward(connection_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Nango's wrapper around a GitHub webhook it attributed to ``connection_id``."""
    return {
        "from": "github",
        "providerConfigKey": "github-prod",
        "type": "forward",
        "connectionId": connection_id,
        "payload": body,
    }


async def test_nango_connection_belongs_to_one_org(
    account: AccountFactory, http: aiohttp.ClientSession, db: asyncpg.Pool, settings: Settings
) -> None:
    """A connection id bound by one org's trigger cannot be bound by another's (409), and a
    forward reaches only the owning org, even past a row bound before that check."""
    owner, other = await account(), await account()
    connection = f"conn-{uuid.uuid4().hex[:8]}"
    status, made = await _create(owner, connection_id=connection)
    assert status == 201, made
    owner_trigger = made["trigger"]["id"]
    status, err = await _create(other, connection_id=connection)
    assert status == 409
    assert_error(err, "conflict", "connection_id")
    status, mine = await _create(other, connection_id=f"{connection}-b")
    assert status == 201
    other_trigger = mine["trigger"]["id"]
    status, err = await call(
        other.client, "PATCH", f"/api/triggers/{other_trigger}", json={"connection_id": connection}
    )
    assert status == 409
    assert_error(err, "conflict", "connection_id")
    # A row bound before the check existed (legacy data) still gets nothing.
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE triggers SET connection_id = $2 WHERE id = $1",
            uuid.UUID(other_trigger),
            connection,
        )
    signed = _nango(settings, _forward(connection, ISSUE))
    status, body = await _post(http, "/webhooks/nango", signed.body, signed.headers)
    assert status == 202 and body == {"status": "accepted", "events": 1}
    [row] = await eventually(lambda: _rows(db, owner_trigger))
    assert row["run_id"] is not None
    await trigger_pool_caught_up(settings, "github")
    assert await _rows(db, other_trigger) == []


async def test_nango_envelopes_warren_does_not_route_are_acknowledged(
    http: aiohttp.ClientSession, settings: Settings
) -> None:
    """Nango retries 4xx: an unattributed forward (the raw provider body), an ``auth``
    webhook and a forward of a connection without triggers are 200 ``ignored``."""
    auth = {
        "type": "auth",
        "operation": "creation",
        "success": True,
        "connectionId": "conn-new",
        "authMode": "OAUTH2",
        "providerConfigKey": "github-prod",
        "provider": "github",
        "environment": "prod",
        "endUser": {"endUserId": "u-1", "organizationId": "o-1"},
    }
    unrouted = [
        ISSUE,  # unattributed: no wrapper
        auth,
        _forward(f"conn-{uuid.uuid4().hex[:8]}", ISSUE),  # no trigger has this connection
        {"type": "sync", "connectionId": "c", "providerConfigKey": "github", "success": True},
    ]
    for envelope in unrouted:
        signed = _nango(settings, envelope)
        status, body = await _post(http, "/webhooks/nango", signed.body, signed.headers)
        assert status == 200 and body == {"status": "ignored", "events": 0}, envelope
    broken = _nango(settings, b"not json")
    status, err = await _post(http, "/webhooks/nango", broken.body, broken.headers)
    assert status == 400
    assert_error(err, "malformed")
    forged = sign_nango(auth, "0" * 32)
    status, err = await _post(http, "/webhooks/nango", forged.body, forged.headers)
    assert status == 401
    async with http.get("/metrics") as resp:
        metrics = await resp.text()
    for reason in ("not_forward", "no_trigger"):
        assert f'provider="nango",reason="{reason}"' in metrics
    assert 'warren_webhooks_total{outcome="rejected",provider="nango",reason="bad_signature"}' in (
        metrics
    )
