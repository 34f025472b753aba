"""Wire shapes of automations, triggers, schedules, runs and their NATS messages.

HTTP bodies (``Create*``/``Update*`` requests, responses), the messages the ingress and
the scheduler publish on ``<prefix>.triggers.events.<provider>`` (:class:`TriggerEnvelope`),
the message any system may publish on ``<prefix>.triggers.events.custom.<trigger id>``
(:class:`CustomTriggerMessage`), run-pool work items (:class:`RunWork`) and the run
enrichment payload v1 (:class:`EnrichmentV1`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from schemas.triggers import ProviderType, TriggerContext

RunStatus = Literal[
    "queued", "enriching", "ready", "running", "succeeded", "failed", "needs_human", "timed_out"
]
"""Run lifecycle: queued → enriching → ready → running → a terminal status."""

ATTENTION_RUN_STATUSES: tuple[str, ...] = ("failed", "needs_human", "timed_out")
"""Statuses the attention inbox lists."""

TriggerEventStatus = Literal["queued", "processing", "completed", "failed", "skipped"]
SkipReason = Literal[
    "manual",
    "filter_mismatch",
    "automation_disabled",
    "run_create_failed",
    "trigger_disabled",
    "unbound",
]
"""Why an event created no run (``unbound``: the trigger has no automation)."""

OutboxKind = Literal["enqueue_enrich", "enqueue_execute", "write_artifacts", "notify_run_terminal"]
OutboxStatus = Literal["pending", "processing", "dispatched", "failed"]
TriggerType = Literal["webhook", "polling", "manual"]
CompletionOutcome = Literal["succeeded", "failed", "needs_human"]

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
LongText = Annotated[str, msgspec.Meta(max_length=100_000)]
CronExpression = Annotated[str, msgspec.Meta(min_length=9, max_length=200)]
TimeZone = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
ConnectionId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


# --- automations ----------------------------------------------------------------------------


class CreateAutomation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/automations``. The Slack token is write-only: stored sealed, never shown."""

    name: Name
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    enabled: bool = True
    agent_instructions: LongText = ""
    model_id: str | None = None
    default_configuration_id: uuid.UUID | None = None
    allow_agentic_repo_selection: bool = False
    enabled_tools: tuple[str, ...] = ()
    max_run_seconds: Annotated[int, msgspec.Meta(ge=60, le=86400)] = 3600
    notify_slack_channel: str | None = None
    notify_slack_token: Secret | None = None


class UpdateAutomation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``PATCH /api/automations/{id}``: only the fields sent change (null clears)."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Annotated[str, msgspec.Meta(max_length=2000)] | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    agent_instructions: LongText | msgspec.UnsetType = msgspec.UNSET
    model_id: str | msgspec.UnsetType | None = msgspec.UNSET
    default_configuration_id: uuid.UUID | msgspec.UnsetType | None = msgspec.UNSET
    allow_agentic_repo_selection: bool | msgspec.UnsetType = msgspec.UNSET
    enabled_tools: tuple[str, ...] | msgspec.UnsetType = msgspec.UNSET
    max_run_seconds: Annotated[int, msgspec.Meta(ge=60, le=86400)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    notify_slack_channel: str | msgspec.UnsetType | None = msgspec.UNSET
    notify_slack_token: Secret | msgspec.UnsetType | None = msgspec.UNSET


class Automation(msgspec.Struct, frozen=True, kw_only=True):
    """An automation as the API shows it; ``slack_configured`` instead of the token."""

    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    description: str
    enabled: bool
    agent_instructions: str
    model_id: str | None
    default_configuration_id: uuid.UUID | None
    allow_agentic_repo_selection: bool
    enabled_tools: tuple[str, ...]
    max_run_seconds: int
    notify_slack_channel: str | None
    slack_configured: bool
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class AutomationList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/automations``."""

    automations: list[Automation]


class BindTrigger(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/automations/{id}/triggers``: bind an existing trigger of the org."""

    trigger_id: uuid.UUID


class AddConnection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/automations/{id}/connections``."""

    integration_id: uuid.UUID


class AutomationConnection(msgspec.Struct, frozen=True, kw_only=True):
    """An integration an automation's sessions may use."""

    integration_id: uuid.UUID
    created_at: datetime


class ConnectionList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/automations/{id}/connections``."""

    connections: list[AutomationConnection]


# --- triggers -------------------------------------------------------------------------------


class CreateTrigger(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/triggers``.

    Webhook triggers get a URL path and a secret (returned once). Polling triggers need
    ``polling_cron``; Linear and Gmail polls also need ``poll_access_token`` (write-only).
    ``config`` holds the provider's filters (schemas.triggers ``*Filters``).
    """

    provider: ProviderType
    trigger_type: Literal["webhook", "polling"] = "webhook"
    automation_id: uuid.UUID | None = None
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    enabled: bool = True
    config: dict[str, Any] = {}
    polling_cron: CronExpression | None = None
    timezone: TimeZone = "UTC"
    poll_access_token: Secret | None = None
    connection_id: ConnectionId | None = None
    """Nango connection id; it belongs to one org (another org's binding answers 409)."""
    integration_id: uuid.UUID | None = None


class UpdateTrigger(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``PATCH /api/triggers/{id}``: only the fields sent change."""

    name: Annotated[str, msgspec.Meta(max_length=200)] | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    config: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    polling_cron: CronExpression | msgspec.UnsetType = msgspec.UNSET
    timezone: TimeZone | msgspec.UnsetType = msgspec.UNSET
    poll_access_token: Secret | msgspec.UnsetType | None = msgspec.UNSET
    connection_id: ConnectionId | msgspec.UnsetType | None = msgspec.UNSET


class Trigger(msgspec.Struct, frozen=True, kw_only=True):
    """A trigger as the API shows it: never its secret or poll token."""

    id: uuid.UUID
    org_id: uuid.UUID
    automation_id: uuid.UUID | None
    name: str
    trigger_type: TriggerType
    provider: ProviderType
    enabled: bool
    webhook_path: str | None
    """Path to POST deliveries to, e.g. ``/webhooks/github/t_0123456789ab``."""
    polling_cron: str | None
    timezone: str
    next_fire_at: datetime | None
    last_polled_at: datetime | None
    config: dict[str, Any]
    connection_id: str | None
    integration_id: uuid.UUID | None
    poll_token_configured: bool
    last_error: str | None = None
    """Why the scheduler last failed to fire or poll it (bad cron, poll error); cleared by
    the next successful poll. A bad cron also clears ``next_fire_at``."""
    last_error_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class CreatedTrigger(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/triggers`` (201): the only answer that carries ``webhook_secret``."""

    trigger: Trigger
    webhook_secret: str | None
    """64 hex characters (32 bytes); configure it as the provider's signing secret."""


class TriggerList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/triggers`` and ``GET /api/automations/{id}/triggers``."""

    triggers: list[Trigger]


class TriggerEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One delivery recorded on a trigger, with what became of it."""

    id: uuid.UUID
    trigger_id: uuid.UUID
    automation_id: uuid.UUID | None
    run_id: uuid.UUID | None
    status: TriggerEventStatus
    skip_reason: str | None
    provider_event_type: str
    external_event_id: str | None
    dedup_key: str
    error: str | None
    parsed_context: dict[str, Any] | None
    received_at: datetime
    created_at: datetime
    processed_at: datetime | None


class TriggerEventList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/triggers/{id}/events``."""

    events: list[TriggerEvent]


# --- schedules ------------------------------------------------------------------------------


class CreateSchedule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/schedules``: 5 fields (minute resolution) or 6 (seconds first)."""

    automation_id: uuid.UUID
    cron_expression: CronExpression
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    timezone: TimeZone = "UTC"
    enabled: bool = True


class UpdateSchedule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``PATCH /api/schedules/{id}``."""

    name: Annotated[str, msgspec.Meta(max_length=200)] | msgspec.UnsetType = msgspec.UNSET
    cron_expression: CronExpression | msgspec.UnsetType = msgspec.UNSET
    timezone: TimeZone | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    """A cron schedule of an automation, with its next firing time (UTC)."""

    id: uuid.UUID
    org_id: uuid.UUID
    automation_id: uuid.UUID
    name: str
    cron_expression: str
    timezone: str
    enabled: bool
    last_run_at: datetime | None
    next_run_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ScheduleList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/schedules``."""

    schedules: list[Schedule]


# --- runs -----------------------------------------------------------------------------------


class Run(msgspec.Struct, frozen=True, kw_only=True):
    """An automation run."""

    id: uuid.UUID
    org_id: uuid.UUID
    automation_id: uuid.UUID
    automation_name: str
    trigger_id: uuid.UUID | None
    trigger_event_id: uuid.UUID
    status: RunStatus
    status_reason: str | None
    failure_stage: str | None
    session_id: uuid.UUID | None
    target_configuration_id: uuid.UUID | None
    completion_id: str | None
    completion: dict[str, Any] | None
    completion_artifact_ref: str | None
    enrichment: dict[str, Any] | None
    enrichment_artifact_ref: str | None
    summary: str | None
    error_code: str | None
    error_message: str | None
    assigned_to: uuid.UUID | None
    assigned_at: datetime | None
    resolved_by: uuid.UUID | None
    resolved_at: datetime | None
    resolution_note: str | None
    queued_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    deadline_at: datetime | None
    created_at: datetime
    updated_at: datetime


class RunList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/runs`` and ``GET /api/runs/attention``."""

    runs: list[Run]


class RunEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of a run's history (status transitions, enrichment, completion...)."""

    id: int
    type: str
    from_status: str | None
    to_status: str | None
    data: dict[str, Any]
    created_at: datetime


class RunEventList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/runs/{id}/events``."""

    events: list[RunEvent]


class ResolveRun(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/runs/{id}/resolve``: a human closes an attention item."""

    outcome: Literal["succeeded", "failed"]
    note: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


class RunNowResponse(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/automations/{id}/run`` (202): the queued run and its event."""

    run_id: uuid.UUID
    trigger_event_id: uuid.UUID


# --- NATS messages --------------------------------------------------------------------------


class TriggerEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """A verified, parsed delivery on ``<prefix>.triggers.events.<provider>``.

    Published by the ingress (webhooks) and the scheduler (polls). Exactly one of
    ``trigger_id`` (a trigger's own URL or poll) and ``connection_id`` (Nango forward:
    every enabled trigger of that connection and provider) is set.
    """

    v: Literal[1] = 1
    provider: ProviderType
    trigger_id: str | None = None
    connection_id: str | None = None
    received_at: float
    """Unix seconds when the delivery reached Warren."""
    contexts: tuple[TriggerContext, ...]
    raw_payload: msgspec.Raw = msgspec.Raw(b"null")
    """The delivery's JSON body, stored as the event's ``raw_payload`` (``null``: none)."""


class NangoForward(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /webhooks/nango``: any Nango webhook envelope (``type`` ``forward``, ``auth``,
    ``sync``...); only a ``forward`` with a ``connectionId`` and a ``payload`` carries an
    event (the provider's webhook body). A webhook Nango cannot attribute to a connection
    arrives as the raw provider body, without the wrapper: no ``type``."""

    type: str | None = None
    connectionId: str | None = None
    providerConfigKey: str | None = None
    source: str | None = msgspec.field(default=None, name="from")
    """The provider Nango forwards for (``github``...), when Nango says."""
    payload: msgspec.Raw = msgspec.Raw(b"null")
    """The provider's webhook body (JSON ``null`` when absent)."""


class WebhookAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook answer: ``accepted`` (durably enqueued) or ``ignored`` (nothing to do)."""

    status: Literal["accepted", "ignored"]
    events: int


class CustomTriggerMessage(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a system publishes on ``<prefix>.triggers.events.custom.<trigger id>``.

    ``dedup_key`` makes redelivery safe forever; without it, an identical message within
    5 minutes of the first is a duplicate (SHA-256 of the message bytes).
    """

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    payload: dict[str, Any] = {}
    event_type: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] = "custom:event"
    description: Annotated[str, msgspec.Meta(max_length=20_000)] | None = None
    url: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    external_id: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    dedup_key: Annotated[str, msgspec.Meta(min_length=1, max_length=500)] | None = None


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """What the trigger pool publishes on ``<prefix>.triggers.dead.<reason>``."""

    reason: str
    detail: str
    subject: str
    stream_seq: int
    trigger_id: str | None
    data: msgspec.Raw = msgspec.Raw(b"null")
    """The original message when it was JSON, else ``null`` (see ``data_text``)."""
    data_text: str | None = None


RunStage = Literal["enrich", "execute"]


class RunWork(msgspec.Struct, frozen=True, kw_only=True):
    """A run-pool work item on ``<prefix>.runs.<stage>``."""

    run_id: str
    stage: RunStage


# --- enrichment payload v1 (contracts §5) ---------------------------------------------------


class EnrichmentSummary(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Title and description of the triggering item."""

    title: str
    description: str | None


class EnrichmentSource(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Where the trigger came from."""

    url: str | None
    external_id: str
    event_type: str


class EnrichmentAutomation(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """The automation the run belongs to."""

    automation_id: str
    automation_name: str
    trigger_id: str
    trigger_event_id: str


class EnrichmentV1(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Deterministic enrichment of a run (no LLM), saved as ``runs/<id>/enrichment.json``."""

    version: Literal[1] = 1
    provider: str
    summary: EnrichmentSummary
    source: EnrichmentSource
    related_files: tuple[str, ...]
    suggested_repo: str | None
    """`owner/name` of the repository the event is about, when it names one."""
    provider_context: dict[str, Any]
    automation_context: EnrichmentAutomation
