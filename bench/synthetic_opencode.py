"""A synthetic OpenCode for the relay benchmark: answers every prompt with stamped text deltas.

Only what a session actor needs to boot and to relay one answer: ``/global/health``,
``POST /session``, the (empty) stored messages and status, ``prompt_async`` and ``GET
/event`` (SSE, ``server.connected`` first). An answer is the event order of real OpenCode
1.18 for a text reply; each ``message.part.delta`` carries ``<monotonic ns>;x`` so the
client can measure the relay. :class:`SyntheticSandboxes` is a sandbox provider whose every
sandbox is one such server (it runs in the session actor's process).

(tests/fakes/opencode.py is the full fake the tests drive: tools, aborts, dropped streams.)
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from aiohttp import web

from core.settings import Settings
from sandboxes.errors import SandboxNotFound
from sandboxes.provider import DEFAULT_EXEC_TIMEOUT, SandboxProvider
from schemas.sandbox import (
    CreateSandboxOptions,
    ExecResult,
    SandboxHandle,
    SandboxLiveness,
    SecretFile,
    SnapshotResult,
)

_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):024x}"  # OpenCode ids sort by creation


class SyntheticOpenCode:
    """One synthetic OpenCode: serve :attr:`app` (``core.http_server.serving``).

    ``tokens`` and ``interval`` set the next answers: that many deltas, one per interval.
    """

    def __init__(self) -> None:
        self.url = ""
        """Where it is served; set by whoever serves :attr:`app`."""
        self.tokens = 10
        self.interval = 0.05
        self._streams: set[asyncio.Queue[bytes | None]] = set()
        self._answers: set[asyncio.Task[None]] = set()
        self.app = web.Application()
        routes = self.app.router
        routes.add_get("/global/health", self._health)
        routes.add_post("/session", self._create_session)
        routes.add_get("/session/status", self._empty_map)
        routes.add_get("/session/{id}/message", self._no_messages)
        routes.add_post("/session/{id}/prompt_async", self._prompt)
        routes.add_get("/event", self._events)
        self.app.on_shutdown.append(self._end_streams)

    async def _end_streams(self, app: web.Application) -> None:
        for task in self._answers:
            task.cancel()
        for queue in self._streams:
            queue.put_nowait(None)

    def _publish(self, event_type: str, properties: dict[str, Any]) -> None:
        event = {"id": _id("evt"), "type": event_type, "properties": properties}
        frame = b"data: " + msgspec.json.encode(event) + b"\n\n"
        for queue in self._streams:
            queue.put_nowait(frame)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"healthy": True, "version": "1.18.33"})

    async def _create_session(self, request: web.Request) -> web.Response:
        body = await request.json()
        now = int(time.time() * 1000)
        info = {
            "id": _id("ses"),
            "directory": "/workspace",
            "title": str(body.get("title") or "New session"),
            "time": {"created": now, "updated": now},
        }
        return web.json_response(info)

    async def _empty_map(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def _no_messages(self, request: web.Request) -> web.Response:
        return web.json_response([])

    async def _prompt(self, request: web.Request) -> web.Response:
        task = asyncio.create_task(self._answer(request.match_info["id"], self.tokens))
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)
        return web.Response(status=204)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._streams.add(queue)
        try:
            connected = {"id": _id("evt"), "type": "server.connected", "properties": {}}
            await response.write(b"data: " + msgspec.json.encode(connected) + b"\n\n")
            while (frame := await queue.get()) is not None:
                await response.write(frame)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._streams.discard(queue)
        return response

    def _message(self, sid: str, role: str, parent: str | None) -> dict[str, Any]:
        info: dict[str, Any] = {"id": _id("msg"), "sessionID": sid, "role": role}
        info["time"] = {"created": int(time.time() * 1000)}
        if parent is not None:
            info.update(parentID=parent, modelID="synthetic", providerID="bench", mode="build")
        self._publish("message.updated", {"sessionID": sid, "info": info})
        return info

    def _part(self, info: dict[str, Any], part: dict[str, Any]) -> None:
        sid = info["sessionID"]
        part = {"sessionID": sid, "messageID": info["id"], **part}
        self._publish("message.part.updated", {"sessionID": sid, "part": part, "time": 0})

    async def _answer(self, sid: str, tokens: int) -> None:
        user = self._message(sid, "user", None)
        self._part(user, {"id": _id("prt"), "type": "text", "text": "go"})
        self._publish("session.status", {"sessionID": sid, "status": {"type": "busy"}})
        reply = self._message(sid, "assistant", user["id"])
        self._part(reply, {"id": _id("prt"), "type": "step-start"})
        text = {"id": _id("prt"), "type": "text", "text": "", "time": {"start": 0}}
        self._part(reply, text)
        where = {"sessionID": sid, "messageID": reply["id"], "partID": text["id"]}
        deltas: list[str] = []
        for _ in range(tokens):
            await asyncio.sleep(self.interval)
            deltas.append(f"{time.monotonic_ns()};x")
            self._publish("message.part.delta", {**where, "field": "text", "delta": deltas[-1]})
        self._part(reply, {**text, "text": "".join(deltas), "time": {"start": 0, "end": 1}})
        self._part(reply, {"id": _id("prt"), "type": "step-finish", "reason": "stop"})
        reply["time"]["completed"] = int(time.time() * 1000)
        reply["finish"] = "stop"
        self._publish("message.updated", {"sessionID": sid, "info": reply})
        self._publish("session.status", {"sessionID": sid, "status": {"type": "idle"}})
        self._publish("session.idle", {"sessionID": sid})


class SyntheticSandboxes(SandboxProvider):
    """Every sandbox is the synthetic OpenCode at ``url``; nothing runs, nothing is saved."""

    name = "synthetic"

    def __init__(self, url: str) -> None:
        self.url = url

    @classmethod
    def factory(cls, url: str) -> Callable[[Settings], SandboxProvider]:
        """A provider factory for ``session_client.session_actor`` (it runs in the actor)."""
        return functools.partial(_synthetic_provider, url)

    async def create_sandbox(self, opts: CreateSandboxOptions) -> SandboxHandle:
        """A new id on the same server."""
        return await self.resolve_tunnels(_id("sbx"))

    async def snapshot(self, sandbox_id: str) -> SnapshotResult:
        """An id only: there are no files."""
        return SnapshotResult(snapshot_id=_id("snap"))

    async def pause(self, sandbox_id: str) -> SnapshotResult:
        """An id only."""
        return await self.snapshot(sandbox_id)

    async def terminate(self, sandbox_id: str) -> None:
        """Nothing runs."""

    async def delete_snapshot(self, snapshot_id: str) -> None:
        """Nothing is saved."""

    async def write_env_file(self, sandbox_id: str, files: Sequence[SecretFile]) -> None:
        """No files."""

    async def exec(
        self,
        sandbox_id: str,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        timeout: float = DEFAULT_EXEC_TIMEOUT,  # noqa: ASYNC109 (the provider interface's)
    ) -> ExecResult:
        """No commands run."""
        raise SandboxNotFound("a synthetic sandbox runs no commands")

    async def read_files(self, sandbox_id: str, folder: str) -> dict[str, bytes]:
        """No files."""
        return {}

    async def check_sandboxes(self, sandbox_ids: Sequence[str]) -> list[SandboxLiveness]:
        """Always alive."""
        return [SandboxLiveness(sandbox_id=s, alive=True) for s in sandbox_ids]

    async def resolve_tunnels(self, sandbox_id: str) -> SandboxHandle:
        """The server's URL, for OpenCode and the in-sandbox agent alike."""
        return SandboxHandle(
            sandbox_id=sandbox_id,
            provider=self.name,
            opencode_url=self.url,
            sandbox_agent_url=self.url,
            expires_at=time.time() + 24 * 3600,
        )


def _synthetic_provider(url: str, settings: Settings) -> SandboxProvider:
    return SyntheticSandboxes(url)
