"""Wire shapes of the in-sandbox agent's HTTP API (services, expose, git, terminal, env files).

The agent listens inside every sandbox (the reference's sandbox-mcp on port 4000). Every body it
accepts or returns is one of these Structs, encoded as JSON.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from schemas.sandbox import SecretFile

ServiceStatus = Literal["running", "stopped", "error"]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
TerminalSize = Annotated[int, msgspec.Meta(ge=1, le=1000)]


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What went wrong: a stable machine code, a human message and the offending field, if any."""

    code: str
    message: str
    field: str | None = None


class ErrorResponse(msgspec.Struct, frozen=True, kw_only=True):
    """Body of every 4xx/5xx answer: ``{"error": {"code", "message", "field"?}}``."""

    error: ErrorDetail


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of the open ``GET /api/health``."""

    status: Literal["ok"] = "ok"


class StartServiceRequest(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/services``: start (or replace) a named long-running command."""

    name: str
    command: str
    cwd: str | None = None
    """Directory relative to the workspace; the workspace itself when omitted."""


class ServiceInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One service as the manager tracks it."""

    name: str
    command: str
    cwd: str
    """Relative to the workspace (``.`` for the workspace itself)."""
    status: ServiceStatus
    pid: int | None = None
    started_at: float | None = None
    """Unix time of the latest start."""
    exit_code: int | None = None
    """Set once the process exited; negative means killed by that signal."""


class ServiceList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/services``."""

    services: list[ServiceInfo]


class ExposeRequest(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/expose``: the port the preview URL should reach."""

    port: Port


class ExposeState(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/expose``: the recorded preview port, or null if none was set."""

    port: int | None = None


class GitRepo(msgspec.Struct, frozen=True, kw_only=True):
    """A git repository found under the workspace."""

    id: str
    """URL-safe base64 (unpadded) of ``path``; padded ids are accepted too."""
    path: str
    """Relative to the workspace (``.`` when the workspace is the repo)."""
    branch: str | None = None
    """Current branch; null when HEAD is detached."""


class GitRepoList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/git/repos``."""

    repos: list[GitRepo]


class GitFileChange(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A changed path: ``status`` is git's one-letter code (M, A, D, R, C, T, U)."""

    path: str
    status: str
    orig_path: str | None = None
    """Source path of a rename or copy."""


class GitStatus(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/git/status``: parsed ``git status --porcelain=v2 --branch``."""

    repo: str
    branch: str | None
    """Null when HEAD is detached."""
    detached: bool
    head: str | None
    """Commit id of HEAD; null before the first commit."""
    upstream: str | None = None
    ahead: int | None = None
    behind: int | None = None
    staged: list[GitFileChange] = []
    unstaged: list[GitFileChange] = []
    untracked: list[str] = []
    conflicted: list[str] = []


class GitDiff(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/git/diff``: working tree and index against HEAD, capped in size."""

    repo: str
    diff: str
    truncated: bool
    limit_bytes: int


class TerminalResize(msgspec.Struct, frozen=True, kw_only=True):
    """A terminal WebSocket text frame that resizes the PTY instead of being typed."""

    type: Literal["resize"]
    cols: TerminalSize
    rows: TerminalSize


class EnvSpec(msgspec.Struct, frozen=True, kw_only=True):
    """``$WARREN_STATE_DIR/env.json``: the secret files the agent writes into the workspace."""

    files: tuple[SecretFile, ...] = ()


class EnvFilesResult(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/env/apply|scrub``: workspace-relative paths touched; never any value."""

    files: list[str]
