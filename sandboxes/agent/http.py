"""HTTP plumbing shared by every route: typed errors, JSON bodies in and out."""

from __future__ import annotations

import logging
import re
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from schemas.agent import ErrorDetail, ErrorResponse

log = logging.getLogger(__name__)

T = TypeVar("T")

_FIELD_AT = re.compile(r"at `\$\.([A-Za-z_][A-Za-z0-9_]*)")
_FIELD_MISSING = re.compile(r"missing required field `([A-Za-z_][A-Za-z0-9_]*)`")


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message", "field"?}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.detail = ErrorDetail(code=code, message=message, field=field)


def json_response(body: Any, status: int = 200) -> web.Response:
    """Encode a Struct (or plain data) as a JSON response."""
    return web.Response(
        body=msgspec.json.encode(body), status=status, content_type="application/json"
    )


def error_response(status: int, detail: ErrorDetail) -> web.Response:
    """The uniform error body."""
    return json_response(ErrorResponse(error=detail), status=status)


def _field_of(message: str) -> str | None:
    match = _FIELD_AT.search(message) or _FIELD_MISSING.search(message)
    return match.group(1) if match else None


async def read_json(request: web.Request, kind: type[T]) -> T:
    """Decode and validate the request body as ``kind``; 400 naming the field otherwise."""
    body = await request.read()
    try:
        return msgspec.json.decode(body or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        text = str(exc)
        raise ApiError(400, "invalid_body", text, _field_of(text)) from exc
    except msgspec.DecodeError as exc:
        raise ApiError(400, "invalid_json", "request body is not valid JSON") from exc


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Render ApiError and aiohttp's HTTP errors in the uniform JSON shape."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as exc:
        return error_response(exc.status, exc.detail)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        return error_response(exc.status, ErrorDetail(code=code, message=exc.reason))
    except Exception:
        # Log the route, never the body: bodies can carry secrets.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, ErrorDetail(code="internal", message="internal error"))
