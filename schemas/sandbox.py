"""Wire shapes of the sandbox provider interface: what a session asks for, what it gets."""

from __future__ import annotations

from typing import Literal

import msgspec

SessionType = Literal["coding", "setup", "cli"]
ClientType = Literal["web", "slack", "cli", "automation"]
AgentMode = Literal["setup", "coding", "automation", "scratch"]


class RepoSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One repository to clone into the sandbox workspace."""

    url: str
    """Clone URL: https, ssh, ``file://`` or a local path."""
    branch: str | None = None
    workspace_path: str = "."
    """Where the repo lands under the workspace: ``.`` for a single repo, else a sub-folder."""
    token: str | None = None
    """Credential for https clones; never logged or returned."""


class ServiceCommand(msgspec.Struct, frozen=True, kw_only=True):
    """A long-running command the sandbox starts (a dev server, a database)."""

    name: str
    command: str
    cwd: str | None = None
    workspace_path: str | None = None


class SecretFile(msgspec.Struct, frozen=True, kw_only=True):
    """A dotenv file written into the workspace at boot and scrubbed before snapshots."""

    workspace_path: str = "."
    file_path: str = ".env"
    values: dict[str, str] = {}


class AgentConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Which model the agent uses and how it reaches it."""

    model_id: str = "scripted"
    base_url: str = ""
    """OpenAI-compatible base URL (ends in /v1)."""
    api_key: str = ""


class CreateSandboxOptions(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a provider needs to create or recover a session's sandbox."""

    session_id: str
    session_type: SessionType = "coding"
    agent_mode: AgentMode = "coding"
    repos: tuple[RepoSpec, ...] = ()
    env_vars: dict[str, str] = {}
    system_prompt: str | None = None
    snapshot_id: str | None = None
    current_sandbox_id: str | None = None
    agent_config: AgentConfig = AgentConfig()
    trigger_context: dict[str, object] | None = None
    service_commands: tuple[ServiceCommand, ...] = ()
    secret_files: tuple[SecretFile, ...] = ()
    api_url: str = ""
    """Warren's API as seen from inside the sandbox (tool callbacks)."""
    sandbox_token: str = ""
    """Bearer the in-sandbox agent and Warren's tools use; derived, never stored."""


class SandboxHandle(msgspec.Struct, frozen=True, kw_only=True):
    """A running sandbox as a provider reports it."""

    sandbox_id: str
    provider: str
    opencode_url: str
    """OpenCode's HTTP base URL."""
    sandbox_agent_url: str
    """The in-sandbox agent's base URL (services, terminal, git)."""
    preview_url: str | None = None
    expires_at: float
    """Unix time after which the provider may reclaim the sandbox."""
    recovered: bool = False
    """True when ensure_sandbox found the sandbox alive instead of creating it."""
    boot_phases: dict[str, float] = {}
    """Seconds spent per boot phase: created, repos_cloned, agent_ready."""


class ExecResult(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome of a command run inside a sandbox."""

    exit_code: int
    stdout: str
    stderr: str


class SnapshotResult(msgspec.Struct, frozen=True, kw_only=True):
    """A saved sandbox state, addressable by id for a later restore."""

    snapshot_id: str
    size_bytes: int = 0


class SandboxLiveness(msgspec.Struct, frozen=True, kw_only=True):
    """Side-effect-free liveness of one sandbox."""

    sandbox_id: str
    alive: bool
    expired: bool = False
