"""PostHog trigger provider: webhook destinations and action webhooks.

Two body shapes are accepted: the webhook destination's default
``{"event": {"uuid", "event", "distinct_id", "properties", "timestamp", "url"},
"person": {...}}`` and a flat ``{"event": "<name>", "distinct_id", "properties",
"timestamp"}``. Dedup key ``posthog:{uuid}``, else ``posthog:{event}:{distinctId}:{ts}``
(``unknown`` for a missing distinct id). PostHog is webhook only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from integrations._payload import decode_payload, js_string
from integrations.provider import WebhookOnly
from schemas.triggers import PostHogContext, PostHogFilters, ProviderType, TriggerContext


class _EventObject(msgspec.Struct):
    event: str | None = None
    uuid: str | None = None
    distinct_id: str | None = None
    timestamp: str | None = None
    url: str | None = None
    properties: dict[str, Any] | None = None


class _Person(msgspec.Struct):
    id: str | None = None
    name: str | None = None
    url: str | None = None


class _Webhook(msgspec.Struct):
    event: _EventObject | str | None = None
    uuid: str | None = None
    distinct_id: str | None = None
    timestamp: str | None = None
    properties: dict[str, Any] | None = None
    person: _Person | None = None


def parse_posthog(body: bytes) -> list[TriggerContext]:
    """Contexts for one PostHog delivery (none if it names no event)."""
    hook = decode_payload("posthog", body, _Webhook)
    if isinstance(hook.event, _EventObject):
        obj = hook.event
        name = obj.event
        uuid = obj.uuid or hook.uuid
        distinct_id = obj.distinct_id or hook.distinct_id
        timestamp = obj.timestamp or hook.timestamp
        event_url = obj.url
        properties = obj.properties if obj.properties is not None else hook.properties
    else:
        name, uuid = hook.event, hook.uuid
        distinct_id, timestamp = hook.distinct_id, hook.timestamp
        event_url, properties = None, hook.properties
    if not name:
        return []
    props = properties or {}
    current = props.get("$current_url")
    url = event_url or (current if isinstance(current, str) else None)
    person = hook.person or _Person()
    if uuid:
        dedup = f"posthog:{uuid}"
    else:
        dedup = f"posthog:{name}:{distinct_id or 'unknown'}:{timestamp or ''}"
    raw: dict[str, Any] = {"event": name}
    for key, value in (("uuid", uuid), ("distinct_id", distinct_id), ("timestamp", timestamp)):
        if value:
            raw[key] = value
    return [
        TriggerContext(
            provider="posthog",
            event_type=name,
            title=f"PostHog: {name}",
            external_id=uuid or distinct_id or name,
            dedup_key=dedup,
            description=url,
            url=url,
            actor=person.name or distinct_id,
            raw=raw,
            posthog=PostHogContext(
                event=name,
                uuid=uuid,
                distinct_id=distinct_id,
                timestamp=timestamp,
                properties=props,
                person_id=person.id,
                person_name=person.name,
                person_url=person.url,
            ),
        )
    ]


def matches_posthog(ctx: TriggerContext, f: PostHogFilters) -> bool:
    """Apply PostHog filters: event name membership, then every property filter must equal
    the property rendered as a JavaScript string (missing → empty string)."""
    ph = ctx.posthog
    if ph is None:
        return False
    if f.event_names and ph.event not in f.event_names:
        return False
    return all(js_string(ph.properties.get(k)) == v for k, v in f.property_filters.items())


class PostHogProvider(WebhookOnly):
    """PostHog webhooks; no polling."""

    name: ClassVar[ProviderType] = "posthog"
    filters_type: ClassVar[type[msgspec.Struct]] = PostHogFilters

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[TriggerContext]:
        """See :func:`parse_posthog`."""
        return parse_posthog(body)

    def matches(self, ctx: TriggerContext, filters: PostHogFilters) -> bool:
        """See :func:`matches_posthog`."""
        return matches_posthog(ctx, filters)
