"""Sentry trigger provider: integration-platform webhooks that carry ``data.issue``.

Only deliveries with ``data.issue`` become contexts (issue webhooks, and alert payloads
that include the issue); ``data.event``, when present, adds the event id, tags and stack
trace (last 10 frames). Sentry is webhook only: polling raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from integrations._payload import body_key, decode_payload, unique
from integrations.provider import WebhookOnly
from integrations.signatures import header_value
from schemas.triggers import (
    ProviderType,
    SentryContext,
    SentryFilters,
    SentryFrame,
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
    title: str | None = None
    message: str | None = None
    environment: str | None = None
    release: str | None = None
    tags: _Tags | None = None
    exception: _Exception | None = None
    web_url: str | None = None


class _Data(msgspec.Struct):
    issue: _Issue | None = None
    event: _Event | None = None


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


def parse_sentry(body: bytes, resource: str | None = None) -> list[TriggerContext]:
    """Contexts for one Sentry delivery; ``resource`` is ``Sentry-Hook-Resource``."""
    hook = decode_payload("sentry", body, _Webhook)
    if hook.data is None or hook.data.issue is None:
        return []
    issue, event = hook.data.issue, hook.data.event
    issue_id = str(issue.id)
    action = hook.action or "created"
    tags = [issue.tags, event.tags if event else None]
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
    event_id = event.event_id if event else None
    external_id = event_id or issue_id
    meta = issue.metadata or _Metadata()
    kind = resource or "issue"
    ctx = SentryContext(
        issue_id=issue_id,
        action=action,
        resource=kind,
        short_id=issue.shortId,
        event_id=event_id,
        level=issue.level or "error",
        project_slug=issue.project.slug if issue.project else None,
        environment=(event.environment if event else None) or _tag(tags, "environment"),
        release=(event.release if event else None) or _tag(tags, "release"),
        error_type=meta.type,
        error_message=meta.value or (event.message if event else None),
        culprit=issue.culprit,
        frames=frames,
        stack_trace=stack or None,
    )
    raw: dict[str, Any] = {"action": action, "issueId": issue_id}
    if event_id:
        raw["eventId"] = event_id
    if ctx.project_slug:
        raw["project"] = ctx.project_slug
    return [
        TriggerContext(
            provider="sentry",
            event_type=f"{kind}:{action}",
            title=issue.title or (event.title if event else None) or "Sentry Error",
            external_id=external_id,
            dedup_key=body_key("sentry", body),
            description=issue.culprit,
            url=issue.web_url or issue.permalink or f"https://sentry.io/issues/{issue_id}/",
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
    """Apply Sentry filters: project slug, environments, level at least ``min_level``."""
    s = ctx.sentry
    if s is None:
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
