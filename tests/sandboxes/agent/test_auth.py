"""Bearer auth: health is open, every other route needs the token (401 missing, 403 wrong)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from sandboxes.agent.app import create_app
from sandboxes.agent.config import SandboxAgentConfig
from tests.sandboxes.agent.conftest import AUTH, TOKEN, Agent

PROTECTED = [
    ("GET", "/api/services"),
    ("POST", "/api/services"),
    ("DELETE", "/api/services/web"),
    ("GET", "/api/logs/web"),
    ("POST", "/api/expose"),
    ("GET", "/api/expose"),
    ("GET", "/api/git/repos"),
    ("GET", "/api/git/status?repo=Lg"),
    ("GET", "/api/git/diff?repo=Lg"),
    ("GET", "/api/terminal"),
    ("POST", "/api/env/apply"),
    ("POST", "/api/env/scrub"),
    ("GET", "/api/auth/check"),
]


async def test_health_is_open(agent: Agent) -> None:
    response = await agent.client.get("/api/health")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_missing_token_is_401(agent: Agent, method: str, path: str) -> None:
    response = await agent.client.request(method, path)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_wrong_token_is_403(agent: Agent, method: str, path: str) -> None:
    response = await agent.client.request(
        method, path, headers={"Authorization": f"Bearer {TOKEN}x"}
    )
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "forbidden"


async def test_other_scheme_is_403(agent: Agent) -> None:
    response = await agent.client.get("/api/services", headers={"Authorization": "Basic abc"})
    assert response.status == 403


async def test_right_token_passes(agent: Agent) -> None:
    response = await agent.client.get("/api/auth/check", headers=AUTH)
    assert response.status == 200


async def test_query_token_only_for_headerless_routes(agent: Agent) -> None:
    # ?token= is for browser WebSockets/EventSource only; elsewhere it counts as no credential.
    response = await agent.client.get(f"/api/services?token={TOKEN}")
    assert response.status == 401
    response = await agent.client.get(f"/api/logs/none?token={TOKEN}x")
    assert response.status == 403
    response = await agent.client.get(f"/api/logs/none?token={TOKEN}")
    assert response.status == 404


async def test_unknown_route_with_token_is_json_404(agent: Agent) -> None:
    response = await agent.client.get("/api/nope", headers=AUTH)
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_no_configured_token_denies_everything(tmp_path: Path) -> None:
    config = SandboxAgentConfig(token=None, workspace=tmp_path, state_dir=tmp_path, port=1)
    client = TestClient(TestServer(create_app(config), host="127.0.0.1"))
    await client.start_server()
    try:
        assert (await client.get("/api/health")).status == 200
        assert (await client.get("/api/services")).status == 401
        denied = await client.get("/api/services", headers=AUTH)
        assert denied.status == 403
        for empty in ("Bearer ", "Bearer"):
            response = await client.get("/api/services", headers={"Authorization": empty})
            assert response.status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/api/terminal", headers=AUTH)
        assert refused.value.status == 403
    finally:
        await client.close()
