"""The session actor: one per live session, named ``session:<id>`` in namespace ``warren``.

Ray's named-actor uniqueness makes it the session's single owner (no leases). It is
detached, takes no CPU and restarts forever; everything it holds is rebuilt on start from
Postgres, JetStream and the sandbox (see :mod:`actors.session.core`), and every method is
idempotent, so Ray may retry calls that were in flight when it died. All methods are async
and never block the event loop. Create or find it with :mod:`actors.session_client`.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import ray

from actors.session.core import SessionCore
from actors.session.errors import SessionExiting
from actors.session.git import GitRequest, SessionGit
from actors.session.idle import IdleWatcher
from actors.session.migrate import MigrationWatcher
from actors.session.pause import pause_session
from actors.session.runtime import ProviderFactory
from actors.session.tools import ToolRunner
from core.logs import configure_logging
from core.settings import Settings
from schemas.git import GitResult, GitState
from schemas.sessions import ClientInfo, PauseReason
from schemas.tools import ToolCallResponse, ToolName
from schemas.transcript import MessageSource

EXIT_GRACE_SECONDS = 0.5
"""Delay between a pause's reply and the actor ending."""


@ray.remote
class SessionActor:
    """Owns one session's sandbox, agent event stream, event log writes and tool callbacks."""

    def __init__(
        self,
        session_id: str,
        settings: Settings,
        provider_factory: ProviderFactory | None = None,
    ) -> None:
        configure_logging(settings.log_level, actor=f"session:{session_id}")
        self._core = SessionCore(session_id, settings, provider_factory)
        self._tools = ToolRunner(self._core)
        self._git = SessionGit(self._core)
        # Recovery starts now, not at the first call: after a crash the restarted actor
        # reconnects to its sandbox even if no client calls it.
        self._core.schedule_start()
        self._exit_ref: Any = None
        self._idle = IdleWatcher(self._core, self._tools)
        self._idle.start()
        self._migration = MigrationWatcher(self._core)
        self._migration.start()
        self._core.spawn(self._exit_when_over())

    async def ping(self) -> int:
        """Liveness; returns the actor's process id (benchmarks measure it)."""
        await self._core.started()
        return os.getpid()

    async def client_connected(self, conn_id: str) -> ClientInfo:
        """A WebSocket client joined: count it, and start the runtime in the background."""
        await self._core.started()
        self._refuse_if_exiting()
        self._core.client_connected(conn_id)
        record = self._core.record
        if record is not None and record.status != "stopped":
            self._core.spawn(self._core.ensure_ready_in_background())
        return self._core.info()

    async def client_heartbeat(self, conn_id: str) -> None:
        """The client is still there (sent periodically by the ingress)."""
        await self._core.started()
        self._core.client_connected(conn_id)

    async def heartbeat(self) -> None:
        """Someone uses the session (``POST .../heartbeat``): the idle grace starts over."""
        await self._core.started()
        self._core.touch()

    async def client_disconnected(self, conn_id: str) -> None:
        """A WebSocket client left."""
        await self._core.started()
        self._core.client_disconnected(conn_id)

    async def ensure_runtime_ready(self) -> ClientInfo:
        """Start (or recover) the sandbox, OpenCode session and event stream; wait for it."""
        self._refuse_if_exiting()
        await self._core.ensure_ready()
        return self._core.info()

    async def eager_start(self) -> None:
        """Boot in the background (the initial prompt follows once running)."""
        await self._core.started()
        self._core.spawn(self._core.ensure_ready_in_background())

    async def prompt(
        self,
        message_id: str,
        content: str,
        images: tuple[str, ...] = (),
        sender_id: str | None = None,
        source: MessageSource = "web",
    ) -> str:
        """Broadcast the prompt and send it to the agent; idempotent per ``message_id``."""
        self._refuse_if_exiting()
        self._core.touch()
        return await self._core.prompt(
            message_id, content, images, sender_id=sender_id, source=source
        )

    async def cancel(self) -> bool:
        """Abort the agent's current work."""
        return await self._core.cancel()

    async def get_status(self) -> ClientInfo:
        """The live status."""
        await self._core.started()
        return self._core.info()

    async def rename(self, title: str) -> None:
        """Tell clients about a new title."""
        await self._core.rename(title)

    async def save_snapshot(self) -> ToolCallResponse:
        """A client asked for a snapshot (the result is broadcast as ``snapshot_result``)."""
        await self._core.started()
        try:
            return await self._tools.save_snapshot()
        except Exception as exc:  # reported to clients already; the caller gets the reason
            return ToolCallResponse(success=False, result=f"snapshot failed: {exc}")

    async def tool_call(
        self, tool: ToolName, tool_call_id: str, args: dict[str, Any]
    ) -> ToolCallResponse:
        """Run an agent tool callback once per ``tool_call_id`` (args already validated)."""
        return await self._tools.call(tool, tool_call_id, args)

    async def git_status(self, workspace_path: str | None = None) -> GitState | GitResult:
        """The repo's git state (a failed ``status`` result when it cannot be read)."""
        await self._core.started()
        return await self._git.status(workspace_path)

    async def git_run(self, user_id: str | None, request: GitRequest) -> GitResult:
        """A git mutation for ``user_id`` (only the session's creator may; see session_git)."""
        return await self._git.run(user_id, request)

    async def pause(self, reason: PauseReason = "manual") -> str:
        """Snapshot and stop the sandbox, mark the session paused, then exit this actor.

        Returns the snapshot id. Raises ``NothingToPause`` when there is no sandbox.
        """
        return await pause_session(self._core, reason)

    async def proxy_opened(self, conn_id: str) -> None:
        """A replica has proxy connections to this session (never boots anything)."""
        self._idle.proxy_opened(conn_id)

    async def proxy_closed(self, conn_id: str) -> None:
        """A replica's proxy connections to this session are gone."""
        self._idle.proxy_closed(conn_id)

    async def exit_now(self) -> None:
        """Release everything and end this actor for good; called by the actor itself
        once the session is paused or stopped.

        ``ray.actor.exit_actor()`` is not enough: Ray restarts an actor with
        ``max_restarts=-1`` after it, so the actor kills itself without restart instead.
        """
        # The reply of the call that paused or stopped goes out before this call ends, and
        # calls arriving meanwhile are answered (stopped, exiting) before connections close.
        await asyncio.sleep(EXIT_GRACE_SECONDS)
        await self._tools.close()
        await self._core.close()
        ray.kill(ray.get_runtime_context().current_actor, no_restart=True)

    async def _exit_when_over(self) -> None:
        # A paused or stopped session has no actor: whichever way it got there (a pause,
        # the idle or expiry check, a failed migration, an automation's completion, DELETE).
        try:
            await self._core.started()
        except Exception:  # no session: every call raises SessionGone; the caller kills it
            return
        await self._core.state.wait_for("paused", "stopped")
        self._exit_soon()

    def _exit_soon(self) -> None:
        # exit_actor() must run inside an actor task; a call to ourselves provides one,
        # and the current call still returns its result first.
        me = ray.get_runtime_context().current_actor
        self._exit_ref = me.exit_now.remote()

    def _refuse_if_exiting(self) -> None:
        if self._core.state.exiting:
            raise SessionExiting(self._core.session_id)

    async def terminate(self, reason: str = "manual") -> None:
        """Destroy the sandbox and stop the session; the actor exits afterwards."""
        await self._core.terminate(reason)
