"""ASGI middleware: request id, JSON access log line, request metrics, and the 500 answer.

The request id: Ray Serve's proxy gives every request an ``x-request-id`` (the client's, or
a fresh one) and echoes it on the response; Warren logs under that same id and adds no
second header. Only outside Serve (no incoming id) does this middleware mint and echo one.
An unhandled exception becomes the JSON 500 here, inside the request's context, so its log
line names the request id.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import internal_error_response
from core.logs import request_id_var
from core.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger("warren.http")
_UNPRINTABLE = re.compile(r"[^\x21-\x7e]")
_MAX_ID = 128
REQUEST_ID_HEADER = "x-request-id"


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class RequestContextMiddleware:
    """Runs each request under its id (once in ``X-Request-Id``), logs and measures it, and
    answers an unhandled exception with the JSON 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or ()).get(REQUEST_ID_HEADER.encode(), b"")
        # Logged as given (JSON-escaped) so it matches what Serve echoed; only clipped.
        rid = _UNPRINTABLE.sub("", incoming.decode("latin-1"))[:_MAX_ID]
        echo = not rid  # Serve echoes the id it gave; outside Serve this is the only echo
        rid = rid or uuid.uuid4().hex
        token = request_id_var.set(rid)
        start = time.perf_counter()
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                if echo:
                    headers = list(message.get("headers", []))
                    headers.append((REQUEST_ID_HEADER.encode(), rid.encode()))
                    message["headers"] = headers
                HTTP_LATENCY.labels(_route_template(scope), scope.get("method", "WS")).observe(
                    time.perf_counter() - start
                )
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception(
                "unhandled error", extra={"method": scope.get("method"), "path": scope.get("path")}
            )
            if started or scope["type"] != "http":
                raise
            await internal_error_response()(scope, receive, send_with_id)
        finally:
            route = _route_template(scope)
            method = scope.get("method", "WS")
            if scope["type"] == "http":
                HTTP_REQUESTS.labels(route, method, str(status)).inc()
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": scope.get("path"),
                    "route": route,
                    "status": status if scope["type"] == "http" else None,
                    "ms": round((time.perf_counter() - start) * 1000, 2),
                },
            )
            request_id_var.reset(token)
