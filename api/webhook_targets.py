"""Per-replica cache of webhook targets, so a delivery costs no Postgres round trip.

A delivery needs its trigger (id, provider, config) and the trigger's opened secret. Both
are kept here for a few seconds after a lookup, but only while this replica listens on
Postgres' ``warren_webhook_targets`` channel: a database trigger (sql/0012) notifies it
whenever a webhook trigger's path, route, secret, provider, config or visibility changes
or the trigger is deleted, and every notification empties the cache. Without a live
listener (not yet connected, connection lost) every delivery reads Postgres, as before.

A lookup that overlaps a notification is not cached (generation check), so a change is
never hidden by a read that started before it. Unknown paths are never cached: a new
trigger is reachable at once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import asyncpg
import msgspec

from integrations.registry import WEBHOOK_SECRET_PURPOSE
from security.sealing import unseal
from store import triggers as store

log = logging.getLogger(__name__)

TTL_SECONDS = 30.0
MAX_ENTRIES = 10_000
RECONNECT_SECONDS = 5.0


class OpenTarget(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook trigger with its secret opened ("" when it has none)."""

    id: str
    provider: str
    secret: str
    config: dict[str, Any]


class WebhookTargets:
    """Webhook URL → :class:`OpenTarget`, cached briefly and emptied on every change."""

    def __init__(self, pool: asyncpg.Pool, dsn: str, secret_key: str) -> None:
        self._pool = pool
        self._dsn = dsn
        self._secret_key = secret_key
        self._entries: dict[tuple[str, str], tuple[float, OpenTarget]] = {}
        self._generation = 0
        self._listener: asyncpg.Connection | None = None
        self._connecting = False
        self._next_attempt = 0.0
        self._closed = False

    async def get(self, route: str, url_path: str) -> OpenTarget | None:
        """The trigger at ``/webhooks/<route>/<url_path>``, or None."""
        key = (route, url_path)
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now and self._listening():
            return hit[1]
        await self._listen(now)
        generation = self._generation
        async with self._pool.acquire() as conn:
            found = await store.webhook_target(conn, route, url_path)
        if found is None:
            return None
        target = OpenTarget(
            id=str(found.id),
            provider=found.provider,
            secret=unseal(self._secret_key, WEBHOOK_SECRET_PURPOSE, found.secret_sealed)
            if found.secret_sealed
            else "",
            config=found.config,
        )
        if generation == self._generation and self._listening():
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (now + TTL_SECONDS, target)
        return target

    async def close(self) -> None:
        """Stop listening and forget every entry."""
        self._closed = True
        self._forget()
        listener, self._listener = self._listener, None
        if listener is not None and not listener.is_closed():
            await listener.close()

    def _listening(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    def _forget(self, *_: object) -> None:
        self._entries.clear()
        self._generation += 1

    def _lost(self, _: object) -> None:
        # Changes may be missed from now on: serve from Postgres until listening again.
        self._listener = None
        self._forget()

    async def _listen(self, now: float) -> None:
        """(Re)start listening, at most every few seconds after a failure."""
        if self._listening() or self._connecting or self._closed or now < self._next_attempt:
            return
        self._connecting = True
        try:
            conn = await asyncpg.connect(self._dsn)
            await conn.add_listener(store.WEBHOOK_TARGETS_CHANNEL, self._forget)
            conn.add_termination_listener(self._lost)
            if self._closed:
                await conn.close()
                return
            self._forget()  # lookups from before the listener may be stale
            self._listener = conn
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            self._next_attempt = now + RECONNECT_SECONDS
            log.warning("webhook target cache off, not listening: %s", type(exc).__name__)
        finally:
            self._connecting = False
