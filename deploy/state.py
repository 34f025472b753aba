"""The local stack's files in ``.data``: state (ports, what runs), run lock, secret key."""

from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import msgspec

from deploy.ray_head import RayPorts, choose_temp_dir


class StackPorts(msgspec.Struct, frozen=True, kw_only=True):
    """Ports the stack's own servers listen on; kept across runs, re-picked when taken."""

    postgres: int = 54329
    nats: int = 42229
    scripted_model: int = 42230
    """The scripted model's port; stable so recovered sandboxes still reach it."""
    ray: RayPorts = RayPorts(
        gcs=26380,
        client=26381,
        dashboard=8265,
        agent=26382,
        autoscaler_metrics=26383,
        dashboard_metrics=26384,
    )


class Running(msgspec.Struct, frozen=True, kw_only=True):
    """What a running ``up`` started, so ``stop`` and ``status`` can find it."""

    runner_pid: int
    started_at: float
    api_url: str
    ray_address: str
    dashboard_url: str
    ray_pid: int | None = None
    postgres: str = ""
    """``127.0.0.1:<port>`` when the stack runs its own server, else empty (external)."""
    nats: str = ""
    """Like :attr:`postgres`, for NATS."""
    scripted_model: str = ""
    """``127.0.0.1:<port>`` when the stack runs the scripted model (no WARREN_LLM_BASE_URL)."""
    scripted_model_pid: int | None = None
    ready: bool = False


class StackState(msgspec.Struct, kw_only=True):
    """The content of ``.data/stack.json``."""

    ports: StackPorts = StackPorts()
    running: Running | None = None


@dataclass(frozen=True)
class Paths:
    """Where the stack keeps things, all under ``<root>/.data``."""

    root: Path

    @property
    def data(self) -> Path:
        """``.data``: the app's data dir, shared with the stack's servers."""
        return self.root / ".data"

    @property
    def state(self) -> Path:
        """``stack.json``."""
        return self.data / "stack.json"

    @property
    def lock(self) -> Path:
        """Held (flock) by the running ``up``."""
        return self.data / "stack.lock"

    @property
    def logs(self) -> Path:
        """Logs of Ray and of the Serve driver."""
        return self.data / "logs"

    @property
    def postgres(self) -> Path:
        """The embedded PostgreSQL's folder."""
        return self.data / "pg"

    @property
    def nats(self) -> Path:
        """The embedded NATS's folder (JetStream storage inside)."""
        return self.data / "nats"

    @property
    def ray_temp(self) -> Path:
        """Ray's ``--temp-dir``: ``.data/ray/tmp``, or under /tmp when that path is too long."""
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:10]
        fallback = Path(tempfile.gettempdir()) / f"warren-ray-{digest}" / "tmp"
        return choose_temp_dir(self.data / "ray" / "tmp", fallback)


def load(paths: Paths) -> StackState:
    """The saved state, or a fresh one."""
    try:
        return msgspec.json.decode(paths.state.read_bytes(), type=StackState)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return StackState()


def save(paths: Paths, state: StackState) -> None:
    """Write the state atomically."""
    paths.data.mkdir(parents=True, exist_ok=True)
    tmp = paths.state.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(state)) + b"\n")
    tmp.replace(paths.state)


def try_lock(paths: Paths) -> IO[str] | None:
    """Take the run lock (held while the returned file stays open), or None if ``up`` runs."""
    paths.data.mkdir(parents=True, exist_ok=True)
    handle = paths.lock.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def secret_key(paths: Paths) -> str:
    """``.data/secret_key`` (0600), generated on first use."""
    path = paths.data / "secret_key"
    if not path.exists():
        paths.data.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
    return path.read_text().strip()
