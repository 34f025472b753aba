"""The pure parts of the session's git runner: who may change the repo, which remotes get
the GitHub token, and the commit identity wrapper."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest

from actors.session.git import (
    action_of,
    github_host,
    may_change,
    remote_host,
    with_identity,
)
from schemas.sandbox import ExecResult
from schemas.session_ws import GitCommitRequest, GitCreateBranch, GitCreatePr, GitPush


def test_only_the_creator_may_change_unless_there_is_none() -> None:
    creator = uuid.uuid4()
    assert may_change(creator, str(creator))
    assert not may_change(creator, str(uuid.uuid4()))
    assert not may_change(creator, None)
    assert may_change(None, None) and may_change(None, str(uuid.uuid4()))


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://github.com/a/b.git", "github.com"),
        ("https://x@ghe.example:8443/a/b", "ghe.example"),
        ("ssh://git@github.com/a/b.git", "github.com"),
        ("git@github.com:a/b.git", "github.com"),
        ("file:///srv/a.git", None),
        ("/srv/a.git", None),
        ("./a:b", None),
        ("http://github.com/a/b", None),
    ],
)
def test_remote_hosts(url: str, host: str | None) -> None:
    assert remote_host(url) == host


def test_github_host_of_the_api_url() -> None:
    assert github_host("https://api.github.com") == "github.com"
    assert github_host("https://ghe.example/api/v3") == "ghe.example"


async def test_identity_is_set_for_every_command() -> None:
    seen: list[tuple[list[str], str | None]] = []

    async def run(argv: Sequence[str], cwd: str | None) -> ExecResult:
        seen.append((list(argv), cwd))
        return ExecResult(exit_code=0, stdout="", stderr="")

    await with_identity(run, "Ann", "ann@example.test")(["git", "commit"], "repo")
    [(argv, cwd)] = seen
    assert cwd == "repo"
    assert argv == [
        "env",
        "GIT_AUTHOR_NAME=Ann",
        "GIT_AUTHOR_EMAIL=ann@example.test",
        "GIT_COMMITTER_NAME=Ann",
        "GIT_COMMITTER_EMAIL=ann@example.test",
        "git",
        "commit",
    ]


def test_actions_of_requests() -> None:
    assert action_of(GitCreateBranch(branch_name="b")) == "create_branch"
    assert action_of(GitCommitRequest(message="m")) == "commit"
    assert action_of(GitPush()) == "push"
    assert action_of(GitCreatePr(title="t")) == "create_pr"
