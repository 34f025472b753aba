"""Git operations (``sandboxes.git_*``) against real repos: a bare ``origin`` over file://,
a clone in a workspace.

Commands go through a plain asyncio-subprocess exec (and, in one test, through the local
provider's ``exec``); GitHub is the HTTP fake speaking the real REST wire format.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from integrations.github_client import GitHubClient
from integrations.github_pulls import GitHubPullRequests
from sandboxes.git_ops import commit, create_branch, git_status
from sandboxes.git_pr import create_pr, parse_github_remote
from sandboxes.git_push import push
from sandboxes.git_repo import GitError, RepoDir, provider_exec, resolve_repo_dir, safe_message
from sandboxes.git_state import StatusParseError, parse_porcelain_v2
from sandboxes.local import LocalSandboxProvider
from sandboxes.snapshot_store import LocalSnapshotStore
from schemas.git import GitFile, GitResult, PullRequestSpec
from schemas.sandbox import CreateSandboxOptions, ExecResult, RepoSpec
from tests.fakes.base import FakeServer
from tests.fakes.github import FakeGitHub
from tests.sandboxes.local_support import GIT_ENV, git

TOKEN = "ghs_test_token"


async def local_exec(argv: Sequence[str], cwd: str | None) -> ExecResult:
    """The simplest Exec: a subprocess with a clean git environment."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=GIT_ENV,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return ExecResult(
        exit_code=proc.returncode or 0, stdout=out.decode(), stderr=err.decode(errors="replace")
    )


@dataclass
class Repo:
    """A clone at ``<workspace>/app`` of the bare ``origin``."""

    workspace: Path
    path: Path
    origin: Path
    dir: RepoDir

    def git(self, *args: str) -> str:
        return git(self.path, *args)

    def write(self, name: str, text: str) -> None:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def _bare_with_history(root: Path, name: str = "origin.git", commits: int = 2) -> Path:
    bare = root / name
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = root / f"seed-{name}"
    git(root, "init", "-q", "-b", "main", str(seed))
    for i in range(commits):
        (seed / "README.md").write_text(f"# demo {i}\n")
        (seed / f"file{i}.txt").write_text(f"{i}\n")
        git(seed, "add", ".")
        git(seed, "commit", "-qm", f"commit {i}")
    git(seed, "push", "-q", bare.as_uri(), "main")
    return bare


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    origin = _bare_with_history(tmp_path)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    git(workspace, "clone", "-q", origin.as_uri(), "app")
    return Repo(workspace, workspace / "app", origin, resolve_repo_dir(str(workspace), "app"))


# --- paths -------------------------------------------------------------------------------------


def test_resolve_repo_dir_confines_lexically() -> None:
    assert resolve_repo_dir(".", None) == RepoDir(workspace=".", path=".")
    assert resolve_repo_dir(".", "svc/api/") == RepoDir(workspace=".", path="svc/api")
    assert resolve_repo_dir("/w", "a/../b").path == "/w/b"
    for bad in ("../x", "a/../../x", "/etc", "..", "a\0b"):
        with pytest.raises(GitError, match="workspace"):
            resolve_repo_dir("/w", bad)


async def test_symlink_to_a_repo_outside_the_workspace_is_refused(repo: Repo) -> None:
    outside = repo.workspace.parent / "outside"
    git(repo.workspace.parent, "clone", "-q", repo.origin.as_uri(), str(outside))
    (repo.workspace / "link").symlink_to(outside)
    with pytest.raises(GitError, match="outside the workspace"):
        await git_status(local_exec, resolve_repo_dir(str(repo.workspace), "link"))


async def test_folder_inside_a_parent_repo_is_not_taken_for_a_repo(repo: Repo) -> None:
    # The workspace itself lies inside the clone: git would find the clone above it.
    nested = repo.path / "nested-ws"
    nested.mkdir()
    with pytest.raises(GitError, match="outside the workspace"):
        await git_status(local_exec, resolve_repo_dir(str(nested), "."))
    plain = repo.workspace.parent / "plain"
    plain.mkdir()
    with pytest.raises(GitError, match="not a git repository"):
        await git_status(local_exec, resolve_repo_dir(str(plain)))


# --- status ------------------------------------------------------------------------------------


async def test_status_of_a_clean_clone(repo: Repo) -> None:
    state = await git_status(local_exec, repo.dir)
    assert state.branch == "main" and not state.detached
    assert (state.staged, state.unstaged, state.untracked, state.conflicted) == ((), (), (), ())
    assert [c.subject for c in state.commits] == ["commit 1", "commit 0"]
    assert state.commits[0].sha == repo.git("rev-parse", "HEAD").strip()
    assert (state.ahead, state.behind) == (0, 0)
    assert not (state.is_shallow or state.is_busy or state.rebase_in_progress)
    assert not state.merge_in_progress


async def test_status_lists_staged_unstaged_untracked_and_renamed(repo: Repo) -> None:
    repo.write("file0.txt", "changed\n")  # unstaged modification
    repo.write("both.txt", "v1\n")
    repo.git("add", "both.txt")
    repo.write("both.txt", "v2\n")  # staged add, then modified again
    repo.git("mv", "file1.txt", "renamed one.txt")
    (repo.path / "README.md").unlink()  # unstaged deletion
    repo.write("new dir/a.txt", "a\n")  # a wholly untracked folder
    repo.write("loose.txt", "x\n")
    state = await git_status(local_exec, repo.dir)
    assert set(state.staged) == {
        GitFile(path="both.txt", status="added"),
        GitFile(path="renamed one.txt", status="renamed", orig_path="file1.txt"),
    }
    assert set(state.unstaged) == {
        GitFile(path="file0.txt", status="modified"),
        GitFile(path="both.txt", status="modified"),
        GitFile(path="README.md", status="deleted"),
    }
    assert sorted(state.untracked) == ["loose.txt", "new dir/"]
    assert state.conflicted == ()


async def test_status_counts_ahead_and_behind_the_upstream(repo: Repo, tmp_path: Path) -> None:
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", repo.origin.as_uri(), str(other))
    (other / "theirs.txt").write_text("t\n")
    git(other, "add", ".")
    git(other, "commit", "-qm", "theirs")
    git(other, "push", "-q", "origin", "main")
    for i in range(2):
        repo.write(f"mine{i}.txt", "m\n")
        repo.git("add", ".")
        repo.git("commit", "-qm", f"mine {i}")
    repo.git("fetch", "-q")
    state = await git_status(local_exec, repo.dir)
    assert (state.ahead, state.behind) == (2, 1)
    assert [c.subject for c in state.commits[:2]] == ["mine 1", "mine 0"]


async def test_status_without_upstream_has_unknown_counts(repo: Repo) -> None:
    repo.git("checkout", "-qb", "solo")
    state = await git_status(local_exec, repo.dir)
    assert state.branch == "solo"
    assert state.ahead is None and state.behind is None


async def test_status_detached_head(repo: Repo) -> None:
    repo.git("checkout", "-q", "--detach", "HEAD~1")
    state = await git_status(local_exec, repo.dir)
    assert state.detached and state.branch is None
    assert state.commits[0].subject == "commit 0"


async def test_status_of_a_shallow_clone(repo: Repo) -> None:
    git(repo.workspace, "clone", "-q", "--depth", "1", repo.origin.as_uri(), "shallow")
    state = await git_status(local_exec, resolve_repo_dir(str(repo.workspace), "shallow"))
    assert state.is_shallow
    assert [c.subject for c in state.commits] == ["commit 1"]


async def test_status_of_an_unborn_branch_at_the_workspace_root(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "trunk")
    (tmp_path / "a.txt").write_text("a\n")
    state = await git_status(local_exec, resolve_repo_dir(str(tmp_path)))
    assert state.branch == "trunk" and not state.detached
    assert state.commits == () and state.untracked == ("a.txt",)
    assert state.ahead is None


async def test_first_commit_and_push_on_an_unborn_branch(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    repo = resolve_repo_dir(str(tmp_path))
    assert (await create_branch(local_exec, repo, "first")).success
    nothing = await push(local_exec, repo)
    assert (nothing.success, nothing.code) == (False, "NOTHING_TO_COMMIT")
    assert (await commit(local_exec, repo, "empty")).code == "NOTHING_TO_COMMIT"
    (tmp_path / "a.txt").write_text("a\n")
    assert (await commit(local_exec, repo, "first commit", include_untracked=True)).success
    state = await git_status(local_exec, repo)
    assert state.branch == "first" and [c.subject for c in state.commits] == ["first commit"]
    no_remote = await push(local_exec, repo)
    assert (no_remote.success, no_remote.code) == (False, "NO_REMOTE")


async def test_commits_are_capped_at_ten(repo: Repo) -> None:
    for i in range(12):
        repo.git("commit", "-q", "--allow-empty", "-m", f"empty {i}")
    state = await git_status(local_exec, repo.dir)
    assert len(state.commits) == 10 and state.commits[0].subject == "empty 11"


def test_porcelain_parser_reads_unmerged_and_rejects_garbage() -> None:
    out = (
        "# branch.oid abc\0# branch.head (detached)\0"
        "u UU N... 100644 100644 100644 100644 a b c both sides.txt\0"
        "2 R. N... 100644 100644 100644 a b R100 new name\0old name\0"
    )
    parsed = parse_porcelain_v2(out)
    assert parsed.head is None and parsed.oid == "abc"
    assert parsed.conflicted == ("both sides.txt",)
    assert parsed.staged == (GitFile(path="new name", status="renamed", orig_path="old name"),)
    with pytest.raises(StatusParseError):
        parse_porcelain_v2("?? not porcelain v2\0")


# --- conflicts and busy ------------------------------------------------------------------------


def _conflict(repo: Repo) -> None:
    repo.git("checkout", "-qb", "side")
    repo.write("file0.txt", "side\n")
    repo.git("commit", "-qam", "side")
    repo.git("checkout", "-q", "main")
    repo.write("file0.txt", "main\n")
    repo.git("commit", "-qam", "main")


async def test_merge_conflict_is_reported_and_refuses_changes(repo: Repo) -> None:
    _conflict(repo)
    with pytest.raises(Exception):  # noqa: B017 - git merge exits 1 on conflict
        repo.git("merge", "-q", "side")
    state = await git_status(local_exec, repo.dir)
    assert state.conflicted == ("file0.txt",)
    assert state.merge_in_progress and state.is_busy and not state.rebase_in_progress
    for result in (
        await commit(local_exec, repo.dir, "try"),
        await push(local_exec, repo.dir),
        await create_branch(local_exec, repo.dir, "escape"),
    ):
        assert (result.success, result.code) == (False, "MERGE_CONFLICT")
        assert "file0.txt" in result.message
    # Resolved but not concluded: branching and pushing wait, a commit concludes the merge.
    repo.write("file0.txt", "resolved\n")
    repo.git("add", "file0.txt")
    busy = await push(local_exec, repo.dir)
    assert (busy.code, busy.success) == ("REPO_BUSY", False) and "merge" in busy.message
    done = await commit(local_exec, repo.dir, "merge side")
    assert done.success and done.code == "SUCCESS"
    assert len(repo.git("log", "-1", "--format=%P").split()) == 2
    assert not (await git_status(local_exec, repo.dir)).is_busy


async def test_rebase_in_progress_is_busy(repo: Repo) -> None:
    _conflict(repo)
    with pytest.raises(Exception):  # noqa: B017 - the rebase stops on the conflict
        repo.git("rebase", "side")
    state = await git_status(local_exec, repo.dir)
    assert state.rebase_in_progress and state.is_busy and state.detached
    assert state.conflicted == ("file0.txt",)
    repo.write("file0.txt", "resolved\n")
    repo.git("add", "file0.txt")
    result = await commit(local_exec, repo.dir, "mid-rebase")
    assert (result.success, result.code) == (False, "REPO_BUSY")
    assert "rebase" in result.message


async def test_index_lock_makes_the_repo_busy(repo: Repo) -> None:
    repo.write("file0.txt", "changed\n")
    (repo.path / ".git" / "index.lock").write_text("")
    state = await git_status(local_exec, repo.dir)
    assert state.is_busy and not state.merge_in_progress and not state.rebase_in_progress
    assert state.unstaged == (GitFile(path="file0.txt", status="modified"),)
    for result in (
        await commit(local_exec, repo.dir, "x"),
        await create_branch(local_exec, repo.dir, "b"),
    ):
        assert (result.success, result.code) == (False, "REPO_BUSY")
        assert "index.lock" in result.message
    (repo.path / ".git" / "index.lock").unlink()
    assert (await commit(local_exec, repo.dir, "x")).success


# --- branches ----------------------------------------------------------------------------------


async def test_create_branch_switches_and_keeps_changes(repo: Repo) -> None:
    repo.write("file0.txt", "wip\n")
    result = await create_branch(local_exec, repo.dir, "feature/login")
    assert (result.action, result.success, result.code) == ("create_branch", True, "SUCCESS")
    state = await git_status(local_exec, repo.dir)
    assert state.branch == "feature/login"
    assert state.unstaged == (GitFile(path="file0.txt", status="modified"),)
    again = await create_branch(local_exec, repo.dir, "main")
    assert (again.success, again.code) == (False, "BRANCH_EXISTS")
    assert repo.git("branch", "--show-current").strip() == "feature/login"


@pytest.mark.parametrize(
    "name", ["bad..name", "-x", "@{-1}", "a b", "x.lock", "", "end/", "a~1", "nul\0"]
)
async def test_create_branch_refuses_invalid_names(repo: Repo, name: str) -> None:
    result = await create_branch(local_exec, repo.dir, name)
    assert (result.success, result.code) == (False, "INVALID_BRANCH")
    assert repo.git("branch", "--show-current").strip() == "main"


# --- commits -----------------------------------------------------------------------------------


def _committed_files(repo: Repo) -> set[str]:
    return set(repo.git("show", "--name-only", "--format=", "HEAD").split("\n")) - {""}


async def test_commit_tracked_only_leaves_untracked_alone(repo: Repo) -> None:
    repo.write("file0.txt", "changed\n")
    (repo.path / "file1.txt").unlink()
    repo.write("new.txt", "n\n")
    result = await commit(local_exec, repo.dir, "tracked changes")
    assert (result.success, result.code) == (True, "SUCCESS")
    assert "tracked changes" in result.message
    assert _committed_files(repo) == {"file0.txt", "file1.txt"}
    assert (await git_status(local_exec, repo.dir)).untracked == ("new.txt",)


async def test_commit_with_untracked_takes_everything(repo: Repo) -> None:
    repo.write("file0.txt", "changed\n")
    repo.write("dir/new.txt", "n\n")
    result = await commit(local_exec, repo.dir, "all", include_untracked=True)
    assert result.success
    assert _committed_files(repo) == {"file0.txt", "dir/new.txt"}
    state = await git_status(local_exec, repo.dir)
    assert (state.unstaged, state.untracked) == ((), ())


async def test_commit_listed_files_only(repo: Repo) -> None:
    repo.write("file0.txt", "changed\n")
    repo.write("pre-staged.txt", "p\n")
    repo.git("add", "pre-staged.txt")
    repo.write("pick me.txt", "n\n")
    (repo.path / "file1.txt").unlink()
    result = await commit(local_exec, repo.dir, "picked", files=["pick me.txt", "./file1.txt"])
    assert result.success, result.message
    assert _committed_files(repo) == {"pick me.txt", "file1.txt"}
    state = await git_status(local_exec, repo.dir)
    assert state.staged == (GitFile(path="pre-staged.txt", status="added"),)
    assert state.unstaged == (GitFile(path="file0.txt", status="modified"),)


async def test_commit_files_are_literal_and_confined(repo: Repo) -> None:
    repo.write("a.txt", "a\n")
    head = repo.git("rev-parse", "HEAD")
    globbed = await commit(local_exec, repo.dir, "glob", files=["*.txt"])
    assert (globbed.success, globbed.code) == (False, "UNKNOWN_ERROR")
    escaped = await commit(local_exec, repo.dir, "escape", files=["../outside.txt"])
    assert (escaped.success, escaped.code) == (False, "UNKNOWN_ERROR")
    assert "inside the repository" in escaped.message
    assert repo.git("rev-parse", "HEAD") == head
    assert repo.git("diff", "--cached", "--name-only") == ""


async def test_nothing_to_commit_is_refused(repo: Repo) -> None:
    head = repo.git("rev-parse", "HEAD")
    clean = await commit(local_exec, repo.dir, "nothing")
    assert (clean.success, clean.code) == (False, "NOTHING_TO_COMMIT")
    repo.write("untracked.txt", "u\n")
    only_untracked = await commit(local_exec, repo.dir, "nothing tracked")
    assert only_untracked.code == "NOTHING_TO_COMMIT"
    unchanged = await commit(local_exec, repo.dir, "same", files=["file0.txt"])
    assert unchanged.code == "NOTHING_TO_COMMIT"
    assert repo.git("rev-parse", "HEAD") == head


async def test_commit_message_is_taken_verbatim(repo: Repo) -> None:
    repo.write("file0.txt", "changed\n")
    result = await commit(local_exec, repo.dir, "--amend\n\n# not a comment")
    assert result.success
    assert repo.git("log", "-1", "--format=%B").strip() == "--amend\n\n# not a comment"
    assert int(repo.git("rev-list", "--count", "HEAD")) == 3


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
    upstream = _bare_with_history(tmp_path, "upstream.git", commits=4)
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


# --- pull requests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/widgets.git", ("acme", "widgets")),
        ("https://x-access-token:tok@github.com/acme/widgets", ("acme", "widgets")),
        ("git@github.com:acme/widgets.git", ("acme", "widgets")),
        ("ssh://git@github.example.com:2222/acme/my.repo.git", ("acme", "my.repo")),
        ("https://github.com/acme/widgets/", ("acme", "widgets")),
        ("file:///srv/acme/widgets.git", None),
        ("/srv/acme/widgets.git", None),
        ("https://github.com/acme", None),
        ("https://gitlab.com/group/sub/widgets.git", None),
    ],
)
def test_parse_github_remote(url: str, expected: tuple[str, str] | None) -> None:
    assert parse_github_remote(url) == expected


@pytest.fixture
async def github() -> AsyncIterator[FakeGitHub]:
    async with FakeGitHub(tokens=(TOKEN,), read_only_tokens=("ghs_read_only",)) as fake:
        fake.add_repo("acme/widgets", default_branch="main", branches=("feature",))
        yield fake


def _github_origin(repo: Repo) -> None:
    """``origin`` reads as GitHub; git reaches the bare repo through ``insteadOf``."""
    github_url = "https://github.com/acme/widgets.git"
    repo.git("config", f"url.{repo.origin.as_uri()}.insteadOf", github_url)
    repo.git("remote", "set-url", "origin", github_url)


async def _feature_commit(repo: Repo) -> None:
    await create_branch(local_exec, repo.dir, "feature")
    repo.write("feature.txt", "f\n")
    await commit(local_exec, repo.dir, "feature", include_untracked=True)


async def test_create_pr_pushes_and_opens_then_returns_the_existing_one(
    repo: Repo, github: FakeGitHub
) -> None:
    _github_origin(repo)
    await _feature_commit(repo)
    async with GitHubClient(TOKEN, base_url=github.url) as client:
        opened = await create_pr(
            local_exec, repo.dir, GitHubPullRequests(client), title="Add feature", body="Details"
        )
        assert (opened.action, opened.success, opened.code) == ("create_pr", True, "SUCCESS")
        assert opened.pr_url == "https://github.com/acme/widgets/pull/1"
        assert git(repo.origin, "rev-parse", "feature") == repo.git("rev-parse", "HEAD")
        [posted] = github.requests_to("/repos/acme/widgets/pulls", "POST")
        assert posted.json() == {
            "title": "Add feature",
            "head": "acme:feature",
            "base": "main",
            "draft": False,
            "body": "Details",
        }
        again = await create_pr(
            local_exec, repo.dir, GitHubPullRequests(client), title="Add feature"
        )
    assert again.success and again.pr_url == opened.pr_url
    assert "already exists" in again.message
    assert len(github.requests_to("/repos/acme/widgets/pulls", "POST")) == 1


async def test_create_pr_with_an_explicit_base(repo: Repo, github: FakeGitHub) -> None:
    github.branches["acme/widgets"].add("release")
    _github_origin(repo)
    await _feature_commit(repo)
    async with GitHubClient(TOKEN, base_url=github.url) as client:
        result = await create_pr(
            local_exec, repo.dir, GitHubPullRequests(client), title="t", base_branch="release"
        )
    assert result.success
    assert github.pulls["acme/widgets"][0]["base"]["ref"] == "release"
    assert github.requests_to("/repos/acme/widgets") == []  # no default-branch lookup


@pytest.mark.parametrize("token", ["ghs_wrong_token", "ghs_read_only"])
async def test_create_pr_maps_github_refusals_to_auth_failed(
    repo: Repo, github: FakeGitHub, token: str
) -> None:
    _github_origin(repo)
    await _feature_commit(repo)
    async with GitHubClient(token, base_url=github.url) as client:
        result = await create_pr(
            local_exec, repo.dir, GitHubPullRequests(client), title="t", base_branch="main"
        )
    assert (result.success, result.code) == (False, "AUTH_FAILED")
    assert token not in result.message
    assert github.pulls["acme/widgets"] == []


async def test_create_pr_needs_a_github_origin(repo: Repo, github: FakeGitHub) -> None:
    await _feature_commit(repo)
    async with GitHubClient(TOKEN, base_url=github.url) as client:
        not_github = await create_pr(local_exec, repo.dir, GitHubPullRequests(client), title="t")
        assert (not_github.success, not_github.code) == (False, "UNKNOWN_ERROR")
        repo.git("remote", "remove", "origin")
        no_origin = await create_pr(local_exec, repo.dir, GitHubPullRequests(client), title="t")
    assert (no_origin.success, no_origin.code) == (False, "NO_REMOTE")
    assert github.requests == []


class EchoingHost:
    """A pull-request host whose failure message quotes the push token back."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.specs: list[PullRequestSpec] = []

    async def open_pull_request(self, spec: PullRequestSpec) -> GitResult:
        self.specs.append(spec)
        message = f"refused https://x-access-token:{self.token}@github.com ({self.token})"
        return GitResult(action="create_pr", success=False, code="AUTH_FAILED", message=message)


async def test_create_pr_masks_the_push_token_in_what_the_host_says(repo: Repo) -> None:
    _github_origin(repo)
    await _feature_commit(repo)
    token = "tok-" + secrets.token_hex(16)
    host = EchoingHost(token)
    result = await create_pr(local_exec, repo.dir, host, title="t", token=token)
    # Pushed first, then asked for.
    assert host.specs == [
        PullRequestSpec(
            owner="acme", repo="widgets", head="acme:feature", branch="feature", title="t"
        )
    ]
    assert (result.success, result.code) == (False, "AUTH_FAILED")
    assert token not in result.message and "refused" in result.message


# --- through the local provider ---------------------------------------------------------------


async def test_status_and_commit_through_the_local_provider(tmp_path: Path) -> None:
    origin = _bare_with_history(tmp_path)
    provider = LocalSandboxProvider(
        tmp_path / "sandboxes", LocalSnapshotStore(tmp_path / "snapshots")
    )
    identity = {k: v for k, v in GIT_ENV.items() if k.startswith("GIT_")}
    opts = CreateSandboxOptions(
        session_id="ses_" + secrets.token_hex(4),
        repos=(RepoSpec(url=origin.as_uri(), workspace_path="app"),),
        env_vars=identity,
    )
    handle = await provider.create_sandbox(opts)
    try:
        run = provider_exec(provider, handle.sandbox_id, timeout=60)
        repo = resolve_repo_dir(".", "app")
        workspace = provider.root / handle.sandbox_id / "workspace"
        assert (workspace / "app" / "README.md").is_file()
        (workspace / "app" / "file0.txt").write_text("from the agent\n")
        state = await git_status(run, repo)
        assert state.branch == "main" and (state.ahead, state.behind) == (0, 0)
        assert state.unstaged == (GitFile(path="file0.txt", status="modified"),)
        done = await commit(run, repo, "agent change")
        assert done.success, done.message
        pushed = await push(run, repo)
        assert pushed.success, pushed.message
        assert git(origin, "log", "-1", "--format=%s", "main").strip() == "agent change"
        with pytest.raises(GitError):
            await git_status(run, resolve_repo_dir(".", "missing"))
    finally:
        await provider.terminate(handle.sandbox_id)
