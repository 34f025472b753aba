"""A session's runtime: its sandbox, the OpenCode session in it and the event stream from it.

:class:`Runtime` does the mechanics and nothing else (no Postgres, no client events): find
or boot the sandbox through the provider, find or create the OpenCode session, keep the
event stream open. :class:`actors.session.core.SessionCore` drives it and records what
happened.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec

from actors.opencode_client import Event, EventStream, OpenCodeClient
from core.settings import Settings
from sandboxes.factory import ProviderConfig, get_provider
from sandboxes.provider import SandboxProvider
from schemas.sandbox import (
    AgentConfig,
    AgentMode,
    CreateSandboxOptions,
    RepoSpec,
    SandboxHandle,
    ServiceCommand,
)
from schemas.sessions import SessionRecord
from security import tokens
from store.configurations import ConfigurationRecord

log = logging.getLogger(__name__)

ProviderFactory = Callable[[Settings], SandboxProvider]
"""Builds the sandbox provider a session actor uses (picklable: it crosses into Ray)."""
CONNECT_TIMEOUT = 15.0


def default_provider(settings: Settings) -> SandboxProvider:
    """The provider ``settings.sandbox_provider`` names, one per process (sandboxes.factory)."""
    config = ProviderConfig(
        data_dir=Path(settings.data_dir),
        expiry_seconds=float(settings.sandbox_expiry_seconds),
        opencode_bin=Path(settings.opencode_bin) if settings.opencode_bin else None,
    )
    return get_provider(settings.sandbox_provider, config)


def agent_mode(record: SessionRecord) -> AgentMode:
    """Which instructions the agent gets."""
    if record.session_type == "setup":
        return "setup"
    if record.client_type == "automation":
        return "automation"
    return "coding" if record.configuration_id else "scratch"


def sandbox_options(
    record: SessionRecord, configuration: ConfigurationRecord | None, settings: Settings
) -> CreateSandboxOptions:
    """What the provider needs to recover or boot this session's sandbox.

    Restore order: the session's own snapshot, else (not for setup sessions, which build
    it) the configuration's active snapshot, else a fresh sandbox.
    """
    snapshot = record.snapshot_id
    if snapshot is None and configuration is not None and record.session_type != "setup":
        snapshot = configuration.active_snapshot_id
    services = tuple(
        msgspec.convert(cmd, ServiceCommand)
        for cmd in (configuration.service_commands if configuration else [])
    )
    model = record.agent_config.get("model_id") or settings.llm_model
    return CreateSandboxOptions(
        session_id=str(record.id),
        session_type=record.session_type,
        agent_mode=agent_mode(record),
        system_prompt=record.system_prompt,
        snapshot_id=snapshot,
        current_sandbox_id=record.sandbox_id,
        agent_config=AgentConfig(
            model_id=str(model), base_url=settings.llm_base_url, api_key=settings.llm_api_key
        ),
        trigger_context=record.trigger_context,
        service_commands=services,
        api_url=settings.api_url,
        sandbox_token=tokens.sandbox_token(settings.secret_key, str(record.id)),
        repos=tuple(
            RepoSpec(url=repo.url, branch=repo.branch, workspace_path=repo.workspace_path)
            for repo in record.repos
        ),
    )


def default_title(record: SessionRecord) -> str:
    """The OpenCode session title (a title avoids OpenCode's extra model call for one)."""
    return record.title or f"Warren session {str(record.id)[:8]}"


class Runtime:
    """The live parts of one session; replaced as a whole when the sandbox changes."""

    def __init__(self, provider: SandboxProvider) -> None:
        self.provider = provider
        self.handle: SandboxHandle | None = None
        self.client: OpenCodeClient | None = None
        self.agent_session_id: str | None = None
        self._stream: EventStream | None = None
        self._stream_task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """Sandbox up, OpenCode session known and the event stream running."""
        return (
            self.handle is not None
            and self.agent_session_id is not None
            and self._stream_task is not None
            and not self._stream_task.done()
        )

    async def ensure_sandbox(self, opts: CreateSandboxOptions) -> SandboxHandle:
        """Recover the sandbox, restore it from a snapshot, or boot a new one."""
        self.handle = await self.provider.ensure_sandbox(opts)
        if self.client is None or self.client.base_url != self.handle.opencode_url.rstrip("/"):
            if self.client is not None:
                await self.client.close()
            self.client = OpenCodeClient(self.handle.opencode_url)
        return self.handle

    async def ensure_agent_session(self, known_id: str | None, title: str) -> tuple[str, bool]:
        """Reuse OpenCode session ``known_id`` if the sandbox still has it, else create one.

        Returns (id, created).
        """
        assert self.client is not None
        known = await self.client.get_session(known_id) if known_id else None
        if known_id and known is not None:
            # A snapshot restored under another path (the local provider names the
            # workspace after the sandbox) leaves a session bound to a directory that is
            # gone; OpenCode would accept prompts for it and never answer them.
            directory = await self.client.directory()
            if directory is None or known.get("directory") in (None, directory):
                self.agent_session_id = known_id
                return known_id, False
        self.agent_session_id = await self.client.create_session(title)
        return self.agent_session_id, True

    async def start_stream(
        self,
        *,
        on_events: Callable[[list[Event]], Awaitable[None]],
        on_connected: Callable[[], Awaitable[None]],
        on_reconnect: Callable[[int, str], Awaitable[bool]],
    ) -> None:
        """Open the event stream and wait until it is connected (and reconciled)."""
        assert self.client is not None
        await self.stop_stream()
        self._stream = EventStream(
            self.client, on_events=on_events, on_connected=on_connected, on_reconnect=on_reconnect
        )
        self._stream_task = asyncio.create_task(self._stream.run(), name="opencode-events")
        connected = asyncio.create_task(self._stream.connected.wait())
        done, _ = await asyncio.wait(
            {connected, self._stream_task},
            timeout=CONNECT_TIMEOUT,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if connected not in done:
            connected.cancel()
            raise TimeoutError("OpenCode's event stream did not connect")

    async def stop_stream(self) -> None:
        """Stop reading events."""
        task, self._stream_task = self._stream_task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._stream = None

    async def close(self) -> None:
        """Stop the stream and drop the sandbox handle (the sandbox itself is untouched)."""
        await self.stop_stream()
        if self.client is not None:
            await self.client.close()
        self.client = None
        self.handle = None
        self.agent_session_id = None

    async def sandbox_alive(self) -> bool:
        """Side-effect-free liveness of the current sandbox."""
        if self.handle is None:
            return False
        try:
            [liveness] = await self.provider.check_sandboxes([self.handle.sandbox_id])
        except Exception:  # provider unreachable: don't declare the sandbox dead on that
            log.warning("sandbox liveness check failed", exc_info=True)
            return True
        return liveness.alive and not liveness.expired
