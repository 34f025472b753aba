"""The run pool, in process: enrichment, leases across restarts, and the finalizer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import pytest

from actors import session_client
from actors.enrichment import build_enrichment, completion_id
from actors.lifecycle_consumer import LifecycleConsumer
from actors.runs import SESSION_REVIVALS, RunWorker
from core.settings import Settings
from schemas.sessions import NewSession
from schemas.triggers import GitHubContext, TriggerContext
from store import configurations, run_events, runs, sessions
from tests.fixtures.automations import (  # noqa: F401
    eventually,
    iso_pool,
    iso_settings,
    lifecycle_consumer,
    make_run,
)

ISSUE = TriggerContext(
    provider="github",
    event_type="issues:opened",
    title="Issue #7: Crash on save",
    external_id="issue-77",
    dedup_key="github:issue-77:opened",
    description="Trace...",
    url="https://github.com/acme/app/issues/7",
    repo_full_name="acme/app",
    related_files=("app/save.py",),
    github=GitHubContext(event="issues", action="opened", item_id="issue-77", number=7),
)


async def _run(
    pool: asyncpg.Pool, ctx: TriggerContext = ISSUE, **automation: Any
) -> runs.RunRecord:
    return await make_run(pool, ctx=ctx, agent_instructions="Fix the bug.", **automation)


def _fields(ctx: TriggerContext) -> dict[str, object]:
    return {f: getattr(ctx, f) for f in ctx.__struct_fields__}


@pytest.fixture
async def worker(iso_settings: Settings) -> AsyncIterator[RunWorker]:
    """A run-pool member whose finalizer only runs when a test calls it."""
    member = RunWorker(
        iso_settings, f"test-runs-{uuid.uuid4().hex[:6]}", finalize_every=3600, idle_seconds=60
    )
    assert await member.ready(30)
    yield member
    await member.shutdown()


def test_enrichment_is_deterministic_payload_v1() -> None:
    record = runs.RunRecord(
        id=uuid.uuid4(),
        org_id=uuid.uuid4(),
        automation_id=uuid.uuid4(),
        trigger_id=None,
        trigger_event_id=uuid.uuid4(),
        status="enriching",
        lease_owner=None,
        lease_version=1,
        session_id=None,
        completion_id=None,
        enrichment_json=None,
        completion_json=None,
        last_activity_at=datetime.now(UTC),
        deadline_at=None,
        automation_name="Triage",
        automation_enabled=True,
        agent_instructions="",
        model_id=None,
        default_configuration_id=None,
        max_run_seconds=3600,
        created_by=None,
        provider="github",
        parsed_context=_fields(ISSUE)
        | {"github": {"event": "issues", "action": "opened", "item_id": "issue-77", "number": 7}},
    )
    first = msgspec.json.encode(build_enrichment(record))
    assert first == msgspec.json.encode(build_enrichment(record))
    payload = msgspec.json.decode(first)
    assert payload["version"] == 1 and payload["provider"] == "github"
    assert payload["summary"] == {"title": "Issue #7: Crash on save", "description": "Trace..."}
    assert payload["source"] == {
        "url": "https://github.com/acme/app/issues/7",
        "externalId": "issue-77",
        "eventType": "issues:opened",
    }
    assert payload["relatedFiles"] == ["app/save.py"] and payload["suggestedRepo"] == "acme/app"
    assert payload["providerContext"]["number"] == 7
    assert payload["automationContext"]["automationName"] == "Triage"
    assert completion_id(record.id) == completion_id(record.id) != completion_id(uuid.uuid4())


async def test_enrich_saves_payload_and_enqueues_the_next_steps(
    worker: RunWorker, iso_pool: asyncpg.Pool
) -> None:
    run = await _run(iso_pool)
    await worker.enrich(run.id)
    await worker.enrich(run.id)  # a redelivered message changes nothing
    async with iso_pool.acquire() as conn:
        after = await runs.get_record(conn, run.id)
        kinds = [
            r[0]
            for r in await conn.fetch(
                "SELECT kind FROM outbox WHERE run_id = $1 ORDER BY id", run.id
            )
        ]
    assert after is not None and after.status == "ready"
    assert after.enrichment_json is not None
    assert after.enrichment_json["summary"]["title"] == ISSUE.title
    assert kinds == ["enqueue_enrich", "write_artifacts", "enqueue_execute"]


async def test_context_without_title_fails_enrichment(
    worker: RunWorker, iso_pool: asyncpg.Pool
) -> None:
    run = await _run(
        iso_pool,
        TriggerContext(
            provider="webhook", event_type="x", title=" ", external_id="e", dedup_key="d"
        ),
    )
    await worker.enrich(run.id)
    async with iso_pool.acquire() as conn:
        after = await runs.get_run(conn, run.org_id, run.id)
    assert after is not None and after.status == "failed"
    assert (after.status_reason, after.failure_stage) == ("enrichment_failed", "enrichment")


async def test_execute_without_configuration_fails(
    worker: RunWorker, iso_pool: asyncpg.Pool
) -> None:
    run = await _run(iso_pool)
    await worker.enrich(run.id)
    await worker.execute(run.id)
    async with iso_pool.acquire() as conn:
        after = await runs.get_run(conn, run.org_id, run.id)
    assert after is not None and after.status == "failed"
    assert after.status_reason == "missing_configuration"


async def test_restarted_member_drops_its_old_leases(
    iso_settings: Settings, iso_pool: asyncpg.Pool
) -> None:
    run = await _run(iso_pool)
    name = f"test-runs-{uuid.uuid4().hex[:6]}"
    async with iso_pool.acquire() as conn:
        assert await runs.claim(
            conn, run.id, from_statuses=("queued",), to_status="enriching", owner=name
        )
    member = RunWorker(iso_settings, name, finalize_every=3600)  # the "restarted" incarnation
    try:
        assert await member.ready(30)
        await member.enrich(run.id)
    finally:
        await member.shutdown()
    async with iso_pool.acquire() as conn:
        after = await runs.get_record(conn, run.id)
    assert after is not None and after.status == "ready" and after.lease_version == 2


async def _session(pool: asyncpg.Pool, run: runs.RunRecord, status: str) -> uuid.UUID:
    async with pool.acquire() as conn:
        config = await configurations.create_configuration(
            conn, run.org_id, f"c-{uuid.uuid4().hex}"
        )
    record, _ = await sessions.insert_session(
        pool,
        NewSession(
            org_id=run.org_id,
            created_by=None,
            configuration_id=config.id,
            client_type="automation",
            idempotency_key=f"run:{run.id}:session",
        ),
    )
    async with pool.acquire() as conn:
        await conn.execute("UPDATE sessions SET status = $2 WHERE id = $1", record.id, status)
        await conn.execute(
            """UPDATE automation_runs SET status = 'running', session_id = $2,
                   deadline_at = now() + interval '1 hour' WHERE id = $1""",
            run.id,
            record.id,
        )
    return record.id


async def _idle(pool: asyncpg.Pool, run_id: uuid.UUID, sql: str = "") -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            f"UPDATE automation_runs SET last_activity_at = now() - interval '2 hours' {sql}"
            " WHERE id = $1",
            run_id,
        )


async def _state(pool: asyncpg.Pool, run: runs.RunRecord) -> tuple[str, str | None]:
    async with pool.acquire() as conn:
        after = await runs.get_run(conn, run.org_id, run.id)
    assert after is not None
    return after.status, after.status_reason


async def test_finalizer_decisions(worker: RunWorker, iso_pool: asyncpg.Pool) -> None:
    late = await _run(iso_pool)
    await _session(iso_pool, late, "running")
    async with iso_pool.acquire() as conn:
        await conn.execute(
            "UPDATE automation_runs SET deadline_at = now() - interval '1 s' WHERE id = $1", late.id
        )
    ended = await _run(iso_pool)
    await _session(iso_pool, ended, "stopped")
    alive = await _run(iso_pool)
    await _session(iso_pool, alive, "running")
    await _idle(iso_pool, alive.id)
    orphan = await _run(iso_pool)
    await _idle(iso_pool, orphan.id, ", status = 'running'")
    stalled = await _run(iso_pool)
    await _idle(iso_pool, stalled.id)

    await worker.finalize()
    assert await _state(iso_pool, late) == ("timed_out", "deadline_exceeded")
    assert await _state(iso_pool, ended) == ("failed", "no_completion")
    assert await _state(iso_pool, alive) == ("running", None)
    assert await _state(iso_pool, orphan) == ("failed", "missing_session")
    assert await _state(iso_pool, stalled) == ("queued", None)
    for _ in range(3):
        await _idle(iso_pool, stalled.id)
        await worker.finalize()
    assert await _state(iso_pool, stalled) == ("failed", "stalled")
    async with iso_pool.acquire() as conn:
        requeues = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE run_id = $1 AND kind = 'enqueue_enrich'", stalled.id
        )
        notified = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE run_id = $1 AND kind = 'notify_run_terminal'",
            late.id,
        )
    assert requeues == 4 and notified == 1  # the original and three requeues


async def test_redelivered_execute_keeps_the_session(
    worker: RunWorker, iso_pool: asyncpg.Pool
) -> None:
    run = await _run(iso_pool)
    session_id = await _session(iso_pool, run, "running")
    await worker.execute(run.id)  # the step's message again, after the session started
    async with iso_pool.acquire() as conn:
        after = await runs.get_record(conn, run.id)
        count = await conn.fetchval(
            "SELECT count(*) FROM sessions WHERE idempotency_key = $1", f"run:{run.id}:session"
        )
    assert after is not None and after.status == "running"
    assert after.session_id == session_id and after.lease_owner is None and count == 1


async def _session_status(pool: asyncpg.Pool, session_id: uuid.UUID) -> str:
    async with pool.acquire() as conn:
        status: str = await conn.fetchval("SELECT status FROM sessions WHERE id = $1", session_id)
    return status


async def test_finalizer_revives_a_failed_session_and_the_run_still_completes(
    ray_cluster: None,
    worker: RunWorker,
    lifecycle_consumer: LifecycleConsumer,
    iso_pool: asyncpg.Pool,
    iso_settings: Settings,
) -> None:
    """The race of issue 8 #24: the finalizer ran while the run's session was ``failed``
    (a boot that failed under load, a sandbox that missed a liveness probe) and failed the
    run ``no_completion``, though the agent's ``automation_complete`` was still to come."""
    run = await _run(iso_pool)
    session_id = await _session(iso_pool, run, "running")
    async with iso_pool.acquire() as conn:
        await sessions.mark_failed(conn, session_id)  # what the session actor records

    assert await worker.finalize() == {"revived": 1}
    assert await _state(iso_pool, run) == ("running", None)

    async def booting() -> bool:
        return await _session_status(iso_pool, session_id) in ("starting", "running")

    await eventually(booting, within=60)  # the finalizer asked the real session actor to boot
    handle = await session_client.get_session_actor(str(session_id), iso_settings)
    try:
        reply = await session_client.call_actor(
            handle,
            "tool_call",
            "automation_complete",
            "call-1",
            {
                "run_id": str(run.id),
                "completion_id": completion_id(run.id),
                "outcome": "succeeded",
                "summary_markdown": "Done after all.",
            },
        )
        assert reply.success

        async def settled() -> tuple[str, str | None] | None:
            state = await _state(iso_pool, run)
            return state if state[0] != "running" else None

        assert await eventually(settled, within=60) == ("succeeded", None)
    finally:
        await session_client.kill_session_actor(str(session_id))


async def test_a_session_that_keeps_failing_ends_the_run_as_sandbox_dead(
    worker: RunWorker, iso_pool: asyncpg.Pool
) -> None:
    run = await _run(iso_pool)
    await _session(iso_pool, run, "failed")
    async with iso_pool.acquire() as conn:
        for attempt in range(SESSION_REVIVALS):  # earlier rounds asked it to boot
            await run_events.add_event(conn, run.id, "revived", data={"attempt": attempt + 1})
    assert await worker.finalize() == {"sandbox_dead": 1}
    assert await _state(iso_pool, run) == ("failed", "sandbox_dead")
