"""The background actors in the real cluster: started once per cluster by the ingress, and
end to end: a signed GitHub webhook → run → a real session whose scripted model calls
``automation_complete`` → completion artifact in S3 (moto) → one Slack message, with every
pool actor killed (and restarted by Ray) while the run is running."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest

from actors.bootstrap import NAMESPACE, PoolSizes, ensure_background_actors
from actors.enrichment import completion_id
from artifacts.s3 import S3ArtifactStore
from core.settings import Settings
from llm.scripted import run_scripted_model
from schemas.llm import Script, ScriptRule, ScriptStep, ScriptToolCall
from store import configurations as configurations_store
from tests.api.accounts import call, sign_up
from tests.fakes.signing import sign_github
from tests.fakes.slack import FakeSlack
from tests.fixtures.automations import (
    ROLES,
    eventually,
    replace_background_actors,
    restore_background_actors,
    role_names,
    stop_background_actors,
)
from tests.fixtures.s3 import S3_TEST_CREDENTIALS, s3_endpoint  # noqa: F401

SLACK_TOKEN = "xoxb-e2e-token"
ISSUE = {
    "action": "opened",
    "issue": {
        "id": 9001,
        "number": 12,
        "title": "Search returns 500",
        "body": "Repro: search for an emoji",
        "labels": [{"name": "bug"}],
        "html_url": "https://github.com/acme/shop/issues/12",
    },
    "repository": {"full_name": "acme/shop"},
    "sender": {"login": "octocat"},
}


def test_ingress_started_each_actor_once(api_url: str, settings: Settings) -> None:
    import ray

    first = ensure_background_actors(settings)
    again = ensure_background_actors(settings)
    assert list(first) == list(again)
    sizes = PoolSizes()
    assert len(first) == sizes.triggers + sizes.runs + sizes.outbox + 2
    for name in first:
        handle = ray.get_actor(name, namespace=NAMESPACE)
        assert ray.get(handle.ready.remote(60), timeout=90), name
        status = ray.get(handle.status.remote(), timeout=30)
        assert status["name"] == name and status["ready"] is True


@pytest.fixture
async def restored(settings: Settings, api_url: str) -> AsyncIterator[None]:
    """Put the cluster's background actors back as they were after the test."""
    yield
    await restore_background_actors(settings)


async def _run_of(db: asyncpg.Pool, trigger_id: str) -> asyncpg.Record | None:
    async with db.acquire() as conn:
        return await conn.fetchrow(
            "SELECT id, status, status_reason, completion_json FROM automation_runs"
            " WHERE trigger_id = $1",
            uuid.UUID(trigger_id),
        )


async def _status_is(db: asyncpg.Pool, trigger_id: str, *statuses: str) -> asyncpg.Record | None:
    run = await _run_of(db, trigger_id)
    return run if run is not None and run["status"] in statuses else None


async def _kill_with_restart(settings: Settings) -> None:
    """Kill every pool actor the way a crash would: Ray restarts each one."""
    import ray

    def kill() -> None:
        for role in ROLES:
            for name in role_names(settings, role):
                ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=False)

    await asyncio.to_thread(kill)


async def test_webhook_to_session_to_artifact_and_slack_with_pool_restarts(
    api_url: str,
    settings: Settings,
    db: asyncpg.Pool,
    s3_endpoint: str,
    restored: None,
) -> None:
    async with (
        FakeSlack(tokens=(SLACK_TOKEN,), channels=("C0RUNS",)) as slack,
        run_scripted_model() as model,
        aiohttp.ClientSession(api_url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        wired = msgspec.structs.replace(
            settings,
            llm_base_url=model.base_url,
            llm_model="scripted",
            slack_api_url=f"{slack.url}/api",
            artifact_store="s3",
            s3_endpoint_url=s3_endpoint,
            s3_bucket="warren-e2e",
            s3_access_key_id=S3_TEST_CREDENTIALS["access_key_id"],
            s3_secret_access_key=S3_TEST_CREDENTIALS["secret_access_key"],
        )
        # Runs wait in JetStream until the model knows the run id it must report.
        await stop_background_actors(settings, ("runs",))
        await replace_background_actors(settings, wired, ("triggers", "outbox", "lifecycle"))

        me = await sign_up(http, "E2E")
        async with db.acquire() as conn:
            config = await configurations_store.create_configuration(
                conn, uuid.UUID(me.org_id), "e2e"
            )
        _, auto = await call(
            http,
            "POST",
            "/api/automations",
            json={
                "name": "Bug fixer",
                "agent_instructions": "Fix the reported bug.",
                "default_configuration_id": str(config.id),
                "notify_slack_channel": "C0RUNS",
                "notify_slack_token": SLACK_TOKEN,
            },
        )
        _, trigger = await call(
            http,
            "POST",
            "/api/triggers",
            json={
                "provider": "github",
                "automation_id": auto["id"],
                "config": {"event_types": ["issues"], "labels": ["bug"]},
            },
        )
        trigger_id = trigger["trigger"]["id"]
        signed = sign_github(ISSUE, trigger["webhook_secret"], event="issues")
        async with http.post(
            trigger["trigger"]["webhook_path"], data=signed.body, headers=signed.headers
        ) as resp:
            assert resp.status == 202, await resp.text()

        run = await eventually(lambda: _run_of(db, trigger_id), within=30)
        run_id = run["id"]
        model.model.set_script(
            Script(
                rules=(
                    ScriptRule(
                        steps=(
                            ScriptStep(
                                delay_ms=4000,
                                tool_calls=(
                                    ScriptToolCall(
                                        name="automation_complete",
                                        arguments={
                                            "run_id": str(run_id),
                                            "completion_id": completion_id(run_id),
                                            "outcome": "succeeded",
                                            "summary_markdown": "Fixed the emoji search.",
                                        },
                                    ),
                                ),
                            ),
                            ScriptStep(text="Completed."),
                        )
                    ),
                )
            )
        )
        await replace_background_actors(settings, wired, ("runs",))

        await eventually(lambda: _status_is(db, trigger_id, "running"), within=90)
        await _kill_with_restart(settings)
        done = await eventually(
            lambda: _status_is(db, trigger_id, "succeeded", "failed", "timed_out"), within=180
        )
        assert done["status"] == "succeeded", dict(done)
        completion: dict[str, Any] = done["completion_json"]
        assert completion["completion_id"] == completion_id(run_id)
        assert completion["summary_markdown"] == "Fixed the emoji search."

        async def artifact() -> bytes | None:
            store = S3ArtifactStore(
                "warren-e2e",
                endpoint_url=s3_endpoint,
                region="us-east-1",
                access_key_id=S3_TEST_CREDENTIALS["access_key_id"],
                secret_access_key=S3_TEST_CREDENTIALS["secret_access_key"],
            )
            try:
                keys = await store.list(f"runs/{run_id}/")
                if f"runs/{run_id}/completion.json" not in keys:
                    return None
                return (await store.get(f"runs/{run_id}/completion.json")).data
            finally:
                await store.close()

        stored = msgspec.json.decode(await eventually(artifact, within=60))
        assert stored["completion_id"] == completion_id(run_id)

        async def posted() -> list[dict[str, Any]]:
            return [m for m in slack.messages if str(run_id) in str(m["blocks"])]

        [message] = await eventually(posted, within=60)
        assert "Run succeeded" in message["text"]
        await asyncio.sleep(3)  # anything redelivered after the restarts has arrived by now
        assert len(await posted()) == 1
        status, history = await call(http, "GET", f"/api/runs/{run_id}/events")
        assert status == 200
        assert [e["type"] for e in history["events"]].count("completion") == 1
