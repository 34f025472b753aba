"""Pool metrics on ``/metrics``, read from the cluster's real pools: the trigger pool's lag
while its members are down, then what they consumed and dead-lettered once back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest

from actors.bootstrap import PoolSizes, actor_name
from core.bus import Subjects, connect
from core.settings import Settings
from tests.api.proxy_support import metric_value
from tests.fixtures.automations import (
    eventually,
    replace_background_actors,
    stop_background_actors,
)


@pytest.fixture
async def triggers_down(settings: Settings, http: aiohttp.ClientSession) -> AsyncIterator[None]:
    """The cluster's trigger pool stopped for the test (messages wait in JetStream), once
    its durable consumer exists (reported at all)."""

    async def reported() -> bool:
        async with http.get("/metrics") as resp:
            text = await resp.text()
        return 'warren_pool_pending_messages{consumer="trigger-pool"}' in text

    await eventually(reported, within=60)
    await stop_background_actors(settings, ("triggers",))
    try:
        yield
    finally:
        await replace_background_actors(settings, settings, ("triggers",))


async def _consumed(http: aiohttp.ClientSession, settings: Settings) -> float:
    return sum(
        [
            await metric_value(
                http,
                "warren_pool_consumed_total",
                consumer="trigger-pool",
                member=actor_name(settings, "triggers", i),
            )
            for i in range(PoolSizes().triggers)
        ]
    )


async def test_lag_consumed_and_dead_lettered(
    http: aiohttp.ClientSession, settings: Settings, triggers_down: None
) -> None:
    dead = "warren_pool_dead_lettered_total"
    before = await metric_value(http, dead, consumer="trigger-pool", reason="unknown_trigger")
    subjects = Subjects(settings.nats_prefix)
    nc = await connect(settings.nats_url, name="test-pool-metrics")
    try:
        for _ in range(2):
            subject = subjects.trigger_events(f"custom.{uuid.uuid4()}")
            await nc.jetstream().publish(subject, b'{"title": "nobody listens"}')
    finally:
        await nc.close()
    lag = await metric_value(http, "warren_pool_pending_messages", consumer="trigger-pool")
    assert lag >= 2
    assert await metric_value(http, "warren_pool_pending_messages", consumer="run-pool") >= 0

    await replace_background_actors(settings, settings, ("triggers",))

    async def drained() -> bool:
        pending = await metric_value(http, "warren_pool_pending_messages", consumer="trigger-pool")
        parked = await metric_value(http, dead, consumer="trigger-pool", reason="unknown_trigger")
        return pending == 0 and parked == before + 2

    await eventually(drained, within=90)
    assert await _consumed(http, settings) >= 2  # the fresh members settled both
    async with http.get("/metrics") as resp:
        text = await resp.text()
    assert 'warren_outbox_rows{status="pending"}' in text
