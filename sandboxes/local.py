"""The ``local`` sandbox provider: each sandbox is a folder and a tree of processes.

``<root>/<sandbox_id>/`` holds the workspace (the cloned repos), a private HOME, a ``bin/``
with the ``warren`` shim and a ``state/`` folder (see :mod:`sandboxes.local_layout`).
Boot: folders and ports → clone (or restore a snapshot) → env spec → OpenCode files →
OpenCode and the in-sandbox agent started in parallel, each in its own process group with
an environment built from nothing → both ready. ``state/sandbox.json`` lets a restarted
control plane find the sandbox again.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import msgspec

from sandboxes import opencode
from sandboxes.errors import SandboxError, SandboxNotFound, secrets_of, secrets_of_files
from sandboxes.git_clone import clone_repos
from sandboxes.local_env import (
    load_process_env,
    read_env_spec,
    sandbox_env,
    save_process_env,
    secret_file_path,
    write_env_spec,
    write_shim,
)
from sandboxes.local_exec import read_tree, run_confined
from sandboxes.local_layout import (
    SNAPSHOT_MEMBERS,
    LocalSandboxMeta,
    ProcessRecord,
    SandboxLayout,
    new_sandbox_id,
    valid_sandbox_id,
)
from sandboxes.local_procs import (
    log_tail,
    ready_or_dead,
    records_alive,
    spawn,
    stop_all,
    wait_http_ok,
)
from sandboxes.ports import PortAllocator, PortsExhausted
from sandboxes.provider import DEFAULT_EXEC_TIMEOUT, SandboxProvider
from sandboxes.snapshot_store import Compression, LocalSnapshotStore
from schemas.sandbox import (
    CreateSandboxOptions,
    ExecResult,
    SandboxHandle,
    SandboxLiveness,
    SecretFile,
    SnapshotResult,
)

log = logging.getLogger(__name__)

DEFAULT_OPENCODE_BIN = (
    Path(__file__).resolve().parent.parent / "deploy/sandbox/node_modules/.bin/opencode"
)
DEFAULT_PORT_RANGE = (41000, 48999)
"""Clear of Ray's worker ports (10002-19999) and the usual dev-server ports."""

# Safe to drop from HOME: caches, logs and lock files OpenCode recreates. Its sqlite db
# (``.local/share/opencode/opencode.db*``) stays, so the conversation survives a restore.
HOME_EXCLUDES = (
    "home/.cache",
    "home/.local/share/opencode/log",
    "home/.local/state/opencode/locks",
)


class LocalSandboxProvider(SandboxProvider):
    """Sandboxes as folders under ``root`` and process trees on this machine."""

    name = "local"
    supports_pause = False
    supports_memory_snapshot = False

    def __init__(
        self,
        root: Path,
        snapshots: LocalSnapshotStore,
        *,
        opencode_bin: Path | None = None,
        expiry_seconds: float = 3600.0,
        port_range: tuple[int, int] = DEFAULT_PORT_RANGE,
        python: str = sys.executable,
        boot_timeout: float = 30.0,
    ) -> None:
        self.root = root
        self.snapshots = snapshots
        self.opencode_bin = opencode_bin or DEFAULT_OPENCODE_BIN
        self.expiry_seconds = expiry_seconds
        self.python = python
        self.boot_timeout = boot_timeout
        self._ports = PortAllocator(root / ".ports", port_range, self._exists)
        # Processes this instance started, kept so their exit status can be reaped.
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_data_dir(
        cls,
        data_dir: Path,
        *,
        opencode_bin: Path | None = None,
        expiry_seconds: float = 3600.0,
        compression: Compression = "none",
    ) -> LocalSandboxProvider:
        """Sandboxes in ``<data_dir>/sandboxes``, snapshots in ``<data_dir>/snapshots``."""
        store = LocalSnapshotStore(data_dir / "snapshots", compression=compression)
        return cls(
            data_dir / "sandboxes",
            store,
            opencode_bin=opencode_bin,
            expiry_seconds=expiry_seconds,
        )

    # -- lookup ------------------------------------------------------------------------

    def port_holder(self, port: int) -> str | None:
        """The local sandbox that reserved ``port`` (every local sandbox shares this host)."""
        return self._ports.owner_of(port)

    def _exists(self, sandbox_id: str) -> bool:
        return valid_sandbox_id(sandbox_id) and (self.root / sandbox_id).is_dir()

    def _layout(self, sandbox_id: str) -> tuple[SandboxLayout, LocalSandboxMeta]:
        if not valid_sandbox_id(sandbox_id):
            raise SandboxNotFound(f"sandbox {sandbox_id!r} not found")
        layout = SandboxLayout(self.root / sandbox_id)
        meta = layout.read_meta()
        if meta is None:
            raise SandboxNotFound(f"sandbox {sandbox_id!r} not found")
        return layout, meta

    def _lock(self, sandbox_id: str) -> asyncio.Lock:
        return self._locks.setdefault(sandbox_id, asyncio.Lock())

    def _handle(self, meta: LocalSandboxMeta, **extra: object) -> SandboxHandle:
        return SandboxHandle(
            sandbox_id=meta.sandbox_id,
            provider=self.name,
            opencode_url=f"http://127.0.0.1:{meta.opencode_port}",
            sandbox_agent_url=f"http://127.0.0.1:{meta.agent_port}",
            preview_url=None,  # the proxy makes one later
            expires_at=meta.expires_at,
            **extra,  # type: ignore[arg-type]
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def ensure_sandbox(self, opts: CreateSandboxOptions) -> SandboxHandle:
        """Recover the session's live sandbox, else restore ``opts.snapshot_id``, else create.

        A current sandbox that belongs to another session is left alone; one that died
        or expired is cleaned up before a new one boots.
        """
        current = opts.current_sandbox_id
        if current and self._exists(current):
            meta = SandboxLayout(self.root / current).read_meta()
            if meta is not None and meta.session_id == opts.session_id:
                if records_alive(meta.processes) and time.time() < meta.expires_at:
                    return self._handle(meta, recovered=True)
                await self.terminate(current)
        return await self.create_sandbox(opts)

    async def create_sandbox(self, opts: CreateSandboxOptions) -> SandboxHandle:
        """Boot a new sandbox; on any failure everything it started is removed again."""
        secrets = secrets_of(opts)
        sandbox_id = new_sandbox_id()
        layout = SandboxLayout(self.root / sandbox_id)
        async with self._lock(sandbox_id):
            try:
                return await self._boot(layout, opts)
            except BaseException as exc:
                await self._cleanup_failed(layout)
                if isinstance(exc, SandboxError) or not isinstance(exc, Exception):
                    raise
                raise SandboxError(f"booting sandbox failed: {exc}", secrets=secrets) from None

    async def _cleanup_failed(self, layout: SandboxLayout) -> None:
        meta = layout.read_meta()
        try:
            await self._destroy(layout, meta.processes if meta else ())
        except SandboxError:
            # The boot error matters more; the leftovers are reported here.
            log.warning("could not clean up failed sandbox %s", layout.sandbox_id)

    async def _boot(self, layout: SandboxLayout, opts: CreateSandboxOptions) -> SandboxHandle:
        secrets = secrets_of(opts)
        phases: dict[str, float] = {}
        started = mark = time.monotonic()

        def phase(name: str) -> None:
            nonlocal mark
            now = time.monotonic()
            phases[name] = round(now - mark, 4)
            mark = now

        layout.make_dirs()
        try:
            opencode_port, agent_port = self._ports.allocate(layout.sandbox_id, 2)
        except PortsExhausted as exc:
            raise SandboxError(str(exc)) from None
        env = sandbox_env(layout, opts, agent_port=agent_port)
        save_process_env(layout, env)
        write_shim(layout, self.python)
        phase("created")

        if opts.snapshot_id:
            await self.snapshots.restore(opts.snapshot_id, layout.root)
            phase("snapshot_restored")
        else:
            await clone_repos(opts.repos, layout.workspace, env)
            phase("repos_cloned")

        write_env_spec(layout, opts.secret_files)
        opencode.write_opencode_files(opts, home=layout.home, workspace=layout.workspace)
        oc_env = {**env, **opencode.opencode_env(opts, home=layout.home)}
        oc_argv = opencode.opencode_command(str(self.opencode_bin), opencode_port)
        oc_rec = spawn("opencode", oc_argv, layout, oc_env, layout.workspace)
        ag_argv = [self.python, "-m", "sandboxes.agent"]
        ag_rec = spawn("agent", ag_argv, layout, env, layout.workspace)

        now = time.time()
        meta = LocalSandboxMeta(
            sandbox_id=layout.sandbox_id,
            session_id=opts.session_id,
            created_at=now,
            expires_at=now + self.expiry_seconds,
            opencode_port=opencode_port,
            agent_port=agent_port,
            processes=(oc_rec, ag_rec),
            restored_from=opts.snapshot_id,
        )
        layout.write_meta(meta)  # before waiting: a crash mid-boot stays findable

        oc_url = f"http://127.0.0.1:{opencode_port}"
        ag_url = f"http://127.0.0.1:{agent_port}/api/health"
        try:
            await asyncio.gather(
                ready_or_dead(
                    "opencode",
                    opencode.wait_ready(oc_url, timeout=self.boot_timeout),
                    oc_rec,
                    self.boot_timeout,
                ),
                ready_or_dead(
                    "agent", wait_http_ok(ag_url, self.boot_timeout), ag_rec, self.boot_timeout
                ),
            )
        except SandboxError as exc:
            tails = "\n".join(f"--- {n}.log\n{log_tail(layout, n)}" for n in ("opencode", "agent"))
            raise SandboxError(f"{exc}\n{tails}", secrets=secrets) from None
        # The lifetime starts once the sandbox is usable, not when its boot began.
        now = time.time()
        meta = msgspec.structs.replace(meta, created_at=now, expires_at=now + self.expiry_seconds)
        layout.write_meta(meta)
        if opts.secret_files:
            await self._apply_env(layout, meta, env)
        phase("agent_ready")
        phases["total"] = round(time.monotonic() - started, 4)
        return self._handle(meta, boot_phases=phases)

    async def _apply_env(
        self, layout: SandboxLayout, meta: LocalSandboxMeta, env: dict[str, str]
    ) -> None:
        """Have the in-sandbox agent write the dotenv files of ``state/env.json``."""
        url = f"http://127.0.0.1:{meta.agent_port}/api/env/apply"
        headers = {"Authorization": f"Bearer {env['WARREN_SANDBOX_TOKEN']}"}
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
            http.post(url, headers=headers) as response,
        ):
            if response.status != 200:
                # The agent's errors name paths and keys, never values; redacted anyway.
                detail = (await response.text())[:500]
                raise SandboxError(
                    f"applying secret files failed (HTTP {response.status}): {detail}",
                    secrets=secrets_of_files(read_env_spec(layout).files),
                )

    async def terminate(self, sandbox_id: str) -> None:
        """Kill every process of the sandbox, check none is left, remove its folder."""
        if not valid_sandbox_id(sandbox_id):
            return
        layout = SandboxLayout(self.root / sandbox_id)
        async with self._lock(sandbox_id):
            meta = layout.read_meta()
            await self._destroy(layout, meta.processes if meta else ())
        self._locks.pop(sandbox_id, None)

    async def _destroy(self, layout: SandboxLayout, records: Sequence[ProcessRecord]) -> None:
        if layout.root.exists():
            await stop_all(layout, records)
            await asyncio.to_thread(shutil.rmtree, layout.root, ignore_errors=True)
        self._ports.release(layout.sandbox_id)

    async def snapshot(self, sandbox_id: str) -> SnapshotResult:
        """Archive the workspace and HOME (secret files and caches left out)."""
        layout, _ = self._layout(sandbox_id)
        async with self._lock(sandbox_id):
            return await self._snapshot(layout)

    async def _snapshot(self, layout: SandboxLayout) -> SnapshotResult:
        secret_paths = {
            "workspace/" + secret_file_path(f).as_posix() for f in read_env_spec(layout).files
        }

        def exclude(rel: str) -> bool:
            if rel in secret_paths:
                return True
            return any(rel == p or rel.startswith(p + "/") for p in HOME_EXCLUDES)

        return await self.snapshots.save(layout.root, SNAPSHOT_MEMBERS, exclude)

    async def pause(self, sandbox_id: str) -> SnapshotResult:
        """Stop the processes (so OpenCode's db is quiet), snapshot, then remove the sandbox.

        If the snapshot fails the stopped sandbox's files stay, so it can be retried.
        """
        layout, meta = self._layout(sandbox_id)
        async with self._lock(sandbox_id):
            await stop_all(layout, meta.processes)
            result = await self._snapshot(layout)
            await self._destroy(layout, meta.processes)
        self._locks.pop(sandbox_id, None)
        return result

    async def delete_snapshot(self, snapshot_id: str) -> None:
        """Remove a snapshot archive; unknown ids are ignored."""
        await self.snapshots.delete(snapshot_id)

    # -- inspection and commands ---------------------------------------------------------

    async def check_sandboxes(self, sandbox_ids: Sequence[str]) -> list[SandboxLiveness]:
        """Alive = every recorded process runs; expired = past ``expires_at``."""
        now = time.time()
        out: list[SandboxLiveness] = []
        for sandbox_id in sandbox_ids:
            meta = None
            if valid_sandbox_id(sandbox_id):
                meta = SandboxLayout(self.root / sandbox_id).read_meta()
            if meta is None:
                out.append(SandboxLiveness(sandbox_id=sandbox_id, alive=False))
                continue
            alive = records_alive(meta.processes)
            out.append(
                SandboxLiveness(sandbox_id=sandbox_id, alive=alive, expired=now >= meta.expires_at)
            )
        return out

    async def resolve_tunnels(self, sandbox_id: str) -> SandboxHandle:
        """The loopback URLs of OpenCode and the agent."""
        _, meta = self._layout(sandbox_id)
        return self._handle(meta)

    async def write_env_file(self, sandbox_id: str, files: Sequence[SecretFile]) -> None:
        """Replace ``state/env.json`` and have the agent write the dotenv files."""
        layout, meta = self._layout(sandbox_id)
        secrets = secrets_of_files(files)
        write_env_spec(layout, files)
        try:
            await self._apply_env(layout, meta, load_process_env(layout))
        except aiohttp.ClientError as exc:
            raise SandboxError(f"applying secret files failed: {exc}", secrets=secrets) from None

    async def exec(
        self,
        sandbox_id: str,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        timeout: float = DEFAULT_EXEC_TIMEOUT,  # noqa: ASYNC109 (part of the interface)
    ) -> ExecResult:
        """Run ``argv`` in the workspace with the sandbox's environment, in its own group."""
        layout, _ = self._layout(sandbox_id)
        return await run_confined(layout, load_process_env(layout), argv, cwd, timeout)

    async def read_files(self, sandbox_id: str, folder: str) -> dict[str, bytes]:
        """Regular files under ``folder`` (workspace-relative); escapes are refused."""
        layout, _ = self._layout(sandbox_id)
        return await asyncio.to_thread(read_tree, layout.workspace, folder)

    async def terminate_all(self) -> list[str]:
        """Terminate every sandbox under this provider's root; returns their ids.

        For shutting a whole single-machine install down: sandbox processes run in their
        own process groups and would otherwise outlive the control plane.
        """
        if not self.root.is_dir():
            return []
        ids = [p.name for p in self.root.iterdir() if valid_sandbox_id(p.name)]
        for sandbox_id in ids:
            await self.terminate(sandbox_id)
        return ids

    async def reap_expired(self) -> list[str]:
        """Terminate every sandbox past its expiry; returns their ids (for a sweeper)."""
        if not self.root.is_dir():
            return []
        ids = [p.name for p in self.root.iterdir() if valid_sandbox_id(p.name)]
        expired = [s.sandbox_id for s in await self.check_sandboxes(ids) if s.expired]
        for sandbox_id in expired:
            await self.terminate(sandbox_id)
        return expired
