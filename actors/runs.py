"""The run pool: enrich and execute automation runs; and the finalizer.

Members share the durable consumer ``run-pool`` on the RUNS work-queue stream
(``<prefix>.runs.enrich`` / ``<prefix>.runs.execute``, one :class:`RunWork` each, published
by the outbox). Every step first *claims* the run: a conditional update on its status and
lease (5 min, ``lease_version`` bumped), so a redelivered or duplicated message finds the
run already past that step, or leased by a live member, and does nothing twice. A member
that starts (or is restarted by Ray) drops the leases its name held: Ray's named actors
guarantee the previous incarnation is gone.

- enrich: queued → enriching → ready: payload v1 (actors.enrichment), saved on the run with
  ``write_artifacts`` (``runs/<id>/enrichment.json``) and ``enqueue_execute`` in one
  transaction; a context without a title fails the run (``enrichment_failed``).
- execute: ready → running: target = the automation's default configuration (none: failed
  ``missing_configuration``), then a session (client ``automation``, sandbox
  ``immediate``, prompt = instructions + trigger context + completion requirements) through
  ``actors.session_client.create_session`` with the idempotency key ``run:<id>:session``,
  so a retried step gets the same session.

The finalizer (every 60 s, on each member; every step is conditional so overlap is
harmless) handles active runs that are overdue: past the deadline → ``timed_out``; session
stopped → its stored completion, else ``no_completion``; session ``failed`` (a boot that
failed, a sandbox that stopped answering: the session boots again when asked, and an
automation session has no client to ask) → asked to boot again (3 times, then
``sandbox_dead``); running without a session → ``missing_session``; queued/enriching/ready
idle 30 min → their step is enqueued again (3 times, then ``stalled``); a running run whose
session is alive is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

import asyncpg
import msgspec
from nats.aio.msg import Msg

from actors.enrichment import EnrichmentError, automation_prompt, build_enrichment
from actors.lifecycle_consumer import settle_ended_session
from actors.pool import ACK, ConsumerSpec, Dead, Outcome, PoolMember, Retry
from actors.session_client import call_actor, create_session, get_session_actor
from core.bus import Subjects
from core.settings import Settings
from schemas.automations import RunStage, RunStatus, RunWork
from schemas.sessions import NewSession
from store import run_finalizer, run_outcomes
from store import runs as store
from store.runs import RunRecord

log = logging.getLogger(__name__)

IDLE_SECONDS = 30 * 60.0
FINALIZE_EVERY_SECONDS = 60.0
FINALIZER_LOCK_ID = 0x57A88E5
"""Advisory lock id of the finalizer (any constant distinct from the migration lock)."""
SESSION_REVIVALS = 3
"""Boots the finalizer asks of a run's failed session before failing the run."""
REVIVE_TIMEOUT_SECONDS = 10.0
"""How long the finalizer waits for a session actor to accept the request to boot."""
_QUIET_DECISIONS = {"waiting", "requeued", "revived"}
"""Finalizer decisions that enqueue no outbox row needing a wake-up."""
_decoder = msgspec.json.Decoder(RunWork)


class SessionStartError(Exception):
    """A session could not be started; ``permanent`` errors fail the run, others retry."""

    def __init__(self, code: str, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent


def _title(enrichment: dict[str, object]) -> str:
    summary = enrichment.get("summary")
    title = summary.get("title") if isinstance(summary, dict) else None
    return str(title or "run")


def consumer_spec(subjects: Subjects) -> ConsumerSpec:
    """The run pool's durable consumer on the RUNS stream."""
    return ConsumerSpec(
        stream=subjects.stream("RUNS"),
        durable="run-pool",
        filter_subject=f"{subjects.prefix}.runs.*",
        dead_source="runs",
        ack_wait=30.0,
        max_deliver=20,
        batch=8,
    )


class RunWorker(PoolMember):
    """One member of the run pool (wrap with ``ray.remote``; see actors.bootstrap)."""

    def __init__(
        self,
        settings: Settings,
        name: str,
        *,
        lease_seconds: float = store.LEASE_SECONDS,
        idle_seconds: float = IDLE_SECONDS,
        finalize_every: float = FINALIZE_EVERY_SECONDS,
    ) -> None:
        super().__init__(settings, name)
        self.lease_seconds = lease_seconds
        self.idle_seconds = idle_seconds
        self.finalize_every = finalize_every
        self.steps: dict[str, int] = {"enrich": 0, "execute": 0}

    async def on_start(self) -> None:
        """Drop leases a previous incarnation of this member left behind."""
        async with self.res.pool.acquire() as conn:
            released = await store.release_leases(conn, self.name)
        if released:
            log.warning("%s: released %d leases of a previous incarnation", self.name, released)

    def consumer_spec(self) -> ConsumerSpec:
        """The run pool's durable consumer."""
        return consumer_spec(Subjects(self.settings.nats_prefix))

    async def main(self) -> None:
        """Consume run work and finalize overdue runs, forever."""
        finalizer = asyncio.create_task(self._finalize_forever())
        try:
            await self.consume()
        finally:
            finalizer.cancel()

    async def handle(self, msg: Msg) -> Outcome:
        """One work item: enrich or execute its run."""
        try:
            work = _decoder.decode(msg.data)
            run_id = uuid.UUID(work.run_id)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            return Dead("malformed", f"not run work: {exc}")
        outcome = await (self.enrich(run_id) if work.stage == "enrich" else self.execute(run_id))
        self.steps[work.stage] += 1
        return outcome

    async def org_of(self, msg: Msg) -> uuid.UUID | None:
        """The org of the run a work item names."""
        work = _decoder.decode(msg.data)  # only well-formed work is ever retried
        async with self.res.pool.acquire() as conn:
            record = await store.get_record(conn, uuid.UUID(work.run_id))
        return record.org_id if record else None

    async def _claim(self, run_id: uuid.UUID, stage: RunStage) -> RunRecord | Outcome:
        """Claim the run for ``stage``, or the outcome for its message if it cannot be."""
        sources: tuple[RunStatus, ...] = (
            ("queued", "enriching") if stage == "enrich" else ("ready", "running")
        )
        target: RunStatus = "enriching" if stage == "enrich" else "running"
        async with self.res.pool.acquire() as conn:
            record = await store.claim(
                conn,
                run_id,
                from_statuses=sources,
                to_status=target,
                owner=self.name,
                lease_seconds=self.lease_seconds,
            )
            if record is not None:
                return record
            current = await store.get_record(conn, run_id)
        if current is not None and current.status in sources:
            # Another live member holds the lease: look again once it may have lapsed.
            return Retry(min(self.lease_seconds, 30.0), "run leased by another member")
        return ACK  # gone, or already past this step: the message is a duplicate

    async def enrich(self, run_id: uuid.UUID) -> Outcome:
        """queued → enriching → ready (or failed)."""
        claimed = await self._claim(run_id, "enrich")
        if not isinstance(claimed, RunRecord):
            return claimed
        async with self.res.pool.acquire() as conn:
            try:
                enrichment = build_enrichment(claimed)
            except EnrichmentError as exc:
                await run_outcomes.fail(
                    conn,
                    run_id,
                    stage="enrichment",
                    code="enrichment_failed",
                    message=str(exc),
                    version=claimed.lease_version,
                )
            else:
                await store.save_enrichment(
                    conn, run_id, claimed.lease_version, msgspec.to_builtins(enrichment)
                )
        await self._wake()
        return ACK

    async def execute(self, run_id: uuid.UUID) -> Outcome:
        """ready → running with a session (or failed)."""
        claimed = await self._claim(run_id, "execute")
        if not isinstance(claimed, RunRecord):
            return claimed
        if claimed.session_id is not None and claimed.status == "running":
            # A redelivered step: the session exists; just hand the lease back.
            async with self.res.pool.acquire() as conn:
                await store.release_lease(conn, run_id, claimed.lease_version)
            return ACK
        config_id = claimed.default_configuration_id
        if config_id is None:
            async with self.res.pool.acquire() as conn:
                await run_outcomes.fail(
                    conn,
                    run_id,
                    stage="target",
                    code="missing_configuration",
                    message="the automation has no default configuration",
                    version=claimed.lease_version,
                )
            await self._wake()
            return ACK
        try:
            session_id = await self.start_session(claimed, config_id)
        except SessionStartError as exc:
            if not exc.permanent:
                return Retry(5.0, f"{exc.code}: {exc}")
            async with self.res.pool.acquire() as conn:
                await run_outcomes.fail(
                    conn,
                    run_id,
                    stage="execution",
                    code=exc.code,
                    message=str(exc),
                    version=claimed.lease_version,
                )
            await self._wake()
            return ACK
        async with self.res.pool.acquire() as conn:
            await store.mark_running(
                conn,
                run_id,
                claimed.lease_version,
                session_id=session_id,
                configuration_id=config_id,
                max_run_seconds=claimed.max_run_seconds,
            )
        return ACK

    async def start_session(self, run: RunRecord, configuration_id: uuid.UUID) -> uuid.UUID:
        """Create (or find, by its idempotency key) the run's session, sandbox immediate."""
        enrichment = run.enrichment_json or {}
        new = NewSession(
            org_id=run.org_id,
            created_by=run.created_by,
            configuration_id=configuration_id,
            client_type="automation",
            sandbox_mode="immediate",
            sandbox_provider=self.settings.sandbox_provider,
            initial_prompt=automation_prompt(run, enrichment),
            title=f"{run.automation_name}: {_title(enrichment)}"[:200],
            agent_config={"model_id": run.model_id} if run.model_id else {},
            automation_id=run.automation_id,
            trigger_id=run.trigger_id,
            trigger_event_id=run.trigger_event_id,
            trigger_context=enrichment,
            idempotency_key=f"run:{run.id}:session",
        )
        try:
            record, _ = await create_session(
                self.res.pool, self.res.js, self.res.subjects, self.settings, new
            )
        except asyncpg.ForeignKeyViolationError as exc:
            raise SessionStartError("missing_configuration", str(exc), permanent=True) from exc
        except Exception as exc:  # Postgres, NATS or Ray hiccup: the step is retried
            raise SessionStartError(
                "session_start_failed", f"{type(exc).__name__}: {exc}", permanent=False
            ) from exc
        return record.id

    async def _finalize_forever(self) -> None:
        while True:
            await asyncio.sleep(self.finalize_every)
            try:
                await self.finalize()
            except Exception:  # the next round tries again
                log.exception("%s: finalizer failed", self.name)

    async def finalize(self) -> dict[str, int]:
        """Settle overdue active runs once (one member at a time, under an advisory lock);
        returns counts by decision."""
        decisions: dict[str, int] = {}
        async with self.res.pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", FINALIZER_LOCK_ID):
                return decisions
            try:
                for run in await run_finalizer.overdue(conn, idle_seconds=self.idle_seconds):
                    decision = await self._finalize_one(conn, run)
                    decisions[decision] = decisions.get(decision, 0) + 1
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", FINALIZER_LOCK_ID)
        if decisions.keys() - _QUIET_DECISIONS:
            await self._wake()
        return decisions

    async def _finalize_one(self, conn: asyncpg.Connection, run: RunRecord) -> str:
        now = time.time()
        if run.status == "running" and run.deadline_at and run.deadline_at.timestamp() < now:
            await run_outcomes.fail(
                conn,
                run.id,
                stage="execution",
                code="deadline_exceeded",
                message="the run passed its deadline",
                status="timed_out",
            )
            return "timed_out"
        if run.status != "running":
            if await run_finalizer.requeue(conn, run):
                return "requeued"
            await run_outcomes.fail(
                conn,
                run.id,
                stage=run.status,
                code="stalled",
                message=f"the run made no progress while {run.status}",
            )
            return "stalled"
        if run.session_id is None:
            await run_outcomes.fail(
                conn,
                run.id,
                stage="execution",
                code="missing_session",
                message="the run has no session",
            )
            return "missing_session"
        state = await run_finalizer.session_state(conn, run.session_id)
        if state is None or state.status == "stopped":
            return await settle_ended_session(conn, run)
        if state.status == "failed":
            return await self._revive(conn, run)
        await store.touch(conn, run.id)
        return "waiting"

    async def _revive(self, conn: asyncpg.Connection, run: RunRecord) -> str:
        """A failed session has not ended (its agent may even still be working): ask it to
        boot again rather than judging the run, up to :data:`SESSION_REVIVALS` times."""
        assert run.session_id is not None
        if not await run_finalizer.note_revival(conn, run, max_revivals=SESSION_REVIVALS):
            await run_outcomes.fail(
                conn,
                run.id,
                stage="execution",
                code="sandbox_dead",
                message=f"the session failed to start {SESSION_REVIVALS} times",
            )
            return "sandbox_dead"
        try:
            handle = await get_session_actor(str(run.session_id), self.settings)
            # The boot itself runs in the background; only its start is waited for.
            await asyncio.wait_for(call_actor(handle, "eager_start"), REVIVE_TIMEOUT_SECONDS)
        except Exception as exc:  # Ray hiccup or a slow actor: the next round asks again
            log.warning("%s: reviving session %s failed: %s", self.name, run.session_id, exc)
        return "revived"

    async def _wake(self) -> None:
        with contextlib.suppress(Exception):
            await self.res.nats.publish(self.res.subjects.outbox_wake, b"")
