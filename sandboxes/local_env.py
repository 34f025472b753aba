"""What a local sandbox's processes see: their environment, the ``warren`` shim, the env spec.

The environment is built from nothing: no variable of the host process leaks in. It holds
PATH (the sandbox's ``bin/`` first, then system folders), HOME, LANG, the session's
``env_vars`` and Warren's ``WARREN_*`` variables.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import msgspec

from sandboxes.errors import SandboxError
from sandboxes.local_layout import SandboxLayout, write_private
from schemas.agent import EnvSpec
from schemas.sandbox import CreateSandboxOptions, SecretFile

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def sandbox_env(
    layout: SandboxLayout, opts: CreateSandboxOptions, *, agent_port: int
) -> dict[str, str]:
    """The base environment of every process in the sandbox.

    The session's ``env_vars`` may set anything but PATH, HOME and ``WARREN_*``, which
    the sandbox needs to work.
    """
    env = {"LANG": "C.UTF-8", **opts.env_vars}
    env.update(
        PATH=f"{layout.bin}:{SYSTEM_PATH}",
        HOME=str(layout.home),
        WARREN_SESSION_ID=opts.session_id,
        WARREN_API_URL=opts.api_url,
        WARREN_SANDBOX_TOKEN=opts.sandbox_token,
        WARREN_WORKSPACE=str(layout.workspace),
        WARREN_STATE_DIR=str(layout.state),
        WARREN_AGENT_PORT=str(agent_port),
        WARREN_AGENT_HOST="127.0.0.1",
    )
    return env


def save_process_env(layout: SandboxLayout, env: dict[str, str]) -> None:
    """Keep the environment for later ``exec`` calls (owner-only: it may hold secrets)."""
    write_private(layout.process_env, msgspec.json.encode(env))


def load_process_env(layout: SandboxLayout) -> dict[str, str]:
    """The environment saved at boot; raises SandboxError if the sandbox has none."""
    try:
        return msgspec.json.decode(layout.process_env.read_bytes(), type=dict[str, str])
    except (FileNotFoundError, msgspec.DecodeError):
        raise SandboxError(f"sandbox {layout.sandbox_id} has no environment") from None


def write_shim(layout: SandboxLayout, python: str) -> Path:
    """Write ``bin/warren``, which runs the in-sandbox CLI with ``python``."""
    shim = layout.bin / "warren"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(python)} -m sandboxes.agent.cli "$@"\n')
    shim.chmod(0o755)
    return shim


def secret_file_path(secret_file: SecretFile) -> PurePosixPath:
    """The workspace-relative path of a secret file; raises SandboxError if it escapes."""
    path = PurePosixPath(secret_file.workspace_path) / secret_file.file_path
    bad = path.is_absolute() or ".." in path.parts or "\0" in str(path) or "\\" in str(path)
    if bad or str(path) in ("", "."):
        raise SandboxError(f"secret file path {str(path)!r} must stay inside the workspace")
    return path


def write_env_spec(layout: SandboxLayout, files: Sequence[SecretFile]) -> None:
    """Write ``state/env.json`` (owner-only) after checking every path stays in the workspace."""
    for secret_file in files:
        secret_file_path(secret_file)
    write_private(layout.env_spec, msgspec.json.encode(EnvSpec(files=tuple(files))))


def read_env_spec(layout: SandboxLayout) -> EnvSpec:
    """The current secret-file spec (empty if none was written)."""
    try:
        return msgspec.json.decode(layout.env_spec.read_bytes(), type=EnvSpec)
    except (FileNotFoundError, msgspec.DecodeError):
        return EnvSpec()
