"""Start the background actors once per cluster: pools, scheduler, lifecycle consumer.

Called by every Serve ingress replica at start-up (``api/app.py`` lifespan, when Ray is
initialized). Actors are *named* ``<nats_prefix>:<role>:<n>`` in namespace ``warren``,
*detached* (they outlive the replica that created them) and created with
``get_if_exists=True``, so however many replicas start, each actor exists once. Ray restarts
a crashed actor (``max_restarts=-1``); its constructor reconnects and resumes the loop,
and JetStream redelivers whatever it had not acked.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from actors.base import BackgroundActor
from actors.lifecycle_consumer import LifecycleConsumer
from actors.outbox import OutboxDispatcher
from actors.runs import RunWorker
from actors.scheduler import Scheduler
from actors.triggers import TriggerWorker
from core.settings import Settings

NAMESPACE = "warren"


@dataclass(frozen=True)
class PoolSizes:
    """How many members each pool has (the scheduler and lifecycle consumer are single)."""

    triggers: int = 2
    runs: int = 2
    outbox: int = 2


def actor_name(settings: Settings, role: str, index: int = 0) -> str:
    """The cluster-wide name of one background actor."""
    return f"{settings.nats_prefix}:{role}:{index}"


def background_roles(sizes: PoolSizes) -> list[tuple[str, type[BackgroundActor], int]]:
    """(role, actor class, count) of every background actor."""
    return [
        ("triggers", TriggerWorker, sizes.triggers),
        ("runs", RunWorker, sizes.runs),
        ("outbox", OutboxDispatcher, sizes.outbox),
        ("scheduler", Scheduler, 1),
        ("lifecycle", LifecycleConsumer, 1),
    ]


def start_actor(cls: type[BackgroundActor], name: str, settings: Settings) -> Any:
    """Get the named background actor, or create it (detached, restarted forever)."""
    import ray

    return (
        ray.remote(cls)
        .options(
            name=name,
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            num_cpus=0,
            max_restarts=-1,
            max_task_retries=-1,
        )
        .remote(settings, name)
    )


def ensure_background_actors(settings: Settings, sizes: PoolSizes | None = None) -> dict[str, Any]:
    """Create any missing background actor; returns handles by name. Idempotent."""
    handles: dict[str, Any] = {}
    for role, cls, count in background_roles(sizes or PoolSizes()):
        for index in range(count):
            name = actor_name(settings, role, index)
            handles[name] = start_actor(cls, name, settings)
    return handles


async def start_background_actors(settings: Settings) -> None:
    """Ensure the background actors from an ingress replica's start-up, when on Ray (a plain
    ASGI server without Ray serves the API only)."""
    import ray

    if ray.is_initialized():
        await asyncio.to_thread(ensure_background_actors, settings)
