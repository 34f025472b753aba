"""Deterministic run enrichment (payload v1, no LLM) and the automation prompt.

The enrichment is computed only from the trigger event's parsed context and the
automation, so recomputing it after a crash gives the same bytes.
"""

from __future__ import annotations

import uuid

import msgspec

from schemas.automations import (
    EnrichmentAutomation,
    EnrichmentSource,
    EnrichmentSummary,
    EnrichmentV1,
)
from schemas.triggers import TriggerContext
from store.runs import RunRecord

_COMPLETION_NAMESPACE = uuid.UUID("6f0d2c55-6c1e-4f9e-9a4e-2b7f3f1e8a10")
_PROVIDER_BLOCKS = ("github", "linear", "sentry", "posthog", "gmail", "webhook", "scheduled")


class EnrichmentError(ValueError):
    """The trigger context cannot be enriched (missing or malformed)."""


def completion_id(run_id: uuid.UUID) -> str:
    """The completion id the agent must report for this run (stable across retries)."""
    return str(uuid.uuid5(_COMPLETION_NAMESPACE, str(run_id)))


def build_enrichment(record: RunRecord) -> EnrichmentV1:
    """Payload v1 for ``record``; :class:`EnrichmentError` if its context has no title."""
    if record.parsed_context is None:
        raise EnrichmentError("the trigger event has no parsed context")
    try:
        ctx = msgspec.convert(record.parsed_context, TriggerContext)
    except msgspec.ValidationError as exc:
        raise EnrichmentError(f"the trigger context is malformed: {exc}") from None
    if not ctx.title.strip():
        raise EnrichmentError("the trigger context has no title")
    block: dict[str, object] = {}
    for name in _PROVIDER_BLOCKS:
        value = getattr(ctx, name)
        if value is not None:
            block = msgspec.to_builtins(value)
            break
    return EnrichmentV1(
        provider=ctx.provider,
        summary=EnrichmentSummary(title=ctx.title, description=ctx.description),
        source=EnrichmentSource(
            url=ctx.url, external_id=ctx.external_id, event_type=ctx.event_type
        ),
        related_files=ctx.related_files,
        suggested_repo=ctx.repo_full_name,
        provider_context=block,
        automation_context=EnrichmentAutomation(
            automation_id=str(record.automation_id),
            automation_name=record.automation_name,
            trigger_id=str(record.trigger_id) if record.trigger_id else "",
            trigger_event_id=str(record.trigger_event_id),
        ),
    )


def automation_prompt(record: RunRecord, enrichment: dict[str, object]) -> str:
    """The session's first prompt: instructions, trigger context, completion requirements."""
    context = msgspec.json.format(msgspec.json.encode(enrichment), indent=2).decode()
    instructions = record.agent_instructions.strip() or "Handle the event described below."
    return (
        f"{instructions}\n\n"
        "## Trigger context\n\n"
        f"```json\n{context}\n```\n\n"
        "## When you are done\n\n"
        "You must finish by calling the `automation_complete` tool exactly once with:\n"
        f"- run_id: `{record.id}`\n"
        f"- completion_id: `{completion_id(record.id)}`\n"
        "- outcome: `succeeded`, `failed`, or `needs_human`\n"
        "- summary_markdown: what you did and found\n"
    )
