"""PostHog webhook destination and flat payloads: parsing, filters, dedup."""

from __future__ import annotations

import json

from integrations.posthog import matches_posthog, parse_posthog
from schemas.triggers import PostHogFilters
from tests.integrations.helpers import payload_bytes

[ACTION] = parse_posthog(payload_bytes("posthog_action_webhook"))


def test_action_webhook() -> None:
    ph = ACTION.posthog
    assert ph is not None
    assert ACTION.event_type == "checkout_failed"
    assert ACTION.title == "PostHog: checkout_failed"
    assert ACTION.dedup_key == "posthog:0194f2c1-7b3e-7c2a-9d4f-3e2a1b0c9d8e"
    assert ACTION.external_id == "0194f2c1-7b3e-7c2a-9d4f-3e2a1b0c9d8e"
    assert ACTION.url is not None and ACTION.url.startswith(
        "https://us.posthog.com/project/12345/events/"
    )
    assert ACTION.actor == "jane@customer.test"
    assert ph.distinct_id == "user_8f3a2b" and ph.properties["plan"] == "pro"
    assert ph.person_url == "https://us.posthog.com/project/12345/person/user_8f3a2b"


def test_flat_event_without_uuid() -> None:
    body = {
        "event": "$pageview",
        "distinct_id": "anon-77",
        "timestamp": "2026-02-10T10:00:00Z",
        "properties": {"$current_url": "https://shop.acme.test/"},
    }
    [ctx] = parse_posthog(json.dumps(body).encode())
    assert ctx.dedup_key == "posthog:$pageview:anon-77:2026-02-10T10:00:00Z"
    assert ctx.url == "https://shop.acme.test/" and ctx.external_id == "anon-77"
    [anon] = parse_posthog(b'{"event": "signup"}')
    assert anon.dedup_key == "posthog:signup:unknown:"


def test_payload_without_event_yields_nothing() -> None:
    assert parse_posthog(b'{"text": "[Action] was triggered"}') == []


def test_event_name_filter() -> None:
    assert matches_posthog(ACTION, PostHogFilters(event_names=("checkout_failed", "x")))
    assert not matches_posthog(ACTION, PostHogFilters(event_names=("$pageview",)))


def test_property_filters_compare_exact_strings() -> None:
    def match(props: dict[str, str]) -> bool:
        return matches_posthog(ACTION, PostHogFilters(property_filters=props))

    assert match({"plan": "pro", "$browser": "Safari"})
    assert not match({"plan": "Pro"})
    assert match({"cart_items": "3"}) and not match({"cart_items": "3.0"})
    assert match({"is_returning": "true"}) and not match({"is_returning": "True"})
    assert match({"$browser_version": "17.2"})
    assert match({"missing": ""}) and not match({"missing": "x"})
