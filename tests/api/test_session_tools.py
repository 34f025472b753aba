"""Tool callbacks through the real Serve app and session actor (sandbox = FakeOpenCode)."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from actors import session_client
from core.settings import Settings
from security import tokens
from store import sessions
from tests.api.accounts import assert_error, call
from tests.api.conftest import AccountFactory
from tests.api.test_session_pause import actor_alive, eventually
from tests.fakes.opencode import FakeOpenCode, fake_provider


class Sandbox:
    """Calls tools the way the sandbox's plugin does."""

    def __init__(
        self, client: aiohttp.ClientSession, session_id: str, token: str, state: Path
    ) -> None:
        self.client = client
        self.session_id = session_id
        self.token = token
        self.state = state

    async def tool(
        self, name: str, call_id: str, args: dict[str, Any], token: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return await call(
            self.client,
            "POST",
            f"/api/sessions/{self.session_id}/tools/{name}",
            json={"tool_call_id": call_id, "args": args},
            headers=headers,
        )

    def snapshots(self) -> list[str]:
        log = self.state / "snapshots.log"
        return log.read_text().split() if log.exists() else []


@pytest.fixture
async def sandbox(
    account: AccountFactory, settings: Settings, http: aiohttp.ClientSession, tmp_path: Path
) -> AsyncIterator[Sandbox]:
    owner = await account()
    status, created = await call(owner.client, "POST", "/api/sessions", json={})
    assert status == 201
    sid = created["session_id"]
    async with FakeOpenCode() as fake:
        factory = functools.partial(fake_provider, fake.url, str(tmp_path / "sandbox"))
        handle = session_client.session_actor(sid, settings, factory)
        await handle.ensure_runtime_ready.remote()
        try:
            yield Sandbox(
                http, sid, tokens.sandbox_token(settings.secret_key, sid), tmp_path / "sandbox"
            )
        finally:
            await session_client.kill_session_actor(sid)


async def test_wrong_or_missing_token_is_403(sandbox: Sandbox, settings: Settings) -> None:
    other = tokens.sandbox_token(settings.secret_key, "another-session")
    status, error = await sandbox.tool("save_snapshot", "c1", {}, token=other)
    assert status == 403
    assert_error(error, "forbidden")
    status, error = await call(
        sandbox.client,
        "POST",
        f"/api/sessions/{sandbox.session_id}/tools/save_snapshot",
        json={"tool_call_id": "c1", "args": {}},
    )
    assert status == 403
    assert sandbox.snapshots() == []


async def test_unknown_tool_is_404(sandbox: Sandbox) -> None:
    status, error = await sandbox.tool("rm_rf", "c1", {})
    assert status == 404
    assert_error(error, "not_found")


async def test_bad_args_are_400_naming_the_field(sandbox: Sandbox) -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        (
            "save_service_commands",
            {"commands": [{"name": "x" * 101, "command": "run"}]},
            "args.commands[0].name",
        ),
        ("save_service_commands", {"commands": []}, "args.commands"),
        ("verify", {"folder": 7}, "args.folder"),
        ("automation.complete", {"completion_id": "c", "outcome": "succeeded"}, "args.run_id"),
        ("request_env_variables", {"keys": [{"key": "1BAD", "type": "env"}]}, "args.keys[0].key"),
    ]
    for name, args, field in cases:
        status, error = await sandbox.tool(name, "c1", args)
        assert status == 400, (name, error)
        assert_error(error, "invalid", field)
    status, error = await call(
        sandbox.client,
        "POST",
        f"/api/sessions/{sandbox.session_id}/tools/verify",
        json={"args": {}},
        headers={"Authorization": f"Bearer {sandbox.token}"},
    )
    assert status == 422 or status == 400
    assert error["error"]["field"] == "tool_call_id"


async def test_retried_call_runs_once(sandbox: Sandbox) -> None:
    # Two concurrent deliveries and a late retry of the same call: one snapshot.
    (s1, first), (s2, second) = await asyncio.gather(
        sandbox.tool("save_snapshot", "call-A", {"message": "m"}),
        sandbox.tool("save_snapshot", "call-A", {"message": "m"}),
    )
    s3, third = await sandbox.tool("save_snapshot", "call-A", {"message": "m"})
    assert s1 == s2 == s3 == 200
    assert first == second == third and first["success"] is True
    assert sandbox.snapshots() == [first["data"]["snapshotId"]]
    # A new call id is a new snapshot.
    status, other = await sandbox.tool("save_snapshot", "call-B", {})
    assert status == 200 and other["data"]["snapshotId"] != first["data"]["snapshotId"]
    assert len(sandbox.snapshots()) == 2


async def test_setup_only_tool_refuses_coding_sessions(sandbox: Sandbox) -> None:
    status, response = await sandbox.tool(
        "save_service_commands", "c9", {"commands": [{"name": "web", "command": "npm start"}]}
    )
    assert status == 200
    assert response["success"] is False and "setup" in response["result"]


async def test_automation_complete_stops_the_session_and_its_actor_exits(
    sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    sid = sandbox.session_id
    args = {"run_id": "run-1", "completion_id": "done-1", "outcome": "succeeded"}
    status, answer = await sandbox.tool("automation.complete", "done-1", args)
    assert status == 200 and answer["success"] is True
    assert actor_alive(sid)

    async def stopped() -> bool:
        record = await sessions.get_session(db, uuid.UUID(sid))
        return record is not None and record.status == "stopped"

    await eventually(stopped)
    # The session is over: its detached actor (and its NATS connection) goes too.
    await eventually(lambda: asyncio.sleep(0, not actor_alive(sid)), within=30)
    record = await sessions.get_session(db, uuid.UUID(sid))
    assert record is not None and record.stop_reason == "completed"
    # A late retry of the same completion still gets its recorded answer.
    status, again = await sandbox.tool("automation.complete", "done-1", args)
    assert status == 200 and again == answer
