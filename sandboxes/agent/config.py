"""The agent's configuration, read once from the sandbox environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class ConfigError(Exception):
    """A required variable is missing or malformed; ``variable`` names it."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


@dataclass(frozen=True, kw_only=True)
class SandboxAgentConfig:
    """Everything the agent needs to run; paths are absolute and already resolved."""

    token: str | None
    """Bearer token for every route but health; None means every such route denies."""
    workspace: Path
    state_dir: Path
    port: int
    host: str = "127.0.0.1"
    api_url: str | None = None
    session_id: str | None = None
    stop_grace_seconds: float = 5.0
    """How long a stopped service gets between SIGTERM and SIGKILL."""

    @property
    def env_spec_path(self) -> Path:
        """Where the provider writes the secret-file spec (``env.json``)."""
        return self.state_dir / "env.json"


def _absolute_dir(env: Mapping[str, str], variable: str, *, create: bool) -> Path:
    raw = env.get(variable, "")
    if not raw:
        raise ConfigError(variable, "is not set")
    path = Path(raw)
    if not path.is_absolute():
        raise ConfigError(variable, f"must be an absolute path, got {raw!r}")
    if create:
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(variable, f"cannot create {raw!r}: {exc.strerror}") from exc
    if not path.is_dir():
        raise ConfigError(variable, f"{raw!r} is not an existing directory")
    return path.resolve()


def parse_port(env: Mapping[str, str], variable: str = "WARREN_AGENT_PORT") -> int:
    """Read a TCP port (1-65535) from ``variable``, or raise ConfigError naming it."""
    raw = env.get(variable, "")
    if not raw:
        raise ConfigError(variable, "is not set")
    try:
        port = int(raw)
    except ValueError as exc:
        raise ConfigError(variable, f"must be an integer port, got {raw!r}") from exc
    if not 1 <= port <= 65535:
        raise ConfigError(variable, f"must be between 1 and 65535, got {port}")
    return port


def load_config(env: Mapping[str, str] | None = None) -> SandboxAgentConfig:
    """Build the configuration from ``env`` (default: the process environment)."""
    source = os.environ if env is None else env
    return SandboxAgentConfig(
        token=source.get("WARREN_SANDBOX_TOKEN") or None,
        workspace=_absolute_dir(source, "WARREN_WORKSPACE", create=False),
        state_dir=_absolute_dir(source, "WARREN_STATE_DIR", create=True),
        port=parse_port(source),
        host=source.get("WARREN_AGENT_HOST") or "127.0.0.1",
        api_url=source.get("WARREN_API_URL") or None,
        session_id=source.get("WARREN_SESSION_ID") or None,
    )
