"""Fake Linear GraphQL API: a real GraphQL executor over a subset of Linear's schema.

``POST /graphql`` parses, validates and executes the query with graphql-core against
the schema below (issues with ``first``/``after``/``filter``/``orderBy`` and
``pageInfo { hasNextPage endCursor }``), so a client query with a wrong field or
argument fails here as it would at Linear. Errors use Linear's shape: HTTP 400 with
``errors[].extensions.code`` ``AUTHENTICATION_ERROR``, ``RATELIMITED`` (plus
``X-RateLimit-Requests-*`` headers) or ``GRAPHQL_VALIDATION_FAILED``.
"""

from __future__ import annotations

import inspect
import time
import uuid
from typing import Any

from aiohttp import web
from graphql import GraphQLError, build_schema, execute, parse, validate
from graphql.error import GraphQLSyntaxError

from tests.fakes.base import FakeServer

SCHEMA = build_schema(
    """
    scalar DateTime
    enum PaginationOrderBy { createdAt updatedAt }
    type PageInfo {
      hasNextPage: Boolean!
      hasPreviousPage: Boolean!
      startCursor: String
      endCursor: String
    }
    type WorkflowState { id: ID! name: String! type: String! color: String }
    type Team { id: ID! key: String! name: String! }
    type User { id: ID! name: String! email: String }
    type Project { id: ID! name: String! }
    type IssueLabel { id: ID! name: String! color: String }
    type IssueLabelConnection { nodes: [IssueLabel!]! }
    type Issue {
      id: ID!
      identifier: String!
      number: Float!
      title: String!
      description: String
      url: String!
      priority: Float!
      createdAt: DateTime!
      updatedAt: DateTime!
      state: WorkflowState!
      team: Team!
      assignee: User
      project: Project
      creator: User
      labels: IssueLabelConnection!
    }
    type IssueConnection { nodes: [Issue!]! pageInfo: PageInfo! }
    input IDComparator { eq: ID neq: ID in: [ID!] }
    input DateComparator { eq: DateTime gt: DateTime gte: DateTime lt: DateTime lte: DateTime }
    input TeamFilter { id: IDComparator }
    input IssueFilter { updatedAt: DateComparator createdAt: DateComparator team: TeamFilter }
    type Query {
      issues(
        first: Int
        after: String
        filter: IssueFilter
        orderBy: PaginationOrderBy
        includeArchived: Boolean
      ): IssueConnection!
    }
    """
)

TEAM = {"id": "team-eng-0001", "key": "ENG", "name": "Engineering"}


def _error(
    code: str, message: str, *, status_code: int, headers: dict[str, str] | None = None
) -> web.Response:
    body = {
        "errors": [
            {
                "message": message,
                "extensions": {
                    "code": code,
                    "statusCode": status_code,
                    "userPresentableMessage": message,
                },
            }
        ]
    }
    return web.json_response(body, status=400, headers=headers)


def _matches_date(value: str, cmp: dict[str, Any] | None) -> bool:
    if not cmp:
        return True
    checks = {
        "eq": lambda v: value == v,
        "gt": lambda v: value > v,
        "gte": lambda v: value >= v,
        "lt": lambda v: value < v,
        "lte": lambda v: value <= v,
    }
    # Linear timestamps share one ISO format, so string order is time order.
    return all(checks[op](v) for op, v in cmp.items() if v is not None)


class FakeLinear(FakeServer):
    """In-memory Linear workspace; add issues, then query ``{url}/graphql``."""

    def __init__(
        self, *, tokens: tuple[str, ...] = ("lin_oauth_test",), api_keys: tuple[str, ...] = ()
    ) -> None:
        super().__init__()
        self.tokens = set(tokens)
        self.api_keys = set(api_keys)
        self.issues: list[dict[str, Any]] = []
        self.rate_limited_requests = 0
        self.app.router.add_post("/graphql", self._graphql)

    def add_issue(
        self,
        *,
        title: str,
        created_at: str,
        updated_at: str | None = None,
        team: dict[str, str] | None = None,
        state: str = "Todo",
        priority: int = 0,
        labels: tuple[str, ...] = (),
        assignee: dict[str, str] | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Add an issue (timestamps as Linear formats them: ``...T..:..:..000Z``)."""
        team = team or TEAM
        number = sum(1 for i in self.issues if i["team"]["id"] == team["id"]) + 1
        identifier = f"{team['key']}-{number}"
        issue = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"linear/{identifier}")),
            "identifier": identifier,
            "number": number,
            "title": title,
            "description": description,
            "url": f"https://linear.app/acme/issue/{identifier}/{title.lower().replace(' ', '-')}",
            "priority": priority,
            "createdAt": created_at,
            "updatedAt": updated_at or created_at,
            "state": {"id": f"state-{state.lower()}", "name": state, "type": "unstarted"},
            "team": team,
            "assignee": assignee,
            "project": None,
            "creator": {"id": "user-ada", "name": "Ada Lovelace"},
            "labels": {"nodes": [{"id": f"label-{n.lower()}", "name": n} for n in labels]},
        }
        self.issues.append(issue)
        return issue

    # --- resolvers --------------------------------------------------------------------

    def issues_resolver(
        self,
        _info: Any,
        first: int | None = None,
        after: str | None = None,
        filter: dict[str, Any] | None = None,
        orderBy: str | None = None,
        includeArchived: bool | None = None,
    ) -> dict[str, Any]:
        """``Query.issues``: filter, order newest first, page by issue-id cursors."""
        f = filter or {}
        team_eq = ((f.get("team") or {}).get("id") or {}).get("eq")
        items = [
            i
            for i in self.issues
            if _matches_date(i["updatedAt"], f.get("updatedAt"))
            and _matches_date(i["createdAt"], f.get("createdAt"))
            and (team_eq is None or i["team"]["id"] == team_eq)
        ]
        key = "updatedAt" if orderBy == "updatedAt" else "createdAt"
        items.sort(key=lambda i: (i[key], i["id"]), reverse=True)
        start = 0
        if after is not None:
            ids = [i["id"] for i in items]
            if after not in ids:
                raise GraphQLError("Invalid cursor")
            start = ids.index(after) + 1
        size = min(first or 50, 250)
        page = items[start : start + size]
        return {
            "nodes": page,
            "pageInfo": {
                "hasNextPage": start + size < len(items),
                "hasPreviousPage": start > 0,
                "startCursor": page[0]["id"] if page else None,
                "endCursor": page[-1]["id"] if page else None,
            },
        }

    # --- HTTP -------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "").strip()
        if auth.lower().startswith("bearer "):
            return auth[7:].strip() in self.tokens
        return auth in self.api_keys

    async def _graphql(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(
                "AUTHENTICATION_ERROR",
                "Authentication required, not authenticated",
                status_code=401,
            )
        if self.rate_limited_requests > 0:
            self.rate_limited_requests -= 1
            reset_ms = int((time.time() + 30) * 1000)
            headers = {
                "X-RateLimit-Requests-Limit": "1500",
                "X-RateLimit-Requests-Remaining": "0",
                "X-RateLimit-Requests-Reset": str(reset_ms),
            }
            return _error("RATELIMITED", "Rate limit exceeded", status_code=429, headers=headers)
        try:
            payload = await request.json()
            document = parse(payload["query"])
        except (ValueError, KeyError, TypeError, GraphQLSyntaxError) as exc:
            return _error("GRAPHQL_PARSE_FAILED", str(exc), status_code=400)
        problems = validate(SCHEMA, document)
        if problems:
            return _error("GRAPHQL_VALIDATION_FAILED", problems[0].message, status_code=400)
        result = execute(
            SCHEMA,
            document,
            root_value={"issues": self.issues_resolver},
            variable_values=payload.get("variables") or {},
        )
        if inspect.isawaitable(result):
            result = await result
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [
                {"message": e.message, "path": e.path, "extensions": {"code": "INVALID_INPUT"}}
                for e in result.errors
            ]
        return web.json_response(body)
