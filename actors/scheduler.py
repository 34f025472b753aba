"""The scheduler (named singleton): cron schedules, ``scheduled`` cron triggers, and polls
of Linear and Gmail triggers with persisted cursors.

Every second it takes the due rows with ``FOR UPDATE SKIP LOCKED``, so two schedulers
(a restarted actor overlapping the old one, a second cluster) never work on the same row;
and each firing is a trigger event keyed ``scheduled:<source>:<slot>``, unique per
(trigger, key), so even two schedulers that both saw a slot create one run for it.

Missed fires: when the scheduler was down across several slots, only the latest missed
slot fires, once; older ones are skipped (a cron of every minute down for an hour fires
one catch-up run, not sixty). ``next_run_at`` then moves to the first slot after now.

Polls: the slot is claimed (``next_fire_at`` advanced) in the locking transaction, the
provider is polled outside it, each event is recorded in its own transaction, and the
provider's cursor is saved only after all of them: a crash in between re-polls from the
old cursor and the duplicates fall on the dedup keys.

Errors are surfaced, never retried blindly: a trigger whose cron no longer parses is taken
off the schedule (``next_fire_at`` NULL) with ``last_error`` set, until the user edits it;
a failed poll sets ``last_error`` and backs the next poll off (2^n s after n failures in a
row, at most :data:`MAX_POLL_BACKOFF_SECONDS`); the next successful poll clears it. Both
count in :meth:`Scheduler.stats`, which ``/metrics`` reads (``warren_scheduler_*``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from datetime import UTC, datetime

from actors.base import BackgroundActor
from actors.triggers import ingest
from core import cron
from core.settings import Settings
from integrations.provider import decode_filters
from integrations.registry import POLL_TOKEN_PURPOSE, default_registry
from integrations.scheduled import scheduled_context
from schemas.triggers import PollConnection, TriggerContext
from security.sealing import unseal
from store import schedules as schedules_store
from store import triggers as triggers_store
from store.triggers import DueTrigger

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
MAX_CONCURRENT_POLLS = 3
MAX_POLL_BACKOFF_SECONDS = 3600.0


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def firing(source: str, expression: str, timezone: str, slot: datetime) -> TriggerContext:
    """The context of one cron firing of ``source`` (``schedule:<id>`` / ``trigger:<id>``)."""
    return scheduled_context(
        job_id=f"{source}:{_stamp(slot)}",
        cron_expression=expression,
        fired_at=slot,
        timezone=timezone,
    )


class Scheduler(BackgroundActor):
    """Fires schedules and cron triggers, runs polls (wrap with ``ray.remote``)."""

    def __init__(self, settings: Settings, name: str, *, tick: float = TICK_SECONDS) -> None:
        super().__init__(settings, name)
        self.tick = tick
        self.registry = default_registry()
        self.fired = 0
        self.polls = 0
        self.ticks = 0
        """Completed ticks: a test waits for two more to know a due row was looked at."""
        self.counters: dict[str, Counter[str]] = {
            "fires": Counter(),
            "errors": Counter(),
            "poll_errors": Counter(),
        }
        self._poll_slots = asyncio.Semaphore(MAX_CONCURRENT_POLLS)
        self._polling: set[asyncio.Task[None]] = set()

    async def main(self) -> None:
        """Tick forever."""
        while True:
            started = time.monotonic()
            try:
                await self.fire_schedules()
                for due in await self.fire_cron_triggers():
                    task = asyncio.create_task(self._poll_guarded(due))
                    self._polling.add(task)
                    task.add_done_callback(self._polling.discard)
            except Exception:  # a bad tick must not stop the scheduler
                self.counters["errors"]["tick"] += 1
                log.exception("%s: tick failed", self.name)
            self.ticks += 1
            await asyncio.sleep(max(0.0, self.tick - (time.monotonic() - started)))

    async def fire_schedules(self) -> int:
        """Fire every due schedule once (latest missed slot only); returns how many."""
        count = 0
        async with self.res.pool.acquire() as conn, conn.transaction():
            for due in await schedules_store.due_schedules(conn):
                now = datetime.now(UTC)
                try:
                    slot = cron.latest_slot(due.cron_expression, due.timezone, now)
                    following: datetime | None = cron.next_slot(
                        due.cron_expression, due.timezone, now
                    )
                except cron.CronError as exc:
                    log.error("%s: schedule %s is invalid: %s", self.name, due.id, exc)
                    self.counters["errors"]["bad_cron"] += 1
                    await schedules_store.mark_fired(conn, due.id, None, None)
                    continue
                target = await triggers_store.target_by_id(conn, due.trigger_id)
                if target is not None:
                    ctx = firing(f"schedule:{due.id}", due.cron_expression, due.timezone, slot)
                    recorded = await ingest(conn, self.registry, target, ctx, received_at=now)
                    count += recorded.run_id is not None
                await schedules_store.mark_fired(conn, due.id, now, following)
        await self._wake(count, "schedule")
        return count

    async def fire_cron_triggers(self) -> list[DueTrigger]:
        """Claim due polling triggers: fire the ``scheduled`` ones, return the ones to poll."""
        to_poll: list[DueTrigger] = []
        count = 0
        async with self.res.pool.acquire() as conn, conn.transaction():
            for due in await triggers_store.due_polling(conn):
                now = datetime.now(UTC)
                try:
                    slot = cron.latest_slot(due.polling_cron, due.timezone, now)
                    following = cron.next_slot(due.polling_cron, due.timezone, now)
                except cron.CronError as exc:
                    # Off the schedule until edited, with the reason shown on the trigger.
                    log.error("%s: trigger %s has a bad cron: %s", self.name, due.id, exc)
                    self.counters["errors"]["bad_cron"] += 1
                    await triggers_store.stop_firing(conn, due.id, f"bad polling_cron: {exc}")
                    continue
                if not await triggers_store.advance(conn, due.id, due.next_fire_at, following):
                    continue
                if due.provider != "scheduled":
                    to_poll.append(due)
                    continue
                target = await triggers_store.target_by_id(conn, due.id)
                if target is not None:
                    ctx = firing(f"trigger:{due.id}", due.polling_cron, due.timezone, slot)
                    recorded = await ingest(conn, self.registry, target, ctx, received_at=now)
                    count += recorded.run_id is not None
        await self._wake(count, "cron_trigger")
        return to_poll

    async def _poll_guarded(self, due: DueTrigger) -> None:
        async with self._poll_slots:
            try:
                await self.poll(due)
            except Exception as exc:  # a later slot retries from the same cursor
                error = f"{type(exc).__name__}: {exc}"
                self.counters["poll_errors"][due.provider] += 1
                log.warning("%s: poll of trigger %s failed: %s", self.name, due.id, error)
                async with self.res.pool.acquire() as conn:
                    await triggers_store.record_poll_error(
                        conn, due.id, error, max_backoff_seconds=MAX_POLL_BACKOFF_SECONDS
                    )

    def _base_url(self, provider: str) -> str | None:
        setting = self.registry.spec(provider).api_url_setting
        url: str = getattr(self.settings, setting) if setting else ""
        return url or None

    async def poll(self, due: DueTrigger) -> int:
        """Poll one trigger, record its events, then save the cursor; returns runs created."""
        if due.poll_token_sealed is None:
            raise ValueError("polling trigger has no access token")
        provider = self.registry.get(due.provider)
        token = unseal(self.settings.secret_key, POLL_TOKEN_PURPOSE, due.poll_token_sealed)
        filters = decode_filters(provider.filters_type, due.config)
        result = await provider.poll(
            PollConnection(access_token=token, base_url=self._base_url(due.provider)),
            filters,
            due.polling_cursor,
        )
        created = 0
        async with self.res.pool.acquire() as conn:
            target = await triggers_store.target_by_id(conn, due.id)
            if target is None:
                return 0
            now = datetime.now(UTC)
            for ctx in result.events:
                recorded = await ingest(conn, self.registry, target, ctx, received_at=now)
                created += recorded.run_id is not None
            await triggers_store.save_cursor(conn, due.id, result.cursor)
        self.polls += 1
        await self._wake(created, "poll")
        return created

    async def stats(self) -> dict[str, dict[str, int]]:
        """Counters since start: ``fires`` (runs created by kind), ``errors`` (by reason),
        ``poll_errors`` (by provider); read by ``/metrics``."""
        return {key: dict(counter) for key, counter in self.counters.items()}

    async def _wake(self, created: int, kind: str) -> None:
        self.fired += created
        self.counters["fires"][kind] += created
        if created:
            with contextlib.suppress(Exception):
                await self.res.nats.publish(self.res.subjects.outbox_wake, b"")
