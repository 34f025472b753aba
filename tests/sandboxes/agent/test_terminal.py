"""The terminal WebSocket: bash on a real PTY, resize frames, teardown of the whole session."""

from __future__ import annotations

import asyncio
import json
import re

import aiohttp
import pytest

from sandboxes.agent.procs import is_alive
from tests.sandboxes.agent.conftest import AUTH, TOKEN, Agent, wait_for


async def _read_until(ws: aiohttp.ClientWebSocketResponse, pattern: str) -> re.Match[str]:
    """Collect output frames until ``pattern`` matches.

    Lines of output start after ``\r`` or ``\n`` (bash may emit escape codes then ``\r``).
    """
    seen = ""
    regex = re.compile(pattern)
    async with asyncio.timeout(10):
        while True:
            message = await ws.receive()
            assert message.type == aiohttp.WSMsgType.TEXT, message
            seen += message.data
            match = regex.search(seen)
            if match:
                return match


async def test_echo_round_trip(agent: Agent) -> None:
    async with agent.client.ws_connect("/api/terminal", headers=AUTH) as ws:
        await ws.send_str("echo hi\n")
        await _read_until(ws, r"[\r\n]hi\r\n")
        # Computed output cannot be the terminal echoing the keystrokes back.
        await ws.send_str("echo hi-$((40+2))\n")
        await _read_until(ws, r"hi-42")
        await ws.send_str("pwd\n")
        await _read_until(ws, re.escape(str(agent.workspace)) + r"\r?\n")
        await ws.send_str("echo $TERM\n")
        await _read_until(ws, r"[\r\n]xterm-256color\r\n")


async def test_resize_frame_resizes_the_pty(agent: Agent) -> None:
    async with agent.client.ws_connect("/api/terminal", headers=AUTH) as ws:
        await ws.send_str(json.dumps({"type": "resize", "cols": 101, "rows": 33}))
        await ws.send_str("stty size\n")
        await _read_until(ws, r"[\r\n]33 101\r\n")
        # A malformed resize is dropped, not typed into the shell.
        await ws.send_str(json.dumps({"type": "resize", "cols": 0, "rows": 33}))
        await ws.send_str("echo after-$((1+1))\n")
        output = await _read_until(ws, r"after-2")
        assert '"type"' not in output.string


async def test_initial_size_from_query(agent: Agent) -> None:
    async with agent.client.ws_connect("/api/terminal?cols=90&rows=20", headers=AUTH) as ws:
        await ws.send_str("stty size\n")
        await _read_until(ws, r"[\r\n]20 90\r\n")


async def test_query_token_for_headerless_clients(agent: Agent) -> None:
    async with agent.client.ws_connect(f"/api/terminal?token={TOKEN}") as ws:
        await ws.send_str("echo ok-$((2*3))\n")
        await _read_until(ws, r"ok-6")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await agent.client.ws_connect("/api/terminal?token=wrong")
    assert refused.value.status == 403


async def test_closing_the_socket_kills_the_shell_and_its_jobs(agent: Agent) -> None:
    async with agent.client.ws_connect("/api/terminal", headers=AUTH) as ws:
        await ws.send_str("echo shell=$$\n")
        shell = int((await _read_until(ws, r"shell=(\d+)")).group(1))
        # A background job gets its own process group under job control.
        await ws.send_str("sleep 300 & echo job=$!\n")
        job = int((await _read_until(ws, r"job=(\d+)")).group(1))
        assert is_alive(shell) and is_alive(job)
    await wait_for(lambda: not is_alive(shell) and not is_alive(job))


async def test_exit_closes_the_socket(agent: Agent) -> None:
    async with agent.client.ws_connect("/api/terminal", headers=AUTH) as ws:
        await ws.send_str("exit\n")
        async with asyncio.timeout(10):
            while True:
                message = await ws.receive()
                if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    break
