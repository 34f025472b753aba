"""Service logs as SSE: existing lines, then lines written while the client listens."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from sandboxes.agent.logs import LineTail
from tests.sandboxes.agent.conftest import AUTH, Agent, wait_for


async def _read_events(response: aiohttp.ClientResponse, until: str) -> list[str]:
    events: list[str] = []
    async with asyncio.timeout(10):
        while True:
            raw = await response.content.readline()
            if not raw:
                return events
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                events.append(line[6:])
                if events[-1] == until:
                    return events


async def test_logs_stream_existing_then_new_lines(agent: Agent) -> None:
    gate = agent.workspace / "gate"
    wait_gate = f"while [ ! -e {gate} ]; do sleep 0.05; done"
    command = f"echo one; echo two; {wait_gate}; echo three; sleep 30"
    response = await agent.client.post(
        "/api/services", json={"name": "talker", "command": command}, headers=AUTH
    )
    assert response.status == 201
    log_path = agent.config.state_dir / "services" / "talker.log"
    await wait_for(lambda: log_path.exists() and b"two" in log_path.read_bytes())

    stream = await agent.client.get("/api/logs/talker", headers=AUTH)
    assert stream.status == 200
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    assert await _read_events(stream, "two") == ["one", "two"]
    gate.touch()  # only now does the service write its third line
    assert await _read_events(stream, "three") == ["three"]
    stream.close()


async def test_logs_without_follow_end_after_existing_content(agent: Agent) -> None:
    response = await agent.client.post(
        "/api/services",
        json={"name": "once", "command": "printf 'a\\nb\\r\\nlast'"},
        headers=AUTH,
    )
    assert response.status == 201
    await wait_for(lambda: (agent.config.state_dir / "services" / "once.log").stat().st_size == 9)
    stream = await agent.client.get("/api/logs/once?follow=0", headers=AUTH)
    body = await stream.text()  # returns: the stream ends
    assert body == "data: a\n\ndata: b\n\ndata: last\n\n"


async def test_logs_of_unknown_service_is_404(agent: Agent) -> None:
    response = await agent.client.get("/api/logs/ghost", headers=AUTH)
    assert response.status == 404
    response = await agent.client.get("/api/logs/..%2Fenv.json", headers=AUTH)
    assert response.status in (400, 404)


def test_line_tail_restarts_after_truncation(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_bytes(b"old 1\nold 2\npart")
    tail = LineTail(path)
    assert tail.read_lines() == [b"old 1", b"old 2"]
    assert tail.take_partial() == [b"part"]
    path.write_bytes(b"new\n")  # a restart truncates the log
    assert tail.read_lines() == [b"new"]
    with path.open("ab") as handle:
        handle.write(b"x\ry\n")
    assert tail.read_lines() == [b"x", b"y"]
