"""Open proxy connections per session on this replica, and telling the session actor.

Proxy connections (HTTP exchanges in flight, WebSockets) count as activity and block the
idle snapshot. The replica counts them per session and exports the totals per target as
the ``warren_proxy_connections`` gauge. Towards the session actor the replica acts as one
connection per session (id ``proxy:<replica id>``), so a burst of requests from a preview
page costs two actor calls, not two per request:

- ``proxy_opened(conn_id)`` when the session's count leaves 0, and again every
  :data:`HEARTBEAT_SECONDS` while it stays above 0 (the actor may forget a connection it
  has not heard from for a while, as it does with WebSocket clients, so a replica that
  died never pins a session);
- ``proxy_closed(conn_id)`` once the count has stayed at 0 for :data:`LINGER_SECONDS`.

Calls are made only if the actor is alive and has these methods (looked up, never
created); failures are logged and never affect the proxied traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from core.metrics import PROXY_CONNECTIONS

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0
LINGER_SECONDS = 5.0
LOOKUP_MISS_SECONDS = 15.0
"""How long a failed actor lookup is remembered (a preview page loads many assets)."""
OPENED, CLOSED = "proxy_opened", "proxy_closed"

Lookup = Callable[[str], Awaitable[Any | None]]
Call = Callable[[Any, str, str], Awaitable[None]]


async def _ray_lookup(session_id: str) -> Any | None:
    import ray

    if not ray.is_initialized():  # a plain ASGI server without Ray: there are no actors
        return None
    from actors.session_client import existing_session_actor

    return await existing_session_actor(session_id)


async def _ray_call(handle: Any, method: str, conn_id: str) -> None:
    await getattr(handle, method).remote(conn_id)


class ProxyActivity:
    """Counts open proxy connections per session and keeps the session actor informed."""

    def __init__(
        self,
        lookup: Lookup = _ray_lookup,
        call: Call = _ray_call,
        *,
        heartbeat: float = HEARTBEAT_SECONDS,
        linger: float = LINGER_SECONDS,
    ) -> None:
        self.conn_id = f"proxy:{uuid.uuid4().hex}"
        self._lookup = lookup
        self._call = call
        self._heartbeat = heartbeat
        self._linger = linger
        self._counts: dict[str, int] = {}
        self._changed: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._misses: dict[str, float] = {}

    def count(self, session_id: str) -> int:
        """Open proxy connections of ``session_id`` on this replica."""
        return self._counts.get(session_id, 0)

    def opened(self, session_id: str, target: str) -> Callable[[], None]:
        """Count a new connection; returns its release function (idempotent)."""
        self._counts[session_id] = self.count(session_id) + 1
        PROXY_CONNECTIONS.labels(target).inc()
        self._signal(session_id)
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            PROXY_CONNECTIONS.labels(target).dec()
            left = self.count(session_id) - 1
            if left > 0:
                self._counts[session_id] = left
            else:
                self._counts.pop(session_id, None)
            self._signal(session_id)

        return release

    def _signal(self, session_id: str) -> None:
        event = self._changed.setdefault(session_id, asyncio.Event())
        event.set()
        if session_id not in self._tasks:
            task = asyncio.get_running_loop().create_task(self._follow(session_id))
            self._tasks[session_id] = task

    async def _wait_change(self, session_id: str, seconds: float) -> None:
        event = self._changed[session_id]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()
        event.clear()

    async def _handle(self, session_id: str) -> Any | None:
        missed = self._misses.get(session_id)
        if missed is not None and time.monotonic() - missed < LOOKUP_MISS_SECONDS:
            return None
        try:
            handle = await self._lookup(session_id)
        except Exception:
            log.debug("session actor lookup failed", exc_info=True)
            handle = None
        if handle is None or not (hasattr(handle, OPENED) and hasattr(handle, CLOSED)):
            self._misses[session_id] = time.monotonic()
            return None
        self._misses.pop(session_id, None)
        return handle

    async def _tell(self, handle: Any, method: str, session_id: str) -> None:
        try:
            await self._call(handle, method, self.conn_id)
        except Exception:
            log.debug("session %s: %s failed", session_id, method, exc_info=True)

    async def _follow(self, session_id: str) -> None:
        """One task per session while it has (or just had) connections here."""
        try:
            handle = await self._handle(session_id)
            announced_at: float | None = None
            while True:
                if self.count(session_id) > 0:
                    now = time.monotonic()
                    if handle and (announced_at is None or now - announced_at >= self._heartbeat):
                        await self._tell(handle, OPENED, session_id)
                        announced_at = now
                    await self._wait_change(session_id, self._heartbeat)
                    continue
                await self._wait_change(session_id, self._linger)
                if self.count(session_id) > 0:
                    continue
                if handle and announced_at is not None:
                    await self._tell(handle, CLOSED, session_id)
                    announced_at = None
                if self.count(session_id) == 0:
                    return
        finally:
            # No await between the last check and here: a new connection either saw this
            # task and signalled it, or sees no task and starts a new one.
            self._tasks.pop(session_id, None)
            if session_id not in self._counts:
                self._changed.pop(session_id, None)


_activity: ProxyActivity | None = None


def proxy_activity() -> ProxyActivity:
    """This replica's tracker."""
    global _activity
    if _activity is None:
        _activity = ProxyActivity()
    return _activity
