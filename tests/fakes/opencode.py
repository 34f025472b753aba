"""A synthetic OpenCode server (1.18 wire format) and a sandbox provider that points at it.

:class:`FakeOpenCode` answers the routes Warren's session actor calls (``/global/health``,
``/session``, ``/session/{id}``, ``prompt_async``, ``abort``, ``/session/{id}/message``,
``/session/status``, ``/permission/{id}/reply``) and streams ``GET /event`` as SSE
(``data: {id, type, properties}`` lines, ``server.connected`` first, ``server.heartbeat``
periodically). A prompt is answered from a :class:`Reply`: an optional tool call, then text
streamed as ``message.part.delta`` events, in the order real OpenCode emits them (see
tests/actors/data/opencode_events.jsonl, recorded from the real binary).

Its point is to drive Warren's relay deterministically and fast in tests:
event timing is under the test's control, streams can be dropped, heartbeats paused.

:class:`FakeSandboxProvider` is a sandbox provider whose every "sandbox" is that server;
it runs inside the session actor's process, so its state (snapshots taken, terminations,
files for ``read_files``) lives in a folder shared with the test.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from core.settings import Settings
from sandboxes.errors import SandboxNotFound
from sandboxes.provider import SandboxProvider
from schemas.sandbox import (
    CreateSandboxOptions,
    ExecResult,
    SandboxHandle,
    SandboxLiveness,
    SecretFile,
    SnapshotResult,
)
from tests.fakes.base import FakeServer

_ids = itertools.count(1)


def _id(prefix: str) -> str:
    # OpenCode ids sort by creation: a counter keeps that property.
    return f"{prefix}_{next(_ids):012x}{secrets.token_hex(7)}"


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class ToolCall:
    """A tool the fake agent "runs" before answering."""

    name: str = "bash"
    args: dict[str, Any] = field(default_factory=lambda: {"command": "echo hi"})
    output: str = "hi\n"
    delay: float = 0.0


@dataclass
class Reply:
    """How the fake agent answers a prompt."""

    tokens: list[str] = field(default_factory=lambda: ["Hello", ", ", "world", "!"])
    token_delay: float = 0.0
    tool: ToolCall | None = None
    stamp: bool = False
    """Prefix each token with ``<monotonic ns>;`` so a reader can measure relay latency."""
    part_per_token: bool = False
    """Put each token in a text part of its own (many events that can't be merged)."""


@dataclass
class _Session:
    id: str
    title: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    busy: bool = False
    task: asyncio.Task[None] | None = None
    current: dict[str, Any] | None = None


class _LazyText(dict[str, Any]):
    """A streaming text part whose ``text`` is joined only when someone reads the messages
    (joining on every token would make long answers quadratic)."""

    def __init__(self, part: dict[str, Any], chunks: list[str]) -> None:
        super().__init__(part)
        self._chunks = chunks

    def materialize(self) -> dict[str, Any]:
        return {**self, "text": "".join(self._chunks)}


class FakeOpenCode(FakeServer):
    """See the module docstring. ``async with FakeOpenCode() as oc: ... oc.url``."""

    def __init__(self, *, heartbeat_interval: float = 10.0, record_requests: bool = True) -> None:
        super().__init__()
        self.heartbeat_interval = heartbeat_interval
        self.record_requests = record_requests
        self.reply = Reply()
        self.sessions: dict[str, _Session] = {}
        self.prompts: list[tuple[str, str]] = []
        self.heartbeats_paused = False
        self.fail_next = 0
        """Answer this many of the next requests (not /event) with 503."""
        self.app.middlewares.append(self._failures)
        self._streams: set[asyncio.Queue[bytes | None]] = set()
        routes = self.app.router
        routes.add_get("/global/health", self._health)
        routes.add_post("/session", self._create_session)
        routes.add_get("/session/status", self._status)
        routes.add_get("/session/{id}", self._get_session)
        routes.add_post("/session/{id}/prompt_async", self._prompt)
        routes.add_post("/session/{id}/abort", self._abort)
        routes.add_get("/session/{id}/message", self._messages)
        routes.add_post("/permission/{id}/reply", self._permission_reply)
        routes.add_get("/event", self._events)

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        # Benchmarks turn recording off: millions of requests would pile up.
        if self.record_requests:
            return await super()._record(request, handler)
        response: web.StreamResponse = await handler(request)
        return response

    @web.middleware
    async def _failures(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.fail_next > 0 and request.path != "/event":
            self.fail_next -= 1
            return web.json_response({"name": "UnknownError"}, status=503)
        response: web.StreamResponse = await handler(request)
        return response

    # -- controls ---------------------------------------------------------------------------

    @property
    def stream_count(self) -> int:
        """Open ``/event`` connections."""
        return len(self._streams)

    async def drop_streams(self) -> None:
        """Close every open event stream (the reader sees EOF)."""
        for queue in list(self._streams):
            queue.put_nowait(None)

    async def stop(self) -> None:
        """Close the streams first: aiohttp would wait for them on shutdown."""
        await self.drop_streams()
        for session in self.sessions.values():
            if session.task is not None:
                session.task.cancel()
        await super().stop()

    async def wait_idle(self, within: float = 30.0) -> None:
        """Until no session is generating."""
        async with asyncio.timeout(within):
            while any(s.busy for s in self.sessions.values()):  # noqa: ASYNC110 (polling)
                await asyncio.sleep(0.01)

    def publish(self, event_type: str, properties: dict[str, Any]) -> None:
        """Send one event to every open stream."""
        frame = (
            b"data: "
            + json.dumps(
                {"id": _id("evt"), "type": event_type, "properties": properties},
                separators=(",", ":"),
            ).encode()
            + b"\n\n"
        )
        for queue in self._streams:
            queue.put_nowait(frame)

    # -- routes ------------------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"healthy": True, "version": "1.18.33"})

    async def _create_session(self, request: web.Request) -> web.Response:
        body = await request.json() if request.body_exists else {}
        session = _Session(id=_id("ses"), title=str(body.get("title") or "New session"))
        self.sessions[session.id] = session
        info = self._session_info(session)
        self.publish("session.created", {"sessionID": session.id, "info": info})
        return web.json_response(info)

    def _session_info(self, session: _Session) -> dict[str, Any]:
        now = _now_ms()
        return {
            "id": session.id,
            "slug": "fake",
            "projectID": "global",
            "directory": "/workspace",
            "title": session.title,
            "version": "1.18.33",
            "time": {"created": now, "updated": now},
        }

    async def _get_session(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return web.json_response({"name": "NotFoundError"}, status=404)
        return web.json_response(self._session_info(session))

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response({s.id: {"type": "busy"} for s in self.sessions.values() if s.busy})

    async def _messages(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return web.json_response({"name": "NotFoundError"}, status=404)
        return web.json_response(
            [
                {
                    "info": m["info"],
                    "parts": [
                        p.materialize() if isinstance(p, _LazyText) else p for p in m["parts"]
                    ],
                }
                for m in session.messages
            ]
        )

    async def _permission_reply(self, request: web.Request) -> web.Response:
        return web.json_response(True)

    async def _prompt(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return web.json_response({"name": "NotFoundError"}, status=404)
        body = await request.json()
        text = "".join(p.get("text", "") for p in body.get("parts", []) if p.get("type") == "text")
        self.prompts.append((session.id, text))
        if session.task is not None and not session.task.done():
            await session.task  # OpenCode queues prompts; the fake answers them in turn
        session.busy = True
        session.task = asyncio.create_task(self._answer(session, text, self.reply))
        return web.Response(status=204)

    async def _abort(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["id"])
        if session is None:
            return web.json_response(False)
        if session.task is not None and not session.task.done():
            session.task.cancel()
            try:
                await session.task
            except asyncio.CancelledError:
                pass
            self._aborted(session)
        return web.json_response(True)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._streams.add(queue)
        heartbeat = asyncio.create_task(self._heartbeats(queue))
        try:
            connected = {"id": _id("evt"), "type": "server.connected", "properties": {}}
            await response.write(b"data: " + json.dumps(connected).encode() + b"\n\n")
            while True:
                frame = await queue.get()
                if frame is None:
                    break
                await response.write(frame)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            heartbeat.cancel()
            self._streams.discard(queue)
        return response

    async def _heartbeats(self, queue: asyncio.Queue[bytes | None]) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            if not self.heartbeats_paused:
                beat = {"id": _id("evt"), "type": "server.heartbeat", "properties": {}}
                queue.put_nowait(b"data: " + json.dumps(beat).encode() + b"\n\n")

    # -- the fake agent ------------------------------------------------------------------------

    def _message(self, session: _Session, role: str, parent: str | None = None) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": _id("msg"),
            "sessionID": session.id,
            "role": role,
            "time": {"created": _now_ms()},
        }
        if parent is not None:
            info.update(
                {
                    "parentID": parent,
                    "modelID": "scripted",
                    "providerID": "warren",
                    "mode": "build",
                    "agent": "build",
                }
            )
        entry = {"info": info, "parts": []}
        session.messages.append(entry)
        self.publish("message.updated", {"sessionID": session.id, "info": dict(info)})
        return entry

    def _part(self, session: _Session, entry: dict[str, Any], part: dict[str, Any]) -> None:
        parts = entry["parts"]
        for i, existing in enumerate(parts):
            if existing["id"] == part["id"]:
                parts[i] = part
                break
        else:
            parts.append(part)
        self.publish(
            "message.part.updated", {"sessionID": session.id, "part": dict(part), "time": _now_ms()}
        )

    def _finish(self, session: _Session, entry: dict[str, Any], finish: str) -> None:
        entry["info"]["time"]["completed"] = _now_ms()
        entry["info"]["finish"] = finish
        self.publish("message.updated", {"sessionID": session.id, "info": dict(entry["info"])})

    def _status_event(self, session: _Session, kind: str) -> None:
        self.publish("session.status", {"sessionID": session.id, "status": {"type": kind}})

    async def _answer(self, session: _Session, text: str, reply: Reply) -> None:
        user = self._message(session, "user")
        self._part(
            session,
            user,
            {
                "id": _id("prt"),
                "sessionID": session.id,
                "messageID": user["info"]["id"],
                "type": "text",
                "text": text,
            },
        )
        self._status_event(session, "busy")
        parent = user["info"]["id"]
        if reply.tool is not None:
            await self._tool_step(session, parent, reply.tool)
        entry = self._message(session, "assistant", parent)
        session.current = entry
        mid = entry["info"]["id"]
        base = {"sessionID": session.id, "messageID": mid}
        self._part(session, entry, {"id": _id("prt"), **base, "type": "step-start"})
        groups = [[t] for t in reply.tokens] if reply.part_per_token else [reply.tokens]
        for group in groups:
            await self._text_part(session, entry, base, group, reply)
        self._part(
            session, entry, {"id": _id("prt"), **base, "type": "step-finish", "reason": "stop"}
        )
        self._finish(session, entry, "stop")
        session.current = None
        session.busy = False
        self._status_event(session, "idle")
        self.publish("session.idle", {"sessionID": session.id})

    async def _text_part(
        self,
        session: _Session,
        entry: dict[str, Any],
        base: dict[str, Any],
        tokens: list[str],
        reply: Reply,
    ) -> None:
        part = {"id": _id("prt"), **base, "type": "text", "text": "", "time": {"start": _now_ms()}}
        self._part(session, entry, part)
        chunks: list[str] = []
        for token in tokens:
            if reply.token_delay:
                await asyncio.sleep(reply.token_delay)
            delta = f"{time.monotonic_ns()};{token}" if reply.stamp else token
            chunks.append(delta)
            entry["parts"][-1] = _LazyText(part, chunks)
            self.publish(
                "message.part.delta",
                {**base, "partID": part["id"], "field": "text", "delta": delta},
            )
        part = {
            **part,
            "text": "".join(chunks),
            "time": {"start": part["time"]["start"], "end": _now_ms()},
        }
        self._part(session, entry, part)

    async def _tool_step(self, session: _Session, parent: str, tool: ToolCall) -> None:
        entry = self._message(session, "assistant", parent)
        base = {"sessionID": session.id, "messageID": entry["info"]["id"]}
        self._part(session, entry, {"id": _id("prt"), **base, "type": "step-start"})
        call = {
            "id": _id("prt"),
            **base,
            "type": "tool",
            "tool": tool.name,
            "callID": "call_" + secrets.token_hex(8),
        }
        self._part(session, entry, {**call, "state": {"status": "pending", "input": {}, "raw": ""}})
        start = _now_ms()
        self._part(
            session,
            entry,
            {**call, "state": {"status": "running", "input": tool.args, "time": {"start": start}}},
        )
        if tool.delay:
            await asyncio.sleep(tool.delay)
        self._part(
            session,
            entry,
            {
                **call,
                "state": {
                    "status": "completed",
                    "input": tool.args,
                    "output": tool.output,
                    "title": tool.name,
                    "metadata": {"output": tool.output},
                    "time": {"start": start, "end": _now_ms() + 1},
                },
            },
        )
        self._part(
            session,
            entry,
            {"id": _id("prt"), **base, "type": "step-finish", "reason": "tool-calls"},
        )
        self._finish(session, entry, "tool-calls")

    def _aborted(self, session: _Session) -> None:
        self.publish(
            "session.error",
            {
                "sessionID": session.id,
                "error": {"name": "MessageAbortedError", "data": {"message": "Aborted"}},
            },
        )
        session.busy = False
        self._status_event(session, "idle")
        self.publish("session.idle", {"sessionID": session.id})
        entry = session.current
        session.current = None
        if entry is not None:
            entry["info"]["error"] = {"name": "MessageAbortedError", "data": {"message": "Aborted"}}
            self._finish(session, entry, "stop")


# --- a provider whose sandboxes are a FakeOpenCode ------------------------------------------------


class FakeSandboxProvider(SandboxProvider):
    """Every sandbox is the fake OpenCode at ``opencode_url``; state lives in ``state_dir``:
    ``snapshots.log`` (one id per snapshot), ``terminated.log``, ``files/`` (read_files)."""

    name = "fake"

    def __init__(self, opencode_url: str, state_dir: str) -> None:
        self.opencode_url = opencode_url
        self.state = Path(state_dir)
        self.state.mkdir(parents=True, exist_ok=True)

    def _lines(self, name: str) -> list[str]:
        path = self.state / name
        return path.read_text().split() if path.exists() else []

    def _append(self, name: str, value: str) -> None:
        with (self.state / name).open("a") as f:
            f.write(value + "\n")

    def _handle(self, sandbox_id: str, recovered: bool = False) -> SandboxHandle:
        return SandboxHandle(
            sandbox_id=sandbox_id,
            provider=self.name,
            opencode_url=self.opencode_url,
            sandbox_agent_url=self.opencode_url,
            expires_at=time.time() + 3600,
            recovered=recovered,
        )

    async def ensure_sandbox(self, opts: CreateSandboxOptions) -> SandboxHandle:
        """Recover the current sandbox unless it was terminated, else "create" one."""
        current = opts.current_sandbox_id
        if current and current not in self._lines("terminated.log"):
            return self._handle(current, recovered=True)
        return await self.create_sandbox(opts)

    async def create_sandbox(self, opts: CreateSandboxOptions) -> SandboxHandle:
        """A new sandbox id on the same fake server; waits while ``hold-create`` exists in
        the state dir (a test's barrier: a boot stuck in the provider)."""
        hold = self.state / "hold-create"
        if hold.exists():
            self._append("held.log", opts.session_id)
            while hold.exists():  # noqa: ASYNC110 (the test is another process)
                await asyncio.sleep(0.05)
        sandbox_id = "fake_" + secrets.token_hex(6)
        self._append("created.log", sandbox_id)
        return self._handle(sandbox_id)

    async def snapshot(self, sandbox_id: str) -> SnapshotResult:
        """Record a snapshot."""
        snapshot_id = "snap_" + secrets.token_hex(12)
        self._append("snapshots.log", snapshot_id)
        return SnapshotResult(snapshot_id=snapshot_id)

    async def pause(self, sandbox_id: str) -> SnapshotResult:
        """Snapshot then terminate."""
        result = await self.snapshot(sandbox_id)
        await self.terminate(sandbox_id)
        return result

    async def terminate(self, sandbox_id: str) -> None:
        """Record the termination."""
        self._append("terminated.log", sandbox_id)

    async def delete_snapshot(self, snapshot_id: str) -> None:
        """Nothing to delete."""

    async def write_env_file(self, sandbox_id: str, files: Sequence[SecretFile]) -> None:
        """Nothing to write."""

    async def exec(
        self,
        sandbox_id: str,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        timeout: float = 120.0,  # noqa: ASYNC109 (the provider interface's signature)
    ) -> ExecResult:
        """No commands run in a fake sandbox."""
        raise SandboxNotFound("the fake sandbox runs no commands")

    async def read_files(self, sandbox_id: str, folder: str) -> dict[str, bytes]:
        """Files under ``state_dir/files/<folder>``."""
        root = self.state / "files" / folder
        if not root.is_dir():
            return {}
        return {
            p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
        }

    async def check_sandboxes(self, sandbox_ids: Sequence[str]) -> list[SandboxLiveness]:
        """Alive unless terminated."""
        dead = set(self._lines("terminated.log"))
        return [SandboxLiveness(sandbox_id=s, alive=s not in dead) for s in sandbox_ids]

    async def resolve_tunnels(self, sandbox_id: str) -> SandboxHandle:
        """The fake server's URL."""
        return self._handle(sandbox_id)


def fake_provider(opencode_url: str, state_dir: str, settings: Settings) -> SandboxProvider:
    """A :data:`actors.session.runtime.ProviderFactory` (bind the first two with partial)."""
    return FakeSandboxProvider(opencode_url, state_dir)
