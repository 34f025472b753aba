"""The scheduler, in process: a cron schedule fires once per slot with two schedulers
running, missed slots fire once, cron triggers fire, Linear polls keep their cursor."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
import pytest

from actors.scheduler import Scheduler
from core import cron
from core.settings import Settings
from integrations.registry import POLL_TOKEN_PURPOSE
from security.sealing import seal
from store import schedules, triggers
from tests.fakes.linear import FakeLinear
from tests.fixtures.automations import (  # noqa: F401
    Org,
    eventually,
    iso_pool,
    iso_settings,
    make_automation,
    make_org,
)


@pytest.fixture
async def linear() -> AsyncIterator[FakeLinear]:
    """A Linear workspace accepting one OAuth token."""
    async with FakeLinear(tokens=("lin_oauth_test",)) as fake:
        yield fake


@pytest.fixture
async def two_schedulers(
    iso_settings: Settings, linear: FakeLinear
) -> AsyncIterator[list[Scheduler]]:
    """Two schedulers on the same database, as after a failover overlap."""
    settings = msgspec.structs.replace(iso_settings, linear_api_url=linear.url)
    members = [Scheduler(settings, f"test-scheduler-{i}", tick=0.2) for i in range(2)]
    for member in members:
        assert await member.ready(30)
    yield members
    for member in members:
        await member.shutdown()


async def _schedule(pool: asyncpg.Pool, org: Org, expression: str, **fields: object) -> uuid.UUID:
    auto = await make_automation(pool, org)
    values = {
        "cron_expression": expression,
        "timezone": "Europe/Paris",
        "enabled": True,
        "next_run_at": cron.next_slot(expression, "Europe/Paris", datetime.now(UTC)),
        **fields,
    }
    async with pool.acquire() as conn:
        made = await schedules.create_schedule(conn, org.id, org.owner_id, auto.id, values)
    return made.id


async def _fired(pool: asyncpg.Pool, schedule_id: uuid.UUID) -> list[str]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT e.dedup_key FROM trigger_events e
               JOIN schedules s ON s.trigger_id = e.trigger_id
               JOIN automation_runs r ON r.trigger_event_id = e.id
               WHERE s.id = $1 ORDER BY e.dedup_key""",
            schedule_id,
        )
    return [r[0] for r in rows]


async def _disable(pool: asyncpg.Pool, org: Org, schedule_id: uuid.UUID) -> None:
    async with pool.acquire() as conn:
        await schedules.update_schedule(conn, org.id, schedule_id, {"enabled": False})


async def test_each_slot_fires_once_with_two_schedulers(
    two_schedulers: list[Scheduler], iso_pool: asyncpg.Pool
) -> None:
    org = await make_org(iso_pool)
    schedule_id = await _schedule(iso_pool, org, "*/2 * * * * *")  # every 2 s, seconds first
    keys = await eventually(lambda: _count_at_least(iso_pool, schedule_id, 3), within=15)
    await _disable(iso_pool, org, schedule_id)
    keys = await _fired(iso_pool, schedule_id)
    assert len(keys) == len(set(keys)) >= 3
    # Keys end with the slot, e.g. ...T14:20:02Z: only even seconds fire.
    assert all(int(k[-3:-1]) % 2 == 0 for k in keys), keys
    assert sum(m.fired for m in two_schedulers) == len(keys)


async def _two_more_ticks(schedulers: list[Scheduler]) -> None:
    """Barrier: every scheduler finished two more ticks, so any row due before this call
    has been looked at (a tick in flight at the call is the first)."""
    targets = [(m, m.ticks + 2) for m in schedulers]

    async def done() -> bool:
        return all(m.ticks >= n for m, n in targets)

    await eventually(done)
    # Polls run beside the ticks: wait for the ones started meanwhile as well.
    for member in schedulers:
        await asyncio.gather(*member._polling)


async def _count_at_least(pool: asyncpg.Pool, schedule_id: uuid.UUID, n: int) -> list[str]:
    keys = await _fired(pool, schedule_id)
    return keys if len(keys) >= n else []


async def test_missed_slots_fire_once(
    two_schedulers: list[Scheduler], iso_pool: asyncpg.Pool
) -> None:
    org = await make_org(iso_pool)
    # The scheduler was "down" for an hour of a once-a-minute schedule.
    schedule_id = await _schedule(
        iso_pool, org, "* * * * *", next_run_at=datetime.now(UTC) - timedelta(hours=1)
    )
    [key] = await eventually(lambda: _fired(iso_pool, schedule_id))
    await _two_more_ticks(two_schedulers)
    async with iso_pool.acquire() as conn:
        current = await schedules.get_schedule(conn, org.id, schedule_id)
    await _disable(iso_pool, org, schedule_id)
    assert await _fired(iso_pool, schedule_id) == [key]
    latest = cron.latest_slot("* * * * *", "UTC", datetime.now(UTC))
    assert key.endswith(latest.strftime("%Y-%m-%dT%H:%M:%SZ")) or key.endswith(
        (latest - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    assert current is not None and current.next_run_at is not None
    assert current.next_run_at > datetime.now(UTC) and current.last_run_at is not None


async def _trigger_runs(pool: asyncpg.Pool, trigger_id: uuid.UUID) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            """SELECT e.dedup_key, e.parsed_context, r.id AS run_id FROM trigger_events e
               LEFT JOIN automation_runs r ON r.trigger_event_id = e.id
               WHERE e.trigger_id = $1""",
            trigger_id,
        )
    return rows


async def test_cron_trigger_fires(two_schedulers: list[Scheduler], iso_pool: asyncpg.Pool) -> None:
    org = await make_org(iso_pool)
    auto = await make_automation(iso_pool, org)
    async with iso_pool.acquire() as conn:
        made = await triggers.create_trigger(
            conn,
            org.id,
            org.owner_id,
            {
                "automation_id": auto.id,
                "trigger_type": "polling",
                "provider": "scheduled",
                "polling_cron": "* * * * * *",
                "next_fire_at": datetime.now(UTC),
            },
        )
    rows = await eventually(lambda: _trigger_runs(iso_pool, made.id))
    async with iso_pool.acquire() as conn:
        await triggers.update_trigger(conn, org.id, made.id, {"enabled": False})
    ctx = rows[0]["parsed_context"]
    assert rows[0]["run_id"] is not None and ctx["event_type"] == "scheduled_trigger"
    assert ctx["title"] == "Scheduled run" and ctx["scheduled"]["cron_expression"] == "* * * * * *"


async def _linear_trigger(
    pool: asyncpg.Pool, settings: Settings, org: Org, token: str
) -> triggers.Trigger:
    """A Linear trigger of ``org`` polled every second with ``token``, due now."""
    auto = await make_automation(pool, org)
    async with pool.acquire() as conn:
        return await triggers.create_trigger(
            conn,
            org.id,
            org.owner_id,
            {
                "automation_id": auto.id,
                "trigger_type": "polling",
                "provider": "linear",
                "polling_cron": "* * * * * *",
                "next_fire_at": datetime.now(UTC),
                "poll_token_sealed": seal(settings.secret_key, POLL_TOKEN_PURPOSE, token),
            },
        )


async def test_linear_poll_keeps_its_cursor(
    two_schedulers: list[Scheduler],
    iso_pool: asyncpg.Pool,
    iso_settings: Settings,
    linear: FakeLinear,
) -> None:
    org = await make_org(iso_pool)
    made = await _linear_trigger(iso_pool, iso_settings, org, "lin_oauth_test")

    async def cursor() -> str | None:
        async with iso_pool.acquire() as conn:
            value: str | None = await conn.fetchval(
                "SELECT polling_cursor FROM triggers WHERE id = $1", made.id
            )
        return value

    first = await eventually(cursor)  # the first poll only records "now"
    stamp = (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    linear.add_issue(title="Checkout is down", created_at=stamp)
    rows = await eventually(lambda: _trigger_runs(iso_pool, made.id), within=20)
    async with iso_pool.acquire() as conn:
        await triggers.update_trigger(conn, org.id, made.id, {"enabled": False})
    await _two_more_ticks(two_schedulers)
    rows = await _trigger_runs(iso_pool, made.id)
    assert len(rows) == 1 and rows[0]["run_id"] is not None
    assert rows[0]["parsed_context"]["title"].endswith("Checkout is down")
    assert await cursor() != first


async def test_poll_errors_are_recorded_on_the_trigger_and_back_off(
    two_schedulers: list[Scheduler], iso_pool: asyncpg.Pool, iso_settings: Settings
) -> None:
    org = await make_org(iso_pool)
    # Linear refuses this token: every poll fails.
    made = await _linear_trigger(iso_pool, iso_settings, org, "lin_revoked")

    async def failing_twice() -> triggers.Trigger | None:
        async with iso_pool.acquire() as conn:
            found = await triggers.get_trigger(conn, org.id, made.id)
            failures = await conn.fetchval(
                "SELECT consecutive_errors FROM triggers WHERE id = $1", made.id
            )
        return found if found is not None and failures >= 2 else None

    shown = await eventually(failing_twice)
    async with iso_pool.acquire() as conn:
        await triggers.update_trigger(conn, org.id, made.id, {"enabled": False})
    assert shown.last_error is not None and shown.last_error_at is not None
    # Backed off: not due again before 2^n seconds after the last failure.
    assert shown.next_fire_at is not None
    assert shown.next_fire_at >= shown.last_error_at + timedelta(seconds=3)
    stats = [await m.stats() for m in two_schedulers]
    assert sum(s["poll_errors"].get("linear", 0) for s in stats) >= 2
