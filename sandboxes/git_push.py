"""Push a sandbox repo's current branch, deepening a shallow clone the remote refuses.

A push token, when given, answers git's https credential request for that one command
(see :func:`sandboxes.git_repo.run_git`) and is masked in every message.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sandboxes.errors import SandboxError
from sandboxes.git_repo import (
    Exec,
    GitError,
    RepoDir,
    code_of,
    error_text,
    failed,
    inspect_repo,
    refusal,
    run_git,
    succeeded,
)
from schemas.git import GitAction, GitResult
from schemas.sandbox import ExecResult

_AUTH_PATTERNS = re.compile(
    r"authentication failed|could not read (?:username|password)|terminal prompts disabled"
    r"|invalid username or password|permission denied \(publickey|http basic: access denied"
    r"|returned error: 40[13]|permission to \S+ denied|repository not found"
    r"|bad credentials|access denied|write access to repository not granted",
    re.IGNORECASE,
)
_SHALLOW_PATTERNS = re.compile(
    r"shallow update not allowed|did not receive expected object|shallow file has changed",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Pushed:
    """A push's result and, when it succeeded, where the branch went."""

    result: GitResult
    remote: str | None = None
    branch: str | None = None


async def push(exec: Exec, repo: RepoDir, *, token: str | None = None) -> GitResult:
    """Push the current branch: to its upstream if it tracks a same-named remote branch,
    else to ``origin`` with the upstream set. A shallow clone the remote refuses is
    deepened (``git fetch --unshallow``) and the push retried once.

    ``token``, when given, answers git's https credential request for this push only.
    """
    return (await push_branch(exec, repo, "push", token)).result


async def push_branch(exec: Exec, repo: RepoDir, action: GitAction, token: str | None) -> Pushed:
    """:func:`push`, reported as ``action``, with the remote and branch it pushed to."""
    secrets = (token,) if token else ()
    try:
        inspection = await inspect_repo(exec, repo)
        refused = refusal(action, inspection)
        if refused:
            return Pushed(result=refused)
        branch = inspection.state.branch
        if branch is None:
            return Pushed(
                result=failed(action, "UNKNOWN_ERROR", "HEAD is detached: create a branch first")
            )
        if inspection.oid is None:
            message = f"branch {branch} has no commits to push"
            return Pushed(result=failed(action, "NOTHING_TO_COMMIT", message))
        target = await _push_target(exec, repo, action, branch)
        if isinstance(target, GitResult):
            return Pushed(result=target)
        remote, set_upstream = target
        refspec = f"refs/heads/{branch}:refs/heads/{branch}"
        argv = (
            ("push", "--set-upstream", remote, refspec)
            if set_upstream
            else ("push", remote, refspec)
        )
        pushed = await run_git(exec, repo.path, *argv, token=token)
        note = ""
        if (
            pushed.exit_code != 0
            and inspection.state.is_shallow
            and _SHALLOW_PATTERNS.search(pushed.stderr)
        ):
            source = (
                "origin"
                if remote == "origin" or await _has_remote(exec, repo, "origin")
                else remote
            )
            deepen = await run_git(
                exec, repo.path, "fetch", "--quiet", "--unshallow", source, token=token
            )
            if deepen.exit_code != 0:
                msg = f"the clone is shallow and fetching its history failed: {error_text(deepen)}"
                return Pushed(result=failed(action, "SHALLOW_PUSH_FAILED", msg, secrets))
            pushed = await run_git(exec, repo.path, *argv, token=token)
            if pushed.exit_code != 0 and _SHALLOW_PATTERNS.search(pushed.stderr):
                msg = f"the remote refuses the shallow history: {error_text(pushed)}"
                return Pushed(result=failed(action, "SHALLOW_PUSH_FAILED", msg, secrets))
            note = " (after fetching the full history of the shallow clone)"
        if pushed.exit_code != 0:
            return Pushed(result=_push_failure(action, pushed, secrets))
        upstream = " and set it as upstream" if set_upstream else ""
        return Pushed(
            result=succeeded(action, f"pushed {branch} to {remote}{upstream}{note}"),
            remote=remote,
            branch=branch,
        )
    except (GitError, SandboxError) as exc:
        return Pushed(result=failed(action, code_of(exc), str(exc), secrets))


async def _has_remote(exec: Exec, repo: RepoDir, name: str) -> bool:
    remotes = await run_git(exec, repo.path, "remote", read_only=True)
    return name in remotes.stdout.split()


async def _push_target(
    exec: Exec, repo: RepoDir, action: GitAction, branch: str
) -> tuple[str, bool] | GitResult:
    """(remote, set upstream?) for ``branch``, or NO_REMOTE."""
    listed, tracking = await asyncio.gather(
        run_git(exec, repo.path, "remote", read_only=True),
        run_git(
            exec,
            repo.path,
            "for-each-ref",
            "--format=%(refname)%00%(upstream:remotename)%00%(upstream:remoteref)",
            f"refs/heads/{branch}",
            read_only=True,
        ),
    )
    if listed.exit_code != 0 or tracking.exit_code != 0:
        raise GitError(
            f"reading the remotes failed: {error_text(listed if listed.exit_code else tracking)}"
        )
    remotes = listed.stdout.split()
    for line in tracking.stdout.splitlines():
        ref, _, rest = line.partition("\0")
        remote, _, merge = rest.partition("\0")
        if ref == f"refs/heads/{branch}" and remote in remotes and merge == f"refs/heads/{branch}":
            return remote, False
    if "origin" in remotes:
        return "origin", True
    message = "no 'origin' remote is configured" if remotes else "the repository has no remote"
    return failed(action, "NO_REMOTE", message)


def _push_failure(action: GitAction, result: ExecResult, secrets: Sequence[str]) -> GitResult:
    text = error_text(result)
    if _AUTH_PATTERNS.search(text):
        return failed(action, "AUTH_FAILED", f"the remote refused the credentials: {text}", secrets)
    if "non-fast-forward" in text or "fetch first" in text:
        return failed(
            action,
            "UNKNOWN_ERROR",
            f"the remote has commits this branch lacks; pull first: {text}",
            secrets,
        )
    return failed(action, "UNKNOWN_ERROR", f"push failed: {text}", secrets)
