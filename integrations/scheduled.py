"""Scheduled (cron) trigger provider: one context per firing, keyed by the job id.

The scheduler owns the cron; this module only shapes a firing into a context
(``scheduled_trigger``, titled "Scheduled run", dedup key ``scheduled:{jobId}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import ClassVar

import msgspec

from integrations._payload import decode_payload
from integrations.errors import PayloadError
from integrations.provider import WebhookOnly
from schemas.triggers import ProviderType, ScheduledContext, ScheduledFilters, TriggerContext


def scheduled_context(
    *, job_id: str, cron_expression: str, fired_at: datetime, timezone: str = "UTC"
) -> TriggerContext:
    """The context of one cron firing; ``job_id`` must be unique per firing."""
    if fired_at.tzinfo is None:
        fired_at = fired_at.replace(tzinfo=UTC)
    fired = fired_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return TriggerContext(
        provider="scheduled",
        event_type="scheduled_trigger",
        title="Scheduled run",
        external_id=job_id,
        dedup_key=f"scheduled:{job_id}",
        description=f"Cron {cron_expression} ({timezone}) fired at {fired}",
        raw={"type": "scheduled_trigger", "cron_expression": cron_expression, "fired_at": fired},
        scheduled=ScheduledContext(
            job_id=job_id, cron_expression=cron_expression, fired_at=fired, timezone=timezone
        ),
    )


class ScheduledProvider(WebhookOnly):
    """Cron firings; neither webhooks nor polling."""

    name: ClassVar[ProviderType] = "scheduled"
    filters_type: ClassVar[type[msgspec.Struct]] = ScheduledFilters
    poll_error: ClassVar[str] = "triggers fire from their cron expression, not by polling"

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[TriggerContext]:
        """A firing encoded as :class:`ScheduledContext` JSON, as one context."""
        firing = decode_payload("scheduled", body, ScheduledContext)
        try:
            fired_at = datetime.fromisoformat(firing.fired_at.replace("Z", "+00:00"))
        except ValueError as exc:
            raise PayloadError("scheduled", f"fired_at is not ISO 8601: {exc}") from exc
        return [
            scheduled_context(
                job_id=firing.job_id,
                cron_expression=firing.cron_expression,
                fired_at=fired_at,
                timezone=firing.timezone,
            )
        ]

    def matches(self, ctx: TriggerContext, filters: ScheduledFilters) -> bool:
        """Always true for a scheduled context: cron triggers have no filters."""
        return ctx.scheduled is not None
