"""Local git commands (``sandboxes.git_ops``, ``git_repo``) against real repos: status, branch,
commit, busy and conflicted repos, and the same through the local provider's ``exec``.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from sandboxes.git_ops import commit, create_branch, git_status
from sandboxes.git_push import push
from sandboxes.git_repo import GitError, RepoDir, provider_exec, resolve_repo_dir
from sandboxes.git_state import StatusParseError, parse_porcelain_v2
from sandboxes.local import LocalSandboxProvider
from sandboxes.snapshot_store import LocalSnapshotStore
from schemas.git import GitFile
from schemas.sandbox import CreateSandboxOptions, RepoSpec
from tests.sandboxes.git_support import Repo, bare_with_history, local_exec, repo  # noqa: F401
from tests.sandboxes.local_support import GIT_ENV, git

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


# --- through the local provider ---------------------------------------------------------------


async def test_status_and_commit_through_the_local_provider(tmp_path: Path) -> None:
    origin = bare_with_history(tmp_path)
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
