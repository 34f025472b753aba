"""A sandbox repo as git sees it through any provider's ``exec``: the plumbing of git_ops.

Every command goes through an injected :data:`Exec` (argv, cwd) so the same code serves
the local provider and remote ones. git runs non-interactively (no terminal prompt, no
pager, no editor, C locale so error patterns match) and status reads take no optional
locks. A repo is addressed by a :class:`RepoDir` from :func:`resolve_repo_dir`, which
refuses paths that leave the workspace; :func:`inspect_repo` then checks that git's own
top-level folder lies inside the workspace too (symlinks, or a parent repo above it).

Operations report a :class:`GitResult` built by :func:`failed` / :func:`succeeded`, whose
messages are redacted (URL credentials, auth headers, GitHub tokens, a push token).
"""

from __future__ import annotations

import asyncio
import posixpath
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sandboxes.errors import redact
from sandboxes.git_state import StatusParseError, parse_log, parse_porcelain_v2
from sandboxes.provider import DEFAULT_EXEC_TIMEOUT, SandboxProvider
from schemas.git import GitAction, GitCode, GitResult, GitState
from schemas.sandbox import ExecResult

Exec = Callable[[Sequence[str], str | None], Awaitable[ExecResult]]
"""Runs argv with the given cwd (as the provider understands it) and returns its result."""

MESSAGE_LIMIT = 2000
"""Characters of git's stderr kept in a result message (the tail, where the error is)."""

_BASE_ENV = ("GIT_TERMINAL_PROMPT=0", "GIT_PAGER=cat", "GIT_EDITOR=true", "LC_ALL=C")
_BASE_CONFIG = ("-c", "core.pager=cat", "-c", "color.ui=false", "-c", "core.quotePath=false")
_TOKEN_VAR = "WARREN_GIT_TOKEN"
# Answers git's "get" with the token from this one command's environment; nothing stored.
_CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || exit 0; '
    f'printf "username=x-access-token\\npassword=%s\\n" "${_TOKEN_VAR}"; }}; f'
)
# Prints 1/0 per argument: does the path exist? (Paths arrive as arguments, never code.)
_EXISTS_SCRIPT = 'for p in "$@"; do if [ -e "$p" ]; then echo 1; else echo 0; fi; done'
_PROBES = (
    "index.lock",
    "rebase-merge",
    "rebase-apply",
    "MERGE_HEAD",
    "CHERRY_PICK_HEAD",
    "REVERT_HEAD",
)
_GITHUB_TOKEN = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{20,})\b")


class GitError(Exception):
    """A git operation could not run (not a repo, path outside the workspace, exec failed).

    The message is safe to show: it never holds a credential.
    """

    def __init__(self, message: str, code: GitCode = "UNKNOWN_ERROR") -> None:
        super().__init__(safe_message(message))
        self.code: GitCode = code


@dataclass(frozen=True)
class RepoDir:
    """A repo folder as exec cwds: the workspace root and the repo inside it."""

    workspace: str
    path: str


@dataclass(frozen=True)
class Inspection:
    """What :func:`inspect_repo` found: the repo's state, HEAD's commit, the index lock."""

    state: GitState
    oid: str | None
    locked: bool
    """``index.lock`` exists: another git process runs (or died holding it)."""


def safe_message(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with credentials masked and trimmed to its last :data:`MESSAGE_LIMIT` chars."""
    lines = [ln for ln in text.strip().splitlines() if not ln.startswith("hint:")]
    cleaned = _GITHUB_TOKEN.sub("***", redact("\n".join(lines), secrets))
    return cleaned[-MESSAGE_LIMIT:]


def resolve_repo_dir(workspace_root: str, workspace_path: str | None = None) -> RepoDir:
    """The repo at ``workspace_path`` under ``workspace_root``; raises GitError if it escapes.

    ``workspace_root`` is the workspace as the exec callable's cwd sees it: ``"."`` for a
    provider's ``exec`` (whose cwd is workspace-relative), an absolute path otherwise.
    """
    rel = workspace_path or "."
    if "\0" in rel or "\\" in rel or rel.startswith("/"):
        raise GitError(f"workspace path {rel!r} must be relative to the workspace")
    norm = posixpath.normpath(rel)
    if norm == ".." or norm.startswith("../"):
        raise GitError(f"workspace path {rel!r} leaves the workspace")
    root = workspace_root or "."
    return RepoDir(workspace=root, path=posixpath.normpath(posixpath.join(root, norm)))


def provider_exec(
    provider: SandboxProvider, sandbox_id: str, *, timeout: float = DEFAULT_EXEC_TIMEOUT
) -> Exec:
    """An :data:`Exec` running in ``sandbox_id`` (use with ``resolve_repo_dir(".", ...)``)."""

    async def run(argv: Sequence[str], cwd: str | None) -> ExecResult:
        return await provider.exec(sandbox_id, argv, cwd=cwd, timeout=timeout)

    return run


async def run_git(
    exec: Exec,
    cwd: str,
    *args: str,
    read_only: bool = False,
    token: str | None = None,
) -> ExecResult:
    """Run ``git args`` in ``cwd`` non-interactively.

    ``read_only`` takes no optional locks; ``token`` answers an https credential request
    for this command only (through its environment, never stored).
    """
    env = list(_BASE_ENV)
    config = list(_BASE_CONFIG)
    if read_only:
        env.append("GIT_OPTIONAL_LOCKS=0")
    if token:
        env.append(f"{_TOKEN_VAR}={token}")
        config += ["-c", "credential.helper=", "-c", f"credential.helper={_CREDENTIAL_HELPER}"]
    return await exec(["env", *env, "git", *config, *args], cwd)


def error_text(result: ExecResult) -> str:
    """What a failed command said: stderr, else stdout, else its exit code."""
    return result.stderr.strip() or result.stdout.strip() or f"exit code {result.exit_code}"


async def inspect_repo(exec: Exec, repo: RepoDir) -> Inspection:
    """The repo's state, read-only; raises :class:`GitError` when it is not a repository
    inside the workspace or git's output cannot be read."""
    git_paths = [arg for name in _PROBES for arg in ("--git-path", name)]
    pwd, probe = await asyncio.gather(
        exec(["pwd", "-P"], repo.workspace),
        run_git(
            exec,
            repo.path,
            "rev-parse",
            "--show-toplevel",
            "--is-shallow-repository",
            *git_paths,
            read_only=True,
        ),
    )
    if probe.exit_code != 0:
        raise GitError(f"not a git repository: {error_text(probe)}")
    lines = probe.stdout.splitlines()
    if pwd.exit_code != 0 or len(lines) != 2 + len(_PROBES):
        raise GitError("could not locate the repository in the workspace")
    workspace, toplevel = pwd.stdout.strip().rstrip("/"), lines[0]
    if toplevel != workspace and not toplevel.startswith(workspace + "/"):
        raise GitError("the repository lies outside the workspace")
    exists, status, log = await asyncio.gather(
        exec(["sh", "-c", _EXISTS_SCRIPT, "sh", *lines[2:]], repo.path),
        run_git(exec, repo.path, "status", "--porcelain=v2", "--branch", "-z", read_only=True),
        run_git(
            exec,
            repo.path,
            "log",
            "-z",
            "-n",
            "10",
            "--no-show-signature",
            "--format=%H%x1f%s",
            read_only=True,
        ),
    )
    flags = exists.stdout.split()
    if exists.exit_code != 0 or len(flags) != len(_PROBES) or status.exit_code != 0:
        raise GitError(f"git status failed: {error_text(status if status.exit_code else exists)}")
    try:
        parsed = parse_porcelain_v2(status.stdout)
        commits = parse_log(log.stdout) if parsed.oid and log.exit_code == 0 else ()
    except StatusParseError as exc:
        raise GitError(f"unexpected git status output: {exc}") from None
    if parsed.oid and log.exit_code != 0:
        raise GitError(f"git log failed: {error_text(log)}")
    present = dict(zip(_PROBES, (f == "1" for f in flags), strict=True))
    rebase = present["rebase-merge"] or present["rebase-apply"]
    merge = present["MERGE_HEAD"]
    busy = any(present.values())
    state = GitState(
        branch=parsed.head,
        detached=parsed.head is None,
        staged=parsed.staged,
        unstaged=parsed.unstaged,
        untracked=parsed.untracked,
        conflicted=parsed.conflicted,
        commits=commits,
        ahead=parsed.ahead,
        behind=parsed.behind,
        is_shallow=lines[1] == "true",
        is_busy=busy,
        rebase_in_progress=rebase,
        merge_in_progress=merge,
    )
    return Inspection(state=state, oid=parsed.oid, locked=present["index.lock"])


def refusal(
    action: GitAction, inspection: Inspection, *, may_conclude: bool = False
) -> GitResult | None:
    """MERGE_CONFLICT or REPO_BUSY when the repo is in no state to be changed, else None.

    ``may_conclude``: a commit may conclude a merge, cherry-pick or revert whose
    conflicts are resolved (that is how git finishes them); a rebase or a held index
    lock still refuses it.
    """
    state = inspection.state
    if state.conflicted:
        shown = ", ".join(state.conflicted[:10])
        more = f" and {len(state.conflicted) - 10} more" if len(state.conflicted) > 10 else ""
        return failed(action, "MERGE_CONFLICT", f"resolve the conflicts first: {shown}{more}")
    if inspection.locked:
        why = "another git operation is running or was interrupted (index.lock exists)"
    elif state.rebase_in_progress:
        why = "a rebase is in progress"
    elif not state.is_busy or may_conclude:
        return None
    elif state.merge_in_progress:
        why = "a merge is in progress: commit to conclude it"
    else:
        why = "a cherry-pick or revert is in progress: commit to conclude it"
    return failed(action, "REPO_BUSY", f"the repository is busy: {why}")


def failed(
    action: GitAction, code: GitCode, message: str, secrets: Sequence[str] = ()
) -> GitResult:
    """A failed result; ``message`` is redacted (``secrets`` too) and trimmed."""
    return GitResult(
        action=action, success=False, code=code, message=safe_message(message, secrets)
    )


def succeeded(action: GitAction, message: str, pr_url: str | None = None) -> GitResult:
    """A successful result with a redacted ``message``."""
    return GitResult(
        action=action, success=True, code="SUCCESS", message=safe_message(message), pr_url=pr_url
    )


def code_of(exc: Exception) -> GitCode:
    """The :data:`GitCode` of a failure: a :class:`GitError`'s own, else UNKNOWN_ERROR."""
    return exc.code if isinstance(exc, GitError) else "UNKNOWN_ERROR"
