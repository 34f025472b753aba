"""A session's durable event log on JetStream: publishing (actor side) and reading it back.

The session actor is the only writer of ``sessions.<id>.events``. It publishes one event at a
time and waits for the stream's ack, so events are stored in the order they were produced
and the ack's sequence is the event's ``seq``. A publish that fails is retried with the same
``Nats-Msg-Id``, so the stream's duplicate window drops a copy that did arrive.

Fencing: every publish carries ``Nats-Expected-Last-Subject-Sequence`` (the subject's last
sequence as this writer knows it), a header, not an extra round trip. JetStream refuses it
when someone else wrote the subject meanwhile. The writer then asks whether it is still the
live incarnation (:attr:`EventLog.is_current`, the actor's epoch in Postgres): the live one
re-reads the subject's last sequence and publishes; an old one (a zombie Ray replaced) is
fenced for good: it raises :class:`EventLogFenced` now and on every later publish.

Readers (the WebSocket ingress, the actor rebuilding its state after a restart) use
:func:`subscribe_events`: an ordered consumer starting at a given sequence, filtered on the
session's subject, which replays what is stored and then follows live without a gap.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError, NotFoundError

from core.backoff import Backoff
from core.bus import Subjects, declare_streams
from core.metrics import actor_metrics
from schemas.session_ws import (
    Error,
    MessageEvent,
    ServerMessage,
    TextPartComplete,
    ToolEnd,
    ToolStart,
)
from schemas.sessions import SessionLifecycleEvent
from schemas.transcript import ImagePart

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT = 5.0
WRONG_LAST_SEQUENCE = 10071
"""JetStream's error code for a publish whose expected last sequence is not the subject's."""
MAX_EVENT_BYTES = 512 * 1024
"""Largest event payload published (NATS' default max_payload is 1 MiB)."""
TRUNCATED_TEXT = 64 * 1024
_decoder = msgspec.json.Decoder(ServerMessage)


def _cut(text: str, limit: int = TRUNCATED_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + "\n[truncated by Warren]"


def _cut_values(value: Any) -> Any:
    if isinstance(value, str):
        return _cut(value, TRUNCATED_TEXT // 4)
    if isinstance(value, dict):
        return {k: _cut_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut_values(v) for v in value]
    return value


def fit_event(event: ServerMessage) -> bytes:
    """The event's JSON, made to fit :data:`MAX_EVENT_BYTES` (the full content still reaches
    Postgres' transcript): long tool output, arguments and texts are truncated, oversized
    images dropped; what still does not fit becomes an ``error`` event."""
    payload = msgspec.json.encode(event)
    if len(payload) <= MAX_EVENT_BYTES:
        return payload
    smaller: ServerMessage
    if isinstance(event, ToolEnd):
        smaller = msgspec.structs.replace(event, result=_cut(event.result))
    elif isinstance(event, ToolStart):
        smaller = msgspec.structs.replace(event, args=_cut_values(event.args))
    elif isinstance(event, TextPartComplete) and event.text is not None:
        smaller = msgspec.structs.replace(event, text=_cut(event.text))
    elif isinstance(event, MessageEvent):
        message = event.message
        parts = tuple(
            msgspec.structs.replace(p, url="") if isinstance(p, ImagePart) else p
            for p in message.parts
        )
        smaller = msgspec.structs.replace(
            event,
            message=msgspec.structs.replace(message, content=_cut(message.content), parts=parts),
        )
    else:
        smaller = Error(message="an event was too large to relay", code="event_too_large")
    payload = msgspec.json.encode(smaller)
    if len(payload) > MAX_EVENT_BYTES:
        payload = msgspec.json.encode(
            Error(message="an event was too large to relay", code="event_too_large")
        )
    return payload


def events_stream(subjects: Subjects) -> str:
    """The JetStream stream holding every session's events."""
    return subjects.stream("SESSION_EVENTS")


async def stream_last_seq(js: JetStreamContext, subjects: Subjects) -> int:
    """The stream's last sequence: every event published later has a higher one."""
    info = await js.stream_info(events_stream(subjects))
    return int(info.state.last_seq)


async def subject_last_seq(js: JetStreamContext, subjects: Subjects, session_id: str) -> int:
    """The sequence of the session's newest stored event, 0 if it has none."""
    try:
        msg = await js.get_last_msg(events_stream(subjects), subjects.session_events(session_id))
    except NotFoundError:
        return 0
    return int(msg.seq or 0)


async def cursor_is_retained(
    js: JetStreamContext, subjects: Subjects, session_id: str, after_seq: int
) -> bool:
    """True if the event at ``after_seq`` is still stored and belongs to this session.

    Retention drops a session's oldest events first, so if the cursor's own event is still
    there, every event after it is too.
    """
    if after_seq <= 0:
        return False
    try:
        msg = await js.get_msg(events_stream(subjects), seq=after_seq)
    except NotFoundError:
        return False
    return msg.subject == subjects.session_events(session_id)


async def subscribe_events(
    js: JetStreamContext,
    subjects: Subjects,
    session_id: str,
    start_seq: int,
    callback: Callable[[Msg], Awaitable[None]],
) -> JetStreamContext.PushSubscription:
    """Deliver the session's events from ``start_seq`` on, in order, to ``callback``."""
    return await js.subscribe(
        subjects.session_events(session_id),
        cb=callback,
        ordered_consumer=True,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(start_seq, 1),
        ),
    )


def decode_event(data: bytes) -> ServerMessage:
    """A stored event (published without ``seq``)."""
    event: ServerMessage = _decoder.decode(data)
    return event


async def read_events(
    js: JetStreamContext, subjects: Subjects, session_id: str, after_seq: int
) -> AsyncIterator[tuple[int, ServerMessage]]:
    """Every stored event of the session after ``after_seq``, up to the newest one now."""
    last = await subject_last_seq(js, subjects, session_id)
    if last <= after_seq:
        return
    queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def collect(msg: Msg) -> None:
        await queue.put(msg)

    sub = await subscribe_events(js, subjects, session_id, after_seq + 1, collect)
    try:
        while True:
            msg = await asyncio.wait_for(queue.get(), timeout=30)
            seq = int(msg.metadata.sequence.stream)
            yield seq, decode_event(msg.data)
            if seq >= last:
                return
    finally:
        await sub.unsubscribe()


class EventLogFenced(Exception):
    """A newer incarnation of the session's actor writes its event log: this one must stop."""


class EventLog:
    """The session actor's writer for its event log and for lifecycle events."""

    def __init__(
        self,
        nats: NATS,
        subjects: Subjects,
        session_id: str,
        *,
        stream_max_bytes: int,
        is_current: Callable[[], Awaitable[bool]],
    ) -> None:
        self.nats = nats
        self.stream_max_bytes = stream_max_bytes
        self.js = nats.jetstream()
        self.subjects = subjects
        self.session_id = session_id
        self.subject = subjects.session_events(session_id)
        self.stream = events_stream(subjects)
        self.last_seq = 0
        """A sequence no later event can be at or below (the last ack, or the stream's
        last sequence at start)."""
        self.subject_seq = 0
        """The session's newest event as this writer knows it: what each publish expects."""
        self.is_current = is_current
        """Whether this writer's incarnation is still the session's live one."""
        self.fenced = False
        self._incarnation = secrets.token_hex(4)
        self._counter = 0

    async def open(self) -> None:
        """Learn the stream's position (a lower bound for every event published later).

        Declares Warren's streams if they are missing (an actor may start before any API).
        """
        try:
            self.last_seq = await stream_last_seq(self.js, self.subjects)
        except NotFoundError:
            await declare_streams(self.js, self.subjects, max_bytes=self.stream_max_bytes)
            self.last_seq = await stream_last_seq(self.js, self.subjects)
        self.subject_seq = await subject_last_seq(self.js, self.subjects, self.session_id)

    async def publish(self, event: ServerMessage) -> int:
        """Store ``event``; returns its sequence. Retries until JetStream acks it.

        Raises :class:`EventLogFenced` once a newer incarnation owns the log.
        """
        if self.fenced:
            raise EventLogFenced(self.session_id)
        payload = fit_event(event)
        self._counter += 1
        msg_id = f"{self.session_id}:{self._incarnation}:{self._counter}"
        backoff = Backoff(0.1, 5.0)
        while True:
            headers = {
                "Nats-Msg-Id": msg_id,
                "Nats-Expected-Last-Subject-Sequence": str(self.subject_seq),
            }
            try:
                ack = await self.js.publish(
                    self.subject,
                    payload,
                    timeout=PUBLISH_TIMEOUT,
                    stream=self.stream,
                    headers=headers,
                )
                break
            except Exception as exc:  # any NATS failure: the same msg id makes a retry safe
                if isinstance(exc, APIError) and exc.err_code == WRONG_LAST_SEQUENCE:
                    await self._refused()
                    continue
                if self.nats.is_closed:
                    raise  # the actor is shutting down
                log.warning("publishing session event failed, retrying: %s", type(exc).__name__)
                await asyncio.sleep(backoff.next())
        self.subject_seq = int(ack.seq)
        self.last_seq = max(self.last_seq, int(ack.seq))
        actor_metrics().events_published.inc()
        return int(ack.seq)

    async def _refused(self) -> None:
        """The subject moved under this writer: go on after it if live, else stop."""
        if not await self.is_current():
            self.fenced = True
            log.error(
                "session %s: a newer actor owns the event log; this one stops", self.session_id
            )
            raise EventLogFenced(self.session_id)
        # Live: an old incarnation wrote before it noticed (or an earlier try of this very
        # message landed; its msg id makes the retry a duplicate).
        self.subject_seq = await subject_last_seq(self.js, self.subjects, self.session_id)

    async def lifecycle(self, event: SessionLifecycleEvent, *, attempts: int = 6) -> bool:
        """Publish a lifecycle event on ``sessions.lifecycle``; False if every try failed.

        What it announces is in Postgres already, so a lost event can be reconciled.
        """
        headers = {"Nats-Msg-Id": f"{self.session_id}:{event.event}:{event.at.isoformat()}"}
        backoff = Backoff(0.2, 5.0)
        for _ in range(attempts):
            try:
                await self.js.publish(
                    self.subjects.session_lifecycle,
                    msgspec.json.encode(event),
                    timeout=PUBLISH_TIMEOUT,
                    headers=headers,
                )
                return True
            except Exception as exc:  # any NATS failure; the msg id makes a retry safe
                if self.nats.is_closed:
                    return False
                log.warning("publishing lifecycle %s failed: %s", event.event, type(exc).__name__)
                await asyncio.sleep(backoff.next())
        log.error(
            "lifecycle event %s for session %s was not published", event.event, self.session_id
        )
        return False


def now() -> datetime:
    """The current UTC time (lifecycle timestamps)."""
    return datetime.now(UTC)
