"""Normalized trigger shapes: what every provider's webhook or poll becomes, and its filters.

A provider (GitHub, Linear, Sentry, PostHog, Gmail, custom webhook, cron) turns one
delivery into zero or more :class:`TriggerContext` values. The context carries the
fields every consumer needs (title, description, URL, external id, dedup key, repo and
branch, labels, actor), a small subset of the raw payload, and one provider-specific
block. Filter configurations are per provider; they are stored as a trigger's
``config`` and decoded into the matching ``*Filters`` struct.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

ProviderType = Literal[
    "github", "linear", "sentry", "posthog", "gmail", "webhook", "custom", "scheduled"
]
"""A trigger's provider. ``webhook`` and ``custom`` are both the generic signed webhook."""

GitHubEventKind = Literal[
    "issues", "pull_request", "push", "check_suite", "check_run", "workflow_run"
]
"""The GitHub events Warren turns into triggers (the ``X-GitHub-Event`` value)."""

GitHubConclusion = Literal[
    "success", "failure", "neutral", "cancelled", "skipped", "timed_out", "action_required", "stale"
]
SentryLevel = Literal["debug", "info", "warning", "error", "fatal"]
SentryResource = Literal["issue", "event_alert", "error"]
"""Sentry webhook resources that become events: issues, issue alerts, errors."""
SENTRY_RESOURCES: tuple[SentryResource, ...] = ("issue", "event_alert", "error")
LinearAction = Literal["create", "update"]


# --- provider-specific context blocks ------------------------------------------------


class GitHubCommit(msgspec.Struct, frozen=True, kw_only=True):
    """One commit of a push event."""

    sha: str
    message: str
    author: str | None = None


class GitHubContext(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a GitHub event adds: the item, its PR/issue/check details."""

    event: GitHubEventKind
    action: str
    item_id: str
    """Stable id of the item the event is about, e.g. ``issue-1234`` or ``check-run-99``."""
    repo_url: str | None = None
    number: int | None = None
    state: str | None = None
    base_branch: str | None = None
    head_branch: str | None = None
    head_sha: str | None = None
    is_draft: bool | None = None
    is_merged: bool | None = None
    commits: tuple[GitHubCommit, ...] = ()
    compare_url: str | None = None
    check_name: str | None = None
    conclusion: str | None = None
    workflow_name: str | None = None
    error_message: str | None = None
    error_details: str | None = None


class LinearContext(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a Linear issue adds."""

    issue_id: str
    action: LinearAction
    identifier: str | None = None
    """Human key such as ``ENG-123``."""
    number: int | None = None
    state: str | None = None
    state_type: str | None = None
    priority: int = 4
    """0 none, 1 urgent, 2 high, 3 normal, 4 low; a missing priority counts as 4."""
    team_id: str | None = None
    team_key: str | None = None
    assignee_id: str | None = None
    assignee_name: str | None = None
    project_id: str | None = None
    project_name: str | None = None
    label_ids: tuple[str, ...] = ()
    updated_at: str | None = None


class SentryFrame(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One stack frame (oldest to newest, as Sentry orders them)."""

    filename: str | None = None
    function: str | None = None
    lineno: int | None = None
    colno: int | None = None
    in_app: bool | None = None


class SentryContext(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a Sentry issue adds; ``frames`` keeps only the last 10 of the first exception."""

    issue_id: str
    action: str
    resource: SentryResource = "issue"
    """The ``Sentry-Hook-Resource``: ``issue``, ``event_alert`` or ``error``."""
    short_id: str | None = None
    event_id: str | None = None
    level: str = "error"
    project_slug: str | None = None
    environment: str | None = None
    release: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    culprit: str | None = None
    frames: tuple[SentryFrame, ...] = ()
    stack_trace: str | None = None
    """``frames`` rendered newest first, one ``at fn (file:line:col)`` per line."""
    triggered_rule: str | None = None
    """The alert rule that fired (``event_alert`` only)."""


class PostHogContext(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a PostHog event adds."""

    event: str
    uuid: str | None = None
    distinct_id: str | None = None
    timestamp: str | None = None
    properties: dict[str, Any] = {}
    person_id: str | None = None
    person_name: str | None = None
    person_url: str | None = None


class GmailContext(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a Gmail message adds (metadata only: headers, snippet, labels)."""

    message_id: str
    thread_id: str | None = None
    subject: str | None = None
    sender: str | None = None
    to: str | None = None
    date: str | None = None
    snippet: str | None = None
    label_ids: tuple[str, ...] = ()
    history_id: str | None = None


class WebhookContext(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a custom webhook adds: the decoded body (or ``{"raw": text}``) and its hash."""

    received_at: str
    body_sha256: str
    payload: dict[str, Any] = {}
    content_type: str | None = None


class ScheduledContext(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One cron firing of a ``scheduled`` trigger."""

    job_id: str
    cron_expression: str
    fired_at: str
    timezone: str = "UTC"


# --- the normalized context -----------------------------------------------------------


class TriggerContext(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One external event, normalized: the ``parsed_context`` of a trigger event."""

    provider: ProviderType
    event_type: str
    """Provider event type, e.g. ``issues:opened``, ``Issue:update``, ``issue:created``."""
    title: str
    external_id: str
    dedup_key: str
    """Unique per trigger; a second event with the same key is dropped."""
    description: str | None = None
    url: str | None = None
    repo_full_name: str | None = None
    branch: str | None = None
    labels: tuple[str, ...] = ()
    actor: str | None = None
    related_files: tuple[str, ...] = ()
    raw: dict[str, Any] = {}
    """A small subset of the raw payload (ids, action, names), never the whole body."""
    github: GitHubContext | None = None
    linear: LinearContext | None = None
    sentry: SentryContext | None = None
    posthog: PostHogContext | None = None
    gmail: GmailContext | None = None
    webhook: WebhookContext | None = None
    scheduled: ScheduledContext | None = None


# --- filters (a trigger's ``config``); empty means "all" -------------------------------


class GitHubFilters(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """GitHub filters. ``branches`` match by substring; ``labels`` match any."""

    event_types: tuple[GitHubEventKind, ...] = ()
    actions: tuple[str, ...] = ()
    branches: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    repos: tuple[str, ...] = ()
    """Exact ``owner/name``."""
    conclusions: tuple[GitHubConclusion, ...] = ()


class LinearFilters(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Linear filters: team id, state names, priorities, label names (any), ids, actions."""

    team_id: str | None = None
    states: tuple[str, ...] = ()
    priorities: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()
    assignee_ids: tuple[str, ...] = ()
    project_ids: tuple[str, ...] = ()
    actions: tuple[LinearAction, ...] = ()


class SentryFilters(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Sentry filters: resources (issue, event_alert, error; empty = all), project slug,
    environments, minimum level."""

    resources: tuple[SentryResource, ...] = ()
    project_slug: str | None = None
    environments: tuple[str, ...] = ()
    min_level: SentryLevel | None = None


class PostHogFilters(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """PostHog filters: event names and exact property strings."""

    event_names: tuple[str, ...] = ()
    property_filters: dict[str, str] = {}
    require_signature_verification: bool = False
    """Checked by the webhook route, not by the filter."""


class GmailFilters(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Gmail filters: any of these label ids; plus what the poll fetches."""

    label_ids: tuple[str, ...] = ()
    metadata_headers: tuple[str, ...] = ("Subject", "From", "To", "Date")
    max_messages: int = 100
    """Upper bound on messages fetched per poll."""


class WebhookFilters(msgspec.Struct, frozen=True, kw_only=True):
    """Custom webhooks have no filters: every verified delivery fires."""


class ScheduledFilters(msgspec.Struct, frozen=True, kw_only=True):
    """Scheduled triggers have no filters: every firing fires."""


# --- polling ---------------------------------------------------------------------------


class PollConnection(msgspec.Struct, frozen=True, kw_only=True):
    """Credentials a poll uses; ``base_url`` overrides the provider's API host."""

    access_token: str
    base_url: str | None = None


class PollResult(msgspec.Struct, frozen=True, kw_only=True):
    """A poll's new events and the opaque cursor to pass to the next poll."""

    events: tuple[TriggerContext, ...]
    cursor: str | None


# --- notifications ---------------------------------------------------------------------

RunTerminalStatus = Literal["succeeded", "failed", "needs_human", "timed_out"]


class RunNotification(msgspec.Struct, frozen=True, kw_only=True):
    """A run reached a terminal state: what the Slack notification shows."""

    run_id: str
    status: RunTerminalStatus
    automation_name: str
    run_url: str
    summary: str | None = None
    status_reason: str | None = None
    error_message: str | None = None
