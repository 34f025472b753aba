"""Sessions, tool invocations, Idempotency-Key records and configurations in Postgres."""

from __future__ import annotations

import uuid

import asyncpg

from schemas.sessions import NewSession
from store import configurations, idempotency, orgs, sessions, tool_invocations
from tests.store.conftest import UserFactory


async def _org(pool: asyncpg.Pool, make_user: UserFactory) -> tuple[uuid.UUID, uuid.UUID]:
    user = await make_user()
    async with pool.acquire() as conn:
        org = await orgs.create_org(conn, name="T", owner_id=user.id)
    return org.id, user.id


def _new(org_id: uuid.UUID, user_id: uuid.UUID, **extra: object) -> NewSession:
    return NewSession(org_id=org_id, created_by=user_id, sandbox_provider="local", **extra)  # type: ignore[arg-type]


async def test_insert_is_idempotent_per_org_key(pool: asyncpg.Pool, make_user: UserFactory) -> None:
    org_id, user_id = await _org(pool, make_user)
    first, new = await sessions.insert_session(pool, _new(org_id, user_id, idempotency_key="k1"))
    again, new_again = await sessions.insert_session(
        pool, _new(org_id, user_id, idempotency_key="k1", title="other")
    )
    assert new and not new_again and again.id == first.id and again.title == ""
    other_org, other_user = await _org(pool, make_user)
    elsewhere, new_elsewhere = await sessions.insert_session(
        pool, _new(other_org, other_user, idempotency_key="k1")
    )
    assert new_elsewhere and elsewhere.id != first.id
    # Without a key every insert is new.
    a, _ = await sessions.insert_session(pool, _new(org_id, user_id))
    b, _ = await sessions.insert_session(pool, _new(org_id, user_id))
    assert a.id != b.id


async def test_reads_are_scoped_by_org(pool: asyncpg.Pool, make_user: UserFactory) -> None:
    org_id, user_id = await _org(pool, make_user)
    other_org, _ = await _org(pool, make_user)
    record, _ = await sessions.insert_session(pool, _new(org_id, user_id))
    assert await sessions.get_session(pool, record.id, org_id=org_id) is not None
    assert await sessions.get_session(pool, record.id, org_id=other_org) is None
    assert await sessions.rename_session(pool, record.id, "x", org_id=other_org) is None
    assert not await sessions.soft_delete(pool, record.id, other_org)
    renamed = await sessions.rename_session(pool, record.id, "Renamed", org_id=org_id)
    assert renamed is not None and renamed.title == "Renamed"
    assert await sessions.soft_delete(pool, record.id, org_id)
    assert await sessions.get_session(pool, record.id) is None


async def test_list_filters_and_pages(pool: asyncpg.Pool, make_user: UserFactory) -> None:
    org_id, user_id = await _org(pool, make_user)
    ids = []
    for i in range(5):
        record, _ = await sessions.insert_session(
            pool, _new(org_id, user_id, client_type="slack" if i % 2 else "web")
        )
        ids.append(record.id)
    page, cursor = await sessions.list_sessions(pool, org_id, limit=2)
    assert [r.id for r in page] == ids[::-1][:2] and cursor is not None
    rest, end = await sessions.list_sessions(pool, org_id, limit=10, cursor=cursor)
    assert [r.id for r in rest] == ids[::-1][2:] and end is None
    slack, _ = await sessions.list_sessions(pool, org_id, client_type="slack")
    assert {r.id for r in slack} == {ids[1], ids[3]}
    await sessions.mark_starting(pool, ids[0])
    starting, _ = await sessions.list_sessions(pool, org_id, status="starting")
    assert [r.id for r in starting] == [ids[0]]


async def test_initial_prompt_is_claimed_once(pool: asyncpg.Pool, make_user: UserFactory) -> None:
    org_id, user_id = await _org(pool, make_user)
    record, _ = await sessions.insert_session(pool, _new(org_id, user_id, initial_prompt="go"))
    assert await sessions.claim_initial_prompt(pool, record.id) == "go"
    assert await sessions.claim_initial_prompt(pool, record.id) is None
    await sessions.release_initial_prompt(pool, record.id)
    assert await sessions.claim_initial_prompt(pool, record.id) == "go"


async def test_tool_invocations_record_once(pool: asyncpg.Pool, make_user: UserFactory) -> None:
    org_id, user_id = await _org(pool, make_user)
    record, _ = await sessions.insert_session(pool, _new(org_id, user_id))
    args = {"message": "m"}

    async def begin() -> tool_invocations.ToolInvocation | None:
        return await tool_invocations.begin_tool_invocation(
            pool,
            session_id=record.id,
            org_id=org_id,
            tool_name="save_snapshot",
            tool_call_id="c1",
            args=args,
        )

    assert await begin() is None
    running = await begin()
    assert running is not None and running.status == "executing"
    await tool_invocations.finish_tool_invocation(
        pool,
        session_id=record.id,
        tool_name="save_snapshot",
        tool_call_id="c1",
        output={"success": True, "result": "ok"},
        error=None,
        duration_ms=3,
    )
    assert await tool_invocations.recorded_tool_response(
        pool, record.id, "save_snapshot", "c1"
    ) == {
        "success": True,
        "result": "ok",
    }
    done = await begin()
    assert done is not None and done.status == "completed" and done.output["result"] == "ok"
    assert await tool_invocations.count_tool_invocations(pool, record.id, "save_snapshot") == 1


async def test_idempotency_keys(pool: asyncpg.Pool, make_user: UserFactory) -> None:
    org_id, _ = await _org(pool, make_user)
    assert await idempotency.claim_idempotency_key(pool, org_id, "s", "k", "h1") is None
    hit = await idempotency.claim_idempotency_key(pool, org_id, "s", "k", "h1")
    assert hit is not None and hit.in_flight
    await idempotency.complete_idempotency_key(pool, org_id, "s", "k", 201, {"id": 1})
    hit = await idempotency.claim_idempotency_key(pool, org_id, "s", "k", "h2")
    assert hit is not None and not hit.in_flight and hit.response == {"id": 1}
    assert hit.status_code == 201 and hit.request_hash == "h1"
    # A released key can be claimed again.
    assert await idempotency.claim_idempotency_key(pool, org_id, "s", "k2", "h") is None
    await idempotency.release_idempotency_key(pool, org_id, "s", "k2")
    assert await idempotency.claim_idempotency_key(pool, org_id, "s", "k2", "h") is None


async def test_configuration_snapshot_and_commands(
    pool: asyncpg.Pool, make_user: UserFactory
) -> None:
    org_id, _ = await _org(pool, make_user)
    other_org, _ = await _org(pool, make_user)
    config = await configurations.create_configuration(pool, org_id, "web")
    await configurations.set_configuration_snapshot(pool, config.id, org_id, "snap_1")
    await configurations.set_service_commands(
        pool, config.id, org_id, [{"name": "a", "command": "b"}]
    )
    loaded = await configurations.get_configuration(pool, config.id, org_id)
    assert loaded is not None and loaded.active_snapshot_id == "snap_1"
    assert loaded.service_commands == [{"name": "a", "command": "b"}]
    assert await configurations.get_configuration(pool, config.id, other_org) is None


async def test_lifecycle_updates(pool: asyncpg.Pool, make_user: UserFactory) -> None:
    from datetime import UTC, datetime

    org_id, user_id = await _org(pool, make_user)
    record, _ = await sessions.insert_session(pool, _new(org_id, user_id))
    await sessions.mark_starting(pool, record.id)
    await sessions.mark_running(
        pool,
        record.id,
        sandbox_id="sb1",
        provider="local",
        opencode_url="http://a",
        sandbox_agent_url="http://t",
        preview_url=None,
        expires_at=datetime.now(UTC),
    )
    running = await sessions.get_session(pool, record.id)
    assert running is not None and running.status == "running" and running.sandbox_id == "sb1"
    assert running.view().client_status == "running"
    assert await sessions.mark_stopped(pool, record.id, "completed", outcome="succeeded")
    assert not await sessions.mark_stopped(pool, record.id, "manual")
    stopped = await sessions.get_session(pool, record.id)
    assert stopped is not None and stopped.stop_reason == "completed"
    assert stopped.outcome == "succeeded" and stopped.sandbox_id is None
