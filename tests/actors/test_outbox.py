"""The outbox dispatcher, in process against real Postgres, JetStream and a Slack fake:
notifications post once however often their row is redelivered, retries back off,
permanent errors stop at once, stuck rows are recovered, artifacts are written."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import msgspec
import pytest

from actors.outbox import OutboxDispatcher
from core.settings import Settings
from security.sealing import seal
from store import outbox, run_outcomes
from tests.fakes.slack import FakeSlack
from tests.fixtures.automations import (  # noqa: F401
    eventually,
    iso_pool,
    iso_settings,
    make_run,
)

TOKEN = "xoxb-test-token"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    """A Slack workspace with the bot in #runs (C0RUNS)."""
    async with FakeSlack(tokens=(TOKEN,), channels=("C0RUNS",)) as fake:
        yield fake


@pytest.fixture
async def dispatcher(
    iso_settings: Settings, slack: FakeSlack, tmp_path: Path
) -> AsyncIterator[OutboxDispatcher]:
    """One dispatcher pointed at the Slack fake and a local artifact folder."""
    settings = msgspec.structs.replace(
        iso_settings, slack_api_url=f"{slack.url}/api", data_dir=str(tmp_path)
    )
    member = OutboxDispatcher(settings, f"test-outbox-{uuid.uuid4().hex[:6]}", poll_interval=0.2)
    assert await member.ready(30)
    yield member
    await member.shutdown()


async def _terminal_run(
    pool: asyncpg.Pool, settings: Settings, channel: str = "C0RUNS"
) -> tuple[uuid.UUID, uuid.UUID]:
    """A run that completed (succeeded), with its outbox rows; returns (org, run)."""
    run = await make_run(
        pool,
        name="Triage",
        notify_slack_channel=channel,
        notify_slack_token_sealed=seal(settings.secret_key, "slack-token", TOKEN),
    )
    async with pool.acquire() as conn:
        await conn.execute("UPDATE automation_runs SET status = 'running' WHERE id = $1", run.id)
        await run_outcomes.complete(
            conn,
            run.id,
            completion_id="c1",
            outcome="succeeded",
            summary="Fixed *the* bug",
            completion={"outcome": "succeeded"},
        )
    return run.org_id, run.id


async def _row(pool: asyncpg.Pool, run_id: uuid.UUID, kind: str) -> outbox.OutboxRow:
    async with pool.acquire() as conn:
        row_id = await conn.fetchval(
            "SELECT id FROM outbox WHERE run_id = $1 AND kind = $2", run_id, kind
        )
        row = await outbox.get_row(conn, row_id)
    assert row is not None
    return row


async def _dispatched(pool: asyncpg.Pool, run_id: uuid.UUID, kind: str) -> bool:
    return (await _row(pool, run_id, kind)).status == "dispatched"


async def test_notification_posts_once_even_when_redelivered(
    dispatcher: OutboxDispatcher,
    slack: FakeSlack,
    iso_pool: asyncpg.Pool,
    iso_settings: Settings,
) -> None:
    org_id, run_id = await _terminal_run(iso_pool, iso_settings)
    await eventually(lambda: _dispatched(iso_pool, run_id, "notify_run_terminal"))
    [message] = [m for m in slack.messages if str(run_id) in str(m["blocks"])]
    assert message["channel"] == "C0RUNS"
    button = message["blocks"][0]["accessory"]
    assert button["text"]["text"] == "View run"
    assert button["url"] == f"{iso_settings.api_url}/#/runs/{run_id}"
    # Redeliver: the row comes back as if the dispatcher had died before marking it.
    row = await _row(iso_pool, run_id, "notify_run_terminal")
    async with iso_pool.acquire() as conn:
        await conn.execute(
            "UPDATE outbox SET status = 'pending', available_at = now() WHERE id = $1", row.id
        )
        effect = await conn.fetchrow(
            "SELECT status, response_json FROM automation_side_effects WHERE run_id = $1", run_id
        )
    await eventually(lambda: _dispatched(iso_pool, run_id, "notify_run_terminal"))
    assert len([m for m in slack.messages if str(run_id) in str(m["blocks"])]) == 1
    assert effect is not None and effect["status"] == "completed"
    assert effect["response_json"]["channel"] == "C0RUNS"
    assert org_id is not None


async def test_unknown_outcome_is_never_posted_again(
    dispatcher: OutboxDispatcher,
    slack: FakeSlack,
    iso_pool: asyncpg.Pool,
    iso_settings: Settings,
) -> None:
    # A dispatcher died after recording the effect but before Slack answered.
    org_id, run_id = await _terminal_run(iso_pool, iso_settings, channel="C0NONE")
    row = await _row(iso_pool, run_id, "notify_run_terminal")
    async with iso_pool.acquire() as conn:
        await conn.execute(
            "UPDATE outbox SET status = 'processing', claimed_by = 'gone',"
            " claimed_at = now() WHERE id = $1",
            row.id,
        )
        await outbox.begin_side_effect(
            conn,
            org_id=org_id,
            run_id=run_id,
            effect_id=f"slack:run_terminal:{run_id}:succeeded",
            kind="notify_run_terminal",
            provider="slack",
            request_hash="h",
        )
        await conn.execute(
            "UPDATE outbox SET status = 'pending', claimed_by = NULL WHERE id = $1", row.id
        )
    await eventually(lambda: _dispatched(iso_pool, run_id, "notify_run_terminal"))
    assert not [m for m in slack.messages if str(run_id) in str(m["blocks"])]


async def test_rate_limited_post_retries_with_backoff(
    dispatcher: OutboxDispatcher,
    slack: FakeSlack,
    iso_pool: asyncpg.Pool,
    iso_settings: Settings,
) -> None:
    slack.rate_limit_next(1)
    _, run_id = await _terminal_run(iso_pool, iso_settings)

    async def retried() -> outbox.OutboxRow | None:
        row = await _row(iso_pool, run_id, "notify_run_terminal")
        return row if row.attempts == 1 else None

    row = await eventually(retried)
    assert row.status == "pending" and "ratelimited" in (row.last_error or "")
    delay = (row.available_at - datetime.now(UTC)).total_seconds()
    assert 20 < delay <= 30
    async with iso_pool.acquire() as conn:
        await conn.execute("UPDATE outbox SET available_at = now() WHERE id = $1", row.id)
    await eventually(lambda: _dispatched(iso_pool, run_id, "notify_run_terminal"))
    assert len([m for m in slack.messages if str(run_id) in str(m["blocks"])]) == 1


async def test_missing_channel_fails_without_retrying(
    dispatcher: OutboxDispatcher, iso_pool: asyncpg.Pool, iso_settings: Settings
) -> None:
    _, run_id = await _terminal_run(iso_pool, iso_settings, channel="C0GONE")

    async def failed() -> outbox.OutboxRow | None:
        row = await _row(iso_pool, run_id, "notify_run_terminal")
        return row if row.status == "failed" else None

    row = await eventually(failed)
    assert row.attempts == 1 and "channel_not_found" in (row.last_error or "")


async def test_stuck_row_is_recovered_and_artifacts_written(
    dispatcher: OutboxDispatcher, iso_pool: asyncpg.Pool, iso_settings: Settings
) -> None:
    _, run_id = await _terminal_run(iso_pool, iso_settings)
    row = await _row(iso_pool, run_id, "write_artifacts")
    async with iso_pool.acquire() as conn:
        await conn.execute(
            "UPDATE outbox SET status = 'processing', claimed_by = 'dead',"
            " claimed_at = now() - interval '6 minutes' WHERE id = $1",
            row.id,
        )
    await eventually(lambda: _dispatched(iso_pool, run_id, "write_artifacts"), within=30)
    settled = await _row(iso_pool, run_id, "write_artifacts")
    assert settled.attempts == 1
    artifact = Path(dispatcher.settings.data_dir) / "artifacts"
    stored = list(artifact.rglob("completion.json"))
    assert any(str(run_id) in str(p) for p in stored)
    async with iso_pool.acquire() as conn:
        ref = await conn.fetchval(
            "SELECT completion_artifact_ref FROM automation_runs WHERE id = $1", run_id
        )
    assert ref == f"runs/{run_id}/completion.json"
