"""Processes the local stack started: identity checks, signals, and the tail of a log.

Every stop goes by a pid (or a session id) that the stack recorded, and checks the command
line first, so a recycled pid or someone else's server is never signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

_PROC = Path("/proc")


def command_line(pid: int) -> str | None:
    """The command line of a live, non-zombie ``pid``, arguments joined by spaces; else None."""
    if _PROC.is_dir():
        try:
            stat = (_PROC / str(pid) / "stat").read_text()
            raw = (_PROC / str(pid) / "cmdline").read_bytes()
        except OSError:
            return None
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            return None
        return raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    result = subprocess.run(
        ["ps", "-o", "stat=,command=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    state, _, command = result.stdout.strip().partition(" ")
    return None if result.returncode or state.startswith("Z") else command.strip()


def running(pid: int | None, marker: str = "") -> bool:
    """True if ``pid`` is alive (not a zombie) and its command line contains ``marker``."""
    if not pid:
        return False
    command = command_line(pid)
    return command is not None and marker in command


def all_pids() -> list[int]:
    """Every pid on the machine."""
    if _PROC.is_dir():
        return [int(p.name) for p in _PROC.iterdir() if p.name.isdigit()]
    result = subprocess.run(["ps", "-A", "-o", "pid="], capture_output=True, text=True, check=False)
    return [int(p) for p in result.stdout.split()]


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` has exited (reaping it if it is our child); True if it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:
            pass  # not our child: poll its existence instead
        if not running(pid):
            return True
        time.sleep(0.05)
    return not running(pid)


def terminate(pid: int, marker: str, timeout: float = 10.0) -> None:
    """SIGTERM ``pid`` if it still is the process we started, SIGKILL after ``timeout``."""
    if not running(pid, marker):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not wait_gone(pid, timeout):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        wait_gone(pid, 5.0)


def session_members(sid: int) -> list[int]:
    """Pids whose session id is ``sid`` (what a process started with a new session spawned)."""
    members = []
    for pid in all_pids():
        try:
            if os.getsid(pid) == sid:
                members.append(pid)
        except OSError:
            continue
    return members


def kill_session(sid: int, marker: str, timeout: float = 5.0) -> int:
    """SIGTERM, then SIGKILL, the processes of session ``sid`` whose command line has ``marker``.

    Returns how many there were. The marker keeps a recycled session id from matching.
    """
    members = [p for p in session_members(sid) if running(p, marker)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in members:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(running(p) for p in members):
            time.sleep(0.05)
        if not any(running(p) for p in members):
            break
    return len(members)


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, or an empty string."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
