"""The base of Warren's background actors: own connections, one supervised main loop.

A subclass implements :meth:`BackgroundActor.main`. The constructor schedules
``open → on_start → main`` on the actor's event loop, so an actor Ray restarts after a
crash resumes on its own (Ray re-runs only ``__init__``). Classes stay plain Python: they
are wrapped with ``ray.remote`` in :mod:`actors.bootstrap`, and tests may run them in
process.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from core.bus import Subjects, connect
from core.db import create_pool
from core.logs import configure_logging
from core.settings import Settings

log = logging.getLogger(__name__)
SHUTDOWN_WAIT_SECONDS = 5.0
"""How long :meth:`shutdown` waits for the member's loop to end at each step."""


@dataclass
class Resources:
    """Connections of one background actor."""

    pool: asyncpg.Pool
    nats: NATS
    js: JetStreamContext
    subjects: Subjects

    async def close(self) -> None:
        """Close NATS (unacked messages are redelivered) and the pool."""
        if not self.nats.is_closed:
            await self.nats.close()
        await self.pool.close()


async def open_resources(settings: Settings, name: str, *, db_max: int = 3) -> Resources:
    """Connect to Postgres and NATS. Streams are declared by the API at start-up (the
    bootstrap runs after it); consumers retry until their stream exists."""
    pool = await create_pool(settings.database_url, min_size=1, max_size=db_max)
    try:
        nc = await connect(settings.nats_url, name=name, credentials=settings.nats_credentials_pool)
    except BaseException:
        await pool.close()
        raise
    return Resources(pool=pool, nats=nc, js=nc.jetstream(), subjects=Subjects(settings.nats_prefix))


class BackgroundActor(abc.ABC):
    """Opens its resources, then runs :meth:`main` forever (restarted after a failure)."""

    db_max = 3

    def __init__(self, settings: Settings, name: str) -> None:
        configure_logging(settings.log_level, actor=name)
        self.settings = settings
        self.name = name
        self._res: Resources | None = None
        self._ready = asyncio.Event()
        self.last_error: str | None = None
        self._task = asyncio.get_running_loop().create_task(self._supervise())

    @property
    def res(self) -> Resources:
        """The open resources (only valid once :meth:`ready` returned True)."""
        assert self._res is not None, "resources are not open yet"
        return self._res

    async def _supervise(self) -> None:
        while self._res is None:
            try:
                self._res = await open_resources(self.settings, self.name, db_max=self.db_max)
            except Exception as exc:  # Postgres or NATS not up yet: try again
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("%s: cannot connect yet: %s", self.name, self.last_error)
                await asyncio.sleep(1.0)
        while True:
            try:
                await self.on_start()
                self._ready.set()
                await self.main()
            except Exception as exc:  # main loops never end; restart after a pause
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("%s: main loop failed", self.name)
            await asyncio.sleep(1.0)

    async def on_start(self) -> None:
        """Run once resources are open, before :meth:`main` (and after each restart of it)."""
        log.info("%s: connected", self.name)

    @abc.abstractmethod
    async def main(self) -> None:
        """The actor's work; should not return."""

    async def ready(self, within: float = 30.0) -> bool:
        """Wait up to ``within`` seconds until the actor is connected and started."""
        try:
            await asyncio.wait_for(self._ready.wait(), within)
        except TimeoutError:
            return False
        return True

    async def status(self) -> dict[str, Any]:
        """Name, readiness and last error (for health checks and tests)."""
        return {"name": self.name, "ready": self._ready.is_set(), "last_error": self.last_error}

    async def shutdown(self) -> None:
        """Stop the loop and close connections (tests running actors in process)."""
        self._task.cancel()
        # A NATS call may outlive the cancellation (seen once in a full test run); closing
        # the connections below ends it, so wait only briefly here.
        await asyncio.wait({self._task}, timeout=SHUTDOWN_WAIT_SECONDS)
        if self._res is not None:
            await self._res.close()
            self._res = None
        await asyncio.wait({self._task}, timeout=SHUTDOWN_WAIT_SECONDS)
