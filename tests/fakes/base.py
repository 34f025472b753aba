"""A loopback aiohttp server that records every request: the base of the SaaS fakes.

Use as ``async with FakeGitHub() as gh: ... gh.url ... gh.requests``. The server binds
127.0.0.1 on a kernel-chosen free port (no race), and records method, path, query,
headers and body of each request before the handler runs.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from multidict import MultiDict

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    query: MultiDict[str]
    headers: dict[str, str]
    body: bytes = b""
    extra: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """A request header, case-insensitively."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


class FakeServer:
    """Base class: subclasses add routes to ``self.app`` in ``__init__``."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.app = web.Application(middlewares=[self._record])
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=MultiDict(request.query),
                headers=dict(request.headers),
                body=body,
            )
        )
        return await handler(request)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` of the running server."""
        if self._port is None:
            raise RuntimeError("fake server is not started")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        """Bind a free loopback port and start serving."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = int(sock.getsockname()[1])
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        """Stop serving and release the port."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests for ``path`` (and ``method`` if given)."""
        return [
            r for r in self.requests if r.path == path and (method is None or r.method == method)
        ]


def bearer_token(request: web.Request, *, allow_token_scheme: bool = False) -> str | None:
    """The credential from ``Authorization: Bearer <t>`` (or ``token <t>`` if allowed)."""
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    schemes = {"bearer", "token"} if allow_token_scheme else {"bearer"}
    if scheme.lower() in schemes and value.strip():
        return value.strip()
    return None
