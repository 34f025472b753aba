"""Supervision of the stack's embedded servers: a killed nats-server comes back, clients carry
on, and the stack gives up after a bounded number of failed restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.bus import Subjects, connect, declare_streams
from deploy import stack
from deploy import state as files
from deploy.nats import EmbeddedNats
from deploy.net import free_port, wait_until
from deploy.supervise import SupervisionFailed


@pytest.fixture
def run(tmp_path: Path) -> Iterator[stack.Stack]:
    """A stack run whose only embedded server is NATS, on a free port (no Ray launched)."""
    paths = files.Paths(tmp_path)
    ports = files.StackPorts(nats=free_port())
    running_stack = stack.Stack(paths, ports, {})
    running_stack.nats = EmbeddedNats(paths.nats, ports.nats)
    running_stack.nats.start()
    yield running_stack
    running_stack.nats.stop()


def _bound(sock: socket.socket, port: int) -> bool:
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


def _kill(server: EmbeddedNats) -> int:
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: server.pid is None, 10)
    return pid


async def test_a_killed_nats_is_restarted_and_its_clients_carry_on(
    run: stack.Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    server = run.nats
    assert server is not None
    nc = await connect(server.url, name="supervise-test", credentials=server.credentials("ingress"))
    try:
        js = nc.jetstream()
        subjects = Subjects("warren")
        await declare_streams(js, subjects, max_bytes=8 * 1024**2)
        subject = subjects.trigger_events("custom")
        assert (await js.publish(subject, b"before")).seq == 1
        old = _kill(server)
        supervisor = run.supervisor(base=0.05)
        # The supervisor blocks (as in `up`'s watch loop); the client reconnects meanwhile.
        await asyncio.to_thread(supervisor.check)
        assert server.pid not in (None, old)
        ack = await js.publish(subject, b"after", timeout=30)
        assert ack.seq == 2  # same store, same stream, same client connection
        assert supervisor.restarts == {"nats": 1}
    finally:
        await nc.close()
    out = capsys.readouterr().out
    assert "exited; restart 1/5" in out
    assert "restarted (attempt 1/5)" in out


def test_the_stack_stops_after_the_bounded_restarts_fail(
    run: stack.Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    server = run.nats
    assert server is not None
    _kill(server)
    # Another process takes the port, so every restart fails. The killed server's socket
    # closes a moment after its pid is gone: bind once the port is free.
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        assert wait_until(lambda: _bound(squatter, server.port), 10)
        squatter.listen()
        with pytest.raises(SupervisionFailed, match="nats exited and 3 restarts failed"):
            run.watch(run.supervisor(attempts=3, base=0.01))
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if "failed: port" in line] == [
        f"nats       restart {n}/3 failed: port {server.port} on 127.0.0.1 is in use"
        for n in (1, 2, 3)
    ]
    assert server.pid is None
