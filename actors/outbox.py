"""The outbox dispatchers: deliver what run transactions promised, at least once, and every
external effect at most once.

Each member loops: recover rows stuck in ``processing`` (> 5 min), claim ≤ 50 due rows
(``FOR UPDATE SKIP LOCKED``), dispatch them concurrently, mark the batch dispatched; a
failed row goes back to ``pending`` after min(30 s·2ⁿ, 5 min), ``failed`` after 5 attempts
(at once for errors a retry cannot fix). It wakes on ``<prefix>.outbox.wake`` pings and
polls every 2 s otherwise.

Kinds: ``enqueue_enrich`` / ``enqueue_execute`` publish a :class:`RunWork` to the RUNS
stream (``Nats-Msg-Id`` per outbox row, so a redispatched row is stored once);
``write_artifacts`` writes ``runs/<id>/enrichment.json`` and ``completion.json``;
``notify_run_terminal`` posts the Block Kit notification to the automation's Slack channel.
The Slack post first commits an ``automation_side_effects`` row for its idempotency key; a
row already there means posted (or outcome unknown after a crash), and it is never posted
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from typing import Any

import aiohttp
import msgspec

from actors.base import BackgroundActor
from artifacts.factory import artifact_store_from_settings
from artifacts.store import ArtifactStore
from core.settings import Settings
from integrations.errors import (
    IntegrationAuthError,
    IntegrationError,
    IntegrationForbiddenError,
    IntegrationNotFoundError,
    IntegrationValidationError,
)
from integrations.slack_blocks import run_notification_message
from integrations.slack_client import SlackClient
from schemas.automations import RunStage, RunWork
from schemas.triggers import RunNotification
from security.sealing import unseal
from store import automations as automations_store
from store import outbox as store
from store import runs as runs_store

log = logging.getLogger(__name__)

SLACK_TOKEN_PURPOSE = "slack-token"
POLL_INTERVAL_SECONDS = 2.0
RECOVER_EVERY_SECONDS = 10.0
_PERMANENT_SLACK = (
    IntegrationAuthError,
    IntegrationForbiddenError,
    IntegrationNotFoundError,
    IntegrationValidationError,
)


class PermanentError(Exception):
    """Retrying this row cannot succeed (bad configuration, refused credentials)."""


def run_url(settings: Settings, run_id: uuid.UUID | str) -> str:
    """The "View run" link of a notification: the browser client's run view (a hash route,
    so the page at ``/`` serves it)."""
    return f"{settings.api_url}/#/runs/{run_id}"


def artifact_key(run_id: uuid.UUID | str, name: str) -> str:
    """Where a run's ``completion`` or ``enrichment`` JSON is stored."""
    return f"runs/{run_id}/{name}.json"


class OutboxDispatcher(BackgroundActor):
    """One outbox dispatcher (wrap with ``ray.remote``; see actors.bootstrap)."""

    def __init__(
        self,
        settings: Settings,
        name: str,
        *,
        stuck_after: float = store.STUCK_AFTER_SECONDS,
        backoff_base: float = store.BACKOFF_BASE_SECONDS,
        backoff_cap: float = store.BACKOFF_CAP_SECONDS,
        max_attempts: int = store.MAX_ATTEMPTS,
        claim_limit: int = store.CLAIM_LIMIT,
        poll_interval: float = POLL_INTERVAL_SECONDS,
    ) -> None:
        super().__init__(settings, name)
        self.stuck_after = stuck_after
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_attempts = max_attempts
        self.claim_limit = claim_limit
        self.poll_interval = poll_interval
        self.dispatched = 0
        self.failed_attempts = 0
        self._wake = asyncio.Event()
        self._artifacts: ArtifactStore | None = None
        self._http: aiohttp.ClientSession | None = None

    async def on_start(self) -> None:
        """Listen for wake-up pings (plain NATS; a missed ping only costs one poll)."""

        async def woke(_: Any) -> None:
            self._wake.set()

        await self.res.nats.subscribe(self.res.subjects.outbox_wake, cb=woke)

    async def main(self) -> None:
        """Claim and dispatch forever."""
        last_recovery = 0.0
        while True:
            if time.monotonic() - last_recovery >= min(RECOVER_EVERY_SECONDS, self.stuck_after / 2):
                async with self.res.pool.acquire() as conn:
                    recovered = await store.recover_stuck(
                        conn, stuck_after=self.stuck_after, max_attempts=self.max_attempts
                    )
                if recovered:
                    log.warning("%s: recovered %d stuck outbox rows", self.name, recovered)
                last_recovery = time.monotonic()
            handled = await self.dispatch_batch()
            if handled < self.claim_limit:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                self._wake.clear()

    async def dispatch_batch(self) -> int:
        """Claim one batch and settle every row of it; returns the batch size."""
        async with self.res.pool.acquire() as conn:
            rows = await store.claim_due(conn, self.name, self.claim_limit)
        if not rows:
            return 0
        results = await asyncio.gather(
            *(self._dispatch(row) for row in rows), return_exceptions=True
        )
        done = [row.id for row, err in zip(rows, results, strict=True) if err is None]
        async with self.res.pool.acquire() as conn:
            if done:
                self.dispatched += await store.mark_dispatched(conn, done, self.name)
            for row, err in zip(rows, results, strict=True):
                if isinstance(err, BaseException):
                    self.failed_attempts += 1
                    status = await store.mark_failed_attempt(
                        conn,
                        row.id,
                        self.name,
                        f"{type(err).__name__}: {err}",
                        max_attempts=self.max_attempts,
                        base=self.backoff_base,
                        cap=self.backoff_cap,
                        permanent=isinstance(err, PermanentError),
                    )
                    log.warning(
                        "%s: outbox row %d (%s) failed, now %s: %s",
                        self.name,
                        row.id,
                        row.kind,
                        status,
                        err,
                    )
        return len(rows)

    async def _dispatch(self, row: store.OutboxRow) -> None:
        if row.kind == "enqueue_enrich":
            await self._enqueue(row, "enrich")
        elif row.kind == "enqueue_execute":
            await self._enqueue(row, "execute")
        elif row.kind == "write_artifacts":
            await self._write_artifacts(row)
        else:
            await self._notify(row)

    async def _enqueue(self, row: store.OutboxRow, stage: RunStage) -> None:
        work = RunWork(run_id=str(row.payload["run_id"]), stage=stage)
        await self.res.js.publish(
            self.res.subjects.runs(stage),
            msgspec.json.encode(work),
            timeout=5.0,
            headers={"Nats-Msg-Id": f"outbox:{row.id}"},
        )

    def _store(self) -> ArtifactStore:
        if self._artifacts is None:
            self._artifacts = artifact_store_from_settings(self.settings)
        return self._artifacts

    async def _write_artifacts(self, row: store.OutboxRow) -> None:
        assert row.run_id is not None
        async with self.res.pool.acquire() as conn:
            record = await runs_store.get_record(conn, row.run_id)
        if record is None:
            return
        refs: dict[str, str] = {}
        for name in row.payload.get("artifacts", []):
            content = {
                "completion": record.completion_json,
                "enrichment": record.enrichment_json,
            }.get(name)
            if content is None:
                continue
            key = artifact_key(record.id, name)
            await self._store().put(key, msgspec.json.encode(content), "application/json")
            refs[name] = key
        async with self.res.pool.acquire() as conn:
            await runs_store.set_artifact_refs(
                conn,
                record.id,
                completion_ref=refs.get("completion"),
                enrichment_ref=refs.get("enrichment"),
            )

    async def _notify(self, row: store.OutboxRow) -> None:
        assert row.run_id is not None
        async with self.res.pool.acquire() as conn:
            run = await runs_store.get_run(conn, row.org_id, row.run_id)
            target = (
                None
                if run is None
                else await automations_store.slack_target(conn, run.automation_id)
            )
        if run is None or target is None:
            return  # nothing to notify: no run any more, or no Slack channel configured
        status = str(row.payload.get("status", run.status))
        message = run_notification_message(
            RunNotification(
                run_id=str(run.id),
                status=status,  # type: ignore[arg-type]
                automation_name=run.automation_name,
                run_url=run_url(self.settings, run.id),
                summary=run.summary,
                status_reason=run.status_reason,
                error_message=run.error_message,
            )
        )
        body = msgspec.json.encode(message)
        effect_id = f"slack:run_terminal:{run.id}:{status}"
        async with self.res.pool.acquire() as conn:
            fresh = await store.begin_side_effect(
                conn,
                org_id=row.org_id,
                run_id=run.id,
                effect_id=effect_id,
                kind="notify_run_terminal",
                provider="slack",
                request_hash=hashlib.sha256(body).hexdigest(),
            )
        if not fresh:
            log.info("%s: %s already recorded, not posting again", self.name, effect_id)
            return
        token = unseal(self.settings.secret_key, SLACK_TOKEN_PURPOSE, target.token_sealed)
        if self._http is None:
            self._http = aiohttp.ClientSession()
        client = SlackClient(token, base_url=self.settings.slack_api_url, session=self._http)
        try:
            posted = await client.post_message(
                target.channel, text=message.text, blocks=msgspec.to_builtins(message.blocks)
            )
        except IntegrationError as exc:
            if _definitely_not_posted(exc):
                async with self.res.pool.acquire() as conn:
                    await store.forget_side_effect(conn, row.org_id, effect_id)
            if isinstance(exc, _PERMANENT_SLACK):
                raise PermanentError(str(exc)) from exc
            raise
        async with self.res.pool.acquire() as conn:
            await store.complete_side_effect(
                conn, row.org_id, effect_id, {"channel": posted.channel, "ts": posted.ts}
            )

    async def shutdown(self) -> None:
        """Stop and close the artifact store and HTTP session too."""
        await super().shutdown()
        if self._artifacts is not None:
            await self._artifacts.close()
        if self._http is not None:
            await self._http.close()


def _definitely_not_posted(exc: IntegrationError) -> bool:
    """Slack answered with an error, or the connection was never made; a timeout or a
    dropped connection leaves the outcome unknown (the post may have happened)."""
    if exc.status is not None:
        return True
    return isinstance(exc.__cause__, aiohttp.ClientConnectorError)
