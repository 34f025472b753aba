"""Starting, probing and stopping the processes of a local sandbox.

Each process runs in its own session and process group (``setsid``) with the environment
it is given and nothing else, its output going to ``state/<name>.log``. It is detached
from the process that started it (a short-lived ``sh`` forks it and exits, so init adopts
it): a sandbox must outlive its session actor, and Ray kills a worker's children when the
worker is killed (``kill_child_processes_on_worker_exit``).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from pathlib import Path

import aiohttp

from sandboxes.errors import SandboxError
from sandboxes.local_layout import ProcessRecord, SandboxLayout
from sandboxes.proctree import process_alive, read_stat, sandbox_processes, signal_pids

STOP_GRACE = 3.0
"""Seconds between SIGTERM and SIGKILL when a sandbox is stopped."""
KILL_DEADLINE = 5.0
"""Seconds after SIGKILL by which every process of the sandbox must be gone."""


_DETACH = 'setsid "$@" </dev/null >>"$0" 2>&1 & echo $!'
"""Run the command in the background in a session of its own (a background job is no group
leader, so ``setsid`` does not fork: the pid printed is the command's), output to ``$0``."""
SPAWN_TIMEOUT = 10.0


def spawn(
    name: str, argv: Sequence[str], layout: SandboxLayout, env: Mapping[str, str], cwd: Path
) -> ProcessRecord:
    """Start ``argv`` in a new session, detached from this process; returns its record."""
    launcher = subprocess.Popen(
        ["/bin/sh", "-c", _DETACH, str(layout.log(name)), *argv],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        close_fds=True,
    )
    out, _ = launcher.communicate(timeout=SPAWN_TIMEOUT)
    try:
        pid = int(out.strip())
    except ValueError:
        raise SandboxError(f"{name} could not be started") from None
    stat = read_stat(pid)
    start_time = stat.start_time if stat else 0
    return ProcessRecord(name=name, pid=pid, pgid=pid, start_time=start_time)


def log_tail(layout: SandboxLayout, name: str, limit: int = 2000) -> str:
    """The last ``limit`` characters of a process's log (may hold secrets: redact it)."""
    try:
        data = layout.log(name).read_bytes()[-limit:]
    except FileNotFoundError:
        return ""
    return data.decode(errors="replace")


async def wait_http_ok(url: str, within: float) -> None:
    """Poll ``url`` until it answers 200; short per-try timeouts survive start-up races."""
    deadline = time.monotonic() + within
    probe = aiohttp.ClientTimeout(total=0.5)
    async with aiohttp.ClientSession(timeout=probe) as http:
        while True:
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{url} not ready after {within:.0f} s")
            await asyncio.sleep(0.05)


async def ready_or_dead(
    name: str, ready: Awaitable[object], record: ProcessRecord, within: float
) -> None:
    """Wait for ``ready`` unless the process exits first or ``within`` seconds pass."""
    ready_task = asyncio.ensure_future(ready)
    exit_task = asyncio.ensure_future(_wait_exit(record))
    try:
        done, _ = await asyncio.wait(
            {ready_task, exit_task}, timeout=within, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for task in (ready_task, exit_task):
            task.cancel()
    if ready_task in done:
        try:
            ready_task.result()
        except Exception as exc:
            raise SandboxError(f"{name} did not become ready: {exc}") from None
        return
    if exit_task in done:
        raise SandboxError(f"{name} exited while booting")
    raise SandboxError(f"{name} not ready after {within:.0f} s")


async def _wait_exit(record: ProcessRecord) -> None:
    # A detached process has no awaitable exit; a 50 ms poll is cheap for a boot's seconds.
    while process_alive(record.pid, record.start_time):  # noqa: ASYNC110
        await asyncio.sleep(0.05)


def records_alive(records: Iterable[ProcessRecord]) -> bool:
    """True if every recorded process still runs (and is the same process)."""
    return all(process_alive(r.pid, r.start_time) for r in records)


async def stop_all(layout: SandboxLayout, records: Sequence[ProcessRecord]) -> None:
    """Stop every process of the sandbox: SIGTERM, a grace period, then SIGKILL.

    Processes are found by their recorded groups and by a scan of /proc for anything
    whose cwd or environment points into the sandbox folder. Raises SandboxError if
    any survives.
    """
    groups = [r.pgid for r in records]
    # A /proc scan reads every process's environ: ~10 ms per 100 processes, off the loop.
    pids = await asyncio.to_thread(sandbox_processes, layout.root, groups)
    signal_pids(pids, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    while pids and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        pids = [pid for pid in pids if process_alive(pid)]
    deadline = time.monotonic() + KILL_DEADLINE
    while True:
        pids = await asyncio.to_thread(sandbox_processes, layout.root, groups)
        if not pids:
            return
        if time.monotonic() >= deadline:
            raise SandboxError(f"{len(pids)} processes of {layout.sandbox_id} survived SIGKILL")
        signal_pids(pids, signal.SIGKILL)
        await asyncio.sleep(0.05)
