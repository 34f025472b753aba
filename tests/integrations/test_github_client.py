"""GitHub REST client against the GitHub fake: PRs, pagination, errors, rate limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from integrations._http import parse_link_header, same_origin
from integrations.errors import (
    IntegrationAuthError,
    IntegrationForbiddenError,
    IntegrationNotFoundError,
    IntegrationProtocolError,
    IntegrationRateLimitError,
    IntegrationUnavailableError,
)
from integrations.github_client import GitHubClient, GitHubValidationError
from tests.fakes.base import FakeServer
from tests.fakes.github import FakeGitHub

TOKEN = "ghs_test_token"


@pytest.fixture
async def github() -> AsyncIterator[FakeGitHub]:
    async with FakeGitHub(tokens=(TOKEN,), read_only_tokens=("ghs_read_only",)) as fake:
        fake.add_repo("acme/webapp", branches=("fix/safari", "feat/a", "feat/b"))
        yield fake


async def test_get_repo_sends_github_headers(github: FakeGitHub) -> None:
    async with GitHubClient(TOKEN, base_url=github.url) as client:
        repo = await client.get_repo("acme", "webapp")
    assert (repo.full_name, repo.default_branch, repo.private) == ("acme/webapp", "main", True)
    [req] = github.requests
    assert req.header("Authorization") == f"Bearer {TOKEN}"
    assert req.header("Accept") == "application/vnd.github+json"
    assert req.header("X-GitHub-Api-Version") == "2022-11-28"
    assert req.header("User-Agent") == "warren"


async def test_create_pull_request(github: FakeGitHub) -> None:
    async with GitHubClient(TOKEN, base_url=github.url) as client:
        pr = await client.create_pull_request(
            "acme",
            "webapp",
            title="Fix Safari checkout",
            head="fix/safari",
            base="main",
            body="Closes #42",
            draft=True,
        )
        assert pr.number == 1 and pr.html_url == "https://github.com/acme/webapp/pull/1"
        assert (pr.head.ref, pr.base.ref, pr.draft) == ("fix/safari", "main", True)
        [req] = github.requests_to("/repos/acme/webapp/pulls", "POST")
        assert req.json() == {
            "title": "Fix Safari checkout",
            "head": "fix/safari",
            "base": "main",
            "draft": True,
            "body": "Closes #42",
        }
        with pytest.raises(GitHubValidationError) as dup:
            await client.create_pull_request(
                "acme", "webapp", title="again", head="fix/safari", base="main"
            )
        assert dup.value.status == 422
        assert "A pull request already exists for acme:fix/safari." in dup.value.errors
        with pytest.raises(GitHubValidationError) as bad:
            await client.create_pull_request("acme", "webapp", title="x", head="nope", base="main")
        assert bad.value.errors == ["head: invalid"]


async def test_list_pull_requests_follows_link_pagination(github: FakeGitHub) -> None:
    for i in range(5):
        github.add_pull("acme/webapp", head=f"feat/{i}", base="main", title=f"PR {i}")
    async with GitHubClient(TOKEN, base_url=github.url) as client:
        pulls = await client.list_pull_requests("acme", "webapp", per_page=2)
        assert [p.title for p in pulls] == [f"PR {i}" for i in range(5)]
        pages = github.requests_to("/repos/acme/webapp/pulls", "GET")
        assert [r.query.get("page") for r in pages] == [None, "2", "3"]
        capped = await client.list_pull_requests("acme", "webapp", per_page=2, max_pages=2)
        assert len(capped) == 4
        by_head = await client.list_pull_requests("acme", "webapp", head="acme:feat/3")
        assert [p.number for p in by_head] == [4]


@pytest.mark.parametrize(
    ("token", "owner", "error", "status"),
    [
        ("ghs_wrong", "acme", IntegrationAuthError, 401),
        ("ghs_read_only", "acme", IntegrationForbiddenError, 403),
        (TOKEN, "nobody", IntegrationNotFoundError, 404),
    ],
)
async def test_errors_are_typed_and_never_carry_the_token(
    github: FakeGitHub, token: str, owner: str, error: type[Exception], status: int
) -> None:
    async with GitHubClient(token, base_url=github.url) as client:
        with pytest.raises(error) as exc:
            await client.create_pull_request(owner, "webapp", title="t", head="feat/a", base="main")
    assert getattr(exc.value, "status", None) == status
    assert token not in str(exc.value)


async def test_rate_limit_is_reported_then_respected() -> None:
    async with FakeGitHub(tokens=(TOKEN,), rate_limit=2) as fake:
        fake.add_repo("acme/webapp")
        async with GitHubClient(TOKEN, base_url=fake.url) as client:
            await client.get_repo("acme", "webapp")
            await client.get_repo("acme", "webapp")
            assert client.rate_limit.remaining == 0
            # The headers say the budget is spent: no request goes out.
            with pytest.raises(IntegrationRateLimitError) as local:
                await client.get_repo("acme", "webapp")
            assert local.value.retry_after is not None and local.value.retry_after > 3000
            assert len(fake.requests) == 2
        async with GitHubClient(TOKEN, base_url=fake.url) as fresh:
            # A client that has not seen the headers gets GitHub's 403 mapped to a rate limit.
            with pytest.raises(IntegrationRateLimitError) as remote:
                await fresh.get_repo("acme", "webapp")
            assert remote.value.status == 403 and remote.value.retry_after is not None


class _Slow(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.app.router.add_get("/repos/{o}/{r}", self._slow)

    async def _slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({})


async def test_timeout_is_unavailable_error() -> None:
    async with _Slow() as slow, GitHubClient(TOKEN, base_url=slow.url, timeout=0.2) as client:
        with pytest.raises(IntegrationUnavailableError, match="timed out"):
            await client.get_repo("acme", "webapp")


def test_link_header_parsing_and_origin_check() -> None:
    links = parse_link_header(
        '<https://api.github.com/repositories/1/pulls?page=2>; rel="next", '
        '<https://api.github.com/repositories/1/pulls?page=5>; rel="last"'
    )
    assert links == {
        "next": "https://api.github.com/repositories/1/pulls?page=2",
        "last": "https://api.github.com/repositories/1/pulls?page=5",
    }
    assert same_origin(links["next"], "https://api.github.com")
    assert not same_origin("https://evil.test/repos?page=2", "https://api.github.com")
    assert not same_origin("http://api.github.com/x", "https://api.github.com")


class _ForeignLink(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.app.router.add_get("/repos/{o}/{r}/pulls", self._pulls)

    async def _pulls(self, request: web.Request) -> web.Response:
        resp = web.json_response([])
        resp.headers["Link"] = '<https://collector.evil.test/pulls?page=2>; rel="next"'
        return resp


async def test_pagination_never_follows_links_to_another_origin() -> None:
    async with _ForeignLink() as fake, GitHubClient(TOKEN, base_url=fake.url) as client:
        with pytest.raises(IntegrationProtocolError, match="outside the API origin"):
            await client.list_pull_requests("acme", "webapp")
    assert len(fake.requests) == 1
