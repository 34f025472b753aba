"""A fixed pool of async Ray actors pulling from one durable JetStream consumer.

Each pool member binds to the same durable pull consumer (explicit ack, ``ack_wait``,
``max_deliver``), so JetStream spreads messages across members and redelivers what a dead
member never acked. A handler returns :data:`ACK`, or a :class:`Retry` (nak with a delay);
an exception is a retry with backoff. Long handlers are kept alive with ``in_progress``
heartbeats. On the last allowed delivery the member calls ``on_exhausted`` before acking,
so nothing is dropped silently. The loop reconnects after any failure; it never exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError

from core.backoff import exponential_delay

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer on ``stream`` for ``filter_subject``."""

    stream: str
    durable: str
    filter_subject: str
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


class _Ack:
    def __repr__(self) -> str:
        return "ACK"


ACK = _Ack()
Outcome = _Ack | Retry
Handler = Callable[[Msg], Awaitable[Outcome]]
Exhausted = Callable[[Msg, str], Awaitable[None]]


async def ensure_consumer(js: JetStreamContext, spec: ConsumerSpec) -> None:
    """Create the durable consumer, or bring an existing one to ``spec``."""
    config = ConsumerConfig(
        durable_name=spec.durable,
        filter_subject=spec.filter_subject,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=spec.ack_wait,
        max_deliver=spec.max_deliver,
        max_ack_pending=spec.max_ack_pending,
    )
    try:
        await js.add_consumer(spec.stream, config)
    except BadRequestError as exc:
        # Several members race to create it; whoever lost finds it there already.
        if exc.err_code not in (10013, 10148):
            raise


class PullLoop:
    """Fetches batches for one pool member and settles every message it hands out."""

    def __init__(
        self,
        js: JetStreamContext,
        spec: ConsumerSpec,
        handler: Handler,
        *,
        on_exhausted: Exhausted | None = None,
        name: str = "pool",
    ) -> None:
        self.js = js
        self.spec = spec
        self.handler = handler
        self.on_exhausted = on_exhausted
        self.name = name

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

    async def _settle(self, msg: Msg) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        try:
            outcome = await self.handler(msg)
        except Exception as exc:  # a handler bug must not stall the consumer
            log.exception("%s: handler failed on %s", self.name, msg.subject)
            # A handler bug is retried after 1 s, doubling per delivery up to a minute.
            delay = exponential_delay(msg.metadata.num_delivered - 1, base=1.0, cap=60.0)
            outcome = Retry(delay, f"{type(exc).__name__}: {exc}")
        finally:
            heartbeat.cancel()
        try:
            if isinstance(outcome, Retry):
                if msg.metadata.num_delivered >= self.spec.max_deliver:
                    if self.on_exhausted is not None:
                        await self.on_exhausted(msg, outcome.reason or "max_deliver")
                    # Acked only once the exhausted message is parked elsewhere.
                    await msg.ack()
                else:
                    await msg.nak(delay=outcome.delay)
            else:
                await msg.ack()
        except Exception as exc:  # the ack may be lost; redelivery is idempotent
            log.warning("%s: could not settle %s: %s", self.name, msg.subject, exc)

    async def _heartbeat(self, msg: Msg) -> None:
        interval = max(self.spec.ack_wait / 3, 0.5)
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(interval)
                await msg.in_progress()
