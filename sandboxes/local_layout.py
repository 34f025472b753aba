"""On-disk layout of one local sandbox, and the metadata file that lets it be recovered.

``<root>/<sandbox_id>/`` holds ``workspace/`` (the repos), ``home/`` (HOME: OpenCode's
config and sqlite db), ``bin/`` (the ``warren`` shim, first on PATH) and ``state/``
(``sandbox.json``, ``env.json``, process logs). Only ``workspace/`` and ``home/`` go into
snapshots.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import msgspec

_SANDBOX_ID = re.compile(r"^sbx_[0-9a-f]{24}$")

SNAPSHOT_MEMBERS = ("workspace", "home")


def new_sandbox_id() -> str:
    """A fresh, unguessable sandbox id (also a safe folder name)."""
    return "sbx_" + secrets.token_hex(12)


def valid_sandbox_id(sandbox_id: str) -> bool:
    """True if ``sandbox_id`` has the local provider's shape: no path tricks possible."""
    return bool(_SANDBOX_ID.match(sandbox_id))


class ProcessRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A process the provider started: its own process group (pgid == pid)."""

    name: str
    pid: int
    pgid: int
    start_time: int
    """Clock ticks since boot (``/proc/<pid>/stat`` field 22): guards against pid reuse."""


class LocalSandboxMeta(msgspec.Struct, frozen=True, kw_only=True):
    """``state/sandbox.json``: what a restarted control plane needs to find the sandbox."""

    sandbox_id: str
    session_id: str
    created_at: float
    expires_at: float
    opencode_port: int
    agent_port: int
    processes: tuple[ProcessRecord, ...] = ()
    restored_from: str | None = None


@dataclass(frozen=True)
class SandboxLayout:
    """Paths of one sandbox's folder."""

    root: Path

    @property
    def sandbox_id(self) -> str:
        """The folder name is the id."""
        return self.root.name

    @property
    def workspace(self) -> Path:
        """The repos: the agent's working directory."""
        return self.root / "workspace"

    @property
    def home(self) -> Path:
        """HOME of every sandbox process."""
        return self.root / "home"

    @property
    def bin(self) -> Path:
        """First on PATH; holds the ``warren`` shim."""
        return self.root / "bin"

    @property
    def state(self) -> Path:
        """Provider and agent state; never snapshotted."""
        return self.root / "state"

    @property
    def meta_file(self) -> Path:
        """``state/sandbox.json``."""
        return self.state / "sandbox.json"

    @property
    def env_spec(self) -> Path:
        """``state/env.json``: the secret-file spec the agent applies."""
        return self.state / "env.json"

    @property
    def process_env(self) -> Path:
        """``state/process_env.json``: the environment ``exec`` gives commands (mode 0600)."""
        return self.state / "process_env.json"

    def log(self, name: str) -> Path:
        """Where the output of process ``name`` goes."""
        return self.state / f"{name}.log"

    def make_dirs(self) -> None:
        """Create the sandbox folder and its sub-folders (private to the user)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=False)
        for folder in (self.workspace, self.home, self.bin, self.state):
            folder.mkdir(mode=0o700, exist_ok=True)

    def read_meta(self) -> LocalSandboxMeta | None:
        """The metadata, or None if the sandbox does not exist or never finished booting."""
        try:
            return msgspec.json.decode(self.meta_file.read_bytes(), type=LocalSandboxMeta)
        except (FileNotFoundError, NotADirectoryError, msgspec.DecodeError):
            return None

    def write_meta(self, meta: LocalSandboxMeta) -> None:
        """Write the metadata atomically."""
        write_private(self.meta_file, msgspec.json.encode(meta))


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only."""
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)
