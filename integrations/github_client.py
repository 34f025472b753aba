"""GitHub REST client: get a repository, list pull requests for a head, open a pull request.

Speaks ``api.github.com`` (or a GitHub Enterprise ``/api/v3`` base) with
``Authorization: Bearer``, ``Accept: application/vnd.github+json`` and API version
2022-11-28. List calls follow ``Link: <...>; rel="next"`` (same origin only). Errors map
to typed errors: 401 auth, 403 forbidden, 404 not found, 422 validation (with GitHub's
``errors`` list), and 403/429 with ``x-ratelimit-remaining: 0`` or ``Retry-After`` to
:class:`IntegrationRateLimitError`. Once the rate-limit headers say the budget is spent,
further calls fail fast until the reset time instead of hitting GitHub.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import msgspec

from integrations._http import (
    HttpResponse,
    JsonHttpClient,
    parse_link_header,
    parse_retry_after,
    same_origin,
)
from integrations.errors import (
    IntegrationAuthError,
    IntegrationError,
    IntegrationForbiddenError,
    IntegrationNotFoundError,
    IntegrationProtocolError,
    IntegrationRateLimitError,
    IntegrationUnavailableError,
    IntegrationValidationError,
)

GITHUB_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"


class GitHubValidationError(IntegrationValidationError):
    """422 Unprocessable Entity; ``errors`` holds GitHub's per-field messages."""

    def __init__(self, message: str, *, errors: list[str]) -> None:
        super().__init__("github", message, status=422, code="validation_failed")
        self.errors = errors


class GitHubUser(msgspec.Struct, frozen=True):
    """An account reference."""

    login: str
    id: int | None = None


class GitHubRepo(msgspec.Struct, frozen=True):
    """``GET /repos/{owner}/{repo}`` (the fields Warren uses)."""

    id: int
    name: str
    full_name: str
    private: bool = False
    default_branch: str | None = None
    html_url: str | None = None
    clone_url: str | None = None
    owner: GitHubUser | None = None


class GitHubBranchRef(msgspec.Struct, frozen=True):
    """A pull request's ``head`` or ``base``."""

    ref: str
    sha: str | None = None
    label: str | None = None


class GitHubPullRequest(msgspec.Struct, frozen=True):
    """A pull request as the pulls endpoints return it."""

    id: int
    number: int
    html_url: str
    state: str
    title: str
    head: GitHubBranchRef
    base: GitHubBranchRef
    body: str | None = None
    draft: bool | None = None
    merged_at: str | None = None
    user: GitHubUser | None = None


class RateLimit(msgspec.Struct, frozen=True, kw_only=True):
    """The last ``x-ratelimit-*`` headers seen."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None
    """Unix seconds when the budget refills."""
    resource: str | None = None


class _FieldError(msgspec.Struct):
    message: str | None = None
    code: str | None = None
    field: str | None = None
    resource: str | None = None


class _ErrorBody(msgspec.Struct):
    message: str = ""
    errors: list[_FieldError | str] = []


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.strip().isdigit() else None


class GitHubClient(JsonHttpClient):
    """Async GitHub REST client authenticated with one token (App installation or PAT)."""

    provider = "github"

    def __init__(
        self,
        token: str,
        *,
        base_url: str = GITHUB_API_URL,
        timeout: float = 30.0,
        session: aiohttp.ClientSession | None = None,
        user_agent: str = "warren",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            base_url=base_url,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": user_agent,
            },
            secrets=(token,),
            timeout=timeout,
            session=session,
        )
        self._clock = clock
        self.rate_limit = RateLimit()

    # --- plumbing ---------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path_or_url: str,
        *,
        params: dict[str, str] | None = None,
        json_body: Any = None,
    ) -> HttpResponse:
        self._check_budget()
        resp = await self.send(method, path_or_url, params=params, json_body=json_body)
        self._record_rate_limit(resp)
        self._raise_for_status(resp)
        return resp

    def _check_budget(self) -> None:
        rl = self.rate_limit
        now = self._clock()
        if rl.remaining == 0 and rl.reset_at is not None and rl.reset_at > now:
            raise IntegrationRateLimitError(
                self.provider,
                "rate limit exhausted; not calling GitHub until it resets",
                retry_after=rl.reset_at - now,
                code="rate_limited",
            )

    def _record_rate_limit(self, resp: HttpResponse) -> None:
        remaining = _int(resp.headers.get("x-ratelimit-remaining"))
        if remaining is None:
            return
        reset = _int(resp.headers.get("x-ratelimit-reset"))
        self.rate_limit = RateLimit(
            limit=_int(resp.headers.get("x-ratelimit-limit")),
            remaining=remaining,
            reset_at=float(reset) if reset is not None else None,
            resource=resp.headers.get("x-ratelimit-resource"),
        )

    def _raise_for_status(self, resp: HttpResponse) -> None:
        status = resp.status
        if status < 400:
            return
        try:
            body = msgspec.json.decode(resp.body, type=_ErrorBody)
        except msgspec.DecodeError:
            body = _ErrorBody()
        message = self.safe(body.message or f"HTTP {status}")
        retry_after = parse_retry_after(resp.headers.get("Retry-After"), now=self._clock())
        exhausted = resp.headers.get("x-ratelimit-remaining") == "0"
        if status == 429 or (status == 403 and (exhausted or retry_after is not None)):
            if retry_after is None and self.rate_limit.reset_at is not None:
                retry_after = max(0.0, self.rate_limit.reset_at - self._clock())
            raise IntegrationRateLimitError(
                self.provider, message, retry_after=retry_after, status=status, code="rate_limited"
            )
        if status == 422:
            details = [
                self.safe(e if isinstance(e, str) else e.message or f"{e.field}: {e.code}")
                for e in body.errors
            ]
            full = f"{message}: {'; '.join(details)}" if details else message
            raise GitHubValidationError(full, errors=details)
        error: type[IntegrationError] = IntegrationError
        if status == 401:
            error = IntegrationAuthError
        elif status == 403:
            error = IntegrationForbiddenError
        elif status == 404:
            error = IntegrationNotFoundError
        elif status >= 500:
            error = IntegrationUnavailableError
        raise error(self.provider, message, status=status)

    @staticmethod
    def _repo_path(owner: str, repo: str) -> str:
        return f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}"

    # --- endpoints --------------------------------------------------------------------

    async def get_repo(self, owner: str, repo: str) -> GitHubRepo:
        """``GET /repos/{owner}/{repo}``."""
        resp = await self._call("GET", self._repo_path(owner, repo))
        result: GitHubRepo = self.decode(resp, GitHubRepo)
        return result

    async def create_pull_request(
        self,
        owner: str,
        repo: str,
        *,
        title: str,
        head: str,
        base: str,
        body: str | None = None,
        draft: bool = False,
    ) -> GitHubPullRequest:
        """``POST /repos/{owner}/{repo}/pulls``; ``head`` is ``branch`` or ``user:branch``."""
        payload: dict[str, Any] = {"title": title, "head": head, "base": base, "draft": draft}
        if body is not None:
            payload["body"] = body
        resp = await self._call("POST", f"{self._repo_path(owner, repo)}/pulls", json_body=payload)
        result: GitHubPullRequest = self.decode(resp, GitHubPullRequest)
        return result

    async def list_pull_requests(
        self,
        owner: str,
        repo: str,
        *,
        head: str | None = None,
        base: str | None = None,
        state: str = "open",
        per_page: int = 100,
        max_pages: int = 10,
    ) -> list[GitHubPullRequest]:
        """``GET /repos/{owner}/{repo}/pulls``, every page up to ``max_pages``.

        ``head`` filters by ``user:ref-name`` as GitHub documents.
        """
        query = {"state": state, "per_page": str(per_page)}
        if head:
            query["head"] = head
        if base:
            query["base"] = base
        params: dict[str, str] | None = query
        url: str | None = f"{self._repo_path(owner, repo)}/pulls"
        out: list[GitHubPullRequest] = []
        for _ in range(max_pages):
            if url is None:
                break
            resp = await self._call("GET", url, params=params)
            page: list[GitHubPullRequest] = self.decode(resp, list[GitHubPullRequest])
            out.extend(page)
            url = parse_link_header(resp.headers.get("Link")).get("next")
            # The next link already carries the query string.
            params = None
            if url is not None and not same_origin(url, self.base_url):
                raise IntegrationProtocolError(
                    self.provider, "pagination link points outside the API origin"
                )
        return out
