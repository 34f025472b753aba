"""Outbox SQL: SKIP LOCKED claims, backoff, attempts, stuck recovery, the side-effect ledger."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from core.backoff import exponential_delay
from store import outbox
from tests.fixtures.automations import iso_pool, iso_settings, make_org  # noqa: F401


async def _rows(pool: asyncpg.Pool, org_id: uuid.UUID, n: int) -> list[int]:
    async with pool.acquire() as conn:
        return [
            await outbox.enqueue(conn, org_id, None, "enqueue_enrich", {"run_id": str(i)})
            for i in range(n)
        ]


async def _park(pool: asyncpg.Pool, keep: list[int]) -> None:
    """Take every other pending row out of the way (tests share the database)."""
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE outbox SET status = 'dispatched' WHERE status = 'pending'"
            " AND NOT (id = ANY($1::bigint[]))",
            keep,
        )


async def test_concurrent_claims_never_overlap(iso_pool: asyncpg.Pool) -> None:
    org = await make_org(iso_pool)
    ids = await _rows(iso_pool, org.id, 300)
    await _park(iso_pool, ids)

    async def claimer(name: str) -> list[int]:
        got: list[int] = []
        while True:
            async with iso_pool.acquire() as conn:
                rows = await outbox.claim_due(conn, name, 7)
            if not rows:
                return got
            got.extend(r.id for r in rows)

    results = await asyncio.gather(*(claimer(f"w{i}") for i in range(4)))
    claimed = [i for got in results for i in got]
    assert sorted(claimed) == sorted(ids)  # every row once, none twice


async def test_failed_attempts_back_off_then_fail(iso_pool: asyncpg.Pool) -> None:
    org = await make_org(iso_pool)
    [row_id] = await _rows(iso_pool, org.id, 1)
    await _park(iso_pool, [row_id])
    delays = []
    for attempt in range(5):
        async with iso_pool.acquire() as conn:
            await conn.execute("UPDATE outbox SET available_at = now() WHERE id = $1", row_id)
            [row] = await outbox.claim_due(conn, "w", 50)
            assert row.id == row_id and row.attempts == attempt
            status = await outbox.mark_failed_attempt(conn, row_id, "w", "boom")
            delay = await conn.fetchval(
                "SELECT extract(epoch FROM available_at - now()) FROM outbox WHERE id = $1",
                row_id,
            )
        delays.append(round(float(delay) / 10) * 10)
        assert status == ("failed" if attempt == 4 else "pending")
    assert delays[:4] == [30, 60, 120, 240] and delays[4] == 300
    # The SQL applies the same formula as core.backoff.
    base, cap = outbox.BACKOFF_BASE_SECONDS, outbox.BACKOFF_CAP_SECONDS
    assert delays == [exponential_delay(n, base, cap) for n in range(5)]


async def test_permanent_errors_fail_at_once(iso_pool: asyncpg.Pool) -> None:
    org = await make_org(iso_pool)
    [row_id] = await _rows(iso_pool, org.id, 1)
    await _park(iso_pool, [row_id])
    async with iso_pool.acquire() as conn:
        await outbox.claim_due(conn, "w", 50)
        assert await outbox.mark_failed_attempt(conn, row_id, "w", "bad", permanent=True) == (
            "failed"
        )
        # A worker that lost the row cannot settle it.
        assert await outbox.mark_failed_attempt(conn, row_id, "w", "bad") is None


async def test_stuck_rows_are_recovered_as_an_attempt(iso_pool: asyncpg.Pool) -> None:
    org = await make_org(iso_pool)
    [row_id] = await _rows(iso_pool, org.id, 1)
    await _park(iso_pool, [row_id])
    async with iso_pool.acquire() as conn:
        await outbox.claim_due(conn, "dead-worker", 50)
        assert await outbox.recover_stuck(conn, stuck_after=300) == 0
        await conn.execute(
            "UPDATE outbox SET claimed_at = now() - interval '301 seconds' WHERE id = $1", row_id
        )
        assert await outbox.recover_stuck(conn, stuck_after=300) == 1
        # The dead worker's late acknowledgement is ignored; a live worker takes the row.
        assert await outbox.mark_dispatched(conn, [row_id], "dead-worker") == 0
        [row] = await outbox.claim_due(conn, "live-worker", 50)
        assert row.id == row_id and row.attempts == 1
        assert await outbox.mark_dispatched(conn, [row_id], "live-worker") == 1
        settled = await outbox.get_row(conn, row_id)
    assert settled is not None and settled.status == "dispatched"


async def test_side_effect_is_recorded_once(iso_pool: asyncpg.Pool) -> None:
    org = await make_org(iso_pool)
    args = {
        "org_id": org.id,
        "run_id": None,
        "effect_id": f"slack:{uuid.uuid4()}",
        "kind": "notify_run_terminal",
        "provider": "slack",
        "request_hash": "h",
    }
    async with iso_pool.acquire() as conn:
        assert await outbox.begin_side_effect(conn, **args)  # type: ignore[arg-type]
        assert not await outbox.begin_side_effect(conn, **args)  # type: ignore[arg-type]
        await outbox.forget_side_effect(conn, org.id, str(args["effect_id"]))
        assert await outbox.begin_side_effect(conn, **args)  # type: ignore[arg-type]
        await outbox.complete_side_effect(conn, org.id, str(args["effect_id"]), {"ts": "1"})
        await outbox.forget_side_effect(conn, org.id, str(args["effect_id"]))  # completed: kept
        assert not await outbox.begin_side_effect(conn, **args)  # type: ignore[arg-type]
