"""The page's files as the Serve ingress serves them: types, caching, security headers, 404s."""

from __future__ import annotations

import aiohttp
import pytest

from api.routes.web import STATIC_DIR

FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "connection.js": "text/javascript; charset=utf-8",
    "transcript.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
    "index.html": "text/html; charset=utf-8",
}


async def test_index_is_the_app_shell_with_a_strict_policy(http: aiohttp.ClientSession) -> None:
    async with http.get("/") as resp:
        body = await resp.read()
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        assert resp.headers["Cache-Control"] == "no-cache"
        assert resp.headers["ETag"].startswith('"')
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        csp = resp.headers["Content-Security-Policy"]
    assert body == (STATIC_DIR / "index.html").read_bytes()
    assert b'<script type="module" src="/static/app.js"></script>' in body
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"


@pytest.mark.parametrize(("name", "content_type"), sorted(FILES.items()))
async def test_static_file_type_and_revalidation(
    http: aiohttp.ClientSession, name: str, content_type: str
) -> None:
    async with http.get(f"/static/{name}") as resp:
        body = await resp.read()
        assert resp.status == 200
        assert resp.headers["Content-Type"] == content_type
        assert resp.headers["Cache-Control"] == "no-cache"
        etag = resp.headers["ETag"]
    assert body == (STATIC_DIR / name).read_bytes()
    # The browser's copy is current: 304 without a body.
    async with http.get(f"/static/{name}", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304
        assert await resp.read() == b""
        assert resp.headers["ETag"] == etag
    # A stale copy gets the file again.
    async with http.get(f"/static/{name}", headers={"If-None-Match": '"stale"'}) as resp:
        assert resp.status == 200
        assert await resp.read() == body


async def test_head_announces_length_without_body(http: aiohttp.ClientSession) -> None:
    size = (STATIC_DIR / "app.js").stat().st_size
    async with http.head("/static/app.js") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == str(size)
        assert await resp.read() == b""


@pytest.mark.parametrize(
    "path",
    [
        "/static/missing.js",
        "/static/",
        "/static/.hidden.js",
        "/static/sub/app.js",
        "/static/..%2f..%2fapi%2fapp.py",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/app.js.map",
        "/static/index.html/",
    ],
)
async def test_anything_else_is_a_404_in_the_error_shape(
    http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(path) as resp:
        assert resp.status == 404, path
        body = await resp.json()
    assert body["error"]["code"] == "not_found"
