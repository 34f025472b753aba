"""Forwarding one HTTP request to a sandbox, streaming both bodies (SSE included).

One aiohttp ``ClientSession`` per replica, created on first use and closed with the app.
Bodies pass through as raw bytes (no decompression), so ``Content-Encoding`` and
``Content-Length`` stay true.

What the sandbox sees: the request minus hop-by-hop headers, ``Host`` (set for the
upstream), the caller's ``Cookie`` and ``Authorization`` (a sandbox must never see a
user's credentials), and ``Referer`` (it would carry the token from the proxy path).
What the browser sees: the sandbox's answer minus hop-by-hop headers and ``Set-Cookie``
(cookies never reach the sandbox, and a proxied page must not set cookies on Warren's
origin), plus a ``Content-Security-Policy: sandbox`` that gives proxied pages an opaque
origin: sandbox code served from Warren's origin could otherwise call Warren's API with
the viewer's session cookie.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from urllib.parse import quote

import aiohttp
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from yarl import URL

from api.errors import ApiError

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
"""Headers that describe one connection, never forwarded (RFC 9110 §7.6.1)."""
NOT_TO_UPSTREAM = HOP_BY_HOP | {"host", "cookie", "authorization", "referer"}
NOT_TO_CLIENT = HOP_BY_HOP | {"set-cookie"}
SANDBOX_CSP = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"
"""Policy added to every proxied response: scripts run, but in an opaque origin."""
CONNECT_TIMEOUT = 10.0
_CLIENT_KEY = "warren_proxy_client"
NO_BODY_STATUSES = frozenset({204, 304})


def raw_rest(scope: Scope, skip: int, fallback: str) -> str:
    """The path after the first ``skip`` segments, still URL-encoded as the client sent it.

    ``fallback`` (the decoded ``{path}`` parameter) is re-encoded when the server gave no
    ``raw_path``.
    """
    raw = scope.get("raw_path")
    if isinstance(raw, bytes) and raw:
        parts = raw.decode("latin-1").split("?", 1)[0].split("/", skip + 1)
        return parts[skip + 1] if len(parts) > skip + 1 else ""
    return quote(fallback, safe="/:@!$&'()*+,;=-._~%")


def redact_path(scope: Scope, public: str) -> None:
    """Replace the logged path: a proxy path carries a credential, and the access log
    reads ``scope["path"]`` after the route ran."""
    scope["path"] = public


def upstream_client(conn: HTTPConnection) -> aiohttp.ClientSession:
    """The replica's client for sandbox traffic (created on first use)."""
    state = conn.app.state
    client: aiohttp.ClientSession | None = getattr(state, _CLIENT_KEY, None)
    if client is None or client.closed:
        client = aiohttp.ClientSession(
            auto_decompress=False,
            trust_env=False,  # sandbox traffic never goes through an environment proxy
            timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT),
            connector=aiohttp.TCPConnector(limit=0, enable_cleanup_closed=True),
        )
        setattr(state, _CLIENT_KEY, client)
    return client


async def close_upstream_client(state: object) -> None:
    """Close the replica's client, if one was made (app shutdown)."""
    client: aiohttp.ClientSession | None = getattr(state, _CLIENT_KEY, None)
    if client is not None:
        await client.close()


def _connection_tokens(headers: Iterable[tuple[str, str]]) -> set[str]:
    named: set[str] = set()
    for key, value in headers:
        if key.lower() == "connection":
            named.update(t.strip().lower() for t in value.split(",") if t.strip())
    return named


def request_headers(
    headers: Iterable[tuple[str, str]], extra: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """The caller's headers as the sandbox may see them, plus ``extra`` (e.g. its bearer)."""
    pairs = list(headers)
    drop = NOT_TO_UPSTREAM | _connection_tokens(pairs)
    out = [(k, v) for k, v in pairs if k.lower() not in drop]
    out.extend((extra or {}).items())
    return out


def response_headers(
    headers: Iterable[tuple[str, str]],
    *,
    location: Callable[[str], str] | None = None,
    opaque_origin: bool = False,
) -> list[tuple[str, str]]:
    """The sandbox's response headers as the browser may see them (see the module doc).

    ``opaque_origin``: the request came from a proxied page (``Origin: null``, the CSP
    sandbox); its own module scripts and fetches are cross-origin then, so CORS is opened
    unless the sandbox answered with a policy of its own. Proxy routes honour no ambient
    credential (the token is in the path, cookies are dropped), so this exposes nothing.
    """
    pairs = list(headers)
    drop = NOT_TO_CLIENT | _connection_tokens(pairs)
    out: list[tuple[str, str]] = []
    for key, value in pairs:
        lower = key.lower()
        if lower in drop:
            continue
        if lower == "location" and location is not None:
            value = location(value)
        out.append((key, value))
    if opaque_origin and not any(k.lower() == "access-control-allow-origin" for k, _ in out):
        out.append(("access-control-allow-origin", "*"))
    out.append(("content-security-policy", SANDBOX_CSP))
    out.append(("referrer-policy", "no-referrer"))
    return out


def location_rewriter(upstream_base: str, public_prefix: str) -> Callable[[str], str]:
    """Map a redirect the sandbox sent (absolute to itself, or origin-relative) back
    under the proxy path, so following it stays inside the proxy."""
    base = upstream_base.rstrip("/")

    def rewrite(value: str) -> str:
        if value.startswith(base + "/") or value == base:
            return public_prefix + (value[len(base) :] or "/")
        if value.startswith("/") and not value.startswith("//"):
            return public_prefix + value
        return value

    return rewrite


class UpstreamResponse(Response):
    """Streams an open upstream response to the client; always releases it (and calls
    ``on_close``) however the exchange ends: finished, client gone, or upstream error."""

    def __init__(
        self,
        upstream: aiohttp.ClientResponse,
        headers: list[tuple[str, str]],
        on_close: Callable[[], None],
        *,
        with_body: bool,
        body_sent: asyncio.Event,
    ) -> None:
        self.status_code = upstream.status
        self.upstream = upstream
        self.with_body = with_body
        self.body_sent = body_sent
        self.on_close = on_close
        self.background = None
        self.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]

    async def _stream(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        if self.with_body:
            async for chunk in self.upstream.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _until_disconnect(self, receive: Receive) -> None:
        # Only once the request body is through: until then ``receive`` yields its chunks.
        await self.body_sent.wait()
        while (await receive())["type"] != "http.disconnect":
            pass

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the head, then relay chunks as they arrive until either side ends."""
        try:
            stream = asyncio.ensure_future(self._stream(send))
            watch = asyncio.ensure_future(self._until_disconnect(receive))
            try:
                done, _ = await asyncio.wait({stream, watch}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (stream, watch):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            if stream in done and not stream.cancelled() and stream.exception() is None:
                self.upstream.release()
        finally:
            self.upstream.close()
            self.on_close()


async def _relay_body(request: Request, sent: asyncio.Event) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    finally:
        sent.set()


def _body(
    request: Request, sent: asyncio.Event, allow: bool
) -> aiohttp.payload.AsyncIterablePayload | None:
    if not allow or (
        request.headers.get("content-length") in (None, "0")
        and "transfer-encoding" not in request.headers
    ):
        sent.set()
        return None
    return aiohttp.payload.AsyncIterablePayload(_relay_body(request, sent))


async def forward(
    request: Request,
    url: URL,
    *,
    extra_headers: Mapping[str, str] | None = None,
    location: Callable[[str], str] | None = None,
    on_close: Callable[[], None],
    allow_body: bool = True,
) -> Response:
    """Send ``request`` to ``url`` (query string kept) and stream the answer back.

    ``on_close`` runs exactly once, when the exchange is over (also on failure here).
    Without ``allow_body`` a request body is never read nor sent. Unreachable sandbox →
    502, connect timeout → 504.
    """
    query = request.scope.get("query_string", b"").decode("latin-1")
    target = url.with_query(None)
    if query:
        target = URL(str(target) + "?" + query, encoded=True)
    body_sent = asyncio.Event()
    data = _body(request, body_sent, allow_body)
    headers = request_headers(request.headers.items(), extra_headers)
    if data is None:
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    try:
        upstream = await upstream_client(request).request(
            request.method,
            target,
            headers=headers,
            data=data,
            allow_redirects=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )
    except TimeoutError:
        on_close()
        raise ApiError(504, "the sandbox did not answer in time") from None
    except (aiohttp.ClientError, OSError):
        on_close()
        raise ApiError(502, "the sandbox service is not reachable") from None
    except BaseException:
        on_close()
        raise
    with_body = request.method != "HEAD" and upstream.status not in NO_BODY_STATUSES
    # Raw bytes, decoded as latin-1 both ways: header values pass through byte for byte.
    raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in upstream.raw_headers]
    answer = response_headers(
        raw,
        location=location,
        opaque_origin=request.headers.get("origin") == "null",
    )
    return UpstreamResponse(upstream, answer, on_close, with_body=with_body, body_sent=body_sent)
