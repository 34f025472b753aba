"""Commands and file reads inside a local sandbox, confined to its workspace."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

from sandboxes.errors import ExecTimeout, SandboxError
from sandboxes.local_layout import SandboxLayout
from schemas.sandbox import ExecResult

OUTPUT_CAP = 8 * 1024 * 1024
"""Bytes kept of each of stdout and stderr; the rest is read and dropped."""
READ_FILES_CAP = 64 * 1024 * 1024
"""Total bytes ``read_files`` returns before it refuses."""


def confine(workspace: Path, relative: str | None) -> Path:
    """``workspace/relative`` resolved; raises SandboxError if it leaves the workspace."""
    base = workspace.resolve()
    if not relative or relative == ".":
        return base
    if "\0" in relative or os.path.isabs(relative):
        raise SandboxError(f"path {relative!r} must be relative to the workspace")
    target = (base / relative).resolve()
    if target != base and base not in target.parents:
        raise SandboxError(f"path {relative!r} leaves the workspace")
    return target


async def _drain(stream: asyncio.StreamReader | None, cap: int) -> bytes:
    if stream is None:
        return b""
    kept = bytearray()
    while chunk := await stream.read(65536):
        if len(kept) < cap:
            kept += chunk[: cap - len(kept)]
    return bytes(kept)


async def run_confined(
    layout: SandboxLayout,
    env: Mapping[str, str],
    argv: Sequence[str],
    cwd: str | None,
    time_limit: float,
) -> ExecResult:
    """Run ``argv`` with ``env`` in ``cwd`` (workspace-relative), killing its group on timeout."""
    if not argv:
        raise SandboxError("exec needs a command")
    workdir = confine(layout.workspace, cwd)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=workdir,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        return ExecResult(exit_code=127, stdout="", stderr=f"{argv[0]}: command not found")
    except PermissionError:
        return ExecResult(exit_code=126, stdout="", stderr=f"{argv[0]}: permission denied")
    try:
        stdout, stderr, code = await asyncio.wait_for(
            asyncio.gather(
                _drain(proc.stdout, OUTPUT_CAP), _drain(proc.stderr, OUTPUT_CAP), proc.wait()
            ),
            time_limit,
        )
    except TimeoutError:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await proc.wait()
        raise ExecTimeout(f"{argv[0]} timed out after {time_limit:g} s") from None
    return ExecResult(
        exit_code=code,
        stdout=stdout.decode(errors="replace"),
        stderr=stderr.decode(errors="replace"),
    )


def read_tree(workspace: Path, folder: str, cap: int = READ_FILES_CAP) -> dict[str, bytes]:
    """Every regular file under ``folder``, keyed by its path relative to ``folder``.

    Symlinks that resolve outside the workspace are skipped; more than ``cap`` bytes in
    total raises SandboxError.
    """
    base = workspace.resolve()
    top = confine(workspace, folder)
    if not top.is_dir():
        return {}
    out: dict[str, bytes] = {}
    total = 0
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            real = path.resolve()
            if base not in real.parents or not real.is_file():
                continue
            data = real.read_bytes()
            total += len(data)
            if total > cap:
                raise SandboxError(f"{folder!r} holds more than {cap} bytes")
            out[path.relative_to(top).as_posix()] = data
    return out
