"""Cloning a session's repos into a local sandbox workspace without leaking their tokens.

A token never reaches argv, logs or ``.git/config``: credentials embedded in a URL are
lifted out of it, and git gets the token through a one-shot credential helper that reads
it from its own environment.
"""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from sandboxes.errors import SandboxError, redact
from schemas.sandbox import RepoSpec

CLONE_TIMEOUT = 600.0

_TOKEN_VAR = "WARREN_GIT_TOKEN"
# Answers git's "get" request with the token from the environment; nothing is stored.
_CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || exit 0; '
    f'printf "username=x-access-token\\npassword=%s\\n" "${_TOKEN_VAR}"; }}; f'
)


def repo_dir(workspace: Path, workspace_path: str) -> Path:
    """Where a repo with ``workspace_path`` lands; raises SandboxError if it escapes."""
    rel = PurePosixPath(workspace_path)
    if rel.is_absolute() or ".." in rel.parts or "\\" in workspace_path or "\0" in workspace_path:
        raise SandboxError(f"workspace path {workspace_path!r} must stay inside the workspace")
    return workspace if str(rel) == "." else workspace.joinpath(*rel.parts)


def split_credentials(url: str, token: str | None) -> tuple[str, str | None]:
    """``url`` without embedded credentials, and the token to use (the explicit one wins)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or "@" not in parsed.netloc:
        return url, token
    userinfo, _, host = parsed.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    embedded = urllib.parse.unquote(password or user) or None
    return urllib.parse.urlunsplit(parsed._replace(netloc=host)), token or embedded


def _source(url: str) -> str:
    """Local paths are made absolute: git runs with the workspace as its cwd."""
    if "://" in url or url.startswith("git@"):
        return url
    return str(Path(url).expanduser().resolve())


async def clone_repos(
    repos: Sequence[RepoSpec],
    workspace: Path,
    env: Mapping[str, str],
    *,
    time_limit: float = CLONE_TIMEOUT,
) -> None:
    """Clone every repo into its workspace path, in parallel."""
    paths = [repo.workspace_path for repo in repos]
    if len(repos) > 1 and "." in paths:
        raise SandboxError("with several repos, each needs its own workspace path, not '.'")
    if len(set(paths)) != len(paths):
        raise SandboxError("two repos share a workspace path")
    targets = [repo_dir(workspace, repo.workspace_path) for repo in repos]
    await asyncio.gather(
        *(_clone(repo, dest, env, time_limit) for repo, dest in zip(repos, targets, strict=True))
    )


async def _clone(repo: RepoSpec, dest: Path, env: Mapping[str, str], time_limit: float) -> None:
    url, token = split_credentials(repo.url, repo.token)
    secrets = [s for s in (token, repo.token) if s]
    dest.parent.mkdir(parents=True, exist_ok=True)
    branch_args = ["--branch", repo.branch] if repo.branch else []
    code, err = await _git(
        ["clone", "--quiet", *branch_args, "--", _source(url), str(dest)], env, token, time_limit
    )
    if code != 0 and repo.branch and "not found in upstream" in err:
        # The reference falls back to the default branch; Warren then creates the branch
        # asked for, so the agent works where the session said it would.
        code, err = await _git(
            ["clone", "--quiet", "--", _source(url), str(dest)], env, token, time_limit
        )
        if code == 0:
            code, err = await _git(
                ["-C", str(dest), "checkout", "--quiet", "-b", repo.branch], env, token, time_limit
            )
    if code != 0:
        shown = redact(url, secrets)
        raise SandboxError(f"git clone of {shown} failed: {err.strip()[-2000:]}", secrets=secrets)


async def _git(
    args: list[str], env: Mapping[str, str], token: str | None, time_limit: float
) -> tuple[int, str]:
    git_env = {
        **env,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
    }
    config: list[str] = []
    if token:
        git_env[_TOKEN_VAR] = token
        config = ["-c", "credential.helper=", "-c", f"credential.helper={_CREDENTIAL_HELPER}"]
    proc = await asyncio.create_subprocess_exec(
        "git",
        *config,
        *args,
        env=git_env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), time_limit)
    except TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        return 124, f"timed out after {time_limit:.0f} s"
    return proc.returncode or 0, stderr.decode(errors="replace")


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
