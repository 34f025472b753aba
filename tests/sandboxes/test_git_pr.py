"""Pull requests (``sandboxes.git_pr`` with ``integrations.github_pulls``): the branch is
pushed to a real bare repo, GitHub is the HTTP fake speaking the real REST wire format.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from integrations.github_client import GitHubClient
from integrations.github_pulls import GitHubPullRequests
from sandboxes.git_ops import commit, create_branch
from sandboxes.git_pr import create_pr, parse_github_remote
from schemas.git import GitResult, PullRequestSpec
from tests.fakes.github import FakeGitHub
from tests.sandboxes.git_support import Repo, local_exec, repo  # noqa: F401
from tests.sandboxes.local_support import git

TOKEN = "ghs_test_token"

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
