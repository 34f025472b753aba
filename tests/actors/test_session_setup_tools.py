"""The setup-session tool and the env-variables request, through the session's ToolRunner."""

from __future__ import annotations

import asyncpg
from nats.js import JetStreamContext

from actors.session.core import SessionCore
from actors.session.runtime import ProviderFactory
from actors.session.tools import ToolRunner
from core.settings import Settings
from schemas.session_ws import ToolStart
from store import configurations as configurations_store
from tests.actors.conftest import SessionFactory
from tests.actors.test_session_core import wait_for
from tests.fakes.opencode import FakeOpenCode


async def test_save_service_commands_stores_them_on_the_configuration(
    settings: Settings,
    pool: asyncpg.Pool,
    js: JetStreamContext,
    make_session: SessionFactory,
    fake_opencode: FakeOpenCode,
    provider_factory: ProviderFactory,
) -> None:
    probe = await make_session()
    async with pool.acquire() as conn:
        config = await configurations_store.create_configuration(conn, probe.org_id, "web app")
    record = await make_session(session_type="setup", configuration_id=config.id)
    # make_session creates a new org per call; the configuration must be the session's own.
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE configurations SET org_id = $1 WHERE id = $2", record.org_id, config.id
        )
    core = SessionCore(str(record.id), settings, provider_factory)
    tools = ToolRunner(core)
    commands = [
        {"name": "web", "command": "npm run dev", "cwd": "app"},
        {"name": "db", "command": "postgres -D data"},
    ]
    try:
        await core.ensure_ready()
        answer = await tools.call("save_service_commands", "svc-1", {"commands": commands})
        assert answer.success, answer.result
        assert answer.data == {"configurationId": str(config.id), "commandCount": 2}
        stored = await configurations_store.get_configuration(pool, config.id, record.org_id)
        assert stored is not None
        assert [(c["name"], c["command"]) for c in stored.service_commands] == [
            ("web", "npm run dev"),
            ("db", "postgres -D data"),
        ]
        assert stored.service_commands[0]["cwd"] == "app"
    finally:
        await tools.close()
        await core.close()


async def test_request_env_variables_answers_at_once_and_shows_clients_the_form(
    settings: Settings,
    pool: asyncpg.Pool,
    js: JetStreamContext,
    make_session: SessionFactory,
    fake_opencode: FakeOpenCode,
    provider_factory: ProviderFactory,
) -> None:
    record = await make_session()
    sid = str(record.id)
    core = SessionCore(sid, settings, provider_factory)
    tools = ToolRunner(core)
    keys = [
        {"key": "STRIPE_KEY", "description": "test-mode key", "type": "secret"},
        {"key": "PORT", "type": "env", "required": False, "suggestions": [{"label": "3000"}]},
    ]
    try:
        await core.ensure_ready()
        answer = await tools.call("request_env_variables", "env-1", {"keys": keys})
        assert answer.success
        assert "STRIPE_KEY" in answer.result and "PORT" in answer.result
        found = await wait_for(js, settings, sid, ToolStart)
        starts = [e for _, e in found if isinstance(e, ToolStart)]
        assert [(s.tool, s.tool_call_id) for s in starts] == [("request_env_variables", "env-1")]
        assert [k["key"] for k in starts[0].args["keys"]] == ["STRIPE_KEY", "PORT"]
    finally:
        await tools.close()
        await core.close()
