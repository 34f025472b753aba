"""Migration before sandbox expiry: the session moves to a new sandbox, or pauses.

At ``expires_at - settings.migration_lead_seconds`` of the current sandbox the actor checks
the session (:class:`MigrationWatcher`):

- **Clients attached** (WebSocket clients; an automation session counts as one): migrate.
  Clients see ``status migrating``; prompts sent meanwhile are shown at once but delivered
  after the migration, in order (``SessionCore.prompt_gate``). The agent gets up to
  ``settings.migration_agent_wait_seconds`` to go idle, else its work is aborted. Then the
  secret files are scrubbed, the sandbox snapshotted, a new sandbox booted from the
  snapshot, the row moved to it (compare-and-set on the old sandbox id), the old sandbox
  destroyed and the runtime reconnected (``running``, lifecycle ``migrated``). The next
  check follows the new sandbox's expiry.
- **No clients**: the session is paused (reason ``inactivity``) and the actor exits, as
  after an idle snapshot (:mod:`actors.session.pause`).

A migration that fails before the row moved leaves the session on the old sandbox if it is
still alive (clients get an ``error``; the check is retried after
:data:`RETRY_SECONDS`), else the session is stopped with reason ``error``. Once the row
moved, the new sandbox is the session's: a failed reconnect is reported like any failed
boot, and the next connect or prompt recovers it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import msgspec

from actors.session.errors import NothingToPause
from actors.session.pause import pause_session
from actors.session.runtime import Runtime, sandbox_options
from core.metrics import lifecycle_metrics
from schemas.session_ws import Error, Status
from store import configurations as configurations_store
from store import sessions as session_store

if TYPE_CHECKING:
    from actors.session.core import SessionCore
    from sandboxes.provider import SandboxProvider

log = logging.getLogger(__name__)

RETRY_SECONDS = 30.0
"""After a failed migration or pause, the next attempt waits this long."""
MAX_SLEEP_SECONDS = 5.0
"""The watcher wakes at least this often (a new sandbox brings a new expiry)."""
IDLE_POLL_SECONDS = 0.2
"""How often the agent is checked while a migration waits for it."""
ABORT_WAIT_SECONDS = 5.0
"""How long the agent may take to stop after an abort."""

Decision = Literal["migrate", "pause"]


class MigrationFailed(Exception):
    """A migration step failed; the message is safe to show clients."""


def decide(ws_clients: int, client_type: str) -> Decision:
    """What the expiry check does: migrate with clients attached, else pause.

    An automation session counts as one client (its run is waiting for it).
    """
    clients = ws_clients + (1 if client_type == "automation" else 0)
    return "migrate" if clients > 0 else "pause"


class MigrationWatcher:
    """Runs the expiry check of one session (see the module docstring)."""

    def __init__(self, core: SessionCore) -> None:
        self.core = core
        self._not_before = 0.0
        self._task: asyncio.Task[None] | None = None

    def due_at(self) -> float | None:
        """Wall-clock time of the next check; None without a ready sandbox."""
        runtime = self.core.runtime
        if runtime is None or not runtime.ready or runtime.handle is None:
            return None
        lead = self.core.settings.migration_lead_seconds
        return max(runtime.handle.expires_at - lead, self._not_before)

    def start(self) -> None:
        """Begin watching (once the actor started)."""
        if self._task is None:
            self._task = asyncio.get_event_loop().create_task(self._run())
            self.core.track(self._task)

    async def _run(self) -> None:
        try:
            await self.core.started()
        except Exception:  # no session (deleted): there is nothing to watch
            return
        while True:
            due = self.due_at()
            wait = MAX_SLEEP_SECONDS if due is None else due - time.time()
            if wait > 0:
                await asyncio.sleep(min(wait, MAX_SLEEP_SECONDS))
                continue
            try:
                if await self.check():
                    return
            except Exception:  # the loop must survive anything; the next check retries
                log.exception("session %s: expiry check failed", self.core.session_id)
                self._not_before = time.time() + RETRY_SECONDS

    async def check(self) -> bool:
        """Migrate or pause now; True once the session is paused or stopped (the actor
        then exits on its own)."""
        core = self.core
        if core.state.phase != "running":
            # Booting, migrating, pausing or stopping: check again once that is over.
            await asyncio.sleep(IDLE_POLL_SECONDS)
            return False
        record = core.record
        assert record is not None
        if decide(core.connected_clients(), record.client_type) == "pause":
            try:
                await pause_session(core, "inactivity")
            except NothingToPause:
                return False
            except Exception:
                lifecycle_metrics().migrations.inc(tags={"outcome": "pause_failed"})
                log.warning("session %s: pause before expiry failed", core.session_id)
                self._not_before = time.time() + RETRY_SECONDS
                return False
            lifecycle_metrics().migrations.inc(tags={"outcome": "paused"})
            return True
        outcome = await migrate(core)
        lifecycle_metrics().migrations.inc(tags={"outcome": outcome})
        if outcome == "failed":
            self._not_before = time.time() + RETRY_SECONDS
        return outcome == "stopped"


async def migrate(core: SessionCore) -> Literal["migrated", "failed", "stopped"]:
    """Move the session to a new sandbox booted from a snapshot of the current one."""
    # ``migrating`` is only ever entered with the gate held: whoever gets the gate after a
    # migration (a prompt, a pause) finds it over.
    async with core.prompt_gate:
        if core.state.phase != "running":
            return "failed"  # paused, stopped or re-booting while the gate was busy
        await core.state.to("migrating")
        try:
            await core.emit([Status(status="migrating")])
            return await _migrate(core)
        finally:
            if core.state.at("migrating"):
                # Broke off outside the handled steps: the next connect or prompt re-boots.
                await core.state.to("failed")


async def _migrate(core: SessionCore) -> Literal["migrated", "failed", "stopped"]:
    assert core.pool is not None and core.runtime is not None
    old = core.runtime
    provider = old.provider
    if old.handle is None:
        raise MigrationFailed("the session has no sandbox")
    old_id = old.handle.sandbox_id
    scrubbed = False
    try:
        await _wait_for_agent(core)
        await _env(provider, old_id, "scrub")
        scrubbed = True
        snapshot = await provider.snapshot(old_id)
        await _boot_and_move(core, provider, old_id, snapshot.snapshot_id)
    except Exception as exc:
        return await _failed(core, old, old_id, exc, rescrub=scrubbed)
    # The row names the new sandbox: the old one is done with.
    await old.close()
    core.runtime = Runtime(provider)
    try:
        await provider.terminate(old_id)
    except Exception:  # a leftover is the sweeper's; the session is fine
        log.warning("session %s: terminating the old sandbox failed", core.session_id)
    try:
        # Recovers the new sandbox from the row, reconnects OpenCode and its event stream,
        # says ``running`` and publishes ``migrated`` (migrating -> booting -> running).
        await core.ensure_ready()
    except Exception:
        # Reported by the boot (error status, row failed); a connect or prompt retries.
        log.warning("session %s: reconnecting after migration failed", core.session_id)
        return "failed"
    return "migrated"


async def _wait_for_agent(core: SessionCore) -> None:
    """Let the agent finish for a while, then abort what it still does."""
    if await _idle_within(core, core.settings.migration_agent_wait_seconds):
        return
    await core.cancel()
    await _idle_within(core, ABORT_WAIT_SECONDS)
    # Whatever is still open can't finish in the old sandbox.
    await core.close_open_messages()


async def _idle_within(core: SessionCore, seconds: float) -> bool:
    """Wait up to ``seconds`` for the agent to be idle; True if it is."""
    deadline = time.monotonic() + seconds
    while _agent_busy(core):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(IDLE_POLL_SECONDS)
    return True


def _agent_busy(core: SessionCore) -> bool:
    if core.processor is not None and core.processor.busy:
        return True
    return any(m.tools_running() for m in core.transcript.messages.values())


async def _env(provider: SandboxProvider, sandbox_id: str, verb: str) -> None:
    """``warren env scrub|apply`` in the sandbox (the secret dotenv files)."""
    result = await provider.exec(sandbox_id, ["warren", "env", verb])
    if result.exit_code != 0:
        raise MigrationFailed(f"env {verb} failed (exit {result.exit_code})")


async def _boot_and_move(
    core: SessionCore, provider: SandboxProvider, old_id: str, snapshot_id: str
) -> None:
    """Boot the new sandbox from ``snapshot_id`` and point the row at it."""
    assert core.pool is not None
    record = await session_store.get_session(core.pool, core.sid)
    if record is None or record.status != "running" or record.sandbox_id != old_id:
        raise MigrationFailed("the session changed during the migration")
    configuration = None
    if record.configuration_id is not None:
        configuration = await configurations_store.get_configuration(
            core.pool, record.configuration_id, record.org_id
        )
    opts = msgspec.structs.replace(
        sandbox_options(record, configuration, core.settings),
        snapshot_id=snapshot_id,
        current_sandbox_id=None,
    )
    handle = await provider.ensure_sandbox(opts)
    try:
        moved = await session_store.move_sandbox(
            core.pool,
            core.sid,
            old_sandbox_id=old_id,
            sandbox_id=handle.sandbox_id,
            opencode_url=handle.opencode_url,
            sandbox_agent_url=handle.sandbox_agent_url,
            preview_url=handle.preview_url,
            expires_at=datetime.fromtimestamp(handle.expires_at, UTC),
            snapshot_id=snapshot_id,
        )
        if not moved:
            raise MigrationFailed("the session changed during the migration")
    except BaseException:
        await provider.terminate(handle.sandbox_id)
        raise
    core.record = await session_store.get_session(core.pool, core.sid) or core.record


async def _failed(
    core: SessionCore, old: Runtime, old_id: str, exc: Exception, *, rescrub: bool
) -> Literal["failed", "stopped"]:
    """Stay on the old sandbox if it is alive, else stop the session."""
    log.warning(
        "session %s: migration failed: %s", core.session_id, type(exc).__name__, exc_info=True
    )
    detail = str(exc) if isinstance(exc, MigrationFailed) else type(exc).__name__
    if await old.sandbox_alive():
        if rescrub:
            try:
                await _env(old.provider, old_id, "apply")
            except Exception:
                log.warning("session %s: re-applying secret files failed", core.session_id)
        await core.state.to("running")
        await core.emit(
            [
                Error(message=f"moving to a new sandbox failed: {detail}", code="migration_failed"),
                Status(status="running"),
            ]
        )
        return "failed"
    await core.emit(
        [Error(message=f"moving to a new sandbox failed: {detail}", code="migration_failed")]
    )
    await core.terminate("error")
    return "stopped"
