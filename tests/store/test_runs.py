"""Run SQL: leased claims with versions, completion once per id, attention inbox and its
claim/unclaim/resolve conflicts."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from store import attention, run_events, run_outcomes, runs
from tests.fixtures.automations import (  # noqa: F401
    Org,
    iso_pool,
    iso_settings,
    make_org,
    make_run,
)


async def _run(pool: asyncpg.Pool, org: Org | None = None) -> tuple[Org, uuid.UUID]:
    org = org or await make_org(pool)
    return org, (await make_run(pool, org)).id


async def _kinds(pool: asyncpg.Pool, run_id: uuid.UUID) -> list[str]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT kind FROM outbox WHERE run_id = $1 ORDER BY id", run_id)
    return [r[0] for r in rows]


async def test_claim_takes_a_lease_and_bumps_the_version(iso_pool: asyncpg.Pool) -> None:
    _, run_id = await _run(iso_pool)
    async with iso_pool.acquire() as conn:
        a = await runs.claim(
            conn, run_id, from_statuses=("queued",), to_status="enriching", owner="runs-a"
        )
        b = await runs.claim(
            conn,
            run_id,
            from_statuses=("queued", "enriching"),
            to_status="enriching",
            owner="runs-b",
        )
        assert a is not None and a.status == "enriching" and a.lease_version == 1
        assert b is None  # live lease held by runs-a
        assert await runs.release_leases(conn, "runs-a") == 1
        c = await runs.claim(
            conn,
            run_id,
            from_statuses=("queued", "enriching"),
            to_status="enriching",
            owner="runs-b",
        )
        assert c is not None and c.lease_version == 2
        # The old holder's version is stale: its write is refused.
        assert not await runs.save_enrichment(conn, run_id, 1, {"v": 1})
        assert await runs.save_enrichment(conn, run_id, 2, {"v": 1})
        record = await runs.get_record(conn, run_id)
    assert record is not None and record.status == "ready" and record.lease_owner is None
    assert await _kinds(iso_pool, run_id) == [
        "enqueue_enrich",
        "write_artifacts",
        "enqueue_execute",
    ]


async def test_completion_is_recorded_once(iso_pool: asyncpg.Pool) -> None:
    org, run_id = await _run(iso_pool)
    async with iso_pool.acquire() as conn:
        await conn.execute("UPDATE automation_runs SET status = 'running' WHERE id = $1", run_id)
        first = await run_outcomes.complete(
            conn,
            run_id,
            completion_id="c1",
            outcome="succeeded",
            summary="done",
            completion={"outcome": "succeeded"},
        )
        again = await run_outcomes.complete(
            conn, run_id, completion_id="c1", outcome="failed", summary="x", completion={}
        )
        other = await run_outcomes.complete(
            conn, run_id, completion_id="c2", outcome="failed", summary="x", completion={}
        )
        run = await runs.get_run(conn, org.id, run_id)
        event_status = await conn.fetchval(
            "SELECT e.status FROM trigger_events e JOIN automation_runs r"
            " ON r.trigger_event_id = e.id WHERE r.id = $1",
            run_id,
        )
    assert (first, again, other) == (True, False, False)
    assert run is not None and run.status == "succeeded" and run.summary == "done"
    assert event_status == "completed"
    kinds = await _kinds(iso_pool, run_id)
    assert kinds.count("notify_run_terminal") == 1 and kinds.count("write_artifacts") == 1


async def _fail(pool: asyncpg.Pool, run_id: uuid.UUID) -> None:
    async with pool.acquire() as conn:
        assert await run_outcomes.fail(
            conn, run_id, stage="target", code="missing_configuration", message="no configuration"
        )


async def test_attention_inbox_lists_recent_failures_of_the_org(iso_pool: asyncpg.Pool) -> None:
    org, failed = await _run(iso_pool)
    await _run(iso_pool, org)  # a queued run: not in the inbox
    _, other_failed = await _run(iso_pool)
    await _fail(iso_pool, failed)
    await _fail(iso_pool, other_failed)
    old_org, old = await _run(iso_pool)
    await _fail(iso_pool, old)
    async with iso_pool.acquire() as conn:
        await conn.execute(
            "UPDATE automation_runs SET completed_at = now() - interval '8 days' WHERE id = $1",
            old,
        )
        inbox = await attention.list_attention(conn, org.id)
        assert await attention.list_attention(conn, old_org.id) == []
    assert [r.id for r in inbox] == [failed]
    assert inbox[0].status_reason == "missing_configuration"


async def test_claim_unclaim_resolve_conflicts(iso_pool: asyncpg.Pool) -> None:
    org, run_id = await _run(iso_pool)
    await _fail(iso_pool, run_id)
    alice, bob = org.owner_id, (await make_org(iso_pool, "Bob")).owner_id
    async with iso_pool.acquire() as conn:
        assert await attention.assign(conn, org.id, run_id, alice)
        assert await attention.assign(conn, org.id, run_id, alice)  # idempotent for the holder
        with pytest.raises(attention.AssignmentConflict):
            await attention.assign(conn, org.id, run_id, bob)
        with pytest.raises(attention.AssignmentConflict):
            await attention.unassign(conn, org.id, run_id, bob)
        with pytest.raises(attention.AssignmentConflict):
            await attention.resolve(conn, org.id, run_id, bob, outcome="succeeded", note="mine")
        assert await attention.unassign(conn, org.id, run_id, bob, force=True)
        assert await attention.resolve(conn, org.id, run_id, bob, outcome="succeeded", note="fixed")
        with pytest.raises(attention.AssignmentConflict):  # no longer awaiting attention
            await attention.resolve(conn, org.id, run_id, alice, outcome="failed", note="again")
        other = await make_org(iso_pool, "Other")
        assert not await attention.assign(conn, other.id, run_id, other.owner_id)
        run = await runs.get_run(conn, org.id, run_id)
        history = [e.type for e in await run_events.list_events(conn, run_id)]
    assert run is not None and run.status == "succeeded" and run.resolution_note == "fixed"
    assert run.resolved_by == bob and run.status_reason == "manual_resolution"
    assert history.count("assigned") == 1 and history.count("unassigned") == 1
