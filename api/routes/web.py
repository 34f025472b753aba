"""The browser page: ``GET /`` (the app shell) and ``GET /static/<file>`` from ``web/static``.

The files are plain ES modules and CSS with no build step, so their names carry no content
hash: every response says ``Cache-Control: no-cache`` with a strong ``ETag``, and a browser
revalidates each load with ``If-None-Match`` (a 304, no body) instead of running stale code
after an upgrade. Only files with a known type directly in the static folder are served;
anything else is a 404 in Warren's error shape. The HTML carries a strict Content-Security-
Policy (same-origin scripts, styles and connections; no inline code) so that text from a
model or a user can never run as script even if it were mis-rendered.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import Response

import web
from api.errors import ApiError

router = APIRouter(tags=["web"], include_in_schema=False)

STATIC_DIR = Path(web.__file__).resolve().parent / "static"
"""Where the page's files live (inside the ``web`` package, shipped as package data)."""

CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
"""The file types served; any other extension is a 404."""

CACHE_CONTROL = "no-cache"
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
"""Policy of the HTML page (``connect-src 'self'`` covers same-origin ``ws:``/``wss:``)."""


@dataclass(frozen=True)
class StaticFile:
    """A file's bytes as served, with its validator."""

    body: bytes
    content_type: str
    etag: str


_cache: dict[Path, tuple[int, int, StaticFile]] = {}


def _load(path: Path) -> StaticFile:
    """The file at ``path``, re-read only when its size or mtime changed (edits show up live)."""
    stat = path.stat()
    cached = _cache.get(path)
    if cached is not None and cached[0] == stat.st_mtime_ns and cached[1] == stat.st_size:
        return cached[2]
    body = path.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    loaded = StaticFile(body=body, content_type=CONTENT_TYPES[path.suffix], etag=etag)
    _cache[path] = (stat.st_mtime_ns, stat.st_size, loaded)
    return loaded


def _resolve(name: str) -> Path:
    """The static file called ``name``, or a 404 (no sub-folders, dotfiles or unknown types)."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ApiError(404, "file not found")
    path = STATIC_DIR / name
    if path.suffix not in CONTENT_TYPES or not path.is_file():
        raise ApiError(404, "file not found")
    return path


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in candidates


def _serve(request: Request, path: Path) -> Response:
    """``path`` as a response: 304 when the browser's copy is current, else the bytes."""
    file = _load(path)
    headers = {
        "Cache-Control": CACHE_CONTROL,
        "ETag": file.etag,
        "X-Content-Type-Options": "nosniff",
    }
    if file.content_type.startswith("text/html"):
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        headers["Referrer-Policy"] = "same-origin"
        headers["X-Frame-Options"] = "DENY"
    if _etag_matches(request.headers.get("if-none-match"), file.etag):
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else file.body
    response = Response(body, media_type=file.content_type, headers=headers)
    # A HEAD answer still announces the length of what GET would send.
    response.headers["Content-Length"] = str(len(file.body))
    return response


@router.api_route("/", methods=["GET", "HEAD"])
async def index(request: Request) -> Response:
    """The single-page app shell."""
    return _serve(request, _resolve("index.html"))


@router.api_route("/static/{name:path}", methods=["GET", "HEAD"])
async def static_file(request: Request, name: str) -> Response:
    """One of the page's static files (scripts, styles, icon)."""
    return _serve(request, _resolve(name))
