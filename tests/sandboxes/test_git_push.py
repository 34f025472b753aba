"""Pushing (``sandboxes.git_push``) to real remotes: upstreams, shallow clones, and
credentials that never show in a message.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from sandboxes.git_ops import commit, create_branch, git_status
from sandboxes.git_push import push
from sandboxes.git_repo import resolve_repo_dir, safe_message
from tests.fakes.base import FakeServer
from tests.sandboxes.git_support import Repo, bare_with_history, local_exec, repo  # noqa: F401
from tests.sandboxes.local_support import git

# --- push --------------------------------------------------------------------------------------


async def test_first_push_sets_the_upstream_then_pushes_to_it(repo: Repo) -> None:
    await create_branch(local_exec, repo.dir, "feature")
    repo.write("f.txt", "f\n")
    await commit(local_exec, repo.dir, "feature work", include_untracked=True)
    first = await push(local_exec, repo.dir)
    assert (first.action, first.success, first.code) == ("push", True, "SUCCESS")
    assert "upstream" in first.message
    assert repo.git("config", "branch.feature.merge").strip() == "refs/heads/feature"
    head = repo.git("rev-parse", "HEAD")
    assert git(repo.origin, "rev-parse", "feature") == head
    state = await git_status(local_exec, repo.dir)
    assert (state.ahead, state.behind) == (0, 0)
    repo.write("f.txt", "g\n")
    await commit(local_exec, repo.dir, "more")
    second = await push(local_exec, repo.dir)
    assert second.success and "upstream" not in second.message
    assert git(repo.origin, "rev-parse", "feature") == repo.git("rev-parse", "HEAD")


async def test_push_of_a_branch_tracking_another_name_goes_to_its_own_name(repo: Repo) -> None:
    repo.git("checkout", "-qb", "topic", "--track", "origin/main")
    repo.write("t.txt", "t\n")
    await commit(local_exec, repo.dir, "topic", include_untracked=True)
    result = await push(local_exec, repo.dir)
    assert result.success, result.message
    assert git(repo.origin, "rev-parse", "topic") == repo.git("rev-parse", "HEAD")
    assert git(repo.origin, "rev-parse", "main") != repo.git("rev-parse", "HEAD")


async def test_push_without_origin_is_no_remote(repo: Repo) -> None:
    repo.git("remote", "rename", "origin", "upstream")
    repo.git("checkout", "-qb", "lonely")
    named = await push(local_exec, repo.dir)
    assert (named.success, named.code) == (False, "NO_REMOTE")
    repo.git("remote", "remove", "upstream")
    none = await push(local_exec, repo.dir)
    assert (none.success, none.code) == (False, "NO_REMOTE")


async def test_push_of_detached_head_or_stale_branch_fails_cleanly(
    repo: Repo, tmp_path: Path
) -> None:
    repo.git("checkout", "-q", "--detach")
    detached = await push(local_exec, repo.dir)
    assert (detached.success, detached.code) == (False, "UNKNOWN_ERROR")
    assert "detached" in detached.message
    repo.git("checkout", "-q", "main")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", repo.origin.as_uri(), str(other))
    git(other, "commit", "-q", "--allow-empty", "-m", "theirs")
    git(other, "push", "-q", "origin", "main")
    repo.git("commit", "-q", "--allow-empty", "-m", "mine")
    stale = await push(local_exec, repo.dir)
    assert (stale.success, stale.code) == (False, "UNKNOWN_ERROR")
    assert "pull first" in stale.message


async def _shallow_feature(tmp_path: Path, origin_uri: str) -> Repo:
    """A depth-1 clone with one new commit on ``feat``."""
    upstream = bare_with_history(tmp_path, "upstream.git", commits=4)
    workspace = tmp_path / "sws"
    workspace.mkdir()
    git(workspace, "clone", "-q", "--depth", "1", upstream.as_uri(), "app")
    path = workspace / "app"
    git(path, "remote", "set-url", "origin", origin_uri or upstream.as_uri())
    git(path, "checkout", "-qb", "feat")
    (path / "feat.txt").write_text("f\n")
    git(path, "add", ".")
    git(path, "commit", "-qm", "feat")
    return Repo(workspace, path, upstream, resolve_repo_dir(str(workspace), "app"))


async def test_shallow_push_refused_is_deepened_and_retried(tmp_path: Path) -> None:
    shallow = await _shallow_feature(tmp_path, "")
    fork = tmp_path / "fork.git"
    git(tmp_path, "init", "-q", "--bare", str(fork))
    shallow.git("remote", "add", "fork", fork.as_uri())
    # The branch tracks the (empty) fork: it lacks the history behind the shallow tip.
    shallow.git("config", "branch.feat.remote", "fork")
    shallow.git("config", "branch.feat.merge", "refs/heads/feat")
    assert (await git_status(local_exec, shallow.dir)).is_shallow
    result = await push(local_exec, shallow.dir)
    assert (result.success, result.code) == (True, "SUCCESS"), result.message
    assert "shallow" in result.message
    assert git(fork, "rev-parse", "feat") == shallow.git("rev-parse", "HEAD")
    assert not (await git_status(local_exec, shallow.dir)).is_shallow


async def test_shallow_push_that_cannot_be_deepened_fails(tmp_path: Path) -> None:
    behind = tmp_path / "behind.git"
    git(tmp_path, "init", "-q", "--bare", str(behind))
    shallow = await _shallow_feature(tmp_path, behind.as_uri())
    # ``origin`` holds only the first commit: fetching from it cannot complete the history.
    git(
        tmp_path,
        "--git-dir",
        str(shallow.origin),
        "push",
        "-q",
        behind.as_uri(),
        "main~3:refs/heads/main",
    )
    result = await push(local_exec, shallow.dir)
    assert (result.success, result.code) == (False, "SHALLOW_PUSH_FAILED")


# --- credentials -------------------------------------------------------------------------------


class DenyingGitServer(FakeServer):
    """A smart-HTTP endpoint that refuses every credential with 401."""

    def __init__(self) -> None:
        super().__init__()
        self.app.router.add_route("*", "/{tail:.*}", self._deny)

    async def _deny(self, request: web.Request) -> web.Response:
        return web.Response(
            status=401, text="denied", headers={"WWW-Authenticate": 'Basic realm="git"'}
        )

    def basic_credentials(self) -> list[str]:
        out = []
        for r in self.requests:
            auth = r.header("Authorization") or ""
            if auth.startswith("Basic "):
                out.append(base64.b64decode(auth[6:]).decode())
        return out


@pytest.fixture
async def denying() -> AsyncIterator[DenyingGitServer]:
    async with DenyingGitServer() as server:
        yield server


async def test_push_auth_failure_never_shows_the_url_token(
    repo: Repo, denying: DenyingGitServer
) -> None:
    secret = "ghp_" + secrets.token_hex(16)
    repo.git(
        "remote", "set-url", "origin", f"http://x-access-token:{secret}@{denying.url[7:]}/a/b.git"
    )
    result = await push(local_exec, repo.dir)
    assert (result.success, result.code) == (False, "AUTH_FAILED")
    assert secret not in result.message
    assert f"x-access-token:{secret}" in denying.basic_credentials()


async def test_push_token_goes_through_the_helper_and_stays_hidden(
    repo: Repo, denying: DenyingGitServer
) -> None:
    secret = "tok-" + secrets.token_hex(16)
    repo.git("remote", "set-url", "origin", f"{denying.url}/a/b.git")
    no_token = await push(local_exec, repo.dir)
    assert no_token.code == "AUTH_FAILED"  # no prompt: terminal prompts are disabled
    result = await push(local_exec, repo.dir, token=secret)
    assert (result.success, result.code) == (False, "AUTH_FAILED")
    assert secret not in result.message
    assert denying.basic_credentials() == [f"x-access-token:{secret}"]
    assert secret not in (repo.path / ".git" / "config").read_text()


def test_safe_message_masks_credentials() -> None:
    text = (
        "fatal: unable to access 'https://bob:s3cr3t-pw@github.com/a/b.git/'\n"
        "hint: see ghp_abcdefghijklmnopqrstuvwx1234\n"
        "remote: token github_pat_11ABCDEFG0123456789_abcdefghijklmnop leaked\n"
        "push with mytoken-1234 failed"
    )
    shown = safe_message(text, ["mytoken-1234"])
    for secret in ("s3cr3t-pw", "bob:", "ghp_", "github_pat_", "mytoken-1234", "hint:"):
        assert secret not in shown
    assert "https://***@github.com/a/b.git/" in shown
