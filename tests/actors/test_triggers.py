"""The trigger pool, in process against real Postgres and JetStream: envelopes become one
run each, redelivery creates nothing twice, skips are recorded, and custom messages from
another process are ingested or dead-lettered."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest

from actors.triggers import TriggerWorker
from core.bus import Subjects, connect
from core.settings import Settings
from schemas.automations import DeadLetter, TriggerEnvelope
from schemas.triggers import TriggerContext
from store import automations
from tests.fixtures.automations import (  # noqa: F401
    eventually,
    iso_pool,
    iso_settings,
    make_webhook_trigger,
    trigger_pool_caught_up,
)


@pytest.fixture
async def pool_members(iso_settings: Settings) -> AsyncIterator[list[TriggerWorker]]:
    """Two trigger-pool members sharing the durable consumer."""
    members = [TriggerWorker(iso_settings, f"test-triggers-{i}") for i in range(2)]
    for member in members:
        assert await member.ready(30)
    yield members
    for member in members:
        await member.shutdown()


async def _trigger(
    pool: asyncpg.Pool, provider: str = "github", config: dict[str, object] | None = None
) -> tuple[uuid.UUID, uuid.UUID]:
    target = await make_webhook_trigger(pool, provider, config)
    assert target.automation_id is not None
    return target.id, target.automation_id


def _issue(action: str = "opened", labels: tuple[str, ...] = ()) -> TriggerContext:
    from integrations.github import parse_github

    body = {
        "action": action,
        "issue": {
            "id": 77,
            "number": 7,
            "title": "Crash on save",
            "labels": [{"name": n} for n in labels],
        },
        "repository": {"full_name": "acme/app"},
    }
    [ctx] = parse_github(msgspec.json.encode(body), event="issues")
    return ctx


async def _publish(settings: Settings, envelope: TriggerEnvelope, msg_id: str) -> None:
    nc = await connect(settings.nats_url, name="test-publisher")
    try:
        await nc.jetstream().publish(
            Subjects(settings.nats_prefix).trigger_events(envelope.provider),
            msgspec.json.encode(envelope),
            headers={"Nats-Msg-Id": msg_id},
        )
    finally:
        await nc.close()


async def _events(pool: asyncpg.Pool, trigger_id: uuid.UUID) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            """SELECT e.status, e.skip_reason, e.error, r.id AS run_id,
                      (SELECT count(*) FROM outbox o WHERE o.run_id = r.id) AS outbox
               FROM trigger_events e LEFT JOIN automation_runs r ON r.trigger_event_id = e.id
               WHERE e.trigger_id = $1 ORDER BY e.created_at""",
            trigger_id,
        )
    return rows


def _envelope(trigger_id: uuid.UUID, *contexts: TriggerContext) -> TriggerEnvelope:
    return TriggerEnvelope(
        provider="github",
        trigger_id=str(trigger_id),
        received_at=time.time(),
        contexts=contexts,
        raw_payload=msgspec.Raw(b'{"raw":true}'),
    )


async def test_envelope_becomes_one_run_even_when_redelivered(
    pool_members: list[TriggerWorker], iso_settings: Settings, iso_pool: asyncpg.Pool
) -> None:
    trigger_id, _ = await _trigger(iso_pool)
    envelope = _envelope(trigger_id, _issue())
    await _publish(iso_settings, envelope, "delivery-1")
    # A second delivery of the same event (another message id, same dedup key).
    await _publish(iso_settings, envelope, "delivery-2")

    async def settled() -> list[asyncpg.Record] | None:
        rows = await _events(iso_pool, trigger_id)
        done = sum(m.created_runs for m in pool_members)
        return rows if rows and done >= 1 else None

    rows = await eventually(settled)
    await trigger_pool_caught_up(iso_settings, "github")  # the duplicate was handled too
    rows = await _events(iso_pool, trigger_id)
    assert len(rows) == 1
    assert rows[0]["status"] == "processing" and rows[0]["run_id"] is not None
    assert rows[0]["outbox"] == 1
    async with iso_pool.acquire() as conn:
        raw = await conn.fetchval(
            "SELECT raw_payload FROM trigger_events WHERE trigger_id = $1", trigger_id
        )
    assert raw == {"raw": True}


async def test_disabled_automation_and_filter_mismatch_are_skipped(
    pool_members: list[TriggerWorker], iso_settings: Settings, iso_pool: asyncpg.Pool
) -> None:
    filtered, _ = await _trigger(iso_pool, config={"labels": ["bug"]})
    disabled, auto_id = await _trigger(iso_pool)
    async with iso_pool.acquire() as conn:
        org_id = await conn.fetchval("SELECT org_id FROM automations WHERE id = $1", auto_id)
        await automations.update_automation(conn, org_id, auto_id, {"enabled": False})
    await _publish(iso_settings, _envelope(filtered, _issue(labels=("docs",))), "f-1")
    await _publish(iso_settings, _envelope(disabled, _issue()), "d-1")
    skipped_filter = await eventually(lambda: _events(iso_pool, filtered))
    skipped_disabled = await eventually(lambda: _events(iso_pool, disabled))
    assert [(r["status"], r["skip_reason"], r["run_id"]) for r in skipped_filter] == [
        ("skipped", "filter_mismatch", None)
    ]
    assert [(r["status"], r["skip_reason"]) for r in skipped_disabled] == [
        ("skipped", "automation_disabled")
    ]


PUBLISHER = textwrap.dedent(
    """
    import asyncio, json, sys
    import nats

    async def main(url, prefix, trigger_id, unknown_id):
        nc = await nats.connect(url)
        js = nc.jetstream()
        subject = f"{prefix}.triggers.events.custom.{{}}"
        good = {"title": "Deploy finished", "payload": {"env": "prod"},
                "event_type": "deploy:finished", "dedup_key": "deploy-42"}
        for _ in range(2):  # the same event twice: one run
            await js.publish(subject.format(trigger_id), json.dumps(good).encode())
        await js.publish(subject.format(trigger_id), b"{not json")
        await js.publish(subject.format(trigger_id), json.dumps({"payload": {}}).encode())
        await js.publish(subject.format(unknown_id), json.dumps(good).encode())
        await nc.close()

    asyncio.run(main(*sys.argv[1:]))
    """
)


async def test_custom_publisher_in_another_process(
    pool_members: list[TriggerWorker], iso_settings: Settings, iso_pool: asyncpg.Pool
) -> None:
    trigger_id, _ = await _trigger(iso_pool, provider="custom")
    unknown = uuid.uuid4()
    proc = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-c",
            PUBLISHER,
            iso_settings.nats_url,
            iso_settings.nats_prefix,
            str(trigger_id),
            str(unknown),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr

    async def four_events() -> list[asyncpg.Record] | None:
        rows = await _events(iso_pool, trigger_id)
        return rows if len(rows) >= 3 else None

    rows = await eventually(four_events)
    await trigger_pool_caught_up(iso_settings, f"custom.{unknown}")  # the last one published
    rows = await _events(iso_pool, trigger_id)
    runs = [r for r in rows if r["run_id"] is not None]
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(runs) == 1 and len(failed) == 2 and len(rows) == 3
    assert all(r["error"].startswith("malformed:") for r in failed)
    async with iso_pool.acquire() as conn:
        ctx = await conn.fetchval(
            "SELECT parsed_context FROM trigger_events"
            " WHERE trigger_id = $1 AND status <> 'failed'",
            trigger_id,
        )
    assert ctx["title"] == "Deploy finished" and ctx["webhook"]["payload"] == {"env": "prod"}
    assert ctx["dedup_key"] == "custom:deploy-42"

    subjects = Subjects(iso_settings.nats_prefix)
    nc = await connect(iso_settings.nats_url, name="test-reader")
    try:
        js = nc.jetstream()
        stream = subjects.stream("TRIGGER_EVENTS")
        unknown_letter = msgspec.json.decode(
            (await js.get_last_msg(stream, subjects.trigger_dead_letter("unknown_trigger"))).data
            or b"",
            type=DeadLetter,
        )
        malformed_letter = msgspec.json.decode(
            (await js.get_last_msg(stream, subjects.trigger_dead_letter("malformed"))).data or b"",
            type=DeadLetter,
        )
    finally:
        await nc.close()
    assert unknown_letter.subject.endswith(str(unknown)) and unknown_letter.trigger_id is None
    assert malformed_letter.trigger_id == str(trigger_id)
    assert sum(m.dead_letters for m in pool_members) == 3
