"""A fixed pool of async Ray actors pulling from one durable JetStream consumer.

Each pool member binds to the same durable pull consumer (explicit ack, ``ack_wait``,
``max_deliver``), so JetStream spreads messages across members and redelivers what a dead
member never acked. A handler returns :data:`ACK`, a :class:`Retry` (nak with a delay) or
:class:`Dead` (give up); an exception is a retry with backoff. Long handlers are kept alive
with ``in_progress`` heartbeats.

Dead letters, the same for every consumer: a message the handler gives up on, or still
retries on its ``max_deliver``-th delivery, is *parked* — a ``dead_letters`` row in
Postgres (org-scoped when the org is known; listed and replayed by ``/api/dead-letters``),
then a :class:`DeadLetter` notice on ``<prefix>.<source>.dead.<reason>`` — and only then
acked. The durable consumer allows :data:`PARK_DELIVERIES` deliveries beyond
``max_deliver``: when parking fails the message is not acked, and the next delivery parks
it (on the very last one the member keeps trying in process). The loop reconnects after
any failure; it never exits.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError

from actors.base import BackgroundActor
from core.backoff import exponential_delay
from core.bus import Subjects
from schemas.dead_letters import DeadLetter, json_or_text
from store import dead_letters as store
from store.dead_letters import Parked

log = logging.getLogger(__name__)

PARK_DELIVERIES = 3
"""Deliveries a consumer allows beyond ``max_deliver``, to retry parking a dead letter."""


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer on ``stream`` for ``filter_subject``.

    ``max_deliver`` is how often the handler sees a message; ``dead_source`` is the
    subject root of its dead letters (``<prefix>.<dead_source>.dead.<reason>``).
    """

    stream: str
    durable: str
    filter_subject: str
    dead_source: str
    ack_wait: float = 30.0
    max_deliver: int = 10
    max_ack_pending: int = 2000
    batch: int = 32
    fetch_timeout: float = 1.0


@dataclass(frozen=True)
class Retry:
    """Nak the message; JetStream redelivers it after ``delay`` seconds."""

    delay: float
    reason: str = ""


@dataclass(frozen=True)
class Dead:
    """Give up on the message: park it as a dead letter with ``reason`` (a subject token)."""

    reason: str
    detail: str
    org_id: uuid.UUID | None = None
    trigger_id: str | None = None


class _Ack:
    def __repr__(self) -> str:
        return "ACK"


ACK = _Ack()
Outcome = _Ack | Retry | Dead
Handler = Callable[[Msg], Awaitable[Outcome]]
OrgOf = Callable[[Msg], Awaitable[uuid.UUID | None]]
"""The org a message belongs to, for a dead letter of a message the handler kept retrying."""


async def ensure_consumer(js: JetStreamContext, spec: ConsumerSpec) -> None:
    """Create the durable consumer, or bring an existing one to ``spec``."""
    config = ConsumerConfig(
        durable_name=spec.durable,
        filter_subject=spec.filter_subject,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=spec.ack_wait,
        max_deliver=spec.max_deliver + PARK_DELIVERIES,
        max_ack_pending=spec.max_ack_pending,
    )
    try:
        await js.add_consumer(spec.stream, config)
    except BadRequestError as exc:
        # Several members race to create it; whoever lost finds it there already.
        if exc.err_code not in (10013, 10148):
            raise


class DeadLetters:
    """Parks the messages one consumer gives up on: the row first, then the NATS notice."""

    def __init__(
        self, pool: asyncpg.Pool, js: JetStreamContext, subjects: Subjects, spec: ConsumerSpec
    ) -> None:
        self.pool = pool
        self.js = js
        self.subjects = subjects
        self.spec = spec

    async def park(self, msg: Msg, dead: Dead) -> uuid.UUID:
        """Store and announce ``msg``; raises if either fails (the caller must not ack)."""
        meta = msg.metadata
        async with self.pool.acquire() as conn:
            row_id = await store.park(
                conn,
                Parked(
                    consumer=self.spec.durable,
                    reason=dead.reason,
                    detail=dead.detail,
                    subject=msg.subject,
                    stream=meta.stream,
                    stream_seq=meta.sequence.stream,
                    num_delivered=meta.num_delivered,
                    data=msg.data,
                    org_id=dead.org_id,
                ),
            )
        data, text = json_or_text(msg.data)
        letter = DeadLetter(
            reason=dead.reason,
            detail=dead.detail[:2000],
            subject=msg.subject,
            stream_seq=meta.sequence.stream,
            trigger_id=dead.trigger_id,
            consumer=self.spec.durable,
            org_id=str(dead.org_id) if dead.org_id else None,
            dead_letter_id=str(row_id),
            data=data,
            data_text=text,
        )
        await self.js.publish(
            self.subjects.dead_letter(self.spec.dead_source, dead.reason),
            msgspec.json.encode(letter),
            headers={"Nats-Msg-Id": f"dead:{self.spec.durable}:{meta.sequence.stream}"},
        )
        return row_id


class PullLoop:
    """Fetches batches for one pool member and settles every message it hands out."""

    def __init__(
        self,
        js: JetStreamContext,
        spec: ConsumerSpec,
        handler: Handler,
        dead_letters: DeadLetters,
        *,
        org_of: OrgOf | None = None,
        name: str = "pool",
    ) -> None:
        self.js = js
        self.spec = spec
        self.handler = handler
        self.dead_letters = dead_letters
        self.org_of = org_of
        self.name = name
        self.consumed = 0
        """Messages this member settled for good (acked, dead letters included)."""
        self.dead_lettered: Counter[str] = Counter()
        """Messages this member parked, by reason."""
        self.park_failures = 0
        """Attempts to park a dead letter that failed (the message was kept)."""

    async def run(self) -> None:
        """Pull forever; errors of the subscription are logged and retried after a pause."""
        while True:
            try:
                await ensure_consumer(self.js, self.spec)
                sub = await self.js.pull_subscribe_bind(
                    durable=self.spec.durable, stream=self.spec.stream
                )
                await self._pull(sub)
            except Exception as exc:  # keep the member alive whatever NATS does
                log.warning("%s: pull loop error: %s: %s", self.name, type(exc).__name__, exc)
                await asyncio.sleep(1.0)

    async def _pull(self, sub: JetStreamContext.PullSubscription) -> None:
        while True:
            try:
                msgs = await sub.fetch(self.spec.batch, timeout=self.spec.fetch_timeout)
            except TimeoutError:
                continue
            await asyncio.gather(*(self._settle(m) for m in msgs))

    async def _outcome(self, msg: Msg) -> Outcome:
        delivered = msg.metadata.num_delivered
        if delivered > self.spec.max_deliver:
            # The handler gave up on an earlier delivery whose dead letter was not stored.
            return await self._exhausted(msg, f"out of deliveries ({self.spec.max_deliver})")
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        try:
            outcome = await self.handler(msg)
        except Exception as exc:  # a handler bug must not stall the consumer
            log.exception("%s: handler failed on %s", self.name, msg.subject)
            # A handler bug is retried after 1 s, doubling per delivery up to a minute.
            delay = exponential_delay(delivered - 1, base=1.0, cap=60.0)
            outcome = Retry(delay, f"{type(exc).__name__}: {exc}")
        finally:
            heartbeat.cancel()
        if isinstance(outcome, Retry) and delivered >= self.spec.max_deliver:
            return await self._exhausted(msg, outcome.reason or "out of deliveries")
        return outcome

    async def _exhausted(self, msg: Msg, detail: str) -> Dead:
        """The dead letter of a message still failing on its last delivery, with its org."""
        org_id = None
        if self.org_of is not None:
            try:
                org_id = await self.org_of(msg)
            except Exception as exc:  # parked without an org rather than never
                log.warning("%s: no org for %s: %s", self.name, msg.subject, exc)
        return Dead("max_deliver", detail, org_id)

    async def _settle(self, msg: Msg) -> None:
        outcome = await self._outcome(msg)
        try:
            if isinstance(outcome, Retry):
                await msg.nak(delay=outcome.delay)
                return
            if isinstance(outcome, Dead) and not await self._park(msg, outcome):
                return  # kept, unacked, for another delivery
            await msg.ack()
            self.consumed += 1
        except Exception as exc:  # the ack may be lost; redelivery is idempotent
            log.warning("%s: could not settle %s: %s", self.name, msg.subject, exc)

    async def _park(self, msg: Msg, dead: Dead) -> bool:
        """Park ``msg``: True once it is stored, False after naking it for another try."""
        attempt = 0
        while True:
            try:
                await self.dead_letters.park(msg, dead)
            except Exception as exc:
                self.park_failures += 1
                attempt += 1
                log.error(
                    "%s: could not park %s (%s): %s: %s",
                    self.name,
                    msg.subject,
                    dead.reason,
                    type(exc).__name__,
                    exc,
                )
                if msg.metadata.num_delivered < self.spec.max_deliver + PARK_DELIVERIES:
                    # Not acked: the next delivery parks it again.
                    await msg.nak(delay=exponential_delay(attempt - 1, base=1.0, cap=60.0))
                    return False
                # The last delivery JetStream allows: keep trying here, holding the message.
                with contextlib.suppress(Exception):
                    await msg.in_progress()
                await asyncio.sleep(
                    exponential_delay(attempt - 1, base=1.0, cap=self.spec.ack_wait / 3)
                )
                continue
            self.dead_lettered[dead.reason] += 1
            log.warning("%s: dead-lettered %s (%s)", self.name, msg.subject, dead.reason)
            return True

    async def _heartbeat(self, msg: Msg) -> None:
        interval = max(self.spec.ack_wait / 3, 0.5)
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(interval)
                await msg.in_progress()


@dataclass(frozen=True)
class PoolStats:
    """What one member settled since it started (``pool_stats``, scraped by ``/metrics``)."""

    consumer: str
    consumed: int = 0
    dead_lettered: dict[str, int] = field(default_factory=dict)


class PoolMember(BackgroundActor):
    """A background actor consuming one durable consumer through a :class:`PullLoop`."""

    loop: PullLoop | None = None

    @abc.abstractmethod
    def consumer_spec(self) -> ConsumerSpec:
        """The durable consumer this member shares with the rest of its pool."""

    @abc.abstractmethod
    async def handle(self, msg: Msg) -> Outcome:
        """Process one message."""

    async def org_of(self, msg: Msg) -> uuid.UUID | None:
        """The org of a message the handler kept retrying (None: not known)."""
        return None

    async def consume(self) -> None:
        """Pull and settle messages forever."""
        spec = self.consumer_spec()
        res = self.res
        self.loop = PullLoop(
            res.js,
            spec,
            self.handle,
            DeadLetters(res.pool, res.js, res.subjects, spec),
            org_of=self.org_of,
            name=self.name,
        )
        await self.loop.run()

    async def main(self) -> None:
        """Consume forever."""
        await self.consume()

    async def pool_stats(self) -> PoolStats:
        """Messages settled and dead-lettered by this member since it started."""
        loop = self.loop
        if loop is None:
            return PoolStats(consumer=self.consumer_spec().durable)
        return PoolStats(
            consumer=loop.spec.durable,
            consumed=loop.consumed,
            dead_lettered=dict(loop.dead_lettered),
        )
