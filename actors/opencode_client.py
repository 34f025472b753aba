"""HTTP and SSE client for the OpenCode server inside a sandbox.

Calls used by the session actor: create/get a session (with a title, so OpenCode makes no
extra model call for one), ``prompt_async``, ``abort``, the stored messages, the session
status map and permission replies. :class:`EventStream` keeps ``GET /event`` open: every
read has a deadline (OpenCode sends ``server.heartbeat`` every 10 s, so silence means a dead
connection), and a dropped stream is reopened with capped exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import msgspec

from core.backoff import Backoff

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
HEARTBEAT_TIMEOUT = 30.0
"""Seconds without a byte on the event stream before it is treated as dead (3 heartbeats)."""
MAX_EVENT_BYTES = 32 * 1024 * 1024
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

Event = dict[str, Any]


class OpenCodeError(Exception):
    """OpenCode refused a request or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class StreamStalled(Exception):
    """The event stream sent nothing (not even a heartbeat) for too long."""


class OpenCodeClient:
    """One OpenCode server (``base_url`` = the sandbox's ``opencode_url``)."""

    def __init__(
        self,
        base_url: str,
        *,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = aiohttp.BasicAuth("opencode", password) if password else None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(auth=self._auth)
        return self._http

    async def close(self) -> None:
        """Close the connection pool (open event streams end)."""
        if self._http is not None:
            await self._http.close()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        retries: int = 0,
        ok_missing: bool = False,
    ) -> Any:
        backoff = Backoff(0.2, 2.0)
        for attempt in range(retries + 1):
            try:
                async with self._session().request(
                    method, self.base_url + path, json=json, timeout=self._timeout
                ) as response:
                    if response.status == 404 and ok_missing:
                        return None
                    body = await response.read()
                    if response.status in _RETRY_STATUSES and attempt < retries:
                        await asyncio.sleep(backoff.next())
                        continue
                    if response.status >= 400:
                        raise OpenCodeError(
                            f"OpenCode {method} {path.split('?')[0]} answered {response.status}",
                            status=response.status,
                        )
                    return msgspec.json.decode(body) if body.strip() else None
            except (aiohttp.ClientError, TimeoutError) as exc:
                if attempt >= retries:
                    raise OpenCodeError(f"OpenCode unreachable: {type(exc).__name__}") from None
                await asyncio.sleep(backoff.next())
        raise OpenCodeError("OpenCode request retries exhausted")

    async def get_session(self, session_id: str) -> Event | None:
        """The OpenCode session, or None if it does not exist (a new sandbox)."""
        found = await self._request("GET", f"/session/{session_id}", retries=3, ok_missing=True)
        return found if isinstance(found, dict) else None

    async def directory(self) -> str | None:
        """The directory the server works in (``GET /path``), if it says."""
        found = await self._request("GET", "/path", retries=3, ok_missing=True)
        value = found.get("directory") if isinstance(found, dict) else None
        return value if isinstance(value, str) else None

    async def create_session(self, title: str) -> str:
        """Create a session titled ``title``; returns its id."""
        created = await self._request("POST", "/session", json={"title": title}, retries=4)
        if not isinstance(created, dict) or not isinstance(created.get("id"), str):
            raise OpenCodeError("OpenCode returned no session id")
        return str(created["id"])

    async def prompt(self, session_id: str, text: str, images: tuple[str, ...] = ()) -> None:
        """Send a prompt without waiting for the answer (follow the events)."""
        parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
        for url in images:
            mime = (
                url[5 : url.index(";")] if url.startswith("data:") and ";" in url else "image/png"
            )
            parts.append({"type": "file", "mime": mime, "url": url})
        await self._request("POST", f"/session/{session_id}/prompt_async", json={"parts": parts})

    async def abort(self, session_id: str) -> None:
        """Abort what the agent is doing in ``session_id``."""
        await self._request("POST", f"/session/{session_id}/abort", retries=2)

    async def messages(self, session_id: str) -> list[Event]:
        """Every stored message of the session (``{info, parts}``), oldest first."""
        found = await self._request("GET", f"/session/{session_id}/message", retries=3)
        return [m for m in found if isinstance(m, dict)] if isinstance(found, list) else []

    async def statuses(self) -> dict[str, Event]:
        """``{session id: {type: busy|retry}}`` for non-idle sessions."""
        found = await self._request("GET", "/session/status", retries=3)
        return found if isinstance(found, dict) else {}

    async def reply_permission(self, request_id: str, reply: str = "once") -> None:
        """Answer a permission request: ``once``, ``always`` or ``reject``."""
        await self._request("POST", f"/permission/{request_id}/reply", json={"reply": reply})

    async def events(self, *, heartbeat_timeout: float = HEARTBEAT_TIMEOUT) -> AsyncIterator[Event]:
        """One ``GET /event`` connection as parsed events; ends (or raises) when it drops."""
        async for batch in self.event_batches(heartbeat_timeout=heartbeat_timeout):
            for event in batch:
                yield event

    async def event_batches(
        self, *, heartbeat_timeout: float = HEARTBEAT_TIMEOUT
    ) -> AsyncIterator[list[Event]]:
        """One ``GET /event`` connection as lists of the events each read completed.

        Under load one read holds many events: handling them together lets the actor
        publish consecutive text deltas as one token. Raises :class:`StreamStalled` after
        ``heartbeat_timeout`` seconds of silence.
        """
        timeout = aiohttp.ClientTimeout(total=None, connect=10)
        async with self._session().get(
            self.base_url + "/event", timeout=timeout, headers={"Accept": "text/event-stream"}
        ) as response:
            if response.status != 200:
                raise OpenCodeError(
                    f"OpenCode /event answered {response.status}", status=response.status
                )
            buffer = b""
            data: list[bytes] = []
            while True:
                try:
                    async with asyncio.timeout(heartbeat_timeout):
                        chunk = await response.content.readany()
                except TimeoutError:
                    raise StreamStalled(f"no event for {heartbeat_timeout:.0f} s") from None
                if not chunk:
                    return
                buffer += chunk
                if len(buffer) > MAX_EVENT_BYTES:
                    raise OpenCodeError("OpenCode event larger than the limit")
                *lines, buffer = buffer.split(b"\n")
                batch: list[Event] = []
                for raw in lines:
                    line = raw.rstrip(b"\r")
                    if line.startswith(b"data:"):
                        data.append(line[5:].lstrip(b" "))
                    elif not line and data:
                        event = _decode(b"\n".join(data))
                        data = []
                        if event is not None:
                            batch.append(event)
                if batch:
                    yield batch


def _decode(payload: bytes) -> Event | None:
    try:
        value = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        log.warning("undecodable OpenCode event dropped")
        return None
    return value if isinstance(value, dict) else None


class EventStream:
    """Keeps one OpenCode event stream open until cancelled.

    ``on_connected`` runs when a connection is up (OpenCode's ``server.connected``), before
    the events that follow are handled: the actor reconciles there. ``on_events`` gets
    every other event, in order, in the batches they arrived in. ``on_reconnect`` is told
    about each retry (metrics, liveness checks); when it returns False the stream gives up.
    """

    def __init__(
        self,
        client: OpenCodeClient,
        *,
        on_events: Callable[[list[Event]], Awaitable[None]],
        on_connected: Callable[[], Awaitable[None]],
        on_reconnect: Callable[[int, str], Awaitable[bool]],
        heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
        backoff: Backoff | None = None,
    ) -> None:
        self.client = client
        self.on_events = on_events
        self.on_connected = on_connected
        self.on_reconnect = on_reconnect
        self.heartbeat_timeout = heartbeat_timeout
        self.backoff = backoff or Backoff()
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Read, reconnecting with backoff, until cancelled or ``on_reconnect`` says stop."""
        failures = 0
        while True:
            reason = "closed"
            try:
                async for batch in self.client.event_batches(
                    heartbeat_timeout=self.heartbeat_timeout
                ):
                    pending: list[Event] = []
                    for event in batch:
                        if event.get("type") != "server.connected":
                            pending.append(event)
                            continue
                        if pending:
                            await self.on_events(pending)
                            pending = []
                        await self.on_connected()
                        self.connected.set()
                        self.backoff.reset()
                        failures = 0
                    if pending:
                        await self.on_events(pending)
            except (aiohttp.ClientError, OpenCodeError, StreamStalled, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            self.connected.clear()
            failures += 1
            if not await self.on_reconnect(failures, reason):
                return
            await asyncio.sleep(self.backoff.next())
