"""Create a pull request from a sandbox repo: push the branch, then open it on ``origin``.

The git side lives here (``origin`` must be a GitHub remote; a fork remote the branch
tracks gives the head's owner); opening the pull request is the caller's
:class:`PullRequestHost` (GitHub's: ``integrations.github_pulls.GitHubPullRequests``), so
this package never talks to GitHub itself.
"""

from __future__ import annotations

import re
from typing import Protocol

import msgspec

from sandboxes.errors import SandboxError
from sandboxes.git_push import push_branch
from sandboxes.git_repo import (
    Exec,
    GitError,
    RepoDir,
    code_of,
    failed,
    run_git,
    safe_message,
)
from schemas.git import GitAction, GitResult, PullRequestSpec

_OWNER_REPO = re.compile(r"^[A-Za-z0-9_.-]+$")


class PullRequestHost(Protocol):
    """Where pull requests are opened for a pushed branch."""

    async def open_pull_request(self, spec: PullRequestSpec) -> GitResult:
        """Open ``spec``, or return the pull request already open for its head."""
        ...


def parse_github_remote(url: str) -> tuple[str, str] | None:
    """(owner, repo) from an https, ssh or scp-style (``git@host:o/r.git``) remote URL."""
    url = url.strip()
    if "://" in url:
        scheme, _, rest = url.partition("://")
        if scheme not in ("https", "http", "ssh", "git"):
            return None
        path = rest.partition("/")[2]
    elif re.match(r"^[^/:]+:", url):
        path = url.partition(":")[2]
    else:
        return None
    parts = [p for p in path.split("/") if p]
    if len(parts) != 2:
        return None
    owner, name = parts[0], parts[1].removesuffix(".git")
    if not (_OWNER_REPO.match(owner) and _OWNER_REPO.match(name)) or name in (".", ".."):
        return None
    return owner, name


async def _remote_url(exec: Exec, repo: RepoDir, remote: str) -> str | None:
    # The configured URL, not ``remote get-url``: that one applies insteadOf rewrites.
    got = await run_git(exec, repo.path, "config", "--get", f"remote.{remote}.url", read_only=True)
    return got.stdout.strip() if got.exit_code == 0 and got.stdout.strip() else None


async def create_pr(
    exec: Exec,
    repo: RepoDir,
    host: PullRequestHost,
    *,
    title: str,
    body: str | None = None,
    base_branch: str | None = None,
    token: str | None = None,
) -> GitResult:
    """Push the branch, then open a pull request through ``host`` on the ``origin``
    GitHub repository (the base defaults to its default branch).

    ``token`` is the push token; it is masked in every message, the host's included.
    """
    action: GitAction = "create_pr"
    secrets = (token,) if token else ()
    try:
        origin = await _remote_url(exec, repo, "origin")
    except (GitError, SandboxError) as exc:
        return failed(action, code_of(exc), str(exc), secrets)
    if origin is None:
        return failed(action, "NO_REMOTE", "no 'origin' remote is configured")
    target = parse_github_remote(origin)
    if target is None:
        return failed(
            action, "UNKNOWN_ERROR", f"origin is not a GitHub repository URL: {origin}", secrets
        )
    pushed = await push_branch(exec, repo, action, token)
    if not pushed.result.success or pushed.branch is None or pushed.remote is None:
        return pushed.result
    owner, name = target
    head_owner = owner
    if pushed.remote != "origin":
        fork_url = await _remote_url(exec, repo, pushed.remote)
        fork = parse_github_remote(fork_url) if fork_url else None
        head_owner = fork[0] if fork else owner
    spec = PullRequestSpec(
        owner=owner,
        repo=name,
        head=f"{head_owner}:{pushed.branch}",
        branch=pushed.branch,
        title=title,
        body=body,
        base_branch=base_branch,
    )
    opened = await host.open_pull_request(spec)
    return msgspec.structs.replace(opened, message=safe_message(opened.message, secrets))
