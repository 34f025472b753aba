"""The trigger pool: turns trigger events from JetStream into runs, exactly once.

Members share the durable consumer ``trigger-pool`` on ``<prefix>.triggers.events.>``:

- ``<prefix>.triggers.events.<provider>``: a :class:`TriggerEnvelope` from the ingress
  (verified, parsed webhooks) or a Nango forward;
- ``<prefix>.triggers.events.custom.<trigger id>``: a :class:`CustomTriggerMessage` any
  system may publish.

For each (trigger, context) one transaction inserts the trigger event (unique per
(trigger, dedup key): a redelivery inserts nothing), and unless it is skipped
(unbound, trigger or automation disabled, filter mismatch) the queued run and its
``enqueue_enrich`` outbox row. The message is acked only after the commit. A message
that cannot be processed (malformed, unknown trigger) is published on
``<prefix>.triggers.dead.<reason>`` and, when its trigger is known, recorded on that
trigger as a failed event; it never blocks the pool.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import UTC, datetime

import asyncpg
import msgspec
from nats.aio.msg import Msg

from actors.base import BackgroundActor
from actors.pool import ACK, ConsumerSpec, Outcome, PullLoop
from core.bus import Subjects
from core.settings import Settings
from integrations.custom import CUSTOM_DEDUP_WINDOW_SECONDS
from integrations.registry import ProviderRegistry, UnknownProviderError, default_registry
from schemas.automations import (
    CustomTriggerMessage,
    DeadLetter,
    SkipReason,
    TriggerEnvelope,
)
from schemas.triggers import TriggerContext, WebhookContext
from store import triggers as store
from store.triggers import EventTarget, Recorded

log = logging.getLogger(__name__)

_envelope_decoder = msgspec.json.Decoder(TriggerEnvelope)
_custom_decoder = msgspec.json.Decoder(CustomTriggerMessage)


class DeadLetterError(Exception):
    """A message the pool cannot process; ``reason`` becomes the dead-letter subject token."""

    def __init__(self, reason: str, detail: str, target: EventTarget | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.target = target


def consumer_spec(subjects: Subjects) -> ConsumerSpec:
    """The trigger pool's durable consumer."""
    return ConsumerSpec(
        stream=subjects.stream("TRIGGER_EVENTS"),
        durable="trigger-pool",
        filter_subject=f"{subjects.prefix}.triggers.events.>",
        ack_wait=30.0,
        max_deliver=10,
    )


def skip_reason(
    registry: ProviderRegistry, target: EventTarget, ctx: TriggerContext
) -> SkipReason | None:
    """Why ``ctx`` should create no run on ``target``, or None if it should."""
    if target.automation_id is None:
        return "unbound"
    if not target.enabled and not target.hidden:
        return "trigger_disabled"
    if not target.automation_enabled:
        return "automation_disabled"
    try:
        if not registry.matches(target.provider, ctx, target.config):
            return "filter_mismatch"
    except (msgspec.ValidationError, UnknownProviderError):
        # A stored config that no longer decodes matches nothing (checked on write).
        return "filter_mismatch"
    return None


async def ingest(
    conn: asyncpg.Connection,
    registry: ProviderRegistry,
    target: EventTarget,
    ctx: TriggerContext,
    *,
    received_at: datetime,
    raw_payload: object = None,
    dedup_window_seconds: float | None = None,
) -> Recorded:
    """Record one context on one trigger (event, and run + outbox unless skipped)."""
    return await store.record_event(
        conn,
        target,
        ctx,
        received_at=received_at,
        raw_payload=raw_payload,
        skip_reason=skip_reason(registry, target, ctx),
        dedup_window_seconds=dedup_window_seconds,
    )


def custom_context(
    message: CustomTriggerMessage, data: bytes, received_at: datetime, seq: int
) -> tuple[TriggerContext, float | None]:
    """The context of a published custom message and its dedup window (None = forever)."""
    digest = hashlib.sha256(data).hexdigest()
    stamp = received_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    explicit = message.dedup_key is not None
    ctx = TriggerContext(
        provider="custom",
        event_type=message.event_type,
        title=message.title,
        external_id=message.external_id or f"nats:{seq}",
        dedup_key=f"custom:{message.dedup_key}" if explicit else f"custom:{digest}",
        description=message.description,
        url=message.url,
        raw={"bodySha256": digest},
        webhook=WebhookContext(
            received_at=stamp,
            body_sha256=digest,
            payload=message.payload,
            content_type="application/json",
        ),
    )
    return ctx, None if explicit else float(CUSTOM_DEDUP_WINDOW_SECONDS)


class TriggerWorker(BackgroundActor):
    """One member of the trigger pool (wrap with ``ray.remote``; see actors.bootstrap)."""

    def __init__(self, settings: Settings, name: str) -> None:
        super().__init__(settings, name)
        self.registry = default_registry()
        self.created_runs = 0
        self.dead_letters = 0

    async def main(self) -> None:
        """Consume trigger events forever."""
        loop = PullLoop(
            self.res.js,
            consumer_spec(self.res.subjects),
            self.handle,
            on_exhausted=self._exhausted,
            name=self.name,
        )
        await loop.run()

    async def handle(self, msg: Msg) -> Outcome:
        """Process one message; dead-letter what cannot be processed."""
        try:
            created = await self._process(msg)
        except DeadLetterError as dead:
            await self._dead_letter(msg, dead)
            return ACK
        if created:
            self.created_runs += created
            # Wake the outbox now rather than at its next poll.
            await self.res.nats.publish(self.res.subjects.outbox_wake, b"")
        return ACK

    async def _process(self, msg: Msg) -> int:
        prefix = f"{self.res.subjects.prefix}.triggers.events."
        tokens = msg.subject.removeprefix(prefix).split(".")
        received_at = msg.metadata.timestamp.astimezone(UTC)
        if len(tokens) == 2 and tokens[0] == "custom":
            return await self._process_custom(msg, tokens[1], received_at)
        if len(tokens) != 1:
            raise DeadLetterError("bad_subject", f"unexpected subject {msg.subject}")
        try:
            envelope = _envelope_decoder.decode(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise DeadLetterError("malformed", f"not a trigger envelope: {exc}") from None
        return await self._process_envelope(envelope)

    async def _process_envelope(self, envelope: TriggerEnvelope) -> int:
        received_at = datetime.fromtimestamp(envelope.received_at, tz=UTC)
        async with self.res.pool.acquire() as conn:
            if envelope.trigger_id is not None:
                target = await store.target_by_id(conn, _uuid(envelope.trigger_id))
                if target is None:
                    raise DeadLetterError("unknown_trigger", f"no trigger {envelope.trigger_id}")
                targets = [target]
            elif envelope.connection_id is not None:
                targets = await store.targets_by_connection(
                    conn, envelope.connection_id, (envelope.provider,)
                )
            else:
                raise DeadLetterError("malformed", "envelope names no trigger or connection")
            created = 0
            for target in targets:
                window = self.registry.spec(target.provider).dedup_window_seconds
                for ctx in envelope.contexts:
                    recorded = await ingest(
                        conn,
                        self.registry,
                        target,
                        ctx,
                        received_at=received_at,
                        raw_payload=_none_if_null(envelope.raw_payload),
                        dedup_window_seconds=window,
                    )
                    created += recorded.run_id is not None
        return created

    async def _process_custom(self, msg: Msg, raw_id: str, received_at: datetime) -> int:
        async with self.res.pool.acquire() as conn:
            target = await store.target_by_id(conn, _uuid(raw_id))
            if target is None or target.hidden:
                raise DeadLetterError("unknown_trigger", f"no trigger {raw_id}")
            if not self.registry.spec(target.provider).published:
                raise DeadLetterError(
                    "not_custom_trigger", f"trigger is a {target.provider} trigger", target
                )
            try:
                message = _custom_decoder.decode(msg.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise DeadLetterError("malformed", str(exc), target) from None
            ctx, window = custom_context(
                message, msg.data, received_at, msg.metadata.sequence.stream
            )
            recorded = await ingest(
                conn,
                self.registry,
                target,
                ctx,
                received_at=received_at,
                dedup_window_seconds=window,
            )
        return 1 if recorded.run_id is not None else 0

    async def _dead_letter(self, msg: Msg, dead: DeadLetterError) -> None:
        seq = msg.metadata.sequence.stream
        if dead.target is not None:
            async with self.res.pool.acquire() as conn:
                await store.record_failed_event(
                    conn,
                    dead.target,
                    dedup_key=f"dead:{seq}",
                    error=f"{dead.reason}: {dead.detail}",
                    received_at=msg.metadata.timestamp.astimezone(UTC),
                )
        raw = _raw_json(msg.data)
        letter = DeadLetter(
            reason=dead.reason,
            detail=dead.detail[:2000],
            subject=msg.subject,
            stream_seq=seq,
            trigger_id=str(dead.target.id) if dead.target else None,
            data=raw if raw is not None else msgspec.Raw(b"null"),
            data_text=None if raw is not None else msg.data[:65536].decode("utf-8", "replace"),
        )
        await self.res.js.publish(
            self.res.subjects.trigger_dead_letter(dead.reason),
            msgspec.json.encode(letter),
            headers={"Nats-Msg-Id": f"dead:{seq}"},
        )
        self.dead_letters += 1
        log.warning("%s: dead-lettered %s (%s)", self.name, msg.subject, dead.reason)

    async def _exhausted(self, msg: Msg, reason: str) -> None:
        await self._dead_letter(msg, DeadLetterError("max_deliver", reason))


def _uuid(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise DeadLetterError("unknown_trigger", f"{raw!r} is not a trigger id") from None


def _none_if_null(raw: msgspec.Raw) -> msgspec.Raw | None:
    return None if bytes(raw) == b"null" else raw


def _raw_json(data: bytes) -> msgspec.Raw | None:
    try:
        msgspec.json.decode(data)
    except msgspec.DecodeError:
        return None
    return msgspec.Raw(data)
