"""Workspace path confinement.

Every path a client names (service cwd, repo id, env-file target) is relative to the workspace.
Refusals: an absolute path, a ``..`` component, or a path whose resolution (following symlinks)
lands outside the workspace answers 403 ``path_outside_workspace``; an empty path or one with a
NUL byte answers 400 ``invalid_path``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from sandboxes.agent.http import ApiError


def _outside(field: str, raw: str) -> ApiError:
    return ApiError(403, "path_outside_workspace", f"{raw!r} is outside the workspace", field)


def resolve_in_workspace(workspace: Path, raw: str, *, field: str) -> Path:
    """Resolve ``raw`` (relative to ``workspace``, which is already resolved) or refuse it."""
    if not raw or "\x00" in raw:
        raise ApiError(400, "invalid_path", "path must be a non-empty string", field)
    pure = PurePosixPath(raw)
    if pure.is_absolute() or ".." in pure.parts:
        raise _outside(field, raw)
    resolved = (workspace / pure).resolve()
    if not resolved.is_relative_to(workspace):
        raise _outside(field, raw)
    return resolved


def relative_to_workspace(workspace: Path, path: Path) -> str:
    """Display form of a confined path: POSIX, relative, ``.`` for the workspace itself."""
    rel = path.relative_to(workspace).as_posix()
    return rel or "."
