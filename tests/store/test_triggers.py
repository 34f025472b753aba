"""Trigger SQL: the one-transaction hand-off event → run → outbox, dedup, skip reasons."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from schemas.triggers import TriggerContext
from store import triggers
from tests.fixtures.automations import (  # noqa: F401
    iso_pool,
    iso_settings,
    make_automation,
    make_org,
    make_webhook_trigger,
)


def _ctx(key: str = "github:issue-1:opened") -> TriggerContext:
    return TriggerContext(
        provider="github",
        event_type="issues:opened",
        title="Issue #1: broken",
        external_id="issue-1",
        dedup_key=key,
    )


async def _counts(pool: asyncpg.Pool, trigger_id: uuid.UUID) -> tuple[int, int, int]:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM trigger_events WHERE trigger_id = $1),
                      (SELECT count(*) FROM automation_runs WHERE trigger_id = $1),
                      (SELECT count(*) FROM outbox o JOIN automation_runs r ON r.id = o.run_id
                        WHERE r.trigger_id = $1 AND o.kind = 'enqueue_enrich')""",
            trigger_id,
        )
    assert row is not None
    return row[0], row[1], row[2]


async def test_event_run_and_outbox_once_per_dedup_key(iso_pool: asyncpg.Pool) -> None:
    target = await make_webhook_trigger(iso_pool)
    now = datetime.now(UTC)
    async with iso_pool.acquire() as conn:
        first = await triggers.record_event(conn, target, _ctx(), received_at=now)
        again = await triggers.record_event(conn, target, _ctx(), received_at=now)
    assert first.run_id is not None and not first.duplicate
    assert again.duplicate and again.run_id is None
    assert await _counts(iso_pool, target.id) == (1, 1, 1)


async def test_skipped_event_creates_no_run(iso_pool: asyncpg.Pool) -> None:
    target = await make_webhook_trigger(iso_pool)
    async with iso_pool.acquire() as conn:
        recorded = await triggers.record_event(
            conn, target, _ctx(), received_at=datetime.now(UTC), skip_reason="filter_mismatch"
        )
        status, reason = await conn.fetchrow(
            "SELECT status, skip_reason FROM trigger_events WHERE id = $1", recorded.event_id
        )
    assert recorded.run_id is None and (status, reason) == ("skipped", "filter_mismatch")
    assert await _counts(iso_pool, target.id) == (1, 0, 0)


async def test_dedup_window_lets_an_old_duplicate_through(iso_pool: asyncpg.Pool) -> None:
    target = await make_webhook_trigger(iso_pool)
    start = datetime.now(UTC)
    async with iso_pool.acquire() as conn:
        a = await triggers.record_event(
            conn, target, _ctx("webhook:abc"), received_at=start, dedup_window_seconds=300
        )
        b = await triggers.record_event(
            conn,
            target,
            _ctx("webhook:abc"),
            received_at=start + timedelta(seconds=299),
            dedup_window_seconds=300,
        )
        c = await triggers.record_event(
            conn,
            target,
            _ctx("webhook:abc"),
            received_at=start + timedelta(seconds=301),
            dedup_window_seconds=300,
        )
        # Redelivering the message that opened the new window is a duplicate again.
        d = await triggers.record_event(
            conn,
            target,
            _ctx("webhook:abc"),
            received_at=start + timedelta(seconds=301),
            dedup_window_seconds=300,
        )
    assert a.run_id and b.duplicate and c.run_id and d.duplicate
    assert await _counts(iso_pool, target.id) == (2, 2, 2)


async def test_manual_trigger_is_hidden_and_unique(iso_pool: asyncpg.Pool) -> None:
    org = await make_org(iso_pool)
    auto = await make_automation(iso_pool, org)
    async with iso_pool.acquire() as conn:
        one = await triggers.manual_trigger(conn, org.id, auto.id)
        two = await triggers.manual_trigger(conn, org.id, auto.id)
        listed = await triggers.list_triggers(conn, org.id)
        hidden = await triggers.get_trigger(conn, org.id, one)
    assert one == two and listed == [] and hidden is None


async def test_other_org_sees_nothing(iso_pool: asyncpg.Pool) -> None:
    target = await make_webhook_trigger(iso_pool)
    other = await make_org(iso_pool, "Other")
    async with iso_pool.acquire() as conn:
        await triggers.record_event(conn, target, _ctx(), received_at=datetime.now(UTC))
        assert await triggers.get_trigger(conn, other.id, target.id) is None
        assert await triggers.list_events(conn, other.id, target.id) == []
        assert not await triggers.delete_trigger(conn, other.id, target.id)
        assert len(await triggers.list_events(conn, target.org_id, target.id)) == 1
