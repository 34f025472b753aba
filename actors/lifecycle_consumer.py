"""Session lifecycle → runs: completions, and sessions that ended without one.

A single actor on the durable consumer ``run-lifecycle`` of ``<prefix>.sessions.lifecycle``
(messages one at a time, so a session's ``completed`` is applied before its ``stopped``):

- ``completed`` with run_id/completion_id/outcome: records the completion once per
  completion id (``store.run_outcomes.complete``), which also enqueues ``write_artifacts`` and
  ``notify_run_terminal`` in the same transaction;
- ``stopped`` of a run's session: the session row is read; if it is stopped and holds a
  completion that is applied (the ``completed`` event may have been lost), else the run
  fails ``no_completion``;
- any other event of a run's session counts as activity for the finalizer's idle check.

Lifecycle publishing is best effort on the session side; the finalizer in actors/runs.py
reconciles runs from the ``sessions`` rows as a backstop.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg
import msgspec
from nats.aio.msg import Msg

from actors.pool import ACK, ConsumerSpec, Dead, Outcome, PoolMember, Retry
from core.bus import Subjects
from schemas.automations import CompletionOutcome
from schemas.sessions import SessionLifecycleEvent
from store import run_finalizer, run_outcomes
from store import runs as runs_store

log = logging.getLogger(__name__)
_decoder = msgspec.json.Decoder(SessionLifecycleEvent)
_OUTCOMES = ("succeeded", "failed", "needs_human")


def consumer_spec(subjects: Subjects) -> ConsumerSpec:
    """The durable consumer of lifecycle events for runs."""
    return ConsumerSpec(
        stream=subjects.stream("SESSION_LIFECYCLE"),
        durable="run-lifecycle",
        filter_subject=subjects.session_lifecycle,
        dead_source="sessions.lifecycle",
        ack_wait=30.0,
        max_deliver=20,
        batch=1,
    )


def completion_record(
    *, run_id: uuid.UUID, session_id: str, completion_id: str, outcome: str, summary: str | None
) -> dict[str, Any]:
    """The completion JSON stored on the run and written as ``completion.json``."""
    return {
        "run_id": str(run_id),
        "session_id": session_id,
        "completion_id": completion_id,
        "outcome": outcome,
        "summary_markdown": summary or "",
    }


async def apply_completion(
    conn: asyncpg.Connection,
    run: runs_store.RunRecord,
    *,
    session_id: str,
    completion_id: str,
    outcome: str,
    summary: str | None,
) -> bool:
    """Record a session's completion on its run (once per completion id)."""
    if outcome not in _OUTCOMES:
        outcome = "failed"
    checked: CompletionOutcome = outcome  # type: ignore[assignment]
    return await run_outcomes.complete(
        conn,
        run.id,
        completion_id=completion_id,
        outcome=checked,
        summary=summary,
        completion=completion_record(
            run_id=run.id,
            session_id=session_id,
            completion_id=completion_id,
            outcome=checked,
            summary=summary,
        ),
    )


async def settle_ended_session(conn: asyncpg.Connection, run: runs_store.RunRecord) -> str:
    """A run's session has ended: apply its stored completion, or fail ``no_completion``.

    The session row decides, not the event that led here: a session that is not stopped
    (only ``stopped`` is final) ends nothing, and the run waits.
    """
    assert run.session_id is not None
    ended = await run_finalizer.session_state(conn, run.session_id)
    if ended is not None and ended.status != "stopped":
        await runs_store.touch(conn, run.id)
        return "waiting"
    if ended is not None and ended.completion_id and ended.outcome:
        await apply_completion(
            conn,
            run,
            session_id=str(run.session_id),
            completion_id=ended.completion_id,
            outcome=ended.outcome,
            summary=ended.summary,
        )
        return "completed"
    await run_outcomes.fail(
        conn,
        run.id,
        stage="execution",
        code="no_completion",
        message="the session ended without calling automation_complete",
    )
    return "no_completion"


class LifecycleConsumer(PoolMember):
    """Applies session lifecycle events to runs (wrap with ``ray.remote``)."""

    def consumer_spec(self) -> ConsumerSpec:
        """The durable consumer of lifecycle events for runs."""
        return consumer_spec(Subjects(self.settings.nats_prefix))

    async def handle(self, msg: Msg) -> Outcome:
        """Apply one lifecycle event."""
        try:
            event = _decoder.decode(msg.data)
            session_id = uuid.UUID(event.session_id)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            return Dead("malformed", f"not a lifecycle event: {exc}")
        async with self.res.pool.acquire() as conn:
            if event.event == "completed" and event.run_id and event.completion_id:
                return await self._completed(conn, event, session_id)
            run = await runs_store.find_by_session(conn, session_id)
            if run is None or run.status != "running":
                return ACK
            if event.event == "stopped":
                await settle_ended_session(conn, run)
            else:
                await runs_store.touch(conn, run.id)
        return ACK

    async def org_of(self, msg: Msg) -> uuid.UUID | None:
        """The org the event names (only well-formed events are ever retried)."""
        try:
            return uuid.UUID(_decoder.decode(msg.data).org_id)
        except ValueError:
            return None

    async def _completed(
        self, conn: asyncpg.Connection, event: SessionLifecycleEvent, session_id: uuid.UUID
    ) -> Outcome:
        assert event.run_id is not None and event.completion_id is not None
        try:
            run_id = uuid.UUID(event.run_id)
        except ValueError:
            return ACK
        run = await runs_store.get_record(conn, run_id)
        if run is None:
            return ACK
        if run.session_id is None and run.status in ("ready", "running"):
            # The run pool has not recorded the session yet: try again shortly.
            return Retry(1.0, "session not yet recorded on the run")
        if run.session_id != session_id:
            log.warning(
                "%s: session %s completed run %s it does not own", self.name, session_id, run_id
            )
            return ACK
        await apply_completion(
            conn,
            run,
            session_id=event.session_id,
            completion_id=event.completion_id,
            outcome=event.outcome or "failed",
            summary=event.summary,
        )
        return ACK
