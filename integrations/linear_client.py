"""Linear GraphQL client (``POST {base}/graphql``): the issues query with cursor pagination.

Auth: OAuth access tokens go as ``Authorization: Bearer <token>``; personal API keys
(``token_type="api_key"``) go bare, as Linear documents. GraphQL errors arrive as
``{"errors": [{"message", "extensions": {"code"}}]}`` and become typed errors:
``AUTHENTICATION_ERROR`` → :class:`IntegrationAuthError`, ``RATELIMITED`` or HTTP 429 →
:class:`IntegrationRateLimitError`, anything else → :class:`LinearGraphQLError`.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import aiohttp
import msgspec

from integrations._http import HttpResponse, JsonHttpClient, parse_retry_after
from integrations.errors import (
    IntegrationAuthError,
    IntegrationError,
    IntegrationForbiddenError,
    IntegrationRateLimitError,
    IntegrationUnavailableError,
)

LINEAR_API_URL = "https://api.linear.app"

ISSUES_QUERY = """
query WarrenIssues($first: Int!, $after: String, $filter: IssueFilter) {
  issues(first: $first, after: $after, filter: $filter, orderBy: updatedAt) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id identifier number title description url priority createdAt updatedAt
      state { id name type }
      team { id key name }
      assignee { id name }
      project { id name }
      labels { nodes { id name } }
      creator { id name }
    }
  }
}
"""


class LinearGraphQLError(IntegrationError):
    """Linear answered with GraphQL ``errors`` that are not auth or rate limiting."""


class LinearRef(msgspec.Struct, frozen=True):
    """A referenced object (state, team, user, project, label)."""

    id: str
    name: str | None = None
    key: str | None = None
    type: str | None = None


class LinearLabelConnection(msgspec.Struct, frozen=True):
    """GraphQL ``labels { nodes }``."""

    nodes: list[LinearRef] = []


class LinearIssue(msgspec.Struct, frozen=True):
    """An issue as the GraphQL API returns it, also the ``data`` of an Issue webhook.

    Webhooks add flat ids (``teamId``, ``labelIds``...) and send ``labels`` as a list.
    """

    id: str
    identifier: str | None = None
    number: float | None = None
    title: str | None = None
    description: str | None = None
    url: str | None = None
    priority: float | None = None
    createdAt: str | None = None
    updatedAt: str | None = None
    state: LinearRef | None = None
    team: LinearRef | None = None
    assignee: LinearRef | None = None
    project: LinearRef | None = None
    creator: LinearRef | None = None
    labels: list[LinearRef] | LinearLabelConnection | None = None
    teamId: str | None = None
    stateId: str | None = None
    assigneeId: str | None = None
    projectId: str | None = None
    labelIds: list[str] = []

    def label_refs(self) -> list[LinearRef]:
        """Labels whichever shape they came in."""
        if isinstance(self.labels, LinearLabelConnection):
            return list(self.labels.nodes)
        return list(self.labels or [])


class IssuesPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of issues and where the next one starts."""

    nodes: list[LinearIssue]
    has_next_page: bool
    end_cursor: str | None


class _PageInfo(msgspec.Struct):
    hasNextPage: bool = False
    endCursor: str | None = None


class _IssueConnection(msgspec.Struct):
    nodes: list[LinearIssue]
    pageInfo: _PageInfo


class _IssuesData(msgspec.Struct):
    issues: _IssueConnection


class _ErrorExtensions(msgspec.Struct):
    code: str | None = None


class _GraphQLError(msgspec.Struct):
    message: str = ""
    extensions: _ErrorExtensions | None = None


class _Envelope(msgspec.Struct):
    data: Any = None
    errors: list[_GraphQLError] | None = None


class LinearClient(JsonHttpClient):
    """Async client for Linear's GraphQL API; base URL injectable for tests."""

    provider = "linear"

    def __init__(
        self,
        token: str,
        *,
        base_url: str = LINEAR_API_URL,
        token_type: Literal["bearer", "api_key"] = "bearer",
        timeout: float = 30.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        auth = f"Bearer {token}" if token_type == "bearer" else token
        super().__init__(
            base_url=base_url,
            headers={"Authorization": auth, "Accept": "application/json"},
            secrets=(token,),
            timeout=timeout,
            session=session,
        )

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        """Run a GraphQL operation and return its ``data``; errors are raised typed."""
        resp = await self.send(
            "POST", "/graphql", json_body={"query": query, "variables": variables or {}}
        )
        if resp.status >= 500:
            raise IntegrationUnavailableError(
                self.provider, f"HTTP {resp.status}", status=resp.status
            )
        try:
            envelope = msgspec.json.decode(resp.body, type=_Envelope)
        except msgspec.DecodeError:
            envelope = _Envelope()
        self._raise_for_errors(resp, envelope)
        if envelope.data is None:
            raise LinearGraphQLError(self.provider, "response has no data", status=resp.status)
        return envelope.data

    def _raise_for_errors(self, resp: HttpResponse, envelope: _Envelope) -> None:
        codes = [e.extensions.code for e in envelope.errors or [] if e.extensions]
        message = self.safe("; ".join(e.message for e in envelope.errors or []))
        if resp.status == 429 or "RATELIMITED" in codes:
            raise IntegrationRateLimitError(
                self.provider,
                message or "rate limited",
                retry_after=self._retry_after(resp),
                status=resp.status,
                code="RATELIMITED",
            )
        if resp.status == 401 or "AUTHENTICATION_ERROR" in codes:
            raise IntegrationAuthError(
                self.provider,
                message or "authentication failed",
                status=resp.status,
                code="AUTHENTICATION_ERROR",
            )
        if resp.status == 403 or "FORBIDDEN" in codes:
            raise IntegrationForbiddenError(
                self.provider, message or "forbidden", status=resp.status, code="FORBIDDEN"
            )
        if envelope.errors or resp.status >= 400:
            raise LinearGraphQLError(
                self.provider,
                message or f"HTTP {resp.status}",
                status=resp.status,
                code=codes[0] if codes else None,
            )

    @staticmethod
    def _retry_after(resp: HttpResponse) -> float | None:
        retry = parse_retry_after(resp.headers.get("Retry-After"))
        if retry is not None:
            return retry
        # Linear's reset headers are Unix epoch milliseconds.
        reset = resp.headers.get("X-RateLimit-Requests-Reset")
        if reset and reset.isdigit():
            return max(0.0, int(reset) / 1000.0 - time.time())
        return None

    async def issues_page(
        self,
        *,
        first: int = 50,
        after: str | None = None,
        updated_after: str | None = None,
        team_id: str | None = None,
    ) -> IssuesPage:
        """One page of issues, optionally updated after an ISO time and in one team."""
        filter_: dict[str, Any] = {}
        if updated_after:
            filter_["updatedAt"] = {"gt": updated_after}
        if team_id:
            filter_["team"] = {"id": {"eq": team_id}}
        variables: dict[str, Any] = {"first": first, "after": after, "filter": filter_ or None}
        data = await self.execute(ISSUES_QUERY, variables)
        try:
            issues = msgspec.convert(data, type=_IssuesData).issues
        except msgspec.ValidationError as exc:
            raise LinearGraphQLError(self.provider, f"unexpected issues shape: {exc}") from exc
        return IssuesPage(
            nodes=issues.nodes,
            has_next_page=issues.pageInfo.hasNextPage,
            end_cursor=issues.pageInfo.endCursor,
        )

    async def list_issues(
        self,
        *,
        updated_after: str | None = None,
        team_id: str | None = None,
        page_size: int = 50,
        max_pages: int = 10,
    ) -> list[LinearIssue]:
        """Every issue matching, following ``pageInfo`` up to ``max_pages`` pages."""
        out: list[LinearIssue] = []
        after: str | None = None
        for _ in range(max_pages):
            page = await self.issues_page(
                first=page_size, after=after, updated_after=updated_after, team_id=team_id
            )
            out.extend(page.nodes)
            if not page.has_next_page or not page.end_cursor:
                break
            after = page.end_cursor
        return out
