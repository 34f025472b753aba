"""Reads the pools' figures for ``/metrics``: what each live member settled (asked of the
actor by name), the dead letters and outbox rows in Postgres, and each durable consumer's
lag in JetStream. Called by the ingress before each scrape; a part that cannot be read in
time is left out of that scrape rather than failing it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from nats.js import JetStreamContext

from actors import lifecycle_consumer, runs, triggers
from actors.bootstrap import NAMESPACE, PoolSizes, actor_name
from actors.pool import PoolStats
from core.bus import Subjects
from core.metrics import POOL_METRICS, PoolSnapshot
from core.settings import Settings
from store import dead_letters, outbox

CALL_TIMEOUT_SECONDS = 2.0
_SPECS = (triggers.consumer_spec, runs.consumer_spec, lifecycle_consumer.consumer_spec)


def _members(settings: Settings) -> list[str]:
    sizes = PoolSizes()
    return [
        *(actor_name(settings, "triggers", i) for i in range(sizes.triggers)),
        *(actor_name(settings, "runs", i) for i in range(sizes.runs)),
        actor_name(settings, "lifecycle"),
    ]


async def _member_stats(name: str) -> PoolStats | None:
    import ray

    def lookup() -> Any:
        return ray.get_actor(name, namespace=NAMESPACE)

    try:
        handle = await asyncio.to_thread(lookup)
        stats: PoolStats = await asyncio.wait_for(handle.pool_stats.remote(), CALL_TIMEOUT_SECONDS)
    except Exception:  # not started, restarting, or busy: missing from this scrape
        return None
    return stats


async def _consumed(settings: Settings) -> dict[tuple[str, str], int]:
    import ray

    if not ray.is_initialized():
        return {}
    names = _members(settings)
    found = await asyncio.gather(*(_member_stats(n) for n in names))
    return {(s.consumer, n): s.consumed for n, s in zip(names, found, strict=True) if s}


async def _lag(js: JetStreamContext, subjects: Subjects) -> tuple[dict[str, int], dict[str, int]]:
    pending: dict[str, int] = {}
    ack_pending: dict[str, int] = {}
    for make in _SPECS:
        spec = make(subjects)
        try:
            info = await js.consumer_info(spec.stream, spec.durable, timeout=CALL_TIMEOUT_SECONDS)
        except Exception:  # the consumer does not exist yet (no member started)
            continue
        pending[spec.durable] = info.num_pending or 0
        ack_pending[spec.durable] = info.num_ack_pending or 0
    return pending, ack_pending


async def refresh_pool_metrics(
    pool: asyncpg.Pool, js: JetStreamContext, subjects: Subjects, settings: Settings
) -> None:
    """Read every pool figure now and hand them to the ``/metrics`` collector."""
    consumed, (pending, ack_pending) = await asyncio.gather(_consumed(settings), _lag(js, subjects))
    try:
        async with pool.acquire(timeout=CALL_TIMEOUT_SECONDS) as conn:
            dead = await dead_letters.counts(conn)
            rows = await outbox.status_counts(conn)
    except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
        logging.getLogger(__name__).warning("pool metrics: Postgres unreadable: %s", exc)
        dead, rows = {}, {}
    POOL_METRICS.update(
        PoolSnapshot(
            consumed=consumed,
            dead_lettered=dead,
            pending=pending,
            ack_pending=ack_pending,
            outbox=rows,
        )
    )
