"""Local git commands on a sandbox repo: status, create a branch, commit.

They run through an :data:`~sandboxes.git_repo.Exec`; mutations return a ``GitResult`` and
never raise for git failures (see :mod:`sandboxes.git_repo`). Pushing is
:mod:`sandboxes.git_push`, pull requests :mod:`sandboxes.git_pr`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

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
from schemas.git import GitAction, GitCode, GitResult, GitState
from schemas.sandbox import ExecResult


async def git_status(exec: Exec, repo: RepoDir) -> GitState:
    """The repo's branch, changes, last 10 commits, ahead/behind and busy/shallow flags.

    Read-only: git takes no optional locks. Raises :class:`GitError` when the folder is
    not a repository inside the workspace or exec fails.
    """
    try:
        return (await inspect_repo(exec, repo)).state
    except SandboxError as exc:
        raise GitError(f"git status failed: {exc}") from None


async def create_branch(exec: Exec, repo: RepoDir, name: str) -> GitResult:
    """Create branch ``name`` from HEAD and switch to it (uncommitted changes follow)."""
    action: GitAction = "create_branch"
    if not name or name.startswith("-") or "@{" in name or "\0" in name or name != name.strip():
        return failed(action, "INVALID_BRANCH", f"{name!r} is not a valid branch name")
    try:
        refused = refusal(action, await inspect_repo(exec, repo))
        if refused:
            return refused
        check = await run_git(exec, repo.path, "check-ref-format", "--branch", name)
        if check.exit_code != 0 or check.stdout.strip() != name:
            return failed(action, "INVALID_BRANCH", f"{name!r} is not a valid branch name")
        exists = await run_git(
            exec, repo.path, "rev-parse", "--verify", "--quiet", f"refs/heads/{name}"
        )
        if exists.exit_code == 0:
            return failed(action, "BRANCH_EXISTS", f"branch {name!r} already exists")
        made = await run_git(exec, repo.path, "checkout", "-q", "-b", name)
        if made.exit_code != 0:
            code: GitCode = "BRANCH_EXISTS" if "already exists" in made.stderr else "UNKNOWN_ERROR"
            return failed(action, code, error_text(made))
        return succeeded(action, f"created and switched to branch {name}")
    except (GitError, SandboxError) as exc:
        return failed(action, code_of(exc), str(exc))


def _confined_files(files: Sequence[str]) -> list[str] | str:
    """The paths normalised, or an error message when one leaves the repository."""
    out: list[str] = []
    for path in files:
        norm = posixpath.normpath(path) if path else ""
        if (
            not norm
            or "\0" in path
            or norm.startswith("/")
            or norm == ".."
            or norm.startswith("../")
        ):
            return f"file path {path!r} must be relative and inside the repository"
        out.append(norm)
    return out


async def commit(
    exec: Exec,
    repo: RepoDir,
    message: str,
    *,
    include_untracked: bool = False,
    files: Sequence[str] | None = None,
) -> GitResult:
    """Commit ``files`` only, else every tracked change, else (``include_untracked``) all.

    ``files`` are relative to the repo folder and taken literally (no globs); an empty
    list means "not given". Refuses with NOTHING_TO_COMMIT when nothing would change.
    """
    action: GitAction = "commit"
    if not message.strip() or "\0" in message:
        return failed(action, "UNKNOWN_ERROR", "the commit message is empty or holds a NUL byte")
    paths: list[str] = []
    if files:
        checked = _confined_files(files)
        if isinstance(checked, str):
            return failed(action, "UNKNOWN_ERROR", checked)
        paths = checked
    try:
        inspection = await inspect_repo(exec, repo)
        refused = refusal(action, inspection, may_conclude=True)
        if refused:
            return refused
        literal = ("--literal-pathspecs",)
        if paths:
            staged = await run_git(exec, repo.path, *literal, "add", "-A", "--", *paths)
        elif include_untracked:
            staged = await run_git(exec, repo.path, "add", "-A")
        else:
            staged = await run_git(exec, repo.path, "add", "-u")
        if staged.exit_code != 0:
            return failed(action, "UNKNOWN_ERROR", f"staging failed: {error_text(staged)}")
        pathspec = ("--", *paths) if paths else ()
        diff = await run_git(exec, repo.path, *literal, "diff", "--cached", "--quiet", *pathspec)
        # Concluding a merge records its second parent even when the tree is unchanged.
        if diff.exit_code == 0 and not inspection.state.merge_in_progress:
            return failed(action, "NOTHING_TO_COMMIT", "nothing to commit")
        if diff.exit_code not in (0, 1):
            return failed(action, "UNKNOWN_ERROR", error_text(diff))
        done = await run_git(exec, repo.path, *literal, "commit", "-q", "-m", message, *pathspec)
        if done.exit_code != 0:
            return failed(action, "UNKNOWN_ERROR", _commit_error(done))
        head = await run_git(
            exec, repo.path, "log", "-n", "1", "--no-show-signature", "--format=%h %s"
        )
        return succeeded(action, f"committed {head.stdout.strip()}")
    except (GitError, SandboxError) as exc:
        return failed(action, code_of(exc), str(exc))


def _commit_error(result: ExecResult) -> str:
    text = error_text(result)
    if "tell me who you are" in text or "identity unknown" in text.lower():
        return "git has no author identity: set user.name and user.email"
    return f"commit failed: {text}"
