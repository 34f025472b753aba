"""The service manager over HTTP, with real processes in their own sessions."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from sandboxes.agent.procs import is_alive
from tests.sandboxes.agent.conftest import AUTH, Agent, wait_for


async def _start(agent: Agent, name: str, command: str, **extra: Any) -> dict[str, Any]:
    response = await agent.client.post(
        "/api/services", json={"name": name, "command": command, **extra}, headers=AUTH
    )
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def _services(agent: Agent) -> dict[str, dict[str, Any]]:
    response = await agent.client.get("/api/services", headers=AUTH)
    assert response.status == 200
    return {s["name"]: s for s in (await response.json())["services"]}


def _pid_in(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text else None


async def _wait_pid(path: Path) -> int:
    await wait_for(lambda: _pid_in(path) is not None)
    pid = _pid_in(path)
    assert pid is not None
    return pid


async def _wait_status(agent: Agent, name: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        service = (await _services(agent))[name]
        if service["status"] == status:
            return service
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never became {status}: {service}")


async def test_start_and_list(agent: Agent) -> None:
    started = await _start(agent, "web", "sleep 30")
    assert started["status"] == "running"
    assert started["cwd"] == "."
    assert is_alive(started["pid"])
    listed = await _services(agent)
    assert listed["web"]["pid"] == started["pid"]
    assert listed["web"]["command"] == "sleep 30"
    assert listed["web"]["exit_code"] is None
    assert listed["web"]["started_at"] <= time.time()


async def test_stop_kills_child_and_grandchild(agent: Agent) -> None:
    ws = agent.workspace
    # bash -c (leader) → sh (child, backgrounded) → sleep (grandchild, backgrounded).
    command = "sh -c 'sleep 300 & echo $! > grandchild.pid; wait' & echo $! > child.pid; wait"
    started = await _start(agent, "tree", command)
    child = await _wait_pid(ws / "child.pid")
    grandchild = await _wait_pid(ws / "grandchild.pid")
    assert is_alive(child) and is_alive(grandchild)

    response = await agent.client.delete("/api/services/tree", headers=AUTH)
    assert response.status == 200
    stopped = await response.json()
    assert stopped["status"] == "stopped"
    assert not is_alive(started["pid"])
    assert not is_alive(child)
    assert not is_alive(grandchild)


async def test_stop_escalates_to_sigkill_after_grace(agent: Agent) -> None:
    ws = agent.workspace
    command = "trap '' TERM; sleep 300 & echo $! > stubborn.pid; wait; wait"
    started = await _start(agent, "stubborn", command)
    child = await _wait_pid(ws / "stubborn.pid")
    began = time.monotonic()
    response = await agent.client.delete("/api/services/stubborn", headers=AUTH)
    elapsed = time.monotonic() - began
    assert response.status == 200
    assert not is_alive(started["pid"]) and not is_alive(child)
    # The fixture's grace is 1 s: SIGTERM was ignored, SIGKILL came after it.
    assert 0.9 <= elapsed < 5


async def test_start_replaces_running_service_of_same_name(agent: Agent) -> None:
    ws = agent.workspace
    first = await _start(agent, "api", "sleep 300 & echo $! > first.pid; wait")
    first_child = await _wait_pid(ws / "first.pid")
    second = await _start(agent, "api", "sleep 300")
    assert second["pid"] != first["pid"]
    assert not is_alive(first["pid"]) and not is_alive(first_child)
    assert is_alive(second["pid"])
    listed = await _services(agent)
    assert list(listed) == ["api"]
    assert listed["api"]["pid"] == second["pid"]
    assert listed["api"]["status"] == "running"


async def test_nonzero_exit_is_error_and_zero_is_stopped(agent: Agent) -> None:
    await _start(agent, "bad", "exit 3")
    await _start(agent, "good", "true")
    bad = await _wait_status(agent, "bad", "error")
    good = await _wait_status(agent, "good", "stopped")
    assert bad["exit_code"] == 3
    assert good["exit_code"] == 0


async def test_cwd_inside_workspace(agent: Agent) -> None:
    (agent.workspace / "app").mkdir()
    started = await _start(agent, "pwd", "pwd > where.txt", cwd="app")
    assert started["cwd"] == "app"
    await _wait_status(agent, "pwd", "stopped")
    assert (agent.workspace / "app" / "where.txt").read_text().strip() == str(
        agent.workspace / "app"
    )


async def test_cwd_outside_workspace_is_refused(agent: Agent, tmp_path: Path) -> None:
    (agent.workspace / "out").symlink_to(tmp_path)
    for cwd in ("..", "/tmp", "app/../..", "out"):
        response = await agent.client.post(
            "/api/services", json={"name": "x", "command": "true", "cwd": cwd}, headers=AUTH
        )
        assert response.status == 403, cwd
        error = (await response.json())["error"]
        assert error == {
            "code": "path_outside_workspace",
            "message": error["message"],
            "field": "cwd",
        }
    assert await _services(agent) == {}


async def test_bad_requests(agent: Agent) -> None:
    cases = [
        ({"name": "../x", "command": "true"}, "invalid_name", "name"),
        ({"name": "x", "command": "  "}, "invalid_command", "command"),
        ({"name": "x"}, "invalid_body", "command"),
        ({"name": "x", "command": "true", "cwd": "missing"}, "not_a_directory", "cwd"),
    ]
    for body, code, field in cases:
        response = await agent.client.post("/api/services", json=body, headers=AUTH)
        assert response.status == 400, body
        error = (await response.json())["error"]
        assert (error["code"], error.get("field")) == (code, field)
    response = await agent.client.post("/api/services", data=b"{nope", headers=AUTH)
    assert (await response.json())["error"]["code"] == "invalid_json"


async def test_stop_unknown_service_is_404(agent: Agent) -> None:
    response = await agent.client.delete("/api/services/ghost", headers=AUTH)
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "service_not_found"


async def test_expose_round_trip(agent: Agent) -> None:
    assert await (await agent.client.get("/api/expose", headers=AUTH)).json() == {"port": None}
    response = await agent.client.post("/api/expose", json={"port": 3000}, headers=AUTH)
    assert response.status == 200
    assert await (await agent.client.get("/api/expose", headers=AUTH)).json() == {"port": 3000}
    assert (agent.config.state_dir / "expose.json").read_bytes() == b'{"port":3000}'
    response = await agent.client.post("/api/expose", json={"port": 70000}, headers=AUTH)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "port"


async def test_shutdown_stops_services(dirs: tuple[Path, Path]) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from sandboxes.agent.app import create_app
    from sandboxes.agent.config import SandboxAgentConfig

    workspace, state = dirs
    config = SandboxAgentConfig(token="t", workspace=workspace, state_dir=state, port=1)
    client = TestClient(TestServer(create_app(config), host="127.0.0.1"))
    await client.start_server()
    response = await client.post(
        "/api/services",
        json={"name": "s", "command": "sleep 300"},
        headers={"Authorization": "Bearer t"},
    )
    pid = (await response.json())["pid"]
    await client.close()
    assert not is_alive(pid)
