"""Secret dotenv files: written into the workspace from the provider's spec, scrubbed on demand.

The spec is ``$WARREN_STATE_DIR/env.json`` (schemas.agent.EnvSpec). Every target is confined to
the workspace (paths.py rules) and all are checked before any is written. Files are replaced
atomically with mode 0600 and never followed through a symlink planted at a temporary name.
Values are never returned, logged or put in an error message.

Quoting: a value without ``'``, ``\\`` or control characters is single-quoted (taken literally by
every dotenv reader and by ``sh``); any other is double-quoted with ``\\\\``, ``\\"``, ``\\n``,
``\\r`` and ``\\t`` escapes, so a value can never start a new line or close its quotes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import msgspec

from sandboxes.agent.http import ApiError
from sandboxes.agent.paths import relative_to_workspace, resolve_in_workspace
from schemas.agent import EnvSpec
from schemas.sandbox import SecretFile

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_LITERAL = re.compile(r"[^'\\\x00-\x1f\x7f]*")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


@dataclass(frozen=True)
class PlannedFile:
    """A validated, confined target and what goes in it."""

    path: Path
    relative: str
    spec: SecretFile


def load_spec(path: Path) -> EnvSpec:
    """Read the spec; a missing file is an empty spec, a malformed one a 400 (no values shown)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return EnvSpec()
    try:
        return msgspec.json.decode(raw, type=EnvSpec)
    except msgspec.ValidationError as exc:
        # Validation messages name types and paths ($.files[0].values.KEY), never values.
        raise ApiError(400, "invalid_env_spec", f"env.json is invalid: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ApiError(400, "invalid_env_spec", "env.json is not valid JSON") from exc


def plan(workspace: Path, spec: EnvSpec) -> list[PlannedFile]:
    """Confine and validate every target of ``spec`` before anything touches the disk."""
    planned: list[PlannedFile] = []
    for index, secret_file in enumerate(spec.files):
        where = f"files[{index}]"
        resolve_in_workspace(workspace, secret_file.workspace_path, field=f"{where}.workspace_path")
        if not secret_file.file_path or PurePosixPath(secret_file.file_path).is_absolute():
            raise ApiError(
                403, "path_outside_workspace", "file_path must be relative", f"{where}.file_path"
            )
        joined = str(PurePosixPath(secret_file.workspace_path) / secret_file.file_path)
        target = resolve_in_workspace(workspace, joined, field=f"{where}.file_path")
        if target == workspace or target.is_dir():
            raise ApiError(400, "not_a_file", f"{joined!r} is a directory", f"{where}.file_path")
        for key in secret_file.values:
            if not _KEY.fullmatch(key):
                raise ApiError(400, "invalid_key", f"{key!r} is not a valid variable name", where)
        planned.append(PlannedFile(target, relative_to_workspace(workspace, target), secret_file))
    return planned


def quote(value: str) -> str:
    """Dotenv-quote ``value`` so it reads back unchanged and cannot break out of its line."""
    if _LITERAL.fullmatch(value):
        return f"'{value}'"
    escaped = "".join(_ESCAPES.get(ch, ch) for ch in value)
    # Other control characters have no dotenv escape; they cannot end the line, so keep them.
    return f'"{escaped}"'


def render(values: dict[str, str]) -> bytes:
    """The dotenv text for ``values``."""
    return "".join(f"{key}={quote(value)}\n" for key, value in values.items()).encode()


def write_private(target: Path, content: bytes) -> None:
    """Atomically replace ``target`` with ``content``, mode 0600."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.warren-{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, content)
    finally:
        os.close(fd)
    try:
        os.replace(temporary, target)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


def apply(workspace: Path, spec_path: Path) -> list[str]:
    """Write every file of the spec; returns their workspace-relative paths."""
    planned = plan(workspace, load_spec(spec_path))
    for item in planned:
        write_private(item.path, render(item.spec.values))
    return [item.relative for item in planned]


def scrub(workspace: Path, spec_path: Path) -> list[str]:
    """Delete every file of the spec that exists; returns the paths removed."""
    removed: list[str] = []
    for item in plan(workspace, load_spec(spec_path)):
        try:
            item.path.unlink()
        except FileNotFoundError:
            continue
        removed.append(item.relative)
    return removed
