"""Helpers for proxy and share tests: a real upstream web app, a real in-sandbox agent
process, and session rows that point at them (the proxy only reads the row's URLs)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from deploy.net import free_port
from schemas.sessions import NewSession, SessionRecord
from security import tokens
from store import sessions as session_store
from tests.api.accounts import Account, call

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Upstream:
    """A loopback aiohttp app standing in for OpenCode or a dev server in the sandbox.

    ``/echo`` answers with what it received; ``/sse?gate=G`` sends one event, waits for
    ``release(G)``, sends a second; ``/ws`` greets, echoes text (``echo:``) and reversed
    bytes, and closes with 4001 on ``close-me``; ``/redirect`` answers 302 to ``/echo``.
    """

    port: int = 0
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    ws_headers: list[dict[str, str]] = field(default_factory=list)
    ws_closed: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def gate(self, name: str) -> asyncio.Event:
        """The event ``/sse?gate=name`` waits for."""
        return self.gates.setdefault(name, asyncio.Event())

    async def echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        payload = {
            "method": request.method,
            "path": request.path,
            "raw_path": request.raw_path,
            "query": dict(request.query),
            "headers": dict(request.headers),
            "body": body.decode(),
        }
        response = web.json_response(payload)
        response.set_cookie("upstream_cookie", "1", path="/")
        response.headers["X-Upstream"] = "yes"
        return response

    async def sse(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: first\n\n")
        await asyncio.wait_for(self.gate(request.query["gate"]).wait(), 30)
        await response.write(b"data: second\n\n")
        await response.write_eof()
        return response

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(protocols=("warren-test",))
        await socket.prepare(request)
        self.ws_headers.append(dict(request.headers))
        await socket.send_str("hello")
        async for message in socket:
            if message.type == aiohttp.WSMsgType.TEXT:
                if message.data == "close-me":
                    await socket.close(code=4001, message=b"bye")
                    break
                await socket.send_str("echo:" + message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                await socket.send_bytes(message.data[::-1])
        self.ws_closed.set()
        return socket

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/echo?from=redirect")

    async def start(self) -> None:
        """Serve on a kernel-chosen loopback port."""
        app = web.Application()
        app.router.add_route("*", "/echo", self.echo)
        app.router.add_route("*", "/echo/{tail:.*}", self.echo)
        app.router.add_get("/sse", self.sse)
        app.router.add_get("/ws", self.ws)
        app.router.add_get("/redirect", self.redirect)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop serving."""
        for gate in self.gates.values():
            gate.set()
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class Sandbox:
    """A session row marked running, backed by a real agent process and the upstream."""

    record: SessionRecord
    agent_port: int
    token: str

    @property
    def id(self) -> str:
        """The session id."""
        return str(self.record.id)

    @property
    def sandbox_agent_url(self) -> str:
        """The agent's base URL."""
        return f"http://127.0.0.1:{self.agent_port}"

    async def expose(self, port: int) -> None:
        """``POST /api/expose`` on the agent, as code in the sandbox would."""
        headers = {"Authorization": f"Bearer {self.token}"}
        async with aiohttp.ClientSession() as client:
            async with client.post(
                f"{self.sandbox_agent_url}/api/expose", json={"port": port}, headers=headers
            ) as resp:
                assert resp.status == 200, await resp.text()


async def _wait_healthy(url: str, process: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as client:
        for _ in range(200):
            assert process.returncode is None, "the agent exited at start"
            try:
                async with client.get(url, timeout=aiohttp.ClientTimeout(total=0.5)) as resp:
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("the agent never became healthy")


async def new_session(
    db: asyncpg.Pool, account: Account, *, title: str = "Proxy test"
) -> SessionRecord:
    """A pending session of ``account`` in their org."""
    new = NewSession(
        org_id=uuid.UUID(account.org_id),
        created_by=uuid.UUID(account.user_id),
        sandbox_provider="local",
        title=title,
    )
    record, _ = await session_store.insert_session(db, new)
    return record


@asynccontextmanager
async def running_sandbox(
    db: asyncpg.Pool,
    secret_key: str,
    account: Account,
    upstream: Upstream,
    workspace: Path,
    *,
    title: str = "Proxy test",
) -> AsyncIterator[Sandbox]:
    """A session whose OpenCode is ``upstream`` and whose agent is a real
    ``python -m sandboxes.agent`` in ``workspace``; the row is marked running."""
    record = await new_session(db, account, title=title)
    token = tokens.sandbox_token(secret_key, str(record.id))
    state = workspace.parent / f"state-{record.id.hex[:8]}"
    await asyncio.to_thread(workspace.mkdir, parents=True, exist_ok=True)
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workspace),
        "WARREN_SANDBOX_TOKEN": token,
        "WARREN_WORKSPACE": str(workspace),
        "WARREN_STATE_DIR": str(state),
        "WARREN_AGENT_PORT": str(port),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandboxes.agent",
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await _wait_healthy(f"http://127.0.0.1:{port}/api/health", process)
        await session_store.mark_running(
            db,
            record.id,
            sandbox_id=f"test-{record.id.hex[:12]}",
            provider="local",
            opencode_url=upstream.url,
            sandbox_agent_url=f"http://127.0.0.1:{port}",
            preview_url=None,
            expires_at=record.created_at.replace(year=record.created_at.year + 1),
        )
        running = await session_store.get_session(db, record.id)
        assert running is not None
        yield Sandbox(running, port, token)
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def ws_token(account: Account, org_id: str | None = None) -> str:
    """A WebSocket token of ``account`` (in ``org_id`` when given)."""
    headers = {"X-Org-Id": org_id} if org_id else None
    status, body = await call(account.client, "POST", "/api/auth/ws-token", headers=headers)
    assert status == 200, body
    token: str = body["token"]
    return token


async def metric_value(client: aiohttp.ClientSession, name: str, **labels: str) -> float:
    """One sample of ``name`` from ``/metrics`` (0 when absent)."""
    async with client.get("/metrics") as resp:
        text = await resp.text()
    wanted = name + (
        "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""
    )
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


def proxy_path(session_id: str, token: str, target: str, rest: str = "") -> str:
    """A proxy path."""
    return f"/proxy/{session_id}/{token}/{target}/{rest}"


def json_of(text: str) -> Any:
    """Decode JSON text."""
    import json

    return json.loads(text)
