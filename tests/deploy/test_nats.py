"""EmbeddedNats: a real nats-server with JetStream in a tmp folder, gone after stop."""

from __future__ import annotations

import os
from pathlib import Path

import nats
import pytest
from nats.errors import Error as NatsClientError

from core.bus import Subjects, connect, declare_streams
from deploy.nats import EmbeddedNats
from deploy.net import port_free
from deploy.proc import command_line, running


async def test_starts_with_jetstream_and_stops(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    pid = server.pid
    try:
        assert pid is not None and running(pid)
        nc = await connect(server.url, credentials=server.credentials("ingress"))
        js = nc.jetstream()
        subjects = Subjects("warren")
        await declare_streams(js, subjects, max_bytes=8 * 1024**2)
        ack = await js.publish(subjects.trigger_events("github"), b"hello")
        assert ack.seq == 1
        await nc.close()
    finally:
        server.stop()
    assert server.pid is None and not running(pid)
    assert port_free(server.port)
    assert (tmp_path / "nats" / "jetstream").is_dir()


async def test_rejects_clients_without_credentials_and_keeps_passwords_private(
    tmp_path: Path,
) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    try:
        for private in (server.config_path, server.users.path):
            assert oct(os.stat(private).st_mode & 0o777) == "0o600"
        password = server.credentials("ingress").split(":", 1)[1]
        assert password not in (command_line(server.pid or 0) or "")
        assert password not in server.url
        with pytest.raises(NatsClientError):
            await nats.connect(
                server.url,
                allow_reconnect=False,
                connect_timeout=2,
                max_reconnect_attempts=0,
            )
    finally:
        server.stop()
    assert password not in server.log_path.read_text()
