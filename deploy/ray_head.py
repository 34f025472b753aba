"""A Ray head on loopback for the local stack, started and stopped by its own pid.

``ray start --head --block`` runs as a child in a session of its own: every process Ray
starts (GCS, raylet, dashboard, workers) stays in that session. SIGTERM makes it stop its
processes; whatever is left in the session is then killed. ``ray stop`` is never used: it
stops every Ray cluster on the machine.

Its environment is :data:`core.ray_env.RAY_ENV` (``--node-ip-address=127.0.0.1`` alone is
rewritten to the machine's external address; that environment keeps Ray on loopback).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import msgspec

from core.ray_env import RAY_ENV
from deploy.net import LOOPBACK, wait_until
from deploy.proc import kill_session, running, tail, wait_gone

AUTH_TOKEN_PATH = Path.home() / ".ray" / "auth_token"
# Unix socket paths hold at most 107 bytes; Ray puts
# "<temp>/session_YYYY-MM-DD_HH-MM-SS_ffffff_<pid>/sockets/plasma_store" there.
_SOCKET_SUFFIX = len("/session_2026-01-01_00-00-00_000000_4194304/sockets/plasma_store.99")
_SOCKET_LIMIT = 107
_STARTED = "Ray runtime started"


class RayError(RuntimeError):
    """The Ray head could not be started."""


class RayPorts(msgspec.Struct, frozen=True, kw_only=True):
    """Every fixed port of the head, chosen by the stack so two Rays on one machine coexist."""

    gcs: int
    client: int
    dashboard: int
    agent: int
    autoscaler_metrics: int
    dashboard_metrics: int


def ray_env(ports: RayPorts) -> dict[str, str]:
    """Environment for ``ray start`` and for drivers of this head."""
    return {
        **RAY_ENV,
        # Explicit for the head's dashboard. Not in RAY_ENV: set after ``import ray`` (as an
        # in-process Ray must), the driver and its GCS would disagree on it.
        "RAY_AUTH_MODE": "token",
        "AUTOSCALER_METRIC_PORT": str(ports.autoscaler_metrics),
        "DASHBOARD_METRIC_PORT": str(ports.dashboard_metrics),
    }


def choose_temp_dir(preferred: Path, fallback: Path) -> Path:
    """``preferred`` when Ray's socket paths under it fit the Unix limit, else ``fallback``."""
    if len(str(preferred.absolute())) + _SOCKET_SUFFIX <= _SOCKET_LIMIT:
        return preferred.absolute()
    return fallback


def ensure_auth_token(ray_bin: Path) -> Path:
    """Make sure ``~/.ray/auth_token`` exists (Ray's own generator); its path, never its value."""
    if not AUTH_TOKEN_PATH.exists():
        subprocess.run(
            [str(ray_bin), "get-auth-token", "--generate"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        AUTH_TOKEN_PATH.chmod(0o600)
    return AUTH_TOKEN_PATH


def _dashboard_up(port: int) -> bool:
    url = f"http://{LOOPBACK}:{port}/api/authentication_mode"
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class RayHead:
    """``ray start --head --block`` on loopback with our ports, temp folder and CPU count."""

    def __init__(self, ports: RayPorts, temp_dir: Path, log_path: Path, num_cpus: int) -> None:
        self.ports = ports
        self.temp_dir = temp_dir
        self.log_path = log_path
        self.num_cpus = num_cpus
        self.ray_bin = Path(sys.executable).parent / "ray"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def address(self) -> str:
        """The GCS address drivers pass to ``ray.init``."""
        return f"{LOOPBACK}:{self.ports.gcs}"

    @property
    def dashboard_url(self) -> str:
        """The dashboard (token auth: see :data:`AUTH_TOKEN_PATH`)."""
        return f"http://{LOOPBACK}:{self.ports.dashboard}"

    @property
    def pid(self) -> int | None:
        """The ``ray start`` process (its session id is every Ray process's)."""
        return self._process.pid if self._process else None

    def launch(self) -> None:
        """Start the head in the background; :meth:`wait_ready` waits for it."""
        ensure_auth_token(self.ray_bin)
        # Ray makes its temp dir world-writable (for shared /tmp/ray); a private parent
        # keeps other users out of ours.
        self.temp_dir.parent.mkdir(parents=True, exist_ok=True)
        self.temp_dir.parent.chmod(0o700)
        self.temp_dir.mkdir(exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        p = self.ports
        argv = [
            str(self.ray_bin),
            "start",
            "--head",
            "--block",
            f"--node-ip-address={LOOPBACK}",
            f"--port={p.gcs}",
            f"--ray-client-server-port={p.client}",
            f"--dashboard-host={LOOPBACK}",
            f"--dashboard-port={p.dashboard}",
            f"--dashboard-agent-listen-port={p.agent}",
            f"--num-cpus={self.num_cpus}",
            f"--temp-dir={self.temp_dir}",
            "--disable-usage-stats",
        ]
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()  # earlier runs' lines stay above; only ours count
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **ray_env(p)},
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until Ray reports it started and the dashboard answers."""
        process = self._process
        if process is None:
            raise RayError("the head was not launched")

        def ready() -> bool:
            if process.poll() is not None:
                return True
            return _STARTED in self._new_log() and _dashboard_up(self.ports.dashboard)

        if not wait_until(ready, timeout, interval=0.1) or process.poll() is not None:
            self.stop()
            raise RayError(f"the Ray head did not start\n{tail(self.log_path)}")

    def _new_log(self) -> str:
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop this head only: SIGTERM to ``ray start``, then kill what is left in its session."""
        if self._process is not None:
            stop_head(self._process.pid, timeout)
            self._process.wait()
            self._process = None


def stop_head(pid: int, timeout: float = 30.0) -> None:
    """Stop the head whose ``ray start`` runs as ``pid`` (also from another process)."""
    if running(pid, "ray start"):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        wait_gone(pid, timeout)
    # Workers and agents the head leaves behind are still in its session.
    kill_session(pid, marker="ray")
