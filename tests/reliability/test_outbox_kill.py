"""An outbox dispatcher killed mid-batch: no side effect happens twice.

Two production dispatchers (``actors.outbox.OutboxDispatcher`` as restartable Ray actors,
as actors.bootstrap starts them, with a short stuck-row horizon) on a database and NATS
prefix of their own deliver the notifications of terminal runs to the Slack fake. The
fake holds every post until the test lets go, so the dispatcher holding the most rows is
killed (and restarted by Ray) while its batch is in flight: its Slack calls started, its
rows still ``processing``. Its rows are then recovered and dispatched again. Every run's
notification is posted at most once; one that never arrived is one whose outcome the kill
left unknown (recorded ``started``), never one simply lost; and every row settles.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
import ray
from aiohttp import web

from actors.bootstrap import NAMESPACE
from actors.outbox import OutboxDispatcher
from core.settings import Settings
from tests.actors.test_outbox import TOKEN, _terminal_run
from tests.fakes.slack import FakeSlack
from tests.fixtures.automations import (  # noqa: F401
    eventually,
    iso_pool,
    iso_settings,
)

RUNS = 24
STUCK_AFTER = 3.0


class HeldSlack(FakeSlack):
    """The Slack fake, holding every ``chat.postMessage`` until :attr:`gate` opens."""

    def __init__(self) -> None:
        super().__init__(tokens=(TOKEN,), channels=("C0RUNS",))
        self.gate = asyncio.Event()
        self.arrived = 0

    async def _post_message(self, request: web.Request) -> web.Response:
        self.arrived += 1
        await self.gate.wait()
        return await super()._post_message(request)


@pytest.fixture
async def slack() -> AsyncIterator[HeldSlack]:
    """The held Slack workspace (released at the end in any case)."""
    async with HeldSlack() as fake:
        try:
            yield fake
        finally:
            fake.gate.set()


async def _terminal_runs(pool: asyncpg.Pool, settings: Settings, count: int) -> list[uuid.UUID]:
    """``count`` succeeded runs, each with a Slack notification in the outbox."""
    return [(await _terminal_run(pool, settings))[1] for _ in range(count)]


def _start(name: str, settings: Settings) -> Any:
    return (
        ray.remote(OutboxDispatcher)
        .options(name=name, namespace=NAMESPACE, num_cpus=0, max_restarts=-1)
        .remote(settings, name, stuck_after=STUCK_AFTER, poll_interval=0.2)
    )


async def test_dispatcher_killed_mid_batch_posts_nothing_twice(
    ray_cluster: None,
    iso_settings: Settings,
    iso_pool: asyncpg.Pool,
    slack: HeldSlack,
    tmp_path: Path,
) -> None:
    settings = msgspec.structs.replace(
        iso_settings, slack_api_url=f"{slack.url}/api", data_dir=str(tmp_path)
    )
    run_ids = await _terminal_runs(iso_pool, settings, RUNS)
    names = [
        f"{settings.nats_prefix}:reliability-outbox:{i}:{uuid.uuid4().hex[:6]}" for i in (0, 1)
    ]
    handles = {name: _start(name, settings) for name in names}
    try:
        # Mid-batch: a dispatcher holds claimed rows while its Slack calls are in flight.
        async def busiest() -> asyncpg.Record | None:
            if not slack.arrived:
                return None
            return await iso_pool.fetchrow(
                """SELECT claimed_by, count(*) AS held FROM outbox
                   WHERE status = 'processing' AND kind = 'notify_run_terminal'
                   GROUP BY claimed_by ORDER BY count(*) DESC LIMIT 1"""
            )

        victim = await eventually(busiest, within=60)
        in_flight = slack.arrived
        ray.kill(handles[victim["claimed_by"]], no_restart=False)
        slack.gate.set()

        async def settled() -> bool:
            left = await iso_pool.fetchval(
                "SELECT count(*) FROM outbox WHERE status IN ('pending', 'processing')"
            )
            return bool(left == 0)

        await eventually(settled, within=120)
    finally:
        for handle in handles.values():
            ray.kill(handle, no_restart=True)

    rows = await iso_pool.fetch(
        "SELECT kind, status, attempts FROM outbox WHERE kind = 'notify_run_terminal'"
    )
    assert len(rows) == RUNS
    assert {r["status"] for r in rows} == {"dispatched"}
    # The killed dispatcher's rows went round again...
    assert sum(1 for r in rows if r["attempts"] > 0) >= victim["held"]
    # ...and still no run was announced twice.
    posts = {run_id: 0 for run_id in run_ids}
    for message in slack.messages:
        text = json.dumps(message)
        for run_id in run_ids:
            if str(run_id) in text:
                posts[run_id] += 1
    assert max(posts.values()) == 1, posts
    effects = {
        r["run_id"]: r["status"]
        for r in await iso_pool.fetch(
            "SELECT run_id, status FROM automation_side_effects WHERE kind = 'notify_run_terminal'"
        )
    }
    assert set(effects) == set(run_ids)
    # A run without a post is one whose call the kill cut off (outcome unknown), no other.
    missing = [run_id for run_id, n in posts.items() if n == 0]
    assert all(effects[run_id] == "started" for run_id in missing)
    assert len(missing) <= in_flight
    assert sum(posts.values()) + len(missing) == RUNS
