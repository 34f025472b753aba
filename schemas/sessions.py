"""Wire shapes of sessions outside the WebSocket: statuses and limits, HTTP bodies, the
records crossing processes (store ↔ actor ↔ ingress) and lifecycle events.

The WebSocket's messages are in :mod:`schemas.session_ws`, the transcript in
:mod:`schemas.transcript`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from schemas.sandbox import ClientType, SessionType
from schemas.transcript import MessageSource

# --- vocabularies ------------------------------------------------------------------------------

DbStatus = Literal["pending", "starting", "running", "paused", "stopped", "failed"]
"""``sessions.status`` in Postgres."""
ClientStatus = Literal["creating", "resuming", "running", "paused", "stopped", "error", "migrating"]
"""The status clients see (``status`` messages, session views)."""
PauseReason = Literal["manual", "credit_limit", "inactivity", "overage_cap", "payment_failed"]
StopReason = Literal["manual", "error", "sandbox_terminated", "auto_pause_failed", "completed"]
"""Why a session stopped; ``completed`` = an automation run finished it."""
SandboxMode = Literal["deferred", "immediate"]
CreatableSessionType = Literal["coding", "setup"]
CreatableClientType = Literal["web", "slack", "automation"]

DB_TO_CLIENT_STATUS: dict[str, ClientStatus] = {
    "pending": "creating",
    "starting": "resuming",
    "running": "running",
    "paused": "paused",
    "stopped": "stopped",
    "failed": "error",
}
"""The client-facing status of each DB status (``migrating`` is live actor state only)."""

MAX_PROMPT_CHARS = 100_000
MAX_IMAGES = 10
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
PromptText = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PROMPT_CHARS)]
ImageDataUri = Annotated[str, msgspec.Meta(pattern=r"^data:image/[a-z0-9.+-]+;base64,")]
WorkspacePath = Annotated[str, msgspec.Meta(max_length=500)]


def client_status(db_status: str) -> ClientStatus:
    """The client-facing status of a DB status."""
    return DB_TO_CLIENT_STATUS.get(db_status, "error")


# --- HTTP bodies ----------------------------------------------------------------------------------


class AgentConfigIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Agent settings a client may choose."""

    model_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


MAX_SESSION_REPOS = 10


class SessionRepo(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A repository cloned into the session's sandbox when it boots.

    ``url``: https, ssh (``ssh://`` or ``git@host:path``), or with the local sandbox
    provider also ``file://`` or a local path; never with credentials in it.
    """

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    branch: Annotated[str, msgspec.Meta(min_length=1, max_length=250)] | None = None
    workspace_path: Annotated[str, msgspec.Meta(min_length=1, max_length=500)] = "."
    """Where it lands under the workspace: ``.`` for a single repo, else a sub-folder."""


class CreateSessionRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/sessions``: no ``configuration_id`` means a scratch session."""

    configuration_id: uuid.UUID | None = None
    session_type: CreatableSessionType = "coding"
    client_type: CreatableClientType = "web"
    client_metadata: dict[str, Any] = {}
    sandbox_mode: SandboxMode = "deferred"
    initial_prompt: PromptText | None = None
    title: Title | None = None
    agent_config: AgentConfigIn = AgentConfigIn()
    repos: Annotated[tuple[SessionRepo, ...], msgspec.Meta(max_length=MAX_SESSION_REPOS)] = ()
    """Repositories to clone at boot (see :class:`SessionRepo`)."""


class SessionView(msgspec.Struct, frozen=True, kw_only=True):
    """A session as the API shows it (no sandbox URLs or secrets)."""

    id: uuid.UUID
    org_id: uuid.UUID
    created_by: uuid.UUID | None
    configuration_id: uuid.UUID | None
    session_type: str
    client_type: str
    client_metadata: dict[str, Any]
    sandbox_mode: str
    status: DbStatus
    client_status: ClientStatus
    title: str
    sandbox_provider: str
    has_sandbox: bool
    has_snapshot: bool
    initial_prompt: str | None
    agent_config: dict[str, Any]
    pause_reason: str | None
    stop_reason: str | None
    outcome: str | None
    summary: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    paused_at: datetime | None
    ended_at: datetime | None
    repos: tuple[SessionRepo, ...] = ()


class CreateSessionResponse(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/sessions`` (201; a replay of an Idempotency-Key answers the same)."""

    session_id: uuid.UUID
    configuration_id: uuid.UUID | None
    status: ClientStatus
    gateway_url: str
    """The session's WebSocket path, relative to the API."""
    has_snapshot: bool
    is_new: bool
    session: SessionView


class SessionList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/sessions``: newest first; pass ``next_cursor`` as ``cursor`` for more."""

    sessions: list[SessionView]
    next_cursor: str | None = None


class SessionListQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Filters and paging of ``GET /api/sessions``."""

    status: DbStatus | None = None
    client_type: ClientType | None = None
    created_by: uuid.UUID | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 50
    cursor: str | None = None


class RenameSessionRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``PATCH /api/sessions/{id}``."""

    title: Title


class SendMessageRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/sessions/{id}/message``."""

    content: PromptText
    images: Annotated[tuple[ImageDataUri, ...], msgspec.Meta(max_length=MAX_IMAGES)] = ()
    type: Literal["prompt"] = "prompt"
    source: MessageSource | None = None
    """Service callers may say where the prompt came from (e.g. slack)."""


class SendMessageResponse(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/sessions/{id}/message`` (202)."""

    message_id: str
    session_id: uuid.UUID


class SessionStatusResponse(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/sessions/{id}/status``."""

    state: Literal["running", "terminated"]
    status: ClientStatus
    terminated_at: datetime | None = None
    reason: str | None = None


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    """A request accepted for background work (eager-start, cancel, heartbeat)."""

    accepted: bool = True
    detail: str | None = None


# --- records crossing processes (store ↔ actor ↔ ingress) --------------------------------------


class SessionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A ``sessions`` row, as the actor and the API read it."""

    id: uuid.UUID
    org_id: uuid.UUID
    created_by: uuid.UUID | None
    configuration_id: uuid.UUID | None
    session_type: SessionType
    client_type: ClientType
    client_metadata: dict[str, Any]
    sandbox_mode: SandboxMode
    status: DbStatus
    pause_reason: str | None
    stop_reason: str | None
    sandbox_provider: str
    sandbox_id: str | None
    opencode_url: str | None
    sandbox_agent_url: str | None
    preview_url: str | None
    sandbox_expires_at: datetime | None
    snapshot_id: str | None
    coding_agent_session_id: str | None
    agent_config: dict[str, Any]
    system_prompt: str | None
    initial_prompt: str | None
    initial_prompt_sent_at: datetime | None
    title: str
    automation_id: uuid.UUID | None
    trigger_id: uuid.UUID | None
    trigger_event_id: uuid.UUID | None
    trigger_context: dict[str, Any] | None
    outcome: str | None
    summary: str | None
    completion_id: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    paused_at: datetime | None
    ended_at: datetime | None
    deleted_at: datetime | None
    repos: tuple[SessionRepo, ...] = ()

    def view(self) -> SessionView:
        """The client-facing view of this row."""
        return SessionView(
            id=self.id,
            org_id=self.org_id,
            created_by=self.created_by,
            configuration_id=self.configuration_id,
            session_type=self.session_type,
            client_type=self.client_type,
            client_metadata=self.client_metadata,
            sandbox_mode=self.sandbox_mode,
            status=self.status,
            client_status=client_status(self.status),
            title=self.title,
            sandbox_provider=self.sandbox_provider,
            has_sandbox=self.sandbox_id is not None,
            has_snapshot=self.snapshot_id is not None,
            initial_prompt=self.initial_prompt,
            agent_config=self.agent_config,
            pause_reason=self.pause_reason,
            stop_reason=self.stop_reason,
            outcome=self.outcome,
            summary=self.summary,
            created_at=self.created_at,
            updated_at=self.updated_at,
            started_at=self.started_at,
            paused_at=self.paused_at,
            ended_at=self.ended_at,
            repos=self.repos,
        )


class NewSession(msgspec.Struct, frozen=True, kw_only=True):
    """What ``create_session`` inserts (API, automations and Slack all create through it)."""

    org_id: uuid.UUID
    created_by: uuid.UUID | None
    configuration_id: uuid.UUID | None = None
    session_type: SessionType = "coding"
    client_type: ClientType = "web"
    client_metadata: dict[str, Any] = {}
    sandbox_mode: SandboxMode = "deferred"
    sandbox_provider: str = "local"
    initial_prompt: str | None = None
    title: str = ""
    agent_config: dict[str, Any] = {}
    system_prompt: str | None = None
    automation_id: uuid.UUID | None = None
    trigger_id: uuid.UUID | None = None
    trigger_event_id: uuid.UUID | None = None
    trigger_context: dict[str, Any] | None = None
    snapshot_id: str | None = None
    idempotency_key: str | None = None
    repos: tuple[SessionRepo, ...] = ()


class ClientInfo(msgspec.Struct, frozen=True, kw_only=True):
    """The actor's answer to ``get_status``: live state, for status replies and idle logic."""

    status: ClientStatus
    runtime_ready: bool
    clients: int
    agent_busy: bool
    message: str | None = None


# --- lifecycle events (NATS ``sessions.lifecycle``) ---------------------------------------------

LifecycleKind = Literal[
    "created", "running", "paused", "resumed", "migrated", "stopped", "completed"
]


class SessionLifecycleEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A session changed state. ``completed`` carries an automation run's completion."""

    event: LifecycleKind
    session_id: str
    org_id: str
    at: datetime
    reason: str | None = None
    sandbox_id: str | None = None
    client_type: str | None = None
    automation_id: str | None = None
    run_id: str | None = None
    completion_id: str | None = None
    outcome: str | None = None
    summary: str | None = None


# --- pause, resume, snapshot, verification media (HTTP) -----------------------------------------


class PauseResponse(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/sessions/{id}/pause``: the session is paused, resumable from the snapshot."""

    session_id: uuid.UUID
    status: ClientStatus
    snapshot_id: str | None


class SnapshotResponse(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/sessions/{id}/snapshot``: the sandbox's files were saved (it keeps running)."""

    session_id: uuid.UUID
    snapshot_id: str
    target: Literal["configuration", "session"]


class VerificationMedia(msgspec.Struct, frozen=True, kw_only=True):
    """One file the agent's ``verify`` tool uploaded."""

    key: str
    """The artifact key (``sessions/<id>/verification/<stamp>/<path>``)."""
    name: str
    """The path relative to the session's verification folder (``<stamp>/<path>``)."""
    url: str
    """Download URL: presigned by the store, or an API path that streams the file."""


class VerificationMediaList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/sessions/{id}/verification-media``."""

    items: list[VerificationMedia]
