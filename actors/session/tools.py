"""The agent's tool callbacks, run by the session actor exactly once per call id.

Deduplication works on two levels (the sandbox retries a call with the same
``tool_call_id`` on timeouts and 5xx, e.g. across a snapshot's freeze/thaw):

- In the actor: a call in flight is shared (a retry awaits the same future) and its result
  is kept for :data:`CACHE_SECONDS`, keyed ``session:tool:call_id``.
- In Postgres (``session_tool_invocations``, unique per session, tool and call id): a call
  is recorded as executing before it runs and with its response after. A retry that
  reaches a restarted actor gets the stored response, whatever its age, so a completed
  call never runs twice. A call found still ``executing`` was cut short by the old actor
  dying: its caller never got an answer, so the retry runs it again (its ``attempts``
  count shows it).
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from artifacts.store import ArtifactError, ArtifactStore
from sandboxes.errors import SandboxError
from schemas.session_ws import SnapshotResult
from schemas.tools import (
    TOOL_ARGS,
    AutomationCompleteArgs,
    RequestEnvVariablesArgs,
    SaveServiceCommandsArgs,
    SaveSnapshotArgs,
    ToolCallResponse,
    ToolName,
    VerifyArgs,
)
from store import configurations as configurations_store
from store import sessions as session_store
from store import tool_invocations as tool_invocations_store

if TYPE_CHECKING:
    from actors.session.core import SessionCore

log = logging.getLogger(__name__)

CACHE_SECONDS = 300.0
STOP_AFTER_COMPLETION_SECONDS = 2.0
"""Delay before an automation's sandbox is destroyed: the agent gets its tool answer first."""


class ToolFailed(Exception):
    """A tool could not do what it was asked; the message is shown to the agent."""


class ToolRunner:
    """Runs one session's tool callbacks (see the module docstring)."""

    def __init__(self, core: SessionCore) -> None:
        self.core = core
        self._calls: dict[str, tuple[float, asyncio.Future[ToolCallResponse]]] = {}
        self._artifacts: ArtifactStore | None = None
        self._handlers: dict[ToolName, Callable[[Any, str], Awaitable[ToolCallResponse]]] = {
            "verify": self._verify,
            "save_snapshot": self._save_snapshot,
            "save_service_commands": self._save_service_commands,
            "automation_complete": self._automation_complete,
            "request_env_variables": self._request_env_variables,
        }

    def in_flight(self) -> int:
        """Tool callbacks running now (they keep the session from being paused)."""
        return sum(1 for until, _ in self._calls.values() if until == float("inf"))

    def _purge(self) -> None:
        now = time.monotonic()
        for key in [k for k, (until, _) in self._calls.items() if until < now]:
            del self._calls[key]

    async def call(
        self, tool: ToolName, tool_call_id: str, args: dict[str, Any]
    ) -> ToolCallResponse:
        """Run ``tool`` once for ``tool_call_id``; retries get the first call's response."""
        self._purge()
        key = f"{self.core.session_id}:{tool}:{tool_call_id}"
        cached = self._calls.get(key)
        if cached is not None:
            return await asyncio.shield(cached[1])
        future: asyncio.Future[ToolCallResponse] = asyncio.get_event_loop().create_future()
        self._calls[key] = (float("inf"), future)
        try:
            response = await self._call_once(tool, tool_call_id, args)
        except BaseException as exc:
            # Not recorded as done: a retry may run it again.
            del self._calls[key]
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        future.set_result(response)
        self._calls[key] = (time.monotonic() + CACHE_SECONDS, future)
        return response

    async def _call_once(
        self, tool: ToolName, tool_call_id: str, args: dict[str, Any]
    ) -> ToolCallResponse:
        await self.core.started()
        core = self.core
        assert core.pool is not None and core.record is not None
        previous = await tool_invocations_store.begin_tool_invocation(
            core.pool,
            session_id=core.sid,
            org_id=core.record.org_id,
            tool_name=tool,
            tool_call_id=tool_call_id,
            args=args,
        )
        if previous is not None and previous.status in ("completed", "failed"):
            return msgspec.convert(previous.output, ToolCallResponse)
        started = time.monotonic()
        parsed = msgspec.convert(args, TOOL_ARGS[tool])
        try:
            response = await self._handlers[tool](parsed, tool_call_id)
        except ToolFailed as exc:
            response = ToolCallResponse(success=False, result=str(exc))
        except (SandboxError, ArtifactError) as exc:
            response = ToolCallResponse(success=False, result=f"{tool} failed: {exc}")
        await tool_invocations_store.finish_tool_invocation(
            core.pool,
            session_id=core.sid,
            tool_name=tool,
            tool_call_id=tool_call_id,
            output=msgspec.to_builtins(response),
            error=None if response.success else response.result,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        return response

    # -- helpers --------------------------------------------------------------------------

    def _sandbox_id(self) -> str:
        runtime = self.core.runtime
        if runtime is not None and runtime.handle is not None:
            return runtime.handle.sandbox_id
        record = self.core.record
        if record is not None and record.sandbox_id:
            return record.sandbox_id
        raise ToolFailed("the session has no running sandbox")

    def _store(self) -> ArtifactStore:
        if self._artifacts is None:
            # Imported on first use: the S3 client stack costs ~20 MB in every actor.
            from artifacts.factory import artifact_store_from_settings

            self._artifacts = artifact_store_from_settings(self.core.settings)
        return self._artifacts

    async def close(self) -> None:
        """Release the artifact store's connections."""
        if self._artifacts is not None:
            await self._artifacts.close()

    # -- tools ------------------------------------------------------------------------------

    async def _verify(self, args: VerifyArgs, call_id: str) -> ToolCallResponse:
        assert self.core.runtime is not None
        files = await self.core.runtime.provider.read_files(self._sandbox_id(), args.folder)
        if not files:
            raise ToolFailed(f"no files found in {args.folder}")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        prefix = f"sessions/{self.core.session_id}/verification/{stamp}/"
        store = self._store()
        for path, data in sorted(files.items()):
            content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
            await store.put(prefix + path, data, content_type)
        return ToolCallResponse(
            success=True,
            result=f"Uploaded {len(files)} file(s) to {prefix}",
            data={"prefix": prefix, "files": sorted(files)},
        )

    async def save_snapshot(self) -> ToolCallResponse:
        """Snapshot the sandbox: onto the configuration for setup sessions, else the session.

        Broadcasts ``snapshot_result`` either way (also used for clients' save_snapshot).
        """
        core = self.core
        assert core.pool is not None and core.record is not None and core.runtime is not None
        record = core.record
        on_configuration = record.session_type == "setup" and record.configuration_id is not None
        target: Literal["configuration", "session"] = (
            "configuration" if on_configuration else "session"
        )
        try:
            snapshot = await core.runtime.provider.snapshot(self._sandbox_id())
        except (SandboxError, ToolFailed) as exc:
            await core.emit([SnapshotResult(success=False, error=str(exc), target=target)])
            raise
        if on_configuration:
            assert record.configuration_id is not None
            await configurations_store.set_configuration_snapshot(
                core.pool, record.configuration_id, record.org_id, snapshot.snapshot_id
            )
        else:
            await session_store.set_snapshot(core.pool, core.sid, snapshot.snapshot_id)
        await core.emit(
            [SnapshotResult(success=True, snapshot_id=snapshot.snapshot_id, target=target)]
        )
        return ToolCallResponse(
            success=True,
            result=f"Saved snapshot {snapshot.snapshot_id} ({target})",
            data={"snapshotId": snapshot.snapshot_id, "target": target},
        )

    async def _save_snapshot(self, args: SaveSnapshotArgs, call_id: str) -> ToolCallResponse:
        return await self.save_snapshot()

    async def _save_service_commands(
        self, args: SaveServiceCommandsArgs, call_id: str
    ) -> ToolCallResponse:
        core = self.core
        assert core.pool is not None and core.record is not None
        record = core.record
        if record.session_type != "setup":
            raise ToolFailed("save_service_commands is only available in setup sessions")
        if record.configuration_id is None:
            raise ToolFailed("this setup session has no configuration to save commands on")
        commands = [msgspec.to_builtins(c) for c in args.commands]
        await configurations_store.set_service_commands(
            core.pool, record.configuration_id, record.org_id, commands
        )
        return ToolCallResponse(
            success=True,
            result=f"Saved {len(commands)} service command(s)",
            data={"configurationId": str(record.configuration_id), "commandCount": len(commands)},
        )

    async def _automation_complete(
        self, args: AutomationCompleteArgs, call_id: str
    ) -> ToolCallResponse:
        core = self.core
        assert core.pool is not None
        await session_store.record_completion(
            core.pool,
            core.sid,
            completion_id=args.completion_id,
            outcome=args.outcome,
            summary=args.summary_markdown,
        )
        await core.state.note(
            "completed",
            run_id=args.run_id,
            completion_id=args.completion_id,
            outcome=args.outcome,
            summary=args.summary_markdown or None,
        )
        core.spawn(self._stop_after_completion(args))
        return ToolCallResponse(
            success=True,
            result=f"Automation run {args.run_id} completed ({args.outcome}); the session ends.",
            data={"runId": args.run_id, "completionId": args.completion_id},
        )

    async def _stop_after_completion(self, args: AutomationCompleteArgs) -> None:
        await asyncio.sleep(STOP_AFTER_COMPLETION_SECONDS)
        try:
            await self.core.terminate(
                "completed", outcome=args.outcome, summary=args.summary_markdown
            )
        except Exception:
            log.exception("session %s: stopping after completion failed", self.core.session_id)

    async def _request_env_variables(
        self, args: RequestEnvVariablesArgs, call_id: str
    ) -> ToolCallResponse:
        keys = [k.key for k in args.keys]
        # Clients open the env form on this tool's event; the agent's own tool event may not
        # have reached them yet, so the request is broadcast here unless it has.
        await self.core.announce_tool(call_id, "request_env_variables", msgspec.to_builtins(args))
        return ToolCallResponse(
            success=True,
            result=(
                f"Asked the user for {', '.join(keys)}. The values will be written to the "
                "sandbox's env file when the user submits them; do not wait for them now."
            ),
        )
