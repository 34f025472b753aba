"""The session WebSocket: ``GET /api/sessions/{id}/ws?after_seq=N&token=...``.

Auth: a WebSocket token (``?token=``), an API key or a service token (``Authorization``), or
the browser cookie. Another org's session is refused before the handshake completes.

Delivery: the socket follows the session's event log in JetStream with an ordered consumer
filtered on the session's subject. With a cursor the log still holds, it resumes right
after it (replay, then live, no gap); without one, or with one the log no longer holds,
the client first gets ``init`` (the transcript from Postgres and its cursor) and then every
event after that cursor. Events with ``seq`` at or below the last one sent are dropped, so
a client sees each event once and in order.

A slow client has a bounded send queue; when it fills, the socket is closed with 4008 and
the client reconnects with its cursor. Behind Ray Serve's proxy the queue never fills (the
proxy buffers every frame without backpressure), so clients may also send ``ack{seq}``: a
client that acks is closed with 4008 once it is more than :data:`ACK_WINDOW` events behind.
Neither the session nor other clients ever wait for a slow client. Client requests are
passed to the session actor by name.

Git: ``get_git_status`` and the mutations (``git_create_branch``, ``git_commit``,
``git_push``, ``git_create_pr``) run one at a time per socket, in order, through the
actor (:mod:`actors.session.git`); the answer (``git_status`` or ``git_result``, seq 0)
goes to the asking socket only, like the gateway's replies: it is not an event of the
session's log and other clients are not told. Only the session's creator (or anyone, for a
session without one) may run mutations; others get ``git_result`` with success false.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict, deque
from typing import Any

import msgspec
from fastapi import APIRouter, WebSocket
from nats.aio.msg import Msg
from ray.actor import ActorHandle
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from actors import session_client
from actors.session_client import (
    GitRequest,
    SessionExiting,
    SessionGone,
    SessionStopped,
    action_of,
    cursor_is_retained,
    subscribe_events,
)
from api.body import nul_field
from api.deps import require_ws_user
from api.errors import ApiError
from api.state import AppState
from core.metrics import (
    SESSION_EVENTS_RELAYED,
    SESSION_REPLAYS,
    SESSION_RESYNCS,
    SESSION_SLOW_CONSUMERS,
    SESSION_WS_CLIENTS,
)
from schemas.git import GitResult, GitState
from schemas.session_ws import (
    Ack,
    Cancel,
    ClientAck,
    ClientMessage,
    Error,
    GetGitStatus,
    GetMessages,
    GetStatus,
    GitCommitRequest,
    GitCreateBranch,
    GitCreatePr,
    GitPush,
    GitResultEvent,
    GitStatusEvent,
    Ping,
    Pong,
    Prompt,
    SaveSnapshot,
    Status,
    with_seq,
)
from schemas.sessions import SessionRecord, client_status
from store import sessions as session_store

log = logging.getLogger(__name__)
router = APIRouter(tags=["sessions"])

SEND_QUEUE_LIMIT = 4096
"""Frames a socket may have waiting; past that the client is too slow (close 4008)."""
ACK_WINDOW = 4096
"""Events a client that sends ``ack`` may be behind before it is too slow (close 4008)."""
HEARTBEAT_SECONDS = 10.0
"""How often the socket tells the actor it is still connected."""
APPLIED_IDS_PER_REPLICA = 10_000
"""Client ids of applied non-prompt requests a replica remembers (prompts are deduplicated
durably by their message id instead)."""
CLOSE_SLOW = 4008
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_BAD_REQUEST = 4400
_decoder = msgspec.json.Decoder(ClientMessage)
_encoder = msgspec.json.Encoder()
_NOT_BUILT = {"run_auto_start": "service auto-start"}
_GIT_REQUESTS = (GetGitStatus, GitCreateBranch, GitCommitRequest, GitPush, GitCreatePr)


class SlowConsumer(Exception):
    """The client's send queue overflowed."""


_applied: OrderedDict[tuple[str, str], None] = OrderedDict()
"""(session id, client id) of non-prompt requests this replica applied: a resend after a
reconnect is acknowledged, not applied again (a cancel or a commit must not run twice)."""
_draining: set[asyncio.Task[None]] = set()
"""Prompt lanes of closed sockets, still delivering the prompts their clients sent."""


def _first_application(session_id: str, client_id: str) -> bool:
    key = (session_id, client_id)
    if key in _applied:
        _applied.move_to_end(key)
        return False
    _applied[key] = None
    if len(_applied) > APPLIED_IDS_PER_REPLICA:
        _applied.popitem(last=False)
    return True


class SessionSocket:
    """One client connection to one session."""

    def __init__(
        self,
        websocket: WebSocket,
        state: AppState,
        record: SessionRecord,
        user_id: uuid.UUID | None,
    ) -> None:
        self.ws = websocket
        self.state = state
        self.record = record
        self.session_id = str(record.id)
        self.user_id = user_id
        self.conn_id = uuid.uuid4().hex
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=SEND_QUEUE_LIMIT)
        self.last_seq = 0
        self.sub: Any = None
        self.actor: ActorHandle[Any] | None = None
        self.slow = asyncio.Event()
        self.acked: int | None = None
        self.unacked: deque[int] = deque()
        self._prompts: asyncio.Queue[tuple[Prompt, str]] = asyncio.Queue()
        self._prompt_lane_task: asyncio.Task[None] | None = None
        self.closed = False
        self._delivering = False
        self._git: asyncio.Queue[GetGitStatus | GitRequest] = asyncio.Queue()
        self._tasks: list[asyncio.Task[Any]] = []

    # -- sending ------------------------------------------------------------------------------

    def _enqueue(self, frame: str) -> None:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.slow.set()
            raise SlowConsumer() from None

    def reply(self, message: Any) -> None:
        """Send a socket-only message (seq 0)."""
        with contextlib.suppress(SlowConsumer):
            self._enqueue(_encoder.encode(message).decode())

    async def _writer(self) -> None:
        while True:
            frame = await self.queue.get()
            await self.ws.send_text(frame)

    async def _on_event(self, msg: Msg) -> None:
        seq = int(msg.metadata.sequence.stream)
        if seq <= self.last_seq or self.slow.is_set():
            return
        self.last_seq = seq
        try:
            self._enqueue(with_seq(msg.data, seq).decode())
        except SlowConsumer:
            return
        SESSION_EVENTS_RELAYED.inc()
        if self.acked is not None:
            # Behind Ray Serve's proxy a send never blocks (it buffers without limit), so
            # the send queue cannot tell a slow reader; the client's acks can.
            self.unacked.append(seq)
            if len(self.unacked) > ACK_WINDOW:
                self.slow.set()

    def ack(self, seq: int) -> None:
        """The client applied every event up to ``seq``."""
        self.acked = max(self.acked or 0, seq)
        while self.unacked and self.unacked[0] <= seq:
            self.unacked.popleft()

    # -- the event stream -------------------------------------------------------------------

    async def follow(self, after_seq: int | None) -> None:
        """Start (or restart) delivery: replay from the cursor, or ``init`` then live."""
        if self.sub is not None:
            await self.sub.unsubscribe()
            self.sub = None
        state = self.state
        if after_seq is not None and await cursor_is_retained(
            state.js, state.subjects, self.session_id, after_seq
        ):
            SESSION_REPLAYS.inc()
            self.last_seq = after_seq
        else:
            reason = "no_cursor" if after_seq is None else "stale_cursor"
            SESSION_RESYNCS.labels(reason).inc()
            record = await session_store.get_session(state.pool, self.record.id) or self.record
            init = await session_client.build_init(state.pool, state.js, state.subjects, record)
            self.last_seq = init.seq
            self.reply(init)
        self.sub = await subscribe_events(
            state.js, state.subjects, self.session_id, self.last_seq + 1, self._on_event
        )

    # -- the actor ------------------------------------------------------------------------------

    async def attach(self) -> None:
        """Register with the session actor (which starts the runtime if needed)."""
        if self.record.status == "stopped":
            self.reply(Status(status="stopped"))
            return
        # call_live: a paused session's actor exits; connecting creates the next one,
        # which resumes the session from its snapshot.
        self.actor, _ = await session_client.call_live(
            self.session_id, self.state.settings, "client_connected", self.conn_id
        )
        self._tasks.append(asyncio.create_task(self._heartbeat()))
        self._prompt_lane_task = asyncio.create_task(self._prompt_lane())
        self._tasks.append(asyncio.create_task(self._git_lane()))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            if self.actor is not None:
                try:
                    await session_client.call_actor(self.actor, "client_heartbeat", self.conn_id)
                except RayError:
                    log.info("session %s: heartbeat to the actor failed", self.session_id)

    async def _call_reviving(self, method: str, *args: Any) -> Any:
        """Call the actor; if it exited (the session was paused), register with the next
        one (which resumes the session) and call that."""
        assert self.actor is not None
        try:
            return await session_client.call_actor(self.actor, method, *args)
        except (ActorDiedError, ActorUnavailableError, SessionExiting):
            session_client.forget_actor(self.session_id)
        self.actor, _ = await session_client.call_live(
            self.session_id, self.state.settings, "client_connected", self.conn_id
        )
        return await session_client.call_actor(self.actor, method, *args)

    async def _prompt_lane(self) -> None:
        # Prompts go one at a time, in order; other requests don't wait behind them. After
        # the socket closes the lane still delivers what its client sent, then ends.
        while not (self.closed and self._prompts.empty()):
            prompt, message_id = await self._prompts.get()
            if self.actor is None:
                continue
            self._delivering = True
            try:
                await self._call_reviving(
                    "prompt",
                    message_id,
                    prompt.content,
                    prompt.images,
                    str(self.user_id) if self.user_id else None,
                    "web",
                )
            except SessionStopped:
                self.reply(
                    Error(
                        message="the session is stopped",
                        code="session_stopped",
                        client_id=prompt.client_id,
                    )
                )
            except (SessionGone, RayError) as exc:
                log.warning("session %s: prompt failed: %s", self.session_id, type(exc).__name__)
                self.reply(
                    Error(
                        message="sending the prompt failed",
                        code="prompt_failed",
                        client_id=prompt.client_id,
                    )
                )
            else:
                if prompt.client_id is not None:
                    self.reply(ClientAck(client_id=prompt.client_id, message_id=message_id))
            finally:
                self._delivering = False

    def _drain_prompts(self) -> None:
        """The socket closed: let the prompt lane deliver what is queued, then end."""
        self.closed = True
        lane = self._prompt_lane_task
        if lane is None or lane.done():
            return
        if self._prompts.empty() and not self._delivering:
            lane.cancel()  # idle, waiting for a prompt that can no longer come
            return
        _draining.add(lane)
        lane.add_done_callback(_draining.discard)

    async def _git_lane(self) -> None:
        # One at a time, in order: a push must not overtake the commit sent before it.
        while True:
            request = await self._git.get()
            if self.actor is None:
                continue
            action = "status" if isinstance(request, GetGitStatus) else action_of(request)
            try:
                if isinstance(request, GetGitStatus):
                    out = await session_client.call_actor(
                        self.actor, "git_status", request.workspace_path
                    )
                else:
                    user = str(self.user_id) if self.user_id else None
                    out = await session_client.call_actor(self.actor, "git_run", user, request)
            except RayError as exc:
                log.warning("session %s: git %s failed: %s", self.session_id, action, exc)
                out = GitResult(
                    action=action,
                    success=False,
                    code="UNKNOWN_ERROR",
                    message="the session is unavailable, retry",
                )
            if isinstance(out, GitState):
                self.reply(GitStatusEvent(state=out))
            else:
                self.reply(GitResultEvent.of(out))

    async def handle(self, message: Any) -> None:
        """One client request; with a ``client_id``, acknowledged once applied."""
        client_id: str | None = message.client_id
        if isinstance(message, Prompt):
            if self.actor is None:
                self.reply(
                    Error(
                        message="the session is stopped",
                        code="session_stopped",
                        client_id=client_id,
                    )
                )
            else:
                # A resent client id maps to the same message id, which the actor sends once.
                message_id = (
                    session_client.message_id_for_key(self.session_id, "client:" + client_id)
                    if client_id is not None
                    else session_client.new_message_id()
                )
                self._prompts.put_nowait((message, message_id))
            return
        if client_id is not None and not _first_application(self.session_id, client_id):
            self.reply(ClientAck(client_id=client_id, duplicate=True))
            return
        await self._apply(message)
        if client_id is not None:
            self.reply(ClientAck(client_id=client_id))

    async def _apply(self, message: Any) -> None:
        if isinstance(message, Ping):
            self.reply(Pong())
        elif isinstance(message, Ack):
            self.ack(message.seq)
        elif isinstance(message, GetMessages):
            await self.follow(None)
        elif isinstance(message, GetStatus):
            await self._status()
        elif isinstance(message, SaveSnapshot):
            if self.actor is not None:
                # The outcome reaches every client as snapshot_result.
                self._tasks.append(
                    asyncio.create_task(session_client.call_actor(self.actor, "save_snapshot"))
                )
        elif isinstance(message, Cancel):
            if self.actor is not None:
                await session_client.call_actor(self.actor, "cancel")
        elif isinstance(message, _GIT_REQUESTS):
            if self.actor is None:
                action = "status" if isinstance(message, GetGitStatus) else action_of(message)
                self.reply(
                    GitResultEvent(
                        action=action,
                        success=False,
                        code="UNKNOWN_ERROR",
                        message="the session is stopped",
                    )
                )
            else:
                self._git.put_nowait(message)
        else:
            tag = str(type(message).__struct_config__.tag)
            feature = _NOT_BUILT.get(tag, tag)
            self.reply(Error(message=f"{feature} is not available yet", code="not_implemented"))

    async def _status(self) -> None:
        if self.actor is None:
            record = await session_store.get_session(self.state.pool, self.record.id)
            self.reply(Status(status=client_status(record.status if record else "stopped")))
            return
        info = await session_client.call_actor(self.actor, "get_status")
        self.reply(Status(status=info.status))

    async def _reader(self) -> None:
        while True:
            text = await self.ws.receive_text()
            try:
                message = _decoder.decode(text)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                self.reply(Error(message=f"invalid message: {exc}", code="invalid_message"))
                continue
            if (field := nul_field(msgspec.to_builtins(message))) is not None:
                # Postgres text cannot hold NUL: refuse here, like every HTTP body.
                self.reply(
                    Error(
                        message=f"invalid message: {field or 'a text'} contains a NUL character",
                        code="invalid_message",
                        client_id=message.client_id,
                    )
                )
                continue
            try:
                await self.handle(message)
            except RayError:
                self.reply(Error(message="the session is unavailable, retry", code="unavailable"))

    async def run(self, after_seq: int | None) -> None:
        """Serve the socket until the client leaves or is too slow."""
        writer = asyncio.create_task(self._writer())
        reader: asyncio.Task[None] | None = None
        slow = asyncio.create_task(self.slow.wait())
        try:
            await self.follow(after_seq)
            await self.attach()
            reader = asyncio.create_task(self._reader())
            done, _ = await asyncio.wait(
                {reader, writer, slow}, return_when=asyncio.FIRST_COMPLETED
            )
            if slow in done:
                SESSION_SLOW_CONSUMERS.inc()
                writer.cancel()
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(5):
                        await self.ws.close(CLOSE_SLOW, "slow consumer, reconnect with after_seq")
            for task in done:
                if task is not slow and not task.cancelled() and task.exception() is not None:
                    exc = task.exception()
                    if not isinstance(exc, (WebSocketDisconnect, RuntimeError, OSError)):
                        raise exc  # type: ignore[misc]
        finally:
            for task in [writer, slow, *([reader] if reader else []), *self._tasks]:
                task.cancel()
            self._drain_prompts()
            if self.sub is not None:
                with contextlib.suppress(Exception):
                    await self.sub.unsubscribe()
            if self.actor is not None:
                with contextlib.suppress(RayError):
                    await session_client.call_actor(self.actor, "client_disconnected", self.conn_id)


def _after_seq(websocket: WebSocket) -> int | None:
    raw = websocket.query_params.get("after_seq")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise ValueError("after_seq must be a non-negative integer")
    value = int(raw)
    return value or None


@router.websocket("/api/sessions/{session_id}/ws")
async def session_socket(websocket: WebSocket, session_id: str) -> None:
    """The session's live stream (see the module docstring)."""
    state: AppState = websocket.app.state.warren
    try:
        caller = await require_ws_user(websocket)
        after_seq = _after_seq(websocket)
        sid = uuid.UUID(session_id)
    except ApiError as exc:
        await websocket.close(CLOSE_UNAUTHORIZED if exc.status == 401 else CLOSE_NOT_FOUND)
        return
    except ValueError:
        await websocket.close(CLOSE_BAD_REQUEST)
        return
    assert caller.org_id is not None
    record = await session_store.get_session(state.pool, sid, org_id=caller.org_id)
    if record is None:
        await websocket.close(CLOSE_NOT_FOUND)
        return
    await websocket.accept()
    SESSION_WS_CLIENTS.inc()
    try:
        await SessionSocket(websocket, state, record, caller.user_id).run(after_seq)
    except WebSocketDisconnect:
        pass
    finally:
        SESSION_WS_CLIENTS.dec()
        if websocket.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close()
