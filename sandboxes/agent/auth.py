"""Bearer-token check for every route except health.

Missing credentials answer 401, wrong ones 403. When the agent has no token configured every
protected route denies. Headerless browser clients (the terminal WebSocket and the log
EventSource) may pass the token as ``?token=`` instead.
"""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web

from sandboxes.agent.http import ApiError

OPEN_PATHS = frozenset({"/api/health"})
_QUERY_TOKEN_PREFIXES = ("/api/terminal", "/api/logs/")


def presented_token(request: web.Request) -> str | None:
    """The credential the request carries: bearer header first, then ``?token=`` where allowed."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return ""  # some other credential: present, but never a match
        return value.strip() or None
    if request.path.startswith(_QUERY_TOKEN_PREFIXES):
        return request.query.get("token")
    return None


def check_token(expected: str | None, presented: str | None) -> None:
    """Raise 401 when nothing was presented, 403 when it does not match (constant time)."""
    if presented is None:
        raise ApiError(401, "unauthorized", "missing bearer token")
    if expected is None:
        raise ApiError(403, "forbidden", "this agent has no token configured; access denied")
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise ApiError(403, "forbidden", "invalid token")


def auth_middleware(token: str | None) -> Any:
    """Middleware enforcing ``token`` on every path outside OPEN_PATHS."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path not in OPEN_PATHS:
            check_token(token, presented_token(request))
        response: web.StreamResponse = await handler(request)
        return response

    return middleware
