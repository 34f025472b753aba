"""API errors: one exception type, and handlers that turn everything into the JSON shape."""

from __future__ import annotations

import msgspec
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from api.openapi import flat_routes
from schemas.errors import ErrorBody, ErrorResponse

_DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    402: "payment_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal",
    502: "bad_gateway",
    503: "unavailable",
}


class ApiError(Exception):
    """An error the client caused or should see: becomes ``{"error": {...}}`` with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _DEFAULT_CODES.get(status, "error")
        self.message = message
        self.field = field
        self.headers = headers or {}


def not_found(what: str) -> ApiError:
    """404 for a resource that does not exist *in the caller's org* (no existence leak)."""
    return ApiError(404, f"{what} not found")


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A JSON error response in Warren's shape."""
    body = ErrorResponse(error=ErrorBody(code=code, message=message, field=field))
    return Response(
        msgspec.json.encode(body),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def internal_error_response() -> Response:
    """The 500 of an unhandled exception: no detail leaves the server (it is in the log)."""
    return error_response(500, "internal", "internal error")


def _allowed_methods(request: Request) -> str:
    # Starlette's 405 names only the methods of the first route whose path matched; a path
    # served by several routes (GET and POST handlers) allows the methods of all of them.
    methods: set[str] = set()
    for route in flat_routes(request.app):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    """Route every error FastAPI or a handler raises through :func:`error_response`.

    Unhandled exceptions are answered by ``api.middleware`` (inside the request's context).
    """

    async def on_api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _DEFAULT_CODES.get(exc.status_code, "error")
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        return error_response(exc.status_code, code, str(exc.detail), headers=headers or None)

    async def on_validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or None
        # Malformed or missing input is 400 everywhere (as in api/body.py); 422 is kept for
        # well-formed requests that break a business rule.
        return error_response(400, "invalid", str(first.get("msg", "invalid input")), field)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
