"""Linux process inspection through ``/proc``: liveness, sandbox membership, memory.

A local sandbox's processes are found two ways: by the process groups Warren started, and
by a scan for any process whose working directory or environment points into the sandbox
folder (a service that called ``setsid`` leaves the group but keeps both).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` Warren uses."""

    pid: int
    state: str
    ppid: int
    pgid: int
    sid: int
    start_time: int
    """Clock ticks since boot: with the pid, identifies a process across pid reuse."""

    @property
    def running(self) -> bool:
        """False for zombies and dead processes."""
        return self.state not in ("Z", "X", "x")


def read_stat(pid: int) -> ProcStat | None:
    """The stat of ``pid``, or None if there is no such process."""
    try:
        raw = (PROC / str(pid) / "stat").read_bytes().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rfind(")") + 2 :].split()
    return ProcStat(
        pid=pid,
        state=fields[0],
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        sid=int(fields[3]),
        start_time=int(fields[19]),
    )


def process_alive(pid: int, start_time: int | None = None) -> bool:
    """True if ``pid`` runs (not a zombie) and, when given, started at ``start_time``."""
    stat = read_stat(pid)
    if stat is None or not stat.running:
        return False
    return start_time is None or stat.start_time == start_time


def all_pids() -> Iterator[int]:
    """Every pid currently listed in /proc."""
    for entry in os.scandir(PROC):
        if entry.name.isdigit():
            yield int(entry.name)


def _points_into(pid: int, folder: bytes) -> bool:
    base = PROC / str(pid)
    try:
        cwd = os.readlink(base / "cwd").encode()
        if cwd == folder or cwd.startswith(folder + b"/"):
            return True
        environ = (base / "environ").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return any(
        value == folder or value.startswith(folder + b"/")
        for entry in environ.split(b"\0")
        for value in (entry.partition(b"=")[2],)
    )


def sandbox_processes(folder: Path, groups: Iterable[int] = ()) -> list[int]:
    """Live pids that belong to the sandbox in ``folder``.

    A process belongs if its process group or session is one of ``groups``, or its cwd
    or any environment value lies inside ``folder``. The calling process is never listed.
    """
    group_set = set(groups)
    target = str(folder).encode()
    me = os.getpid()
    found: list[int] = []
    for pid in all_pids():
        if pid == me:
            continue
        stat = read_stat(pid)
        if stat is None or not stat.running:
            continue
        if stat.pgid in group_set or stat.sid in group_set or _points_into(pid, target):
            found.append(pid)
    return found


def signal_pids(pids: Iterable[int], sig: signal.Signals) -> None:
    """Send ``sig`` to each pid; processes that already exited are skipped."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def signal_groups(pgids: Iterable[int], sig: signal.Signals) -> None:
    """Send ``sig`` to each process group; groups that are gone are skipped."""
    for pgid in pgids:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def rss_bytes(pids: Iterable[int]) -> int:
    """Sum of the resident set sizes of ``pids`` (missing processes count 0)."""
    total = 0
    for pid in pids:
        try:
            status = (PROC / str(pid) / "status").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
                break
    return total
