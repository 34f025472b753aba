"""Killing a whole process tree that was started in its own session.

Services and terminal shells start with ``start_new_session``, so their pid is also their
session and process-group id. A shell with job control moves jobs into other process groups of
the same session, and a child may create its own group; so besides signalling the group we
signal every process of the session (found in /proc on Linux). Zombies count as gone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

_PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name sits in parentheses and may contain spaces: split after the last ')'.
    return raw.rpartition(")")[2].split()


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session id is ``sid``."""
    members: list[int] = []
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return members
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        # fields[0] is the state, fields[3] the session id (stat fields 3 and 6).
        if fields and len(fields) > 3 and fields[0] != "Z" and fields[3] == str(sid):
            members.append(int(entry))
    return members


def is_alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    if _PROC.is_dir():
        fields = _stat_fields(pid)
        return bool(fields) and fields is not None and fields[0] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_session(sid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group ``sid`` and to every other member of session ``sid``."""
    try:
        os.killpg(sid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in session_members(sid):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _tree_alive(sid: int) -> bool:
    if _PROC.is_dir():
        return bool(session_members(sid))
    try:
        os.killpg(sid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


async def terminate_session(sid: int, grace: float, first: signal.Signals = signal.SIGTERM) -> None:
    """Send ``first`` to the session's tree, wait up to ``grace`` seconds, then SIGKILL the rest."""
    signal_session(sid, first)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _tree_alive(sid):
            return
        await asyncio.sleep(0.05)
    signal_session(sid, signal.SIGKILL)
    # SIGKILL cannot be ignored; give the kernel a moment so callers see the tree gone.
    for _ in range(40):
        if not _tree_alive(sid):
            return
        await asyncio.sleep(0.025)
