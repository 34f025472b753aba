"""Git operations of a live session, run in its sandbox through the provider's ``exec``.

The session actor delegates ``get_git_status`` and the four mutations (create branch,
commit, push, open a pull request) here; ``sandboxes.git_*`` does the git work.

- Reads (status) are open to anyone who may see the session (the ingress checked the org).
- Mutations need the caller to be the session's creator (or the session to have none);
  anyone else gets a ``GitResult`` with ``success`` false, never an exception.
- The sandbox is started (or resumed) first if it is not running.
- Mutations run one at a time per session (git's index lock would refuse a second one),
  in the order they arrive. Ray may retry a call in flight when the actor died; each
  operation is safe to repeat (a repeated commit finds nothing to commit, a repeated pull
  request returns the open one).
- Commits are authored as the requesting user (name and email from Postgres).
- The GitHub token (``Settings.github_token``) is given to git only when every remote of
  the repo is on GitHub's host, so it never reaches another server.
- An opened pull request's URL is added to the session's ``pr_urls``.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
import uuid
from collections.abc import Sequence

from actors.session.core import SessionCore
from actors.session.errors import SessionGone, SessionStopped
from integrations.github_client import GitHubClient
from integrations.github_pulls import GitHubPullRequests
from sandboxes.git_ops import commit, create_branch, git_status
from sandboxes.git_pr import create_pr
from sandboxes.git_push import push
from sandboxes.git_repo import Exec, GitError, RepoDir, provider_exec, resolve_repo_dir
from schemas.git import GitAction, GitResult, GitState
from schemas.sandbox import ExecResult
from schemas.session_ws import GitCommitRequest, GitCreateBranch, GitCreatePr, GitPush
from store import sessions as session_store
from store import users as user_store

log = logging.getLogger(__name__)

GIT_EXEC_TIMEOUT = 120.0
"""Seconds one git command may take in the sandbox (push and fetch included)."""
FALLBACK_IDENTITY = ("Warren", "warren@localhost")
"""Commit author when the caller is not a user (a service, or a deleted account)."""

GitRequest = GitCreateBranch | GitCommitRequest | GitPush | GitCreatePr
"""The client messages that change a repository."""

_ACTIONS: dict[type, GitAction] = {
    GitCreateBranch: "create_branch",
    GitCommitRequest: "commit",
    GitPush: "push",
    GitCreatePr: "create_pr",
}


def action_of(request: GitRequest) -> GitAction:
    """The :data:`GitAction` a request performs."""
    return _ACTIONS[type(request)]


def may_change(created_by: uuid.UUID | None, user_id: str | None) -> bool:
    """Whether ``user_id`` may run git mutations on a session created by ``created_by``."""
    return created_by is None or (user_id is not None and str(created_by) == user_id)


def _failure(action: GitAction, message: str) -> GitResult:
    return GitResult(action=action, success=False, code="UNKNOWN_ERROR", message=message)


def with_identity(run: Exec, name: str, email: str) -> Exec:
    """``run`` with git's author and committer set for every command."""
    env = [
        f"GIT_AUTHOR_NAME={name}",
        f"GIT_AUTHOR_EMAIL={email}",
        f"GIT_COMMITTER_NAME={name}",
        f"GIT_COMMITTER_EMAIL={email}",
    ]

    async def wrapped(argv: Sequence[str], cwd: str | None) -> ExecResult:
        return await run(["env", *env, *argv], cwd)

    return wrapped


def remote_host(url: str) -> str | None:
    """The host of an https/ssh URL or an scp-style ``user@host:path``."""
    if "://" in url:
        parts = urllib.parse.urlsplit(url)
        return parts.hostname if parts.scheme in ("https", "ssh") else None
    user_host, sep, _ = url.partition(":")
    if not sep or "/" in user_host:
        return None  # a local path
    return user_host.rpartition("@")[2] or None


def github_host(api_url: str) -> str:
    """The git host that goes with a GitHub API URL (``api.github.com`` → ``github.com``)."""
    host = urllib.parse.urlsplit(api_url).hostname or "github.com"
    return "github.com" if host == "api.github.com" else host


class SessionGit:
    """Runs one session's git requests (see the module docstring)."""

    def __init__(self, core: SessionCore) -> None:
        self._core = core
        self._lock = asyncio.Lock()

    async def _exec(self) -> Exec:
        """An exec into the running sandbox, starting or resuming it first."""
        core = self._core
        await core.ensure_ready()
        runtime = core.runtime
        if runtime is None or runtime.handle is None:
            raise RuntimeError("the sandbox is not running")
        core.touch()
        return provider_exec(runtime.provider, runtime.handle.sandbox_id, timeout=GIT_EXEC_TIMEOUT)

    async def status(self, workspace_path: str | None) -> GitState | GitResult:
        """The repo's state, or a failed ``status`` result saying why it is unavailable."""
        try:
            repo = resolve_repo_dir(".", workspace_path)
            return await git_status(await self._exec(), repo)
        except GitError as exc:
            return GitResult(action="status", success=False, code=exc.code, message=str(exc))
        except (SessionStopped, SessionGone):
            return _failure("status", "the session is stopped")
        except Exception as exc:
            log.warning("session %s: git status failed", self._core.session_id, exc_info=True)
            return _failure("status", f"the sandbox is not available ({type(exc).__name__})")

    async def run(self, user_id: str | None, request: GitRequest) -> GitResult:
        """Perform a mutation for ``user_id`` (refused unless they created the session)."""
        action = action_of(request)
        await self._core.started()
        record = self._core.record
        if record is None or not may_change(record.created_by, user_id):
            return _failure(action, "only the session's creator can change its repository")
        try:
            repo = resolve_repo_dir(".", request.workspace_path)
        except GitError as exc:
            return _failure(action, str(exc))
        async with self._lock:
            try:
                run = with_identity(await self._exec(), *await self._identity(user_id))
            except (SessionStopped, SessionGone):
                return _failure(action, "the session is stopped")
            except Exception as exc:
                log.warning("session %s: git %s failed", self._core.session_id, action)
                return _failure(action, f"the sandbox is not available ({type(exc).__name__})")
            try:
                result = await self._perform(run, repo, request)
            except Exception as exc:  # git_ops reports git failures; this is anything else
                log.exception("session %s: git %s failed", self._core.session_id, action)
                return _failure(action, f"git {action} failed ({type(exc).__name__})")
        if result.success and result.pr_url and self._core.pool is not None:
            await session_store.add_pr_url(self._core.pool, self._core.sid, result.pr_url)
        return result

    async def _perform(self, run: Exec, repo: RepoDir, request: GitRequest) -> GitResult:
        settings = self._core.settings
        if isinstance(request, GitCreateBranch):
            return await create_branch(run, repo, request.branch_name)
        if isinstance(request, GitCommitRequest):
            return await commit(
                run,
                repo,
                request.message,
                include_untracked=request.include_untracked,
                files=request.files,
            )
        token = await self._push_token(run, repo)
        if isinstance(request, GitPush):
            return await push(run, repo, token=token)
        if not settings.github_token:
            return GitResult(
                action="create_pr",
                success=False,
                code="AUTH_FAILED",
                message="no GitHub token is configured (WARREN_GITHUB_TOKEN)",
            )
        async with GitHubClient(settings.github_token, base_url=settings.github_api_url) as gh:
            return await create_pr(
                run,
                repo,
                GitHubPullRequests(gh),
                title=request.title,
                body=request.body,
                base_branch=request.base_branch,
                token=token,
            )

    async def _push_token(self, run: Exec, repo: RepoDir) -> str | None:
        """The GitHub token if every remote is on GitHub's host, else ``None``."""
        settings = self._core.settings
        if not settings.github_token:
            return None
        listed = await run(["git", "config", "--get-regexp", r"^remote\..*\.url$"], repo.path)
        urls = [line.partition(" ")[2] for line in listed.stdout.splitlines() if line]
        host = github_host(settings.github_api_url)
        if listed.exit_code != 0 or not urls or any(remote_host(u) != host for u in urls):
            return None
        return settings.github_token

    async def _identity(self, user_id: str | None) -> tuple[str, str]:
        pool = self._core.pool
        if user_id is None or pool is None:
            return FALLBACK_IDENTITY
        async with pool.acquire() as conn:
            user = await user_store.get_user(conn, uuid.UUID(user_id))
        if user is None:
            return FALLBACK_IDENTITY
        return (user.name or user.email.partition("@")[0], user.email)
