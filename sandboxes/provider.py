"""The sandbox provider interface every backend (local, Modal, E2B) implements.

A provider is stateless from the caller's point of view: everything it needs to find a
sandbox again is its id (and, for a restore, a snapshot id). Errors are
:class:`SandboxError`, whose messages never hold a secret value.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import ClassVar

from sandboxes.errors import ExecTimeout, SandboxError, SandboxNotFound
from schemas.sandbox import (
    CreateSandboxOptions,
    ExecResult,
    SandboxHandle,
    SandboxLiveness,
    SecretFile,
    SnapshotResult,
)

__all__ = [
    "DEFAULT_EXEC_TIMEOUT",
    "ExecTimeout",
    "SandboxError",
    "SandboxNotFound",
    "SandboxProvider",
]

DEFAULT_EXEC_TIMEOUT = 120.0
"""Seconds an ``exec`` may run before it is killed."""


class SandboxProvider(abc.ABC):
    """Creates, recovers, snapshots and destroys sandboxes of one kind."""

    name: ClassVar[str]
    """Stored on the session so later calls reach the same kind of provider."""
    supports_pause: ClassVar[bool] = False
    """True when ``pause`` keeps the sandbox resumable under its own id (E2B)."""
    supports_memory_snapshot: ClassVar[bool] = False
    """True when a snapshot can keep running processes (Modal memory snapshots)."""

    async def ensure_sandbox(self, opts: CreateSandboxOptions) -> SandboxHandle:
        """Recover ``opts.current_sandbox_id`` if it is alive and not expired, else create.

        Creating honours ``opts.snapshot_id`` (restore), so the order is: recover, then
        restore from the snapshot, then a fresh sandbox.
        """
        if opts.current_sandbox_id:
            [liveness] = await self.check_sandboxes([opts.current_sandbox_id])
            if liveness.alive and not liveness.expired:
                handle = await self.resolve_tunnels(opts.current_sandbox_id)
                return SandboxHandle(
                    sandbox_id=handle.sandbox_id,
                    provider=handle.provider,
                    opencode_url=handle.opencode_url,
                    sandbox_agent_url=handle.sandbox_agent_url,
                    preview_url=handle.preview_url,
                    expires_at=handle.expires_at,
                    recovered=True,
                )
        return await self.create_sandbox(opts)

    @abc.abstractmethod
    async def create_sandbox(self, opts: CreateSandboxOptions) -> SandboxHandle:
        """Boot a new sandbox: from ``opts.snapshot_id`` if set, else clone ``opts.repos``."""

    @abc.abstractmethod
    async def snapshot(self, sandbox_id: str) -> SnapshotResult:
        """Save the sandbox's files under a new snapshot id; the sandbox keeps running."""

    @abc.abstractmethod
    async def pause(self, sandbox_id: str) -> SnapshotResult:
        """Snapshot the sandbox, then stop it. Resume with ``ensure_sandbox(snapshot_id=…)``."""

    @abc.abstractmethod
    async def terminate(self, sandbox_id: str) -> None:
        """Destroy the sandbox and every process in it. An unknown id is not an error."""

    @abc.abstractmethod
    async def delete_snapshot(self, snapshot_id: str) -> None:
        """Forget a snapshot (quota eviction). An unknown id is not an error."""

    @abc.abstractmethod
    async def write_env_file(self, sandbox_id: str, files: Sequence[SecretFile]) -> None:
        """Replace the sandbox's secret-file spec and write those dotenv files."""

    @abc.abstractmethod
    async def exec(
        self,
        sandbox_id: str,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        timeout: float = DEFAULT_EXEC_TIMEOUT,  # noqa: ASYNC109 (part of the interface)
    ) -> ExecResult:
        """Run ``argv`` in the workspace (``cwd`` is relative to it) with the sandbox's env.

        Raises :class:`ExecTimeout` when the command outlives ``timeout``.
        """

    @abc.abstractmethod
    async def read_files(self, sandbox_id: str, folder: str) -> dict[str, bytes]:
        """Every regular file under ``folder`` (relative to the workspace, confined to it).

        Keys are paths relative to ``folder`` with ``/`` separators; a missing folder
        gives an empty dict.
        """

    @abc.abstractmethod
    async def check_sandboxes(self, sandbox_ids: Sequence[str]) -> list[SandboxLiveness]:
        """Liveness of each id, in order. Side-effect-free: never starts or stops anything."""

    def port_holder(self, port: int) -> str | None:
        """The sandbox holding ``port`` on a host it shares with other sandboxes, if any.

        A proxy to one session's port must not reach another session's. Providers that
        give each sandbox a host of its own share no ports: None (the default).
        """
        return None

    @abc.abstractmethod
    async def resolve_tunnels(self, sandbox_id: str) -> SandboxHandle:
        """The URLs of a running sandbox. Raises :class:`SandboxNotFound` if it is gone."""
