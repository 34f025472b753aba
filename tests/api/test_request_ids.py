"""Request ids: exactly one ``X-Request-Id`` on every response (Serve's), the same id in the
log lines of the request, and an unhandled error answered as a JSON 500 that carries it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import aiohttp
import httpx
import msgspec
import pytest
from fastapi import FastAPI

from api.errors import install_error_handlers
from api.middleware import RequestContextMiddleware
from core.logs import JsonFormatter
from tests.api.accounts import assert_error


class _JsonLines(logging.Handler):
    """Keeps each record as the JSON line Warren would write (formatted at emit time, while
    the request's context is still current)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(msgspec.json.decode(self.format(record)))


@pytest.fixture
def json_lines() -> Iterator[_JsonLines]:
    handler = _JsonLines()
    logger = logging.getLogger("warren.http")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


@pytest.mark.parametrize(
    ("method", "path", "data", "status"),
    [
        ("GET", "/healthz", None, 200),
        ("GET", "/api/orgs", None, 401),
        ("GET", "/api/nope", None, 404),
        ("DELETE", "/api/auth/sign-in", None, 405),
        ("POST", "/api/auth/sign-in", b"{", 400),
        ("GET", "/openapi.json", None, 200),
        ("GET", "/", None, 200),
    ],
)
async def test_every_response_has_exactly_one_request_id(
    http: aiohttp.ClientSession, method: str, path: str, data: bytes | None, status: int
) -> None:
    async with http.request(method, path, data=data) as resp:
        assert resp.status == status
        ids = resp.headers.getall("X-Request-Id", [])
    assert len(ids) == 1, ids
    assert ids[0]


async def test_a_client_request_id_is_echoed_once(http: aiohttp.ClientSession) -> None:
    async with http.get("/healthz", headers={"X-Request-Id": "trace-abc-12345"}) as resp:
        assert resp.headers.getall("X-Request-Id") == ["trace-abc-12345"]


def _failing_app() -> FastAPI:
    # The ingress's own error handlers and middleware, around a handler that fails.
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail")

    return app


@pytest.mark.parametrize("incoming", [None, "serve-given-id-1234"])
async def test_unhandled_error_is_a_json_500_whose_log_names_the_request(
    json_lines: _JsonLines, incoming: str | None
) -> None:
    transport = httpx.ASGITransport(app=_failing_app())
    headers = {"x-request-id": incoming} if incoming else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        resp = await client.get("/boom", headers=headers)
    assert resp.status_code == 500
    assert_error(resp.json(), "internal")
    assert "secret detail" not in resp.text
    if incoming is None:
        # No proxy in front: the middleware is the only one to echo the id.
        (rid,) = resp.headers.get_list("x-request-id")
    else:
        # Behind Serve the proxy echoes the id it gave; the app adds none.
        assert resp.headers.get_list("x-request-id") == []
        rid = incoming
    errors = [line for line in json_lines.lines if line["msg"] == "unhandled error"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == rid and errors[0]["path"] == "/boom"
    assert "RuntimeError: secret detail" in str(errors[0]["exc"])
    access = [line for line in json_lines.lines if line["msg"] == "request"]
    assert access and access[0]["request_id"] == rid and access[0]["status"] == 500
