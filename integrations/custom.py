"""Custom (generic) webhook provider: any body, optionally HMAC-signed.

Every verified delivery is one context. The body is kept as the payload: a JSON object
as is, other JSON as ``{"value": ...}``, non-JSON as ``{"raw": "<text>"}``.

Dedup key ``webhook:{sha256(body) hex}``. The reference treats a repeated body as a
duplicate only within :data:`CUSTOM_DEDUP_WINDOW_SECONDS` (5 minutes) of the earlier
event; the key itself does not expire, so applying the window is the caller's job: a
stored event with the same key that is older than the window is not a duplicate.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import msgspec

from integrations._payload import body_key
from integrations.provider import WebhookOnly
from integrations.signatures import header_value
from schemas.triggers import ProviderType, TriggerContext, WebhookContext, WebhookFilters

CUSTOM_DEDUP_WINDOW_SECONDS = 300


def _payload(body: bytes) -> dict[str, Any]:
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return {"raw": body.decode("utf-8", errors="replace")}
    return decoded if isinstance(decoded, dict) else {"value": decoded}


def parse_custom(
    body: bytes, content_type: str | None = None, *, now: float | None = None
) -> TriggerContext:
    """The context of one custom webhook delivery received at ``now`` (Unix seconds)."""
    digest = hashlib.sha256(body).hexdigest()
    moment = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC)
    received_at = moment.isoformat().replace("+00:00", "Z")
    return TriggerContext(
        provider="webhook",
        event_type="webhook:received",
        title="Webhook Received",
        external_id=f"webhook:{received_at}",
        dedup_key=body_key("webhook", body),
        description=f"Custom webhook received at {received_at}",
        raw={"bodySha256": digest},
        webhook=WebhookContext(
            received_at=received_at,
            body_sha256=digest,
            payload=_payload(body),
            content_type=content_type,
        ),
    )


class CustomWebhookProvider(WebhookOnly):
    """Generic webhooks (``webhook`` and ``custom`` provider types); no filters."""

    name: ClassVar[ProviderType] = "webhook"
    filters_type: ClassVar[type[msgspec.Struct]] = WebhookFilters
    poll_error: ClassVar[str] = "webhooks are pushed to Warren and cannot be polled"

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[TriggerContext]:
        """One context per delivery; see :func:`parse_custom`."""
        return [parse_custom(body, header_value(headers, "Content-Type"), now=self._clock())]

    def matches(self, ctx: TriggerContext, filters: WebhookFilters) -> bool:
        """Always true: custom webhooks have no filters."""
        return ctx.webhook is not None
