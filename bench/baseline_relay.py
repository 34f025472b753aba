"""The relay benchmark's baseline: a minimal single-process relay, OpenCode SSE in, WebSocket out.

    .venv/bin/python -m bench.baseline_relay --port 8790

What the least a relay must do costs on this machine: per session one SSE reader on its
OpenCode (``GET /event``) and a WebSocket route that speaks the frames the relay bench's
clients read (``init``, ``token``, ``message_complete``); a ``prompt`` frame becomes
``POST /session/{id}/prompt_async``. No database, no JetStream, no replay, no auth: one
aiohttp process. ``bench.relay`` starts it in its own process and drives it with the same
synthetic sources and clients as Warren.

Routes: ``POST /sessions`` ``{"opencode_url": ...}`` → ``{"session_id": ...}``;
``GET /sessions/{id}/ws``; ``GET /healthz``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field

import aiohttp
import msgspec
from aiohttp import web

_ids = itertools.count(1)


class _Event(msgspec.Struct):
    """The part of an OpenCode event the relay reads."""

    type: str
    properties: dict[str, object] = {}


class _Token(msgspec.Struct, tag_field="type", tag="token"):
    """A text delta, as Warren's ``token`` frame carries it."""

    token: str


class _Complete(msgspec.Struct, tag_field="type", tag="message_complete"):
    """The answer ended (OpenCode's ``session.idle``)."""


class _Init(msgspec.Struct, tag_field="type", tag="init"):
    """The first frame on every WebSocket."""

    session_id: str


@dataclass
class _Session:
    """One relayed session: its OpenCode, its SSE reader and its WebSocket clients."""

    opencode_url: str
    opencode_id: str
    clients: set[web.WebSocketResponse] = field(default_factory=set)
    reader: asyncio.Task[None] | None = None


class BaselineRelay:
    """The relay's state and routes; serve :attr:`app`."""

    def __init__(self) -> None:
        self.sessions: dict[str, _Session] = {}
        self.http: aiohttp.ClientSession | None = None
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_post("/sessions", self._create)
        self.app.router.add_get("/sessions/{id}/ws", self._ws)
        self.app.on_startup.append(self._open)
        self.app.on_shutdown.append(self._close)

    async def _open(self, app: web.Application) -> None:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))

    async def _close(self, app: web.Application) -> None:
        for session in self.sessions.values():
            if session.reader is not None:
                session.reader.cancel()
            for ws in list(session.clients):
                await ws.close()
        if self.http is not None:
            await self.http.close()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _create(self, request: web.Request) -> web.Response:
        assert self.http is not None
        opencode_url = str((await request.json())["opencode_url"])
        async with self.http.post(f"{opencode_url}/session", json={"title": "relay"}) as r:
            opencode_id = str((await r.json())["id"])
        session_id = f"b{next(_ids)}"
        session = _Session(opencode_url, opencode_id)
        session.reader = asyncio.create_task(self._read(session))
        self.sessions[session_id] = session
        return web.json_response({"session_id": session_id}, status=201)

    async def _read(self, session: _Session) -> None:
        """Relay the session's OpenCode events to its clients, each frame encoded once."""
        assert self.http is not None
        async with self.http.get(f"{session.opencode_url}/event") as r:
            async for line in r.content:
                if not line.startswith(b"data: "):
                    continue
                event = msgspec.json.decode(line[6:], type=_Event)
                if event.type == "message.part.delta":
                    frame = msgspec.json.encode(_Token(str(event.properties["delta"])))
                elif event.type == "session.idle":
                    frame = msgspec.json.encode(_Complete())
                else:
                    continue
                text = frame.decode()
                for ws in list(session.clients):
                    with contextlib.suppress(ConnectionResetError):
                        await ws.send_str(text)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        assert self.http is not None
        session_id = request.match_info["id"]
        session = self.sessions[session_id]
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(msgspec.json.encode(_Init(session_id)).decode())
        session.clients.add(ws)
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                if msgspec.json.decode(msg.data, type=_Event).type == "prompt":
                    url = f"{session.opencode_url}/session/{session.opencode_id}/prompt_async"
                    async with self.http.post(url, json={"parts": []}) as r:
                        await r.read()
        finally:
            session.clients.discard(ws)
        return ws


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    web.run_app(BaselineRelay().app, host="127.0.0.1", port=parser.parse_args().port, print=None)
