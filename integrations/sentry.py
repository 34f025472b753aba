"""Sentry trigger provider: integration-platform webhooks of three resources.

- ``issue`` (``Sentry-Hook-Resource: issue``): ``data.issue``, and ``data.event`` when
  present for the event id, tags and stack trace;
- ``event_alert`` (an issue alert rule fired, action ``triggered``): ``data.event``, with
  ``issue_id`` and ``data.triggered_rule``;
- ``error`` (``error.created``): ``data.error``, an event with ``issue_id``.

Without the header the resource is inferred from which of ``issue``/``event``/``error``
``data`` holds. The stack trace keeps the last 10 frames of the first exception. A
trigger's ``resources`` filter picks which resources fire it (empty: all). The dedup key
is the body's hash; the registry replaces it with ``Request-ID`` when Sentry sends it.
Sentry is webhook only: polling raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from integrations._payload import body_key, decode_payload, unique
from integrations.provider import WebhookOnly
from integrations.signatures import header_value
from schemas.triggers import (
    SENTRY_RESOURCES,
    ProviderType,
    SentryContext,
    SentryFilters,
    SentryFrame,
    SentryResource,
    TriggerContext,
)

SEVERITY_ORDER = ("debug", "info", "warning", "error", "fatal")
MAX_FRAMES = 10


class _Tag(msgspec.Struct):
    key: str
    value: str | None = None


_Tags = list[tuple[str, str | None] | _Tag]


class _Project(msgspec.Struct):
    id: str | int | None = None
    name: str | None = None
    slug: str | None = None


class _Metadata(msgspec.Struct):
    type: str | None = None
    value: str | None = None
    filename: str | None = None


class _Issue(msgspec.Struct):
    id: str | int
    shortId: str | None = None
    title: str | None = None
    culprit: str | None = None
    level: str | None = None
    status: str | None = None
    project: _Project | None = None
    metadata: _Metadata | None = None
    tags: _Tags | None = None
    web_url: str | None = None
    permalink: str | None = None


class _Frame(msgspec.Struct):
    filename: str | None = None
    function: str | None = None
    lineno: int | None = None
    colno: int | None = None
    in_app: bool | None = None


class _Stacktrace(msgspec.Struct):
    frames: list[_Frame] | None = None


class _ExceptionValue(msgspec.Struct):
    type: str | None = None
    value: str | None = None
    stacktrace: _Stacktrace | None = None


class _Exception(msgspec.Struct):
    values: list[_ExceptionValue] | None = None


class _Event(msgspec.Struct):
    event_id: str | None = None
    issue_id: str | int | None = None
    title: str | None = None
    message: str | None = None
    level: str | None = None
    culprit: str | None = None
    metadata: _Metadata | None = None
    url: str | None = None
    """API URL ``.../projects/<org>/<project slug>/events/<id>/``."""
    environment: str | None = None
    release: str | None = None
    tags: _Tags | None = None
    exception: _Exception | None = None
    web_url: str | None = None


class _Data(msgspec.Struct):
    issue: _Issue | None = None
    event: _Event | None = None
    error: _Event | None = None
    triggered_rule: str | None = None


class _Actor(msgspec.Struct):
    name: str | None = None


class _Webhook(msgspec.Struct):
    action: str | None = None
    data: _Data | None = None
    actor: _Actor | None = None


def _tag(tags: list[_Tags | None], key: str) -> str | None:
    for group in tags:
        for tag in group or []:
            k, v = (tag.key, tag.value) if isinstance(tag, _Tag) else tag
            if k == key and v:
                return v
    return None


def _frames(event: _Event | None) -> tuple[list[_Frame], list[str]]:
    """The first exception's frames, and every in-file frame's filename."""
    values = event.exception.values if event and event.exception else None
    first: list[_Frame] = []
    files: list[str] = []
    for value in values or []:
        frames = value.stacktrace.frames if value.stacktrace else None
        if not frames:
            continue
        if not first:
            first = frames
        files.extend(f.filename for f in frames if f.filename and not f.filename.startswith("<"))
    return first, files


def _resource(data: _Data, header: str | None) -> SentryResource | None:
    """The delivery's resource: the header when Warren reads it, else ``data``'s shape."""
    if header is not None:
        return next((r for r in SENTRY_RESOURCES if r == header), None)
    if data.issue is not None:
        return "issue"
    if data.event is not None:
        return "event_alert"
    return "error" if data.error is not None else None


def _project_slug(event: _Event) -> str | None:
    """The project slug in an event's API URL (events carry only the project's id)."""
    parts = (event.url or "").split("/")
    if "projects" in parts and parts.index("projects") + 2 < len(parts):
        return parts[parts.index("projects") + 2] or None
    return None


def _stack(event: _Event | None) -> tuple[tuple[SentryFrame, ...], str | None, list[str]]:
    all_frames, files = _frames(event)
    frames = tuple(
        SentryFrame(
            filename=f.filename,
            function=f.function,
            lineno=f.lineno,
            colno=f.colno,
            in_app=f.in_app,
        )
        for f in all_frames[-MAX_FRAMES:]
    )
    stack = "\n".join(
        f"  at {f.function or '<anonymous>'} ({f.filename}:{f.lineno}:{f.colno})"
        for f in reversed(frames)
    )
    return frames, stack or None, files


def parse_sentry(body: bytes, resource: str | None = None) -> list[TriggerContext]:
    """Contexts for one Sentry delivery; ``resource`` is ``Sentry-Hook-Resource``."""
    hook = decode_payload("sentry", body, _Webhook)
    data = hook.data or _Data()
    kind = _resource(data, resource)
    event = data.event if kind != "error" else data.error
    if (
        kind is None
        or (kind == "issue" and data.issue is None)
        or (kind != "issue" and event is None)
    ):
        return []
    issue = data.issue
    issue_id = str(issue.id if issue else (event.issue_id if event else None) or "")
    action = hook.action or ("triggered" if kind == "event_alert" else "created")
    tags = [issue.tags if issue else None, event.tags if event else None]
    frames, stack, files = _stack(event)
    event_id = event.event_id if event else None
    external_id = event_id or issue_id
    meta = (issue.metadata if issue else None) or (event.metadata if event else None)
    meta = meta or _Metadata()
    project = (issue.project.slug if issue and issue.project else None) or (
        _project_slug(event) if event else None
    )
    ctx = SentryContext(
        issue_id=issue_id,
        action=action,
        resource=kind,
        short_id=issue.shortId if issue else None,
        event_id=event_id,
        level=(issue.level if issue else None) or (event.level if event else None) or "error",
        project_slug=project,
        environment=(event.environment if event else None) or _tag(tags, "environment"),
        release=(event.release if event else None) or _tag(tags, "release"),
        error_type=meta.type,
        error_message=meta.value or (event.message if event else None),
        culprit=(issue.culprit if issue else None) or (event.culprit if event else None),
        frames=frames,
        stack_trace=stack,
        triggered_rule=data.triggered_rule,
    )
    raw: dict[str, Any] = {"action": action, "issueId": issue_id, "resource": kind}
    if event_id:
        raw["eventId"] = event_id
    if ctx.project_slug:
        raw["project"] = ctx.project_slug
    if data.triggered_rule:
        raw["triggeredRule"] = data.triggered_rule
    web_url = (issue.web_url or issue.permalink) if issue else (event.web_url if event else None)
    return [
        TriggerContext(
            provider="sentry",
            event_type=f"{kind}:{action}",
            title=(issue.title if issue else None)
            or (event.title if event else None)
            or "Sentry Error",
            external_id=external_id,
            dedup_key=body_key("sentry", body),
            description=ctx.culprit,
            url=web_url or f"https://sentry.io/issues/{issue_id}/",
            actor=hook.actor.name if hook.actor else None,
            related_files=unique(files),
            raw=raw,
            sentry=ctx,
        )
    ]


def _severity(level: str) -> int:
    # Unknown levels count as "error", as the reference does.
    return SEVERITY_ORDER.index(level) if level in SEVERITY_ORDER else 3


def matches_sentry(ctx: TriggerContext, f: SentryFilters) -> bool:
    """Apply Sentry filters: resources, project slug, environments, level at least
    ``min_level``."""
    s = ctx.sentry
    if s is None:
        return False
    if f.resources and s.resource not in f.resources:
        return False
    if f.project_slug and s.project_slug != f.project_slug:
        return False
    if f.environments and s.environment not in f.environments:
        return False
    return not (f.min_level and _severity(s.level) < _severity(f.min_level))


class SentryProvider(WebhookOnly):
    """Sentry integration-platform webhooks; polling is refused."""

    name: ClassVar[ProviderType] = "sentry"
    filters_type: ClassVar[type[msgspec.Struct]] = SentryFilters
    poll_error: ClassVar[str] = (
        "only supports webhooks, not polling. Configure a webhook integration instead."
    )

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[TriggerContext]:
        """See :func:`parse_sentry`."""
        return parse_sentry(body, header_value(headers, "Sentry-Hook-Resource"))

    def matches(self, ctx: TriggerContext, filters: SentryFilters) -> bool:
        """See :func:`matches_sentry`."""
        return matches_sentry(ctx, filters)
