"""Custom webhooks, scheduled firings and the provider registry."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from integrations.custom import CustomWebhookProvider, parse_custom
from integrations.errors import PayloadError, PollingNotSupportedError
from integrations.registry import UnknownProviderError, default_registry, get_provider
from integrations.scheduled import ScheduledProvider, scheduled_context
from schemas.triggers import (
    GmailFilters,
    PollConnection,
    PostHogFilters,
    ScheduledFilters,
    WebhookFilters,
)

NOW = 1_770_715_812.5


def test_custom_dedup_key_is_sha256_of_body() -> None:
    body = b'{"deploy": "done", "sha": "abc123"}'
    ctx = parse_custom(body, "application/json", now=NOW)
    assert ctx.dedup_key == "webhook:" + hashlib.sha256(body).hexdigest()
    assert ctx.provider == "webhook" and ctx.event_type == "webhook:received"
    assert ctx.webhook is not None
    assert ctx.webhook.payload == {"deploy": "done", "sha": "abc123"}
    assert ctx.webhook.received_at == "2026-02-10T09:30:12.500000Z"
    # A different body is a different event; the same body is the same key.
    assert parse_custom(body + b" ", now=NOW).dedup_key != ctx.dedup_key
    assert parse_custom(body, now=NOW + 10).dedup_key == ctx.dedup_key


def test_custom_non_object_bodies() -> None:
    text = parse_custom(b"deploy finished", "text/plain", now=NOW)
    assert text.webhook is not None and text.webhook.payload == {"raw": "deploy finished"}
    array = parse_custom(b"[1, 2]", now=NOW)
    assert array.webhook is not None and array.webhook.payload == {"value": [1, 2]}


def test_custom_provider_uses_clock_and_content_type() -> None:
    provider = CustomWebhookProvider(clock=lambda: NOW)
    [ctx] = provider.parse_webhook(b"{}", {"content-type": "application/json"})
    assert ctx.webhook is not None and ctx.webhook.content_type == "application/json"
    assert provider.matches(ctx, WebhookFilters())


def test_scheduled_context() -> None:
    fired = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
    ctx = scheduled_context(
        job_id="trg_1:202602100900", cron_expression="0 9 * * *", fired_at=fired
    )
    assert ctx.dedup_key == "scheduled:trg_1:202602100900"
    assert ctx.title == "Scheduled run" and ctx.event_type == "scheduled_trigger"
    assert ctx.raw == {
        "type": "scheduled_trigger",
        "cron_expression": "0 9 * * *",
        "fired_at": "2026-02-10T09:00:00Z",
    }
    body = (
        b'{"job_id": "j-9", "cron_expression": "*/5 * * * *", "fired_at": "2026-02-10T09:05:00Z"}'
    )
    [parsed] = ScheduledProvider().parse_webhook(body, {})
    assert parsed.dedup_key == "scheduled:j-9" and ScheduledProvider().matches(
        parsed, ScheduledFilters()
    )
    with pytest.raises(PayloadError):
        ScheduledProvider().parse_webhook(
            b'{"job_id": "j", "cron_expression": "x", "fired_at": "soon"}', {}
        )


def test_registry_covers_every_provider_type_including_gmail() -> None:
    registry = default_registry()
    assert set(registry.types()) == {
        "github",
        "linear",
        "sentry",
        "posthog",
        "gmail",
        "webhook",
        "custom",
        "scheduled",
    }
    assert registry.spec("gmail").polling and registry.spec("gmail").route is None
    assert get_provider("gmail").filters_type is GmailFilters
    assert get_provider("custom") is get_provider("webhook")
    with pytest.raises(UnknownProviderError):
        registry.get("jira")


def test_registry_declarations() -> None:
    registry = default_registry()
    assert registry.routes() == {"github", "linear", "sentry", "posthog", "custom"}
    assert registry.spec("webhook").route == registry.spec("custom").route == "custom"
    assert registry.spec("gmail").verify is None and registry.spec("scheduled").verify is None
    assert [registry.spec(p).poll_token for p in ("linear", "gmail", "scheduled")] == [
        True,
        True,
        False,
    ]
    assert registry.nango_provider("linear-prod") is registry.spec("linear")
    assert registry.nango_provider("jira") is None
    with pytest.raises(UnknownProviderError):
        registry.spec("jira")


def test_registry_rejects_config_of_the_wrong_shape() -> None:
    import msgspec

    [ctx] = default_registry().parse_webhook("posthog", b'{"event": "signup"}', {})
    with pytest.raises(msgspec.ValidationError):
        default_registry().matches("posthog", ctx, {"event_names": "signup"})
    assert default_registry().matches("posthog", ctx, {"event_names": ["signup"]})


@pytest.mark.parametrize("provider", ["github", "sentry", "posthog", "webhook", "scheduled"])
async def test_non_polling_providers_raise(provider: str) -> None:
    impl = get_provider(provider)
    assert not default_registry().spec(provider).poll_token
    with pytest.raises(PollingNotSupportedError):
        await impl.poll(PollConnection(access_token="t"), PostHogFilters(), None)


def test_poll_api_settings_exist() -> None:
    from core.settings import Settings

    registry = default_registry()
    named = [registry.spec(p).api_url_setting for p in registry.types()]
    assert {n for n in named if n} == {"linear_api_url", "gmail_api_url"}
    assert all(n in Settings.__struct_fields__ for n in named if n)
