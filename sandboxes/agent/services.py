"""The service manager: named long-running commands, each detached in its own session.

A service runs ``bash -c COMMAND`` in a new session (so its pid is its process-group and
session id), with stdout and stderr in ``$WARREN_STATE_DIR/services/NAME.log`` (truncated at each
start). Starting a name that exists first stops the old tree. Stopping sends SIGTERM to the whole
tree, then SIGKILL after a grace period. A process that exits on its own is ``stopped`` with code
0 and ``error`` otherwise; one we stopped is ``stopped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandboxes.agent.http import ApiError
from sandboxes.agent.paths import relative_to_workspace, resolve_in_workspace
from sandboxes.agent.procs import session_members, terminate_session
from schemas.agent import ServiceInfo, ServiceStatus, StartServiceRequest

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def validate_name(name: str) -> str:
    """Service names double as log file names: letters, digits, ``_ . -``, at most 64."""
    if not _NAME.fullmatch(name):
        raise ApiError(
            400,
            "invalid_name",
            "service name must be 1-64 of letters, digits, '_', '.', '-' (not starting with one "
            "of '_.-')",
            "name",
        )
    return name


@dataclass
class _Run:
    """One start of a service; a restart makes a new _Run."""

    name: str
    command: str
    cwd: str
    process: asyncio.subprocess.Process
    started_at: float
    status: ServiceStatus = "running"
    exit_code: int | None = None
    stopping: bool = False
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)

    def info(self) -> ServiceInfo:
        """The wire view of this run."""
        return ServiceInfo(
            name=self.name,
            command=self.command,
            cwd=self.cwd,
            status=self.status,
            pid=self.process.pid,
            started_at=self.started_at,
            exit_code=self.exit_code,
        )


class ServiceManager:
    """Starts, tracks and stops the sandbox's services."""

    def __init__(self, workspace: Path, state_dir: Path, grace_seconds: float) -> None:
        self._workspace = workspace
        self._log_dir = state_dir / "services"
        self._grace = grace_seconds
        self._runs: dict[str, _Run] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._shell = shutil.which("bash") or "/bin/sh"

    def log_path(self, name: str) -> Path:
        """Where service ``name`` writes its output."""
        return self._log_dir / f"{validate_name(name)}.log"

    def is_running(self, name: str) -> bool:
        """True while the latest start of ``name`` has not exited."""
        run = self._runs.get(name)
        return run is not None and run.status == "running"

    def known(self, name: str) -> bool:
        """True when ``name`` was started by this agent."""
        return name in self._runs

    def list_all(self) -> list[ServiceInfo]:
        """Every service started since the agent came up, by name."""
        return [self._runs[name].info() for name in sorted(self._runs)]

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def start(self, request: StartServiceRequest) -> ServiceInfo:
        """Start ``request.name``, stopping a previous run of the same name first."""
        name = validate_name(request.name)
        if not request.command.strip():
            raise ApiError(400, "invalid_command", "command must not be empty", "command")
        cwd = resolve_in_workspace(self._workspace, request.cwd or ".", field="cwd")
        if not cwd.is_dir():
            raise ApiError(400, "not_a_directory", f"{request.cwd!r} is not a directory", "cwd")
        async with self._lock(name):
            previous = self._runs.get(name)
            if previous is not None:
                await self._stop(previous)
            run = await self._spawn(name, request.command, cwd)
            self._runs[name] = run
            return run.info()

    async def _spawn(self, name: str, command: str, cwd: Path) -> _Run:
        self._log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        log_fd = os.open(self.log_path(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            process = await asyncio.create_subprocess_exec(
                self._shell,
                "-c",
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,
            )
        finally:
            os.close(log_fd)
        run = _Run(
            name=name,
            command=command,
            cwd=relative_to_workspace(self._workspace, cwd),
            process=process,
            started_at=time.time(),
        )
        run.watcher = asyncio.create_task(self._watch(run), name=f"service-watch-{name}")
        return run

    @staticmethod
    async def _watch(run: _Run) -> None:
        code = await run.process.wait()
        run.exit_code = code
        run.status = "stopped" if run.stopping or code == 0 else "error"

    async def stop(self, name: str) -> ServiceInfo:
        """Stop ``name``'s whole process tree; 404 if it was never started."""
        validate_name(name)
        async with self._lock(name):
            run = self._runs.get(name)
            if run is None:
                raise ApiError(404, "service_not_found", f"no service named {name!r}", "name")
            await self._stop(run)
            return run.info()

    async def _stop(self, run: _Run) -> None:
        sid = run.process.pid
        if run.status == "running":
            run.stopping = True
        elif not session_members(sid):
            return  # exited and left nothing behind: never signal a pid that may be reused
        # Even an exited leader may have left children in its session: sweep the whole session.
        await terminate_session(sid, self._grace)
        if run.watcher is not None:
            # shield: a leader stuck in the kernel must not cancel the watcher or hang the lock.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(run.watcher), timeout=10)

    async def stop_all(self) -> None:
        """Stop every service (agent shutdown)."""
        await asyncio.gather(*(self.stop(name) for name in list(self._runs)))
