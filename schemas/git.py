"""Git state of a sandbox repo and the outcome of git operations run in it.

``GitState`` answers ``get_git_status``; ``GitResult`` is what each mutating operation
(create branch, commit, push, open a pull request) returns, mirrored by the WebSocket
``git_result`` message. Counts that git cannot know (no upstream) are ``None``.
"""

from __future__ import annotations

from typing import Literal

import msgspec

GitCode = Literal[
    "SUCCESS",
    "NOTHING_TO_COMMIT",
    "NO_REMOTE",
    "AUTH_FAILED",
    "BRANCH_EXISTS",
    "MERGE_CONFLICT",
    "REPO_BUSY",
    "SHALLOW_PUSH_FAILED",
    "INVALID_BRANCH",
    "UNKNOWN_ERROR",
]
"""Why a git operation succeeded or failed; stable, for clients to branch on."""

GitAction = Literal["status", "create_branch", "commit", "push", "create_pr"]
"""The operation a :class:`GitResult` reports on."""

FileChange = Literal["modified", "type_changed", "added", "deleted", "renamed", "copied"]
"""How a path differs (index vs HEAD for staged, worktree vs index for unstaged)."""


class GitFile(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A changed path, relative to the repository root."""

    path: str
    status: FileChange
    orig_path: str | None = None
    """The path before a rename or copy."""


class GitCommit(msgspec.Struct, frozen=True, kw_only=True):
    """A recent commit on HEAD."""

    sha: str
    subject: str


class GitState(msgspec.Struct, frozen=True, kw_only=True):
    """A repository's branch, changes, recent commits and in-progress operations."""

    branch: str | None = None
    """The checked-out branch; ``None`` when HEAD is detached."""
    detached: bool = False
    staged: tuple[GitFile, ...] = ()
    unstaged: tuple[GitFile, ...] = ()
    untracked: tuple[str, ...] = ()
    """Untracked paths; a wholly untracked folder is one entry ending in ``/``."""
    conflicted: tuple[str, ...] = ()
    commits: tuple[GitCommit, ...] = ()
    """Newest first, at most 10."""
    ahead: int | None = None
    """Commits on HEAD not on its upstream; ``None`` = unknown (no upstream, or it is gone)."""
    behind: int | None = None
    is_shallow: bool = False
    is_busy: bool = False
    """Another git process holds the index lock, or a rebase/merge/cherry-pick/revert is
    in progress: mutating operations are refused with ``REPO_BUSY``."""
    rebase_in_progress: bool = False
    merge_in_progress: bool = False


class GitResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Outcome of one git operation. ``message`` never holds a credential."""

    action: GitAction
    success: bool
    code: GitCode
    message: str = ""
    pr_url: str | None = None


class PullRequestSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A pull request to open for a pushed branch: what ``create_pr`` asks its host for."""

    owner: str
    repo: str
    head: str
    """``owner:branch`` as pushed (the fork's owner when the branch went to a fork)."""
    branch: str
    title: str
    body: str | None = None
    base_branch: str | None = None
    """``None``: the repository's default branch."""
