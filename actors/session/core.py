"""The session actor's logic, free of Ray: start-up recovery, the runtime, events, prompts.

Everything here is rebuilt on start from what outlives the process:

- the ``sessions`` row (status, sandbox id, OpenCode session id) from Postgres;
- the in-progress agent messages, by folding the event log (JetStream) after the
  transcript cursor (store/messages.py); messages the log shows complete but Postgres
  does not are stored then;
- the sandbox (``ensure_sandbox(current_sandbox_id)``) and OpenCode's event stream, whose
  reconnect replays OpenCode's stored messages so clients get whatever they missed.

Ordering: every client event goes through :meth:`SessionCore.emit` (or the event handler)
under one lock, so events are processed, stored in JetStream and persisted in one order.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from nats.aio.client import Client as NATS

from actors.opencode_client import Event, OpenCodeError
from actors.session.errors import SessionGone, SessionStopped
from actors.session.events import EventProcessor, coalesce_tokens, snapshot_events
from actors.session.log import EventLog, EventLogFenced, read_events
from actors.session.runtime import (
    ProviderFactory,
    Runtime,
    default_provider,
    default_title,
    sandbox_options,
)
from actors.session.state import SessionState
from actors.transcript import Transcript
from core import bus
from core.db import create_pool
from core.metrics import actor_metrics, lifecycle_metrics
from core.settings import Settings
from schemas.session_ws import (
    MessageCancelled,
    MessageComplete,
    MessageEvent,
    ServerMessage,
    Status,
    TitleUpdate,
    ToolStart,
)
from schemas.sessions import (
    ClientInfo,
    ClientStatus,
    LifecycleKind,
    SessionLifecycleEvent,
    SessionRecord,
    client_status,
)
from schemas.transcript import ImagePart, Message, MessageSource, Part, TextPart
from store import configurations as configurations_store
from store import messages as message_store
from store import sessions as session_store

log = logging.getLogger(__name__)

CLIENT_TTL_SECONDS = 45.0
"""A client not heard from (connect or heartbeat) for this long no longer counts."""
SSE_FAILURES_BEFORE_LIVENESS_CHECK = 3
ACTOR_POOL_MAX_SIZE = 2
"""Postgres connections one session actor may hold at once."""
ACTOR_POOL_IDLE_SECONDS = 5.0
"""A session actor's connection idle this long is closed."""
_SOURCE: dict[str, MessageSource] = {
    "web": "web",
    "slack": "slack",
    "automation": "automation",
    "cli": "cli",
}


def initial_prompt_id(session_id: uuid.UUID) -> str:
    """The fixed message id of a session's initial prompt (sending it twice is a no-op)."""
    return str(uuid.uuid5(session_id, "initial-prompt"))


class SessionCore:
    """One live session (see the module docstring)."""

    def __init__(
        self,
        session_id: str,
        settings: Settings,
        provider_factory: ProviderFactory | None = None,
    ) -> None:
        self.session_id = session_id
        self.sid = uuid.UUID(session_id)
        self.settings = settings
        self._provider_factory = provider_factory or default_provider
        self.pool: asyncpg.Pool | None = None
        self.nats: NATS | None = None
        self.log: EventLog | None = None
        self.epoch = 0
        """This incarnation's number (Postgres ``actor_epoch``): the event log's fence."""
        self.record: SessionRecord | None = None
        self.runtime: Runtime | None = None
        self.transcript = Transcript()
        self.done: set[str] = set()
        self.processor: EventProcessor | None = None
        self.clients: dict[str, float] = {}
        self.state = SessionState(session_id, self._lifecycle)
        """The session's phase; every change of it goes through here (actors/session/state.py)."""
        self.prompt_gate = asyncio.Lock()
        """Held while a prompt is delivered, and by a migration for its whole length: prompts
        sent meanwhile wait (in order) and go to the new sandbox."""
        self._lock = asyncio.Lock()
        self._start_task: asyncio.Task[None] | None = None
        self._ready_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._last_activity = time.monotonic()

    # -- start-up -----------------------------------------------------------------------

    def schedule_start(self) -> None:
        """Begin recovery now (the actor calls this from ``__init__``)."""
        if self._start_task is None:
            self._start_task = asyncio.get_event_loop().create_task(self._start())

    async def started(self) -> None:
        """Wait until start-up recovery finished (starting it if needed)."""
        self.schedule_start()
        assert self._start_task is not None
        if self._start_task.done() and self._start_task.exception() is not None:
            self._start_task = asyncio.get_event_loop().create_task(self._start())
        await asyncio.shield(self._start_task)

    async def _start(self) -> None:
        if self.pool is None:
            # One pool per live session: tiny, and idle connections close within seconds,
            # so hundreds of idle actors hold no Postgres connection (max_connections).
            self.pool = await create_pool(
                self.settings.database_url,
                min_size=0,
                max_size=ACTOR_POOL_MAX_SIZE,
                max_inactive_connection_lifetime=ACTOR_POOL_IDLE_SECONDS,
            )
        if self.nats is None:
            self.nats = await bus.connect(
                self.settings.nats_url,
                name=f"warren-session-{self.session_id}",
                credentials=self.settings.nats_credentials_session,
            )
        record = await session_store.get_session(self.pool, self.sid)
        epoch = await session_store.claim_actor_epoch(self.pool, self.sid)
        if record is None or epoch is None:
            raise SessionGone(self.session_id)
        # Claimed before the log's position is read: an older incarnation writing after
        # that read is refused (see actors/session/log.py).
        self.epoch = epoch
        self.log = EventLog(
            self.nats,
            bus.Subjects(self.settings.nats_prefix),
            self.session_id,
            stream_max_bytes=self.settings.nats_stream_max_bytes,
            is_current=self._is_current_incarnation,
        )
        await self.log.open()
        self.record = record
        self.runtime = Runtime(self._provider_factory(self.settings))
        await self._rebuild()
        actor_metrics().actor_starts.inc()
        await self.state.to("stopped" if record.status == "stopped" else "dormant")
        if record.status in ("running", "starting") and record.sandbox_id:
            # A restart of a live session: get the sandbox and its event stream back.
            self._spawn(self.ensure_ready_in_background())

    async def _is_current_incarnation(self) -> bool:
        assert self.pool is not None
        return await session_store.actor_epoch(self.pool, self.sid) == self.epoch

    async def _rebuild(self) -> None:
        """In-progress messages from the event log; store completions Postgres missed."""
        assert self.pool is not None and self.log is not None
        cursor = await message_store.transcript_cursor(self.pool, self.sid, self.log.last_seq)
        transcript = Transcript()
        completed_at: dict[str, int] = {}
        async for seq, event in read_events(
            self.log.js, self.log.subjects, self.session_id, cursor
        ):
            touched = transcript.apply(event)
            if touched is not None and touched not in completed_at:
                if transcript.messages[touched].is_complete:
                    completed_at[touched] = seq
        stored = await message_store.completed_message_ids(self.pool, self.sid)
        for message_id, seq in completed_at.items():
            if message_id not in stored:
                message = transcript.messages[message_id].to_message()
                await message_store.complete_message(self.pool, self.sid, message, seq)
            transcript.remove(message_id)
        for message_id in await message_store.incomplete_message_ids(self.pool, self.sid):
            if message_id not in transcript.messages and message_id not in completed_at:
                # Recorded, but its first event never made it to the log.
                await message_store.delete_message(self.pool, self.sid, message_id)
        self.transcript = transcript
        self.done = stored | set(completed_at)

    # -- events ---------------------------------------------------------------------------

    async def emit(self, events: Sequence[ServerMessage]) -> list[int]:
        """Publish client events in order (and persist the messages they complete)."""
        async with self._lock:
            return await self._publish(events)

    async def _publish(self, events: Sequence[ServerMessage]) -> list[int]:
        assert self.log is not None and self.pool is not None
        seqs: list[int] = []
        for event in events:
            if isinstance(event, MessageEvent):
                await self._db(
                    message_store.begin_message(
                        self.pool, self.sid, event.message, self.log.last_seq
                    )
                )
            try:
                seq = await self.log.publish(event)
            except EventLogFenced:
                # A newer incarnation owns the session: stop following the agent (its
                # events are the new one's to publish); the sandbox is not ours to touch.
                if self.runtime is not None:
                    self._spawn(self.runtime.stop_stream())
                raise
            seqs.append(seq)
            if isinstance(event, MessageEvent) and event.message.is_complete:
                await self._db(
                    message_store.set_completed_seq(self.pool, self.sid, event.message.id, seq)
                )
            elif isinstance(event, (MessageComplete, MessageCancelled)) and event.message_id:
                await self._store_completed(event.message_id, seq)
        return seqs

    async def _store_completed(self, message_id: str, seq: int) -> None:
        assert self.pool is not None
        state = self.transcript.messages.get(message_id)
        if state is None:
            return
        await self._db(message_store.complete_message(self.pool, self.sid, state.to_message(), seq))
        self.transcript.remove(message_id)
        self.done.add(message_id)

    async def _db(self, operation: Coroutine[Any, Any, Any]) -> Any:
        """Run a persistence step; on failure log it and go on (the event log rebuilds it)."""
        try:
            return await operation
        except (asyncpg.PostgresError, OSError, TimeoutError):
            log.exception("session %s: persisting transcript failed", self.session_id)
            return None

    async def _close_open_messages(self) -> None:
        """Cancel every in-progress message (call with the lock held)."""
        stale = [
            MessageCancelled(message_id=m.id)
            for m in self.transcript.messages.values()
            if not m.is_complete
        ]
        for event in stale:
            self.transcript.apply(event)
        await self._publish(stale)

    async def _on_agent_events(self, events: list[Event]) -> None:
        if self.processor is None:
            return
        async with self._lock:
            out = coalesce_tokens(self.processor.handle_all(events))
            if out:
                await self._publish(out)
            permissions, self.processor.permission_requests = (
                self.processor.permission_requests,
                [],
            )
        for request_id in permissions:
            self._spawn(self._allow_permission(request_id))
        if out:
            self.touch()

    async def _allow_permission(self, request_id: str) -> None:
        # Sandboxes run with every permission allowed (sandboxes/opencode.py); a request
        # that still comes up would block the agent with nobody to answer it.
        runtime = self.runtime
        if runtime is not None and runtime.client is not None:
            try:
                await runtime.client.reply_permission(request_id, "once")
            except OpenCodeError:
                log.warning("session %s: permission reply failed", self.session_id)

    async def _reconcile(self) -> None:
        """The event stream (re)connected: replay OpenCode's stored messages through the
        processor, so clients get whatever happened while nobody was listening."""
        runtime = self.runtime
        if runtime is None or runtime.client is None or runtime.agent_session_id is None:
            return
        agent_id = runtime.agent_session_id
        stored = await runtime.client.messages(agent_id)
        statuses = await runtime.client.statuses()
        status = statuses.get(agent_id) or {}
        idle = status.get("type", "idle") == "idle"
        if self.processor is None:
            return
        async with self._lock:
            out = self.processor.handle_all(snapshot_events(agent_id, stored, idle=idle))
            if out:
                await self._publish(out)

    async def _on_stream_retry(self, failures: int, reason: str) -> bool:
        actor_metrics().sse_reconnects.inc()
        log.info("session %s: OpenCode event stream dropped (%s)", self.session_id, reason)
        if failures >= SSE_FAILURES_BEFORE_LIVENESS_CHECK and self.runtime is not None:
            if not await self.runtime.sandbox_alive():
                self._spawn(self._sandbox_lost())
                return False
        return True

    async def _sandbox_lost(self) -> None:
        assert self.pool is not None
        if self.state.phase != "running":
            return  # a migration, pause or stop already deals with this sandbox
        await self.state.to("failed")
        runtime = self.runtime
        sandbox_id = runtime.handle.sandbox_id if runtime and runtime.handle else None
        if runtime is not None:
            await runtime.close()
        if sandbox_id:
            await session_store.clear_sandbox(self.pool, self.sid, sandbox_id)
        await session_store.mark_failed(self.pool, self.sid)
        await self.emit([Status(status="error", message="the sandbox stopped responding")])
        if self.connected_clients():
            self._spawn(self.ensure_ready_in_background())

    # -- runtime --------------------------------------------------------------------------

    async def ensure_ready(self) -> None:
        """Single flight: make the sandbox, OpenCode session and event stream ready."""
        await self.started()
        assert self.runtime is not None
        state = self.state
        # The runtime turns ready inside _boot, before clients are told `running`: a caller
        # arriving then waits for the boot to finish, so nothing overtakes that status.
        if self.runtime.ready and state.phase in ("running", "migrating"):
            return
        if state.phase != "booting":
            state.check_boot()
            await state.to("booting")
            self._ready_task = asyncio.get_event_loop().create_task(self._boot())
        task = self._ready_task
        assert task is not None
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # this caller was cancelled, not the boot
            # A pause or terminate cancelled the boot: say which, not "cancelled" (which
            # reaches an HTTP caller as a 500).
            state.check_boot()
            raise

    async def ensure_ready_in_background(self) -> None:
        """``ensure_ready`` whose failure is only logged (clients got an error status)."""
        try:
            await self.ensure_ready()
        except (SessionStopped, SessionGone):
            pass
        except Exception:
            # Reported to clients as a status by _boot; a later connect or prompt retries.
            log.warning("session %s: runtime start failed", self.session_id, exc_info=True)

    async def _boot(self) -> None:
        assert self.pool is not None and self.runtime is not None and self.log is not None
        record = await session_store.get_session(self.pool, self.sid)
        if record is None or record.status == "stopped":
            await self.state.to("stopped")
            if record is None:
                raise SessionGone(self.session_id)
            raise SessionStopped(self.session_id)
        was_paused = record.status == "paused"
        if record.status != "running":
            await session_store.mark_starting(self.pool, self.sid)
            await self.emit([Status(status="resuming")])
        configuration = None
        if record.configuration_id is not None:
            configuration = await configurations_store.get_configuration(
                self.pool, record.configuration_id, record.org_id
            )
        runtime = self.runtime
        try:
            handle = await runtime.ensure_sandbox(
                sandbox_options(record, configuration, self.settings)
            )
            await session_store.mark_running(
                self.pool,
                self.sid,
                sandbox_id=handle.sandbox_id,
                provider=handle.provider,
                opencode_url=handle.opencode_url,
                sandbox_agent_url=handle.sandbox_agent_url,
                preview_url=handle.preview_url,
                expires_at=datetime.fromtimestamp(handle.expires_at, UTC),
            )
            agent_id, created = await runtime.ensure_agent_session(
                record.coding_agent_session_id, default_title(record)
            )
            if created:
                await session_store.set_agent_session(self.pool, self.sid, agent_id)
            await self._adopt_agent_session(agent_id, created, record)
            await runtime.start_stream(
                on_events=self._on_agent_events,
                on_connected=self._reconcile,
                on_reconnect=self._on_stream_retry,
            )
        except Exception as exc:
            if self.state.phase == "booting":
                await self.state.to("failed")
            await runtime.close()
            await session_store.mark_failed(self.pool, self.sid)
            detail = str(exc) if isinstance(exc, OpenCodeError) else type(exc).__name__
            await self.emit(
                [Status(status="error", message=f"starting the sandbox failed: {detail}")]
            )
            raise
        self.record = await session_store.get_session(self.pool, self.sid) or record
        await self.emit([Status(status="running")])
        kind = self.state.boot_event(was_paused=was_paused)
        await self.state.to("running", kind, sandbox_id=handle.sandbox_id)
        if was_paused:
            lifecycle_metrics().resumes.inc()
        self._spawn(self._send_initial_prompt())

    async def _adopt_agent_session(
        self, agent_id: str, created: bool, record: SessionRecord
    ) -> None:
        async with self._lock:
            if created:
                # Messages of a lost OpenCode session can never finish: close them.
                await self._close_open_messages()
            if self.processor is None or self.processor.agent_session_id != agent_id:
                self.processor = EventProcessor(
                    agent_id, transcript=self.transcript, done=self.done, title=record.title or None
                )

    async def _send_initial_prompt(self) -> None:
        assert self.pool is not None and self.record is not None
        text = await session_store.claim_initial_prompt(self.pool, self.sid)
        if text is None:
            return
        record = self.record
        try:
            await self.prompt(
                initial_prompt_id(self.sid),
                text,
                sender_id=str(record.created_by) if record.created_by else None,
                source=_SOURCE.get(record.client_type, "system"),
            )
        except Exception:
            log.exception("session %s: sending the initial prompt failed", self.session_id)
            await session_store.release_initial_prompt(self.pool, self.sid)

    # -- requests -------------------------------------------------------------------------

    async def prompt(
        self,
        message_id: str,
        content: str,
        images: tuple[str, ...] = (),
        *,
        sender_id: str | None = None,
        source: MessageSource = "web",
    ) -> str:
        """Show the prompt to every client, then send it to the agent (once per id)."""
        await self.started()
        assert self.pool is not None
        state = await message_store.user_message_state(self.pool, self.sid, message_id)
        if state is not None and state.delivered:
            return message_id
        record = await session_store.get_session(self.pool, self.sid)
        if record is None:
            raise SessionGone(self.session_id)
        if record.status == "stopped":
            raise SessionStopped(self.session_id)
        if state is None or state.completed_seq is None:
            parts: list[Part] = [TextPart(id=f"{message_id}-text", text=content)]
            parts += [ImagePart(id=f"{message_id}-image{i}", url=u) for i, u in enumerate(images)]
            message = Message(
                id=message_id,
                role="user",
                content=content,
                is_complete=True,
                created_at=datetime.now(UTC),
                sender_id=sender_id,
                source=source,
                parts=tuple(parts),
            )
            await self.emit([MessageEvent(message=message)])
        # Clients see the prompt at once; during a migration it is delivered after it.
        async with self.prompt_gate:
            state = await message_store.user_message_state(self.pool, self.sid, message_id)
            if state is not None and state.delivered:
                return message_id
            try:
                await self.ensure_ready()
                runtime = self.runtime
                assert runtime is not None and runtime.client is not None
                assert runtime.agent_session_id is not None
                await runtime.client.prompt(runtime.agent_session_id, content, images)
            except (Exception, asyncio.CancelledError):
                # A stop or pause closed the runtime under this prompt: say so, rather
                # than how the closed connection failed.
                self.state.check_boot()
                raise
            await message_store.mark_delivered(self.pool, self.sid, message_id)
        self.touch()
        return message_id

    async def cancel(self) -> bool:
        """Abort the agent's current work; False if nothing is running."""
        await self.started()
        runtime = self.runtime
        if runtime is None or not runtime.ready or runtime.client is None:
            return False
        assert runtime.agent_session_id is not None
        await runtime.client.abort(runtime.agent_session_id)
        return True

    async def rename(self, title: str) -> None:
        """The title changed (PATCH): tell clients."""
        await self.started()
        async with self._lock:
            if self.processor is not None:
                self.processor.title = title
            await self._publish([TitleUpdate(title=title)])

    async def announce_tool(self, tool_call_id: str, tool: str, args: dict[str, Any]) -> None:
        """Show clients a tool call with ``args`` unless its own event already did."""
        async with self._lock:
            known = self.transcript.tool(tool_call_id)
            if known is not None and known.args == args:
                return
            message_id = None
            if known is not None:
                message_id = next(
                    (m.id for m in self.transcript.messages.values() if known.id in m.parts), None
                )
            event = ToolStart(
                message_id=message_id,
                part_id=known.id if known is not None else tool_call_id,
                tool_call_id=tool_call_id,
                tool=tool,
                args=args,
            )
            self.transcript.apply(event)
            await self._publish([event])

    def client_connected(self, conn_id: str) -> None:
        """A WebSocket client joined (or heartbeats): it counts for a while."""
        self.clients[conn_id] = time.monotonic()
        self.touch()

    def client_disconnected(self, conn_id: str) -> None:
        """A WebSocket client left."""
        self.clients.pop(conn_id, None)
        self.touch()

    def touch(self) -> None:
        """Something happened in the session: the idle grace period starts over."""
        self._last_activity = time.monotonic()

    def idle_seconds(self) -> float:
        """Seconds since the last activity (:meth:`touch`)."""
        return time.monotonic() - self._last_activity

    def connected_clients(self) -> int:
        """Clients heard from recently."""
        horizon = time.monotonic() - CLIENT_TTL_SECONDS
        for conn_id in [c for c, seen in self.clients.items() if seen < horizon]:
            del self.clients[conn_id]
        return len(self.clients)

    def current_status(self) -> ClientStatus:
        """The status a client would see now."""
        phase = self.state.phase
        if phase == "migrating":
            return "migrating"
        if self.runtime is not None and self.runtime.ready:
            return "running"
        if phase == "booting":
            return "resuming"
        return client_status(self.record.status) if self.record else "creating"

    def info(self) -> ClientInfo:
        """Live state for status replies."""
        return ClientInfo(
            status=self.current_status(),
            runtime_ready=bool(self.runtime and self.runtime.ready),
            clients=self.connected_clients(),
            agent_busy=bool(self.processor and self.processor.busy),
        )

    async def terminate(
        self, reason: str = "manual", *, outcome: str | None = None, summary: str | None = None
    ) -> None:
        """Stop for good: close open messages, destroy the sandbox, mark the row stopped."""
        await self.started()
        assert self.pool is not None and self.runtime is not None
        state = self.state
        if state.phase in ("stopping", "stopped"):
            await state.wait_for("stopped")  # another call is stopping it: same outcome
            return
        # No boot may start (or finish) from now on: it could create a sandbox nobody stops.
        await state.to("stopping")
        await self.cancel_boot()
        async with self._lock:
            await self._close_open_messages()
        sandbox_id = self.runtime.handle.sandbox_id if self.runtime.handle else None
        record = await session_store.get_session(self.pool, self.sid)
        sandbox_id = sandbox_id or (record.sandbox_id if record else None)
        await self.runtime.close()
        if sandbox_id:
            try:
                await self.runtime.provider.terminate(sandbox_id)
            except Exception:
                log.exception("session %s: terminating the sandbox failed", self.session_id)
        changed = await session_store.mark_stopped(
            self.pool, self.sid, reason, outcome=outcome, summary=summary
        )
        self.record = await session_store.get_session(self.pool, self.sid) or self.record
        await self.emit([Status(status="stopped")])
        if changed:
            await state.to("stopped", "stopped", reason=reason, sandbox_id=sandbox_id)
        else:
            await state.to("stopped")

    async def _lifecycle(self, kind: LifecycleKind, **fields: Any) -> None:
        """Publish a lifecycle event for this session on ``sessions.lifecycle`` (only
        :class:`SessionState` calls this, with a transition or a note)."""
        assert self.log is not None and self.record is not None
        record = self.record
        event = SessionLifecycleEvent(
            event=kind,
            session_id=self.session_id,
            org_id=str(record.org_id),
            at=datetime.now(UTC),
            client_type=record.client_type,
            automation_id=str(record.automation_id) if record.automation_id else None,
            **fields,
        )
        await self.log.lifecycle(event)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_event_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def track(self, task: asyncio.Task[Any]) -> None:
        """Keep ``task`` referenced until it ends (and cancel it on :meth:`close`)."""
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def cancel_boot(self) -> None:
        """Cancel the runtime boot in progress, if any, and wait until it ended."""
        task = self._ready_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})  # its outcome doesn't matter, only that it ended

    async def close_open_messages(self) -> None:
        """Cancel every in-progress message (the agent is about to go away)."""
        async with self._lock:
            await self._close_open_messages()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background, keeping a reference until it ends."""
        self._spawn(coro)

    async def close(self) -> None:
        """Release connections (the actor is going away; the sandbox is untouched)."""
        for task in [*self._background, self._ready_task, self._start_task]:
            if task is not None:
                task.cancel()
        if self.runtime is not None:
            await self.runtime.close()
        if self.nats is not None and not self.nats.is_closed:
            await self.nats.close()
        if self.pool is not None:
            await self.pool.close()
