"""Session lifecycle → runs, in process: a completion is recorded once per completion id
(with its artifacts and notification enqueued), a session that stops without one fails
its run, and a completion stored on the session is used when its event was lost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import msgspec

from actors.lifecycle_consumer import LifecycleConsumer
from core.bus import Subjects, connect, declare_streams
from core.settings import Settings
from schemas.dead_letters import DeadLetter
from schemas.sessions import LifecycleKind, NewSession, SessionLifecycleEvent
from store import configurations, runs, sessions
from tests.fixtures.automations import (  # noqa: F401
    eventually,
    iso_pool,
    iso_settings,
    lifecycle_consumer,
    make_run,
)


async def _running_run(pool: asyncpg.Pool) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """(org, run, session) of a run that is running in a session."""
    run = await make_run(pool)
    async with pool.acquire() as conn:
        config = await configurations.create_configuration(
            conn, run.org_id, f"cfg-{uuid.uuid4().hex[:6]}"
        )
    session, _ = await sessions.insert_session(
        pool,
        NewSession(
            org_id=run.org_id,
            created_by=run.created_by,
            client_type="automation",
            configuration_id=config.id,
            idempotency_key=f"run:{run.id}:session",
        ),
    )
    async with pool.acquire() as conn:
        await conn.execute("UPDATE automation_runs SET status = 'ready' WHERE id = $1", run.id)
        claimed = await runs.claim(
            conn, run.id, from_statuses=("ready",), to_status="running", owner="test"
        )
        assert claimed is not None
        assert await runs.mark_running(
            conn,
            run.id,
            claimed.lease_version,
            session_id=session.id,
            configuration_id=config.id,
            max_run_seconds=3600,
        )
    return run.org_id, run.id, session.id


async def _publish(settings: Settings, event: SessionLifecycleEvent) -> None:
    nc = await connect(settings.nats_url, name="test-lifecycle-publisher")
    try:
        await nc.jetstream().publish(
            Subjects(settings.nats_prefix).session_lifecycle, msgspec.json.encode(event)
        )
    finally:
        await nc.close()


def _event(
    kind: LifecycleKind, org: uuid.UUID, session: uuid.UUID, **fields: str
) -> SessionLifecycleEvent:
    return SessionLifecycleEvent(
        event=kind,
        session_id=str(session),
        org_id=str(org),
        at=datetime.now(UTC),
        **fields,
    )


async def _stop(pool: asyncpg.Pool, session: uuid.UUID, reason: str) -> None:
    """Mark the session row stopped, as the session actor does before announcing it."""
    async with pool.acquire() as conn:
        assert await sessions.mark_stopped(conn, session, reason)


async def _settled(pool: asyncpg.Pool, run_id: uuid.UUID) -> tuple[str, str | None]:
    """(status, reason) once the run is no longer running."""

    async def settled() -> tuple[str, str | None] | None:
        status = await _status(pool, run_id)
        return status if status[0] != "running" else None

    return await eventually(settled)


async def _status(pool: asyncpg.Pool, run_id: uuid.UUID) -> tuple[str, str | None]:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT status, status_reason FROM automation_runs WHERE id = $1", run_id
        )
    assert row is not None
    return row[0], row[1]


async def test_completion_is_applied_once(
    lifecycle_consumer: LifecycleConsumer, iso_pool: asyncpg.Pool, iso_settings: Settings
) -> None:
    org, run_id, session = await _running_run(iso_pool)
    done = _event(
        "completed",
        org,
        session,
        run_id=str(run_id),
        completion_id="cmp-1",
        outcome="needs_human",
        summary="Need a decision on the schema",
    )
    await _publish(iso_settings, done)
    await _publish(iso_settings, done)  # redelivered / duplicated
    await _stop(iso_pool, session, "completed")
    await _publish(iso_settings, _event("stopped", org, session, reason="completed"))

    assert await _settled(iso_pool, run_id) == ("needs_human", "agent_reported")
    async with iso_pool.acquire() as conn:
        run = await runs.get_record(conn, run_id)
        kinds = [
            r[0]
            for r in await conn.fetch(
                "SELECT kind FROM outbox WHERE run_id = $1 ORDER BY id", run_id
            )
        ]
    assert run is not None and run.completion_id == "cmp-1"
    assert run.completion_json is not None
    assert run.completion_json["summary_markdown"] == "Need a decision on the schema"
    assert kinds.count("notify_run_terminal") == 1 and kinds.count("write_artifacts") == 1


async def test_session_stopped_without_completion_fails_the_run(
    lifecycle_consumer: LifecycleConsumer, iso_pool: asyncpg.Pool, iso_settings: Settings
) -> None:
    org, run_id, session = await _running_run(iso_pool)
    await _stop(iso_pool, session, "error")
    await _publish(iso_settings, _event("stopped", org, session, reason="error"))

    assert await _settled(iso_pool, run_id) == ("failed", "no_completion")


async def test_lost_completion_event_is_recovered_from_the_session(
    lifecycle_consumer: LifecycleConsumer, iso_pool: asyncpg.Pool, iso_settings: Settings
) -> None:
    org, run_id, session = await _running_run(iso_pool)
    await sessions.record_completion(
        iso_pool, session, completion_id="cmp-9", outcome="succeeded", summary="Done"
    )
    await _stop(iso_pool, session, "completed")
    await _publish(iso_settings, _event("stopped", org, session, reason="completed"))

    assert await _settled(iso_pool, run_id) == ("succeeded", None)


async def test_stopped_event_of_a_session_not_stopped_ends_nothing(
    lifecycle_consumer: LifecycleConsumer, iso_pool: asyncpg.Pool, iso_settings: Settings
) -> None:
    """A ``stopped`` event whose session row is not stopped (a stale or duplicated notice)
    must not fail the run: its completion, applied after it, still counts."""
    org, run_id, session = await _running_run(iso_pool)
    await _publish(iso_settings, _event("stopped", org, session, reason="error"))
    await _publish(
        iso_settings,
        _event(
            "completed",
            org,
            session,
            run_id=str(run_id),
            completion_id="cmp-late",
            outcome="succeeded",
            summary="Done",
        ),
    )

    assert await _settled(iso_pool, run_id) == ("succeeded", None)


async def test_a_dead_letter_that_cannot_be_stored_is_kept_until_it_can(
    lifecycle_consumer: LifecycleConsumer, iso_pool: asyncpg.Pool, iso_settings: Settings
) -> None:
    """Parking fails (its stream is gone): the message is not acked, and a later delivery
    parks it once the stream is back — one row, one notice."""
    subjects = Subjects(iso_settings.nats_prefix)
    dead_stream = subjects.stream("DEAD_LETTERS")
    nc = await connect(iso_settings.nats_url, name="test-dead-letters")
    try:
        js = nc.jetstream()
        await js.delete_stream(dead_stream)
        try:
            ack = await js.publish(subjects.session_lifecycle, b"not a lifecycle event")

            async def failed() -> bool:
                loop = lifecycle_consumer.loop
                return loop is not None and loop.park_failures > 0

            await eventually(failed)
        finally:
            await declare_streams(js, subjects, max_bytes=64 * 1024**2)

        async def notice() -> DeadLetter | None:
            try:
                msg = await js.get_last_msg(
                    dead_stream, subjects.dead_letter("sessions.lifecycle", "malformed")
                )
            except Exception:  # not there yet
                return None
            letter = msgspec.json.decode(msg.data or b"", type=DeadLetter)
            return letter if letter.stream_seq == ack.seq else None

        letter = await eventually(notice)
    finally:
        await nc.close()
    async with iso_pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT id, org_id, reason, num_delivered FROM dead_letters
               WHERE consumer = 'run-lifecycle' AND stream_seq = $1""",
            ack.seq,
        )
    [row] = rows
    assert letter.consumer == "run-lifecycle" and letter.dead_letter_id == str(row["id"])
    # Stored on the first delivery; the notice (and the ack) came with a later one.
    assert row["reason"] == "malformed" and row["org_id"] is None and row["num_delivered"] == 1
    assert letter.data_text == "not a lifecycle event"
