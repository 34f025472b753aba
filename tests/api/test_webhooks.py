"""Webhook ingestion through the real Serve app and background pools: a signed GitHub
delivery becomes a trigger event, a run and outbox rows; retries are deduplicated; bad
signatures, oversize and malformed bodies are refused and store nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import asyncpg

from core.settings import Settings
from tests.api.accounts import Account, assert_error, call
from tests.api.conftest import AccountFactory
from tests.fakes.signing import linear_payload, sign_custom, sign_github, sign_linear
from tests.fixtures.automations import eventually

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


async def _trigger(me: Account, provider: str = "github") -> tuple[str, str, str]:
    """(trigger id, webhook path, secret) of a new trigger bound to a new automation."""
    _, auto = await call(me.client, "POST", "/api/automations", json={"name": "Triage"})
    status, made = await call(
        me.client, "POST", "/api/triggers", json={"provider": provider, "automation_id": auto["id"]}
    )
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


async def test_signed_github_delivery_becomes_one_run(
    account: AccountFactory, http: aiohttp.ClientSession, db: asyncpg.Pool
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
    # The same event in a different body (as after JetStream's duplicate window): another
    # message, the same dedup key.
    resent = sign_github({**ISSUE, "installation": {"id": 1}}, secret, event="issues")
    assert (await _post(http, path, resent.body, resent.headers))[0] == 202
    await asyncio.sleep(1.5)
    rows = await _rows(db, trigger_id)
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["dedup_key"] == "github:issue-4242:opened" and row["run_id"] is not None
    assert row["raw_payload"]["issue"]["title"] == "Checkout crashes"
    assert row["outbox"][0] == "enqueue_enrich"
    status, run = await call(me.client, "GET", f"/api/runs/{row['run_id']}")
    assert status == 200 and run["trigger_event_id"] == str(row["id"])
    status, events = await call(me.client, "GET", f"/api/triggers/{trigger_id}/events")
    assert [e["run_id"] for e in events["events"]] == [str(row["run_id"])]


async def test_bad_signature_is_401_and_stores_nothing(
    account: AccountFactory, http: aiohttp.ClientSession, db: asyncpg.Pool
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
    await asyncio.sleep(1.0)
    assert await _rows(db, trigger_id) == []


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
