"""EmbeddedNats: a real nats-server with JetStream in a tmp folder, gone after stop."""

from __future__ import annotations

import os
from pathlib import Path

import nats
import pytest
from nats.errors import Error as NatsClientError

from deploy.nats import EmbeddedNats
from deploy.net import port_free
from deploy.proc import command_line, running


async def test_starts_with_jetstream_and_stops(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    pid = server.pid
    try:
        assert pid is not None and running(pid)
        nc = await nats.connect(server.url, allow_reconnect=False)
        js = nc.jetstream()
        await js.add_stream(name="DEPLOYTEST", subjects=["deploytest.>"])
        ack = await js.publish("deploytest.one", b"hello")
        assert ack.seq == 1
        await nc.close()
    finally:
        server.stop()
    assert server.pid is None and not running(pid)
    assert port_free(server.port)
    assert (tmp_path / "nats" / "jetstream").is_dir()


async def test_rejects_clients_without_the_token(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    try:
        token_file = tmp_path / "nats" / "token"
        assert oct(os.stat(token_file).st_mode & 0o777) == "0o600"
        assert token_file.read_text().strip() not in (command_line(server.pid or 0) or "")
        with pytest.raises(NatsClientError):
            await nats.connect(
                f"nats://127.0.0.1:{server.port}",
                allow_reconnect=False,
                connect_timeout=2,
                max_reconnect_attempts=0,
            )
    finally:
        server.stop()
