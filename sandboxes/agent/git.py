"""Read-only git views of the workspace's repositories: list, status, diff.

A repo id is the URL-safe base64 (unpadded; padding accepted) of the repo's path relative to the
workspace. It is resolved with the workspace confinement rules (see paths.py) and must name a
repository root. Git runs non-interactively, never takes optional locks, and never runs external
diff or textconv drivers or an fsmonitor hook.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sandboxes.agent.http import ApiError
from sandboxes.agent.paths import relative_to_workspace, resolve_in_workspace
from schemas.agent import GitDiff, GitFileChange, GitRepo, GitStatus

DIFF_LIMIT_BYTES = 64 * 1024
GIT_TIMEOUT_SECONDS = 30.0
MAX_DEPTH = 4
MAX_DIRS_SCANNED = 10_000
_SKIP_DIRS = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".cache"})
_GIT_FLAGS = ("-c", "core.fsmonitor=false", "-c", "core.quotepath=off", "-c", "color.ui=false")


def encode_repo_id(relative_path: str) -> str:
    """Repo id of a workspace-relative path."""
    return base64.urlsafe_b64encode(relative_path.encode()).decode().rstrip("=")


def decode_repo_id(repo_id: str) -> str:
    """Workspace-relative path of a repo id; 400 when it is not valid base64 of UTF-8."""
    try:
        padded = repo_id + "=" * (-len(repo_id) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "invalid_repo_id", "repo id is not URL-safe base64", "repo") from exc


def resolve_repo(workspace: Path, repo_id: str | None) -> Path:
    """The confined repository root named by ``repo_id``."""
    if not repo_id:
        raise ApiError(400, "missing_repo", "query parameter 'repo' is required", "repo")
    path = resolve_in_workspace(workspace, decode_repo_id(repo_id), field="repo")
    if not (path / ".git").exists():
        raise ApiError(404, "repo_not_found", "no git repository at that id", "repo")
    return path


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", GIT_PAGER="cat", LC_ALL="C", PAGER="cat"
    )
    return env


async def run_git(repo: Path, *args: str, limit: int | None = None) -> tuple[int, bytes, bool]:
    """Run ``git args`` in ``repo``: (exit code, stdout, truncated at ``limit`` bytes)."""
    process = await asyncio.create_subprocess_exec(
        "git",
        *_GIT_FLAGS,
        *args,
        cwd=repo,
        env=_git_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(GIT_TIMEOUT_SECONDS):
            output, truncated = await _read_capped(process.stdout, limit)
            if truncated:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            code = await process.wait()
    except TimeoutError as exc:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise ApiError(504, "git_timeout", f"git {args[0]} took too long") from exc
    return code, output, truncated


async def _read_capped(stream: asyncio.StreamReader, limit: int | None) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(65536):
        chunks.append(chunk)
        size += len(chunk)
        if limit is not None and size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


async def _git_ok(repo: Path, *args: str) -> bytes:
    code, output, _ = await run_git(repo, *args)
    if code != 0:
        raise ApiError(500, "git_failed", f"git {args[0]} exited with status {code}")
    return output


def find_repo_roots(workspace: Path) -> list[Path]:
    """Repository roots under ``workspace`` (symlinks not followed; depth and count bounded)."""
    roots: list[Path] = []
    scanned = 0
    for current, dirs, files in os.walk(workspace, followlinks=False):
        here = Path(current)
        if ".git" in dirs or ".git" in files:
            roots.append(here)
        scanned += 1
        depth = len(here.relative_to(workspace).parts)
        if depth >= MAX_DEPTH or scanned >= MAX_DIRS_SCANNED:
            dirs[:] = []
        else:
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
    return sorted(roots)


async def current_branch(repo: Path) -> str | None:
    """The checked-out branch (also before the first commit); None when detached."""
    code, output, _ = await run_git(repo, "symbolic-ref", "--short", "-q", "HEAD")
    if code != 0:
        return None
    return output.decode(errors="replace").strip() or None


async def list_repos(workspace: Path) -> list[GitRepo]:
    """Every repository under the workspace with its branch."""
    roots = await asyncio.to_thread(find_repo_roots, workspace)
    repos: list[GitRepo] = []
    for root in roots:
        relative = relative_to_workspace(workspace, root)
        repos.append(
            GitRepo(id=encode_repo_id(relative), path=relative, branch=await current_branch(root))
        )
    return repos


@dataclass
class _Branch:
    """The ``# branch.*`` headers of porcelain v2."""

    name: str | None = None
    detached: bool = False
    head: str | None = None
    upstream: str | None = None
    ahead: int | None = None
    behind: int | None = None

    def read(self, header: str) -> None:
        key, _, value = header.partition(" ")
        if key == "branch.oid":
            self.head = None if value == "(initial)" else value
        elif key == "branch.head":
            self.detached = value == "(detached)"
            self.name = None if self.detached else value
        elif key == "branch.upstream":
            self.upstream = value
        elif key == "branch.ab":
            ahead, _, behind = value.partition(" ")
            self.ahead, self.behind = int(ahead.lstrip("+")), int(behind.lstrip("-"))


def parse_status(repo_id: str, output: bytes) -> GitStatus:
    """Parse ``git status --porcelain=v2 --branch -z`` output."""
    branch = _Branch()
    staged: list[GitFileChange] = []
    unstaged: list[GitFileChange] = []
    untracked: list[str] = []
    conflicted: list[str] = []
    records = [r.decode("utf-8", errors="replace") for r in output.split(b"\0")]
    index = 0
    while index < len(records):
        record = records[index]
        index += 1
        kind = record[:1]
        if record.startswith("# "):
            branch.read(record[2:])
        elif kind in ("1", "2"):
            # "1 XY sub mH mI mW hH hI path"; "2 ... Xscore path" followed by the original path.
            parts = record.split(" ", 8 if kind == "1" else 9)
            orig_path = None
            if kind == "2" and index < len(records):
                orig_path, index = records[index], index + 1
            x, y = parts[1][0], parts[1][1]
            if x != ".":
                staged.append(GitFileChange(path=parts[-1], status=x, orig_path=orig_path))
            if y != ".":
                unstaged.append(GitFileChange(path=parts[-1], status=y))
        elif kind == "u":
            conflicted.append(record.split(" ", 10)[-1])
        elif kind == "?":
            untracked.append(record[2:])
    return GitStatus(
        repo=repo_id,
        branch=branch.name,
        detached=branch.detached,
        head=branch.head,
        upstream=branch.upstream,
        ahead=branch.ahead,
        behind=branch.behind,
        staged=staged,
        unstaged=unstaged,
        untracked=untracked,
        conflicted=conflicted,
    )


async def repo_status(repo: Path, repo_id: str) -> GitStatus:
    """Branch and changed files of ``repo``."""
    output = await _git_ok(repo, "status", "--porcelain=v2", "--branch", "-z")
    return parse_status(repo_id, output)


async def repo_diff(repo: Path, repo_id: str, limit: int = DIFF_LIMIT_BYTES) -> GitDiff:
    """Staged and unstaged changes against HEAD (the empty tree before the first commit)."""
    code, _, _ = await run_git(repo, "rev-parse", "--verify", "-q", "HEAD")
    if code == 0:
        base = "HEAD"
    else:
        base = (await _git_ok(repo, "hash-object", "-t", "tree", "/dev/null")).decode().strip()
    code, output, truncated = await run_git(
        repo, "diff", "--no-color", "--no-ext-diff", "--no-textconv", base, "--", limit=limit
    )
    if code != 0 and not truncated:
        raise ApiError(500, "git_failed", f"git diff exited with status {code}")
    return GitDiff(
        repo=repo_id,
        diff=output.decode("utf-8", errors="replace"),
        truncated=truncated,
        limit_bytes=limit,
    )
