"""The idle snapshot: a session nobody uses is paused and its actor exits.

Every ``settings.idle_check_seconds`` the actor checks the predicate: a sandbox is up, no
WebSocket client, no proxy connection, no tool callback in flight, no tool running, the
agent idle, no migration, and the grace period (``idle_grace_web_seconds``, or
``idle_grace_automation_seconds`` for automation and Slack sessions) elapsed since the last
activity. Then the session is paused with reason ``inactivity`` (:mod:`actors.session.pause`)
and the actor exits. After :data:`MAX_FAILURES` failed attempts in a row the session is
stopped with reason ``auto_pause_failed``.

Proxy connections: each ingress replica reports itself as one connection per session
(``proxy_opened`` when it has some, again every 30 s while it does; ``proxy_closed`` when
they are gone; see :mod:`api.proxy_activity`). One not heard from for
:data:`PROXY_TTL_SECONDS` no longer counts, so a replica that died never pins a session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from actors.session.errors import NothingToPause
from actors.session.pause import current_sandbox_id, pause_session
from core.metrics import lifecycle_metrics

if TYPE_CHECKING:
    from actors.session.core import SessionCore
    from actors.session.tools import ToolRunner

log = logging.getLogger(__name__)

PROXY_TTL_SECONDS = 90.0
"""A proxy connection not refreshed for this long is forgotten (3 missed heartbeats)."""
MAX_FAILURES = 3
"""Failed idle snapshots in a row before the session is stopped (auto_pause_failed)."""
_AUTOMATION_CLIENTS = ("automation", "slack")


class IdleWatcher:
    """Tracks proxy connections and pauses the session once it is idle."""

    def __init__(self, core: SessionCore, tools: ToolRunner) -> None:
        self.core = core
        self.tools = tools
        self.proxies: dict[str, float] = {}
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

    # -- proxy connections ---------------------------------------------------------------

    def proxy_opened(self, conn_id: str) -> None:
        """A replica has proxy connections to this session (or still has them)."""
        self.proxies[conn_id] = time.monotonic()
        self.core.touch()

    def proxy_closed(self, conn_id: str) -> None:
        """A replica's proxy connections to this session are gone."""
        self.proxies.pop(conn_id, None)
        self.core.touch()

    def proxy_connections(self) -> int:
        """Replicas with proxy connections heard from recently."""
        horizon = time.monotonic() - PROXY_TTL_SECONDS
        for conn_id in [c for c, seen in self.proxies.items() if seen < horizon]:
            del self.proxies[conn_id]
        return len(self.proxies)

    # -- the predicate -------------------------------------------------------------------

    def grace_seconds(self) -> float:
        """Inactivity needed before an idle snapshot, by the session's client type."""
        record = self.core.record
        settings = self.core.settings
        if record is not None and record.client_type in _AUTOMATION_CLIENTS:
            return settings.idle_grace_automation_seconds
        return settings.idle_grace_web_seconds

    def blocker(self) -> str | None:
        """Why the session is not idle now (None: it is)."""
        core = self.core
        phase = core.state.phase
        if core.state.ending:
            return "exiting"
        if phase == "migrating":
            return "migrating"
        if current_sandbox_id(core) is None:
            return "no sandbox"
        if phase == "booting":
            return "booting"
        if core.connected_clients():
            return "clients"
        if self.proxy_connections():
            return "proxy"
        if self.tools.in_flight():
            return "tool callback"
        if core.processor is not None and core.processor.busy:
            return "agent busy"
        if any(m.tools_running() for m in core.transcript.messages.values()):
            return "tool running"
        if core.idle_seconds() < self.grace_seconds():
            return "grace"
        return None

    # -- the loop ------------------------------------------------------------------------

    def start(self) -> None:
        """Begin checking (once the actor started)."""
        if self._task is None:
            self._task = asyncio.get_event_loop().create_task(self._run())
            self.core.track(self._task)

    async def _run(self) -> None:
        try:
            await self.core.started()
        except Exception:  # no session (deleted): there is nothing to watch
            return
        while True:
            await asyncio.sleep(self.core.settings.idle_check_seconds)
            try:
                if await self.check():
                    return
            except Exception:  # the loop must survive anything; the next check retries
                log.exception("session %s: idle check failed", self.core.session_id)

    async def check(self) -> bool:
        """Pause the session if it is idle; True once it is paused or stopped (the actor
        then exits on its own)."""
        if self.blocker() is not None:
            return False
        try:
            await pause_session(self.core, "inactivity")
        except NothingToPause:
            return False
        except Exception:
            self.failures += 1
            lifecycle_metrics().idle_snapshots.inc(tags={"outcome": "failed"})
            log.warning(
                "session %s: idle snapshot failed (%d/%d)",
                self.core.session_id,
                self.failures,
                MAX_FAILURES,
                exc_info=True,
            )
            if self.failures < MAX_FAILURES:
                return False
            lifecycle_metrics().idle_snapshots.inc(tags={"outcome": "gave_up"})
            await self.core.terminate("auto_pause_failed")
            return True
        self.failures = 0
        lifecycle_metrics().idle_snapshots.inc(tags={"outcome": "ok"})
        return True
