"""Session HTTP routes through the real Serve app: CRUD, Idempotency-Key, org isolation."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest
from nats.aio.msg import Msg

from core.bus import Subjects, connect
from core.settings import Settings
from schemas.sessions import SessionLifecycleEvent
from security import tokens
from store import idempotency as idempotency_store
from tests.api.accounts import Account, assert_error, call
from tests.api.conftest import AccountFactory


async def create(account: Account, headers: dict[str, str] | None = None, **body: Any) -> Any:
    status, created = await call(
        account.client, "POST", "/api/sessions", json=body, headers=headers
    )
    assert status == 201, created
    return created


async def test_create_read_list_rename_delete(account: AccountFactory) -> None:
    owner = await account()
    created = await create(
        owner, title="First", initial_prompt="hello", agent_config={"model_id": "scripted"}
    )
    sid = created["session_id"]
    assert created["status"] == "creating" and created["is_new"] is True
    assert created["gateway_url"] == f"/api/sessions/{sid}/ws"
    view = created["session"]
    assert view["title"] == "First" and view["status"] == "pending"
    assert view["client_type"] == "web" and view["session_type"] == "coding"
    assert view["initial_prompt"] == "hello" and view["agent_config"] == {"model_id": "scripted"}
    assert "opencode_url" not in view and "sandbox_id" not in view

    status, got = await call(owner.client, "GET", f"/api/sessions/{sid}")
    assert status == 200 and got == view

    status, renamed = await call(
        owner.client, "PATCH", f"/api/sessions/{sid}", json={"title": "Renamed"}
    )
    assert status == 200 and renamed["title"] == "Renamed"

    status, st = await call(owner.client, "GET", f"/api/sessions/{sid}/status")
    assert status == 200 and st == {
        "state": "running",
        "status": "creating",
        "terminated_at": None,
        "reason": None,
    }

    status, _ = await call(owner.client, "DELETE", f"/api/sessions/{sid}")
    assert status == 204
    status, gone = await call(owner.client, "GET", f"/api/sessions/{sid}")
    assert status == 404
    assert_error(gone, "not_found")


async def test_list_filters_and_pagination(account: AccountFactory) -> None:
    owner = await account()
    made = [await create(owner, client_type="slack" if i == 1 else "web") for i in range(3)]
    ids = [m["session_id"] for m in made][::-1]
    status, page = await call(owner.client, "GET", "/api/sessions?limit=2")
    assert status == 200 and [s["id"] for s in page["sessions"]] == ids[:2]
    status, rest = await call(
        owner.client, "GET", f"/api/sessions?limit=2&cursor={page['next_cursor']}"
    )
    assert [s["id"] for s in rest["sessions"]] == ids[2:] and rest["next_cursor"] is None
    status, slack = await call(owner.client, "GET", "/api/sessions?client_type=slack")
    assert [s["id"] for s in slack["sessions"]] == [made[1]["session_id"]]
    status, mine = await call(owner.client, "GET", f"/api/sessions?created_by={owner.user_id}")
    assert len(mine["sessions"]) == 3
    status, none = await call(owner.client, "GET", "/api/sessions?status=running")
    assert none["sessions"] == []
    status, bad = await call(owner.client, "GET", "/api/sessions?status=sleeping")
    assert status == 400 and bad["error"]["field"] == "status"
    status, bad = await call(owner.client, "GET", "/api/sessions?cursor=nope")
    assert status == 400 and bad["error"]["field"] == "cursor"


async def test_bad_bodies_name_the_field(account: AccountFactory) -> None:
    owner = await account()
    for body, field in (
        ({"session_type": "cli"}, "session_type"),
        ({"sandbox_mode": "later"}, "sandbox_mode"),
        ({"title": ""}, "title"),
        ({"configuration_id": str(uuid.uuid4())}, "configuration_id"),
    ):
        status, error = await call(owner.client, "POST", "/api/sessions", json=body)
        assert status == 400, (body, error)
        assert_error(error, field=field)
    status, error = await call(owner.client, "POST", "/api/sessions", json={"surprise": 1})
    assert status == 400 and "surprise" in error["error"]["message"]


async def test_idempotency_key_replays_and_guards(
    account: AccountFactory, db: asyncpg.Pool
) -> None:
    owner = await account()
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await create(owner, headers=key, title="Once")
    again = await create(owner, headers=key, title="Once")
    assert again == first
    status, listed = await call(owner.client, "GET", "/api/sessions")
    assert [s["id"] for s in listed["sessions"]] == [first["session_id"]]
    # Same key, other body: refused.
    status, error = await call(
        owner.client, "POST", "/api/sessions", json={"title": "Other"}, headers=key
    )
    assert status == 422
    assert_error(error, "idempotency_mismatch")
    # A first request still running (claimed, no response yet): a duplicate gets 409.
    body = json.dumps({"title": "Busy"}).encode()
    busy = uuid.uuid4().hex
    claim = await idempotency_store.claim_idempotency_key(
        db, uuid.UUID(owner.org_id), "sessions.create", busy, hashlib.sha256(body).hexdigest()
    )
    assert claim is None
    async with owner.client.post(
        "/api/sessions",
        data=body,
        headers={"Idempotency-Key": busy, "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 409
        assert_error(await resp.json(), "idempotency_in_flight")


async def test_other_orgs_get_404_everywhere(account: AccountFactory, settings: Settings) -> None:
    owner = await account()
    stranger = await account()
    sid = (await create(owner))["session_id"]
    for method, path, body in (
        ("GET", f"/api/sessions/{sid}", None),
        ("PATCH", f"/api/sessions/{sid}", {"title": "mine now"}),
        ("DELETE", f"/api/sessions/{sid}", None),
        ("POST", f"/api/sessions/{sid}/message", {"content": "hi"}),
        ("GET", f"/api/sessions/{sid}/status", None),
        ("POST", f"/api/sessions/{sid}/cancel", None),
        ("POST", f"/api/sessions/{sid}/heartbeat", None),
    ):
        status, error = await call(stranger.client, method, path, json=body)
        assert status == 404, (method, path, error)
        assert_error(error, "not_found")
    status, listed = await call(stranger.client, "GET", "/api/sessions")
    assert listed["sessions"] == []
    # The owner still has it, unchanged.
    status, view = await call(owner.client, "GET", f"/api/sessions/{sid}")
    assert status == 200 and view["title"] == ""
    # Eager start is for services only.
    status, error = await call(owner.client, "POST", f"/api/sessions/{sid}/eager-start")
    assert status == 403
    # The sandbox token of one session opens nothing of another.
    other = (await create(owner))["session_id"]
    token = tokens.sandbox_token(settings.secret_key, other)
    status, error = await call(
        owner.client,
        "POST",
        f"/api/sessions/{sid}/tools/verify",
        json={"tool_call_id": "x", "args": {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert status == 403


async def test_creation_is_announced_on_the_lifecycle_subject(
    account: AccountFactory, settings: Settings
) -> None:
    owner = await account()
    nc = await connect(settings.nats_url, name="warren-test-lifecycle")
    seen: list[SessionLifecycleEvent] = []

    async def collect(msg: Msg) -> None:
        seen.append(msgspec.json.decode(msg.data, type=SessionLifecycleEvent))

    sub = await nc.jetstream().subscribe(
        Subjects(settings.nats_prefix).session_lifecycle, cb=collect, ordered_consumer=True
    )
    try:
        sid = (await create(owner, client_type="slack"))["session_id"]
        async with asyncio.timeout(10):
            while not any(e.session_id == sid for e in seen):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        event = next(e for e in seen if e.session_id == sid)
        assert (event.event, event.org_id, event.client_type) == ("created", owner.org_id, "slack")
    finally:
        await sub.unsubscribe()
        await nc.close()


@pytest.mark.parametrize("path", ["/api/sessions", "/api/sessions/x"])
async def test_requires_auth(http: aiohttp.ClientSession, path: str) -> None:
    status, error = await call(http, "GET", path)
    assert status == 401
    assert_error(error, "unauthorized")
