"""Bridging a browser WebSocket (Starlette) to one in the sandbox (aiohttp client).

The upstream socket is opened first, so a sandbox that refuses is answered before the
browser's handshake completes; then frames are pumped both ways (text stays text, binary
stays binary) until either side closes, and the other side is closed with the same code.
Credentials are handled as for HTTP (see :mod:`api.proxy_http`): the caller's cookies,
``Authorization`` and ``Referer`` never reach the sandbox; ``extra_headers`` (the sandbox
bearer) are added here, server-side.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

import aiohttp
from starlette.websockets import WebSocket, WebSocketState
from yarl import URL

from api.proxy_http import request_headers, upstream_client

MAX_FRAME_BYTES = 16 * 1024 * 1024
HEARTBEAT_SECONDS = 30.0
_HANDSHAKE = frozenset({"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions"})
_PROTOCOL = "sec-websocket-protocol"
# Codes a peer may not put in a close frame (RFC 6455 §7.4.1) become "normal" or "error".
_RESERVED_CLOSE = {1005: 1000, 1006: 1011, 1015: 1011}


class UpstreamRefused(Exception):
    """The sandbox did not accept the WebSocket (down, or answered without upgrading)."""


def _close_code(code: int | None) -> int:
    if code is None:
        return 1000
    return _RESERVED_CLOSE.get(code, code)


async def open_upstream(
    websocket: WebSocket, url: URL, extra_headers: Mapping[str, str] | None = None
) -> aiohttp.ClientWebSocketResponse:
    """Connect to ``url`` with the browser's subprotocols and filtered headers."""
    protocols = [p.strip() for p in websocket.headers.get(_PROTOCOL, "").split(",") if p.strip()]
    headers = [
        (k, v)
        for k, v in request_headers(websocket.headers.items(), extra_headers)
        if k.lower() not in _HANDSHAKE and k.lower() != _PROTOCOL
    ]
    query = websocket.scope.get("query_string", b"").decode("latin-1")
    target = URL(str(url.with_query(None)) + ("?" + query if query else ""), encoded=True)
    try:
        return await upstream_client(websocket).ws_connect(
            target,
            headers=headers,
            protocols=protocols,
            heartbeat=HEARTBEAT_SECONDS,
            max_msg_size=MAX_FRAME_BYTES,
            autoping=True,
        )
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise UpstreamRefused(str(exc)) from None


async def _browser_to_upstream(
    websocket: WebSocket, upstream: aiohttp.ClientWebSocketResponse
) -> int:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return _close_code(message.get("code"))
        if message.get("text") is not None:
            await upstream.send_str(message["text"])
        elif message.get("bytes") is not None:
            await upstream.send_bytes(message["bytes"])


async def _upstream_to_browser(
    websocket: WebSocket, upstream: aiohttp.ClientWebSocketResponse
) -> int:
    async for message in upstream:
        if message.type == aiohttp.WSMsgType.TEXT:
            await websocket.send_text(message.data)
        elif message.type == aiohttp.WSMsgType.BINARY:
            await websocket.send_bytes(message.data)
        elif message.type == aiohttp.WSMsgType.ERROR:
            return 1011
    return _close_code(upstream.close_code)


async def bridge(websocket: WebSocket, upstream: aiohttp.ClientWebSocketResponse) -> None:
    """Accept the browser (with the subprotocol the sandbox chose) and pump until one side
    ends; then close both, passing the close code on."""
    await websocket.accept(subprotocol=upstream.protocol)
    down = asyncio.ensure_future(_upstream_to_browser(websocket, upstream))
    up = asyncio.ensure_future(_browser_to_upstream(websocket, upstream))
    code = 1000
    try:
        done, _ = await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
        finished = next(iter(done))
        if not finished.cancelled() and finished.exception() is None:
            code = finished.result()
        else:
            code = 1011
    finally:
        for task in (down, up):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await upstream.close(code=code)
        if websocket.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close(code)
