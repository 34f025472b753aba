"""Dead letters through the cluster's real pools (Ray actors on JetStream) and the real
routes: a message a pool gives up on is parked for its org, listed, replayed to its
original subject once (409 after), and invisible to other orgs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec

from actors.enrichment import completion_id
from core.bus import Subjects, connect
from core.settings import Settings
from schemas.dead_letters import DeadLetter
from schemas.sessions import NewSession, SessionLifecycleEvent
from schemas.triggers import TriggerContext
from store import configurations, runs, sessions, triggers
from tests.api.accounts import Account, assert_error, call
from tests.api.conftest import AccountFactory
from tests.fixtures.automations import eventually


async def _publish(settings: Settings, subject: str, data: bytes) -> None:
    nc = await connect(settings.nats_url, name="test-dead-letter-publisher")
    try:
        await nc.jetstream().publish(subject, data)
    finally:
        await nc.close()


async def _dead_letters(owner: Account, **query: str) -> list[dict[str, Any]]:
    suffix = "".join(f"&{k}={v}" for k, v in query.items())
    status, body = await call(owner.client, "GET", f"/api/dead-letters?limit=200{suffix}")
    assert status == 200, body
    letters: list[dict[str, Any]] = body["dead_letters"]
    return letters


async def test_trigger_pool_dead_letter_is_listed_and_replayed_once(
    account: AccountFactory, settings: Settings
) -> None:
    owner, stranger = await account(), await account()
    status, created = await call(owner.client, "POST", "/api/triggers", json={"provider": "custom"})
    assert status == 201, created
    trigger_id = created["trigger"]["id"]
    subject = Subjects(settings.nats_prefix).trigger_events(f"custom.{trigger_id}")
    await _publish(settings, subject, b'{"title": 42}')  # not a CustomTriggerMessage

    async def parked() -> list[dict[str, Any]]:
        return [d for d in await _dead_letters(owner) if d["subject"] == subject]

    [letter] = await eventually(parked, within=60)
    assert letter["consumer"] == "trigger-pool" and letter["reason"] == "malformed"
    assert letter["data"] == {"title": 42} and letter["replayed_at"] is None

    assert await _dead_letters(stranger) == []
    for method, path in (
        ("GET", f"/api/dead-letters/{letter['id']}"),
        ("POST", f"/api/dead-letters/{letter['id']}/replay"),
    ):
        status, body = await call(stranger.client, method, path)
        assert status == 404, body
        assert_error(body, "not_found")

    status, replayed = await call(owner.client, "POST", f"/api/dead-letters/{letter['id']}/replay")
    assert status == 202, replayed
    assert replayed["replayed_at"] is not None and replayed["replayed_by"] == owner.user_id
    status, again = await call(owner.client, "POST", f"/api/dead-letters/{letter['id']}/replay")
    assert status == 409, again
    assert_error(again, "conflict")

    # The replay reached the original subject: the pool saw the message again, once.
    async def parked_twice() -> list[dict[str, Any]] | None:
        found = await parked()
        return found if len(found) == 2 else None

    newer, older = await eventually(parked_twice, within=60)
    assert older["id"] == letter["id"] and newer["stream_seq"] > older["stream_seq"]


async def _running_run_without_session(db: asyncpg.Pool, org_id: uuid.UUID) -> uuid.UUID:
    """A run claimed for execution whose session is not recorded yet (committed at once, so
    the cluster's pools never see it queued)."""
    async with db.acquire() as conn, conn.transaction():
        automation_id = await conn.fetchval(
            "INSERT INTO automations (org_id, name) VALUES ($1, 'Parked') RETURNING id", org_id
        )
        target = await triggers.target_by_id(
            conn, await triggers.manual_trigger(conn, org_id, automation_id)
        )
        assert target is not None
        recorded = await triggers.record_event(
            conn,
            target,
            TriggerContext(
                provider="webhook",
                event_type="manual_trigger",
                title="Parked",
                external_id="m",
                dedup_key=f"manual:{uuid.uuid4()}",
            ),
            received_at=datetime.now(UTC),
        )
        assert recorded.run_id is not None
        await conn.execute(
            "UPDATE automation_runs SET status = 'running' WHERE id = $1", recorded.run_id
        )
    return recorded.run_id


async def test_lifecycle_completion_out_of_deliveries_is_parked_and_replay_completes_the_run(
    account: AccountFactory, settings: Settings, db: asyncpg.Pool
) -> None:
    owner = await account()
    org_id = uuid.UUID(owner.org_id)
    run_id = await _running_run_without_session(db, org_id)
    async with db.acquire() as conn:
        config = await configurations.create_configuration(
            conn, org_id, f"c-{uuid.uuid4().hex[:6]}"
        )
    session, _ = await sessions.insert_session(
        db,
        NewSession(
            org_id=org_id,
            created_by=uuid.UUID(owner.user_id),
            configuration_id=config.id,
            client_type="automation",
        ),
    )
    event = SessionLifecycleEvent(
        event="completed",
        session_id=str(session.id),
        org_id=owner.org_id,
        at=datetime.now(UTC),
        run_id=str(run_id),
        completion_id=completion_id(run_id),
        outcome="succeeded",
        summary="Done",
    )
    subject = Subjects(settings.nats_prefix).session_lifecycle
    # The run never records its session: the consumer retries the completion on every
    # delivery (20) and then parks it for the org instead of dropping it.
    await _publish(settings, subject, msgspec.json.encode(event))

    async def parked() -> dict[str, Any] | None:
        for letter in await _dead_letters(owner, consumer="run-lifecycle"):
            if letter["data"]["run_id"] == str(run_id):
                return letter
        return None

    letter = await eventually(parked, within=120)
    assert letter["reason"] == "max_deliver" and letter["subject"] == subject
    assert letter["num_delivered"] == 20
    assert "session not yet recorded" in letter["detail"]

    async with db.acquire() as conn:
        claimed = await runs.claim(
            conn, run_id, from_statuses=("running",), to_status="running", owner="test"
        )
        assert claimed is not None
        assert await runs.mark_running(
            conn,
            run_id,
            claimed.lease_version,
            session_id=session.id,
            configuration_id=config.id,
            max_run_seconds=3600,
        )
    status, body = await call(owner.client, "POST", f"/api/dead-letters/{letter['id']}/replay")
    assert status == 202, body

    async def completed() -> dict[str, Any] | None:
        _, run = await call(owner.client, "GET", f"/api/runs/{run_id}")
        return run if run["status"] != "running" else None

    run = await eventually(completed, within=60)
    assert run["status"] == "succeeded" and run["completion_id"] == completion_id(run_id)


async def test_run_pool_parks_malformed_work_without_an_org(
    api_url: str, settings: Settings, db: asyncpg.Pool
) -> None:
    subjects = Subjects(settings.nats_prefix)
    nc = await connect(settings.nats_url, name="test-dead-letter-runs")
    try:
        js = nc.jetstream()
        ack = await js.publish(subjects.runs("execute"), b'{"run_id": "not-a-uuid"}')

        async def notice() -> DeadLetter | None:
            try:
                msg = await js.get_last_msg(
                    subjects.stream("DEAD_LETTERS"), subjects.dead_letter("runs", "malformed")
                )
            except Exception:  # not there yet
                return None
            letter = msgspec.json.decode(msg.data or b"", type=DeadLetter)
            return letter if letter.stream_seq == ack.seq else None

        letter = await eventually(notice, within=60)
    finally:
        await nc.close()
    assert letter.consumer == "run-pool" and letter.org_id is None
    assert letter.subject == subjects.runs("execute")
    async with db.acquire() as conn:
        org = await conn.fetchval(
            "SELECT org_id FROM dead_letters WHERE id = $1", uuid.UUID(letter.dead_letter_id)
        )
    assert org is None  # no org to scope it to: operators see it on NATS only
