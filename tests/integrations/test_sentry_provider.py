"""Sentry integration-platform webhooks: parsing, filters, dedup, and no polling."""

from __future__ import annotations

import json

import pytest

from integrations.errors import PollingNotSupportedError
from integrations.sentry import SentryProvider, matches_sentry, parse_sentry
from schemas.triggers import PollConnection, SentryFilters
from tests.integrations.helpers import payload, payload_bytes


def test_issue_created() -> None:
    [ctx] = parse_sentry(payload_bytes("sentry_issue_created"), "issue")
    s = ctx.sentry
    assert s is not None
    assert ctx.event_type == "issue:created"
    assert ctx.title == "ReferenceError: blooopy is not defined"
    assert ctx.description == "?(runner)"
    assert ctx.url == "https://sentry.io/organizations/acme/issues/1170820242/"
    assert ctx.external_id == "1170820242"
    assert (s.level, s.project_slug, s.short_id) == ("error", "front-end", "FRONT-END-9")
    assert (s.error_type, s.error_message) == ("ReferenceError", "blooopy is not defined")
    assert s.frames == () and s.stack_trace is None
    assert ctx.actor == "Sentry"


def test_issue_with_event_keeps_last_ten_frames() -> None:
    [ctx] = parse_sentry(payload_bytes("sentry_issue_with_event"), "issue")
    s = ctx.sentry
    assert s is not None
    # The event id wins over the issue id for dedup.
    assert ctx.external_id == "9fac2ceed9344f2bbfdd1fdacb0ed9b1"
    assert (s.event_id, s.issue_id) == ("9fac2ceed9344f2bbfdd1fdacb0ed9b1", "4512345678")
    assert (s.environment, s.release, s.level) == ("production", "api@2026.02.10", "fatal")
    assert len(s.frames) == 10
    assert [f.function for f in s.frames] == [f"step_{i}" for i in range(4, 14)]
    assert s.stack_trace is not None
    lines = s.stack_trace.splitlines()
    assert lines[0] == "  at step_13 (src/layer13.py:23:None)"
    assert lines[-1] == "  at step_4 (src/layer4.py:14:4)"
    # Every real file of the stack, none of the synthetic "<...>" frames.
    assert "<frozen runpy>" not in ctx.related_files
    assert ctx.related_files[:2] == ("src/layer0.py", "src/layer1.py")
    assert len(ctx.related_files) == 14


def test_event_alert_without_issue_yields_nothing() -> None:
    # Contract: Sentry items need data.issue; an issue-alert (event_alert) payload has none.
    assert parse_sentry(payload_bytes("sentry_event_alert"), "event_alert") == []


def test_tags_as_objects_on_the_issue() -> None:
    raw = payload("sentry_issue_created")
    raw["data"]["issue"]["tags"] = [{"key": "environment", "value": "staging"}]
    [ctx] = parse_sentry(json.dumps(raw).encode())
    assert ctx.sentry is not None and ctx.sentry.environment == "staging"


def test_filters() -> None:
    [prod] = parse_sentry(payload_bytes("sentry_issue_with_event"))
    [plain] = parse_sentry(payload_bytes("sentry_issue_created"))
    assert matches_sentry(prod, SentryFilters(project_slug="api"))
    assert not matches_sentry(prod, SentryFilters(project_slug="front-end"))
    assert matches_sentry(prod, SentryFilters(environments=("production",)))
    assert not matches_sentry(prod, SentryFilters(environments=("staging",)))
    # No environment at all fails an environment filter.
    assert not matches_sentry(plain, SentryFilters(environments=("production",)))
    assert matches_sentry(prod, SentryFilters(min_level="error"))  # fatal >= error
    assert matches_sentry(plain, SentryFilters(min_level="error"))
    assert not matches_sentry(plain, SentryFilters(min_level="fatal"))
    assert matches_sentry(plain, SentryFilters(min_level="debug"))


def test_unknown_or_missing_level_counts_as_error() -> None:
    raw = payload("sentry_issue_created")
    raw["data"]["issue"]["level"] = "sample"
    [odd] = parse_sentry(json.dumps(raw).encode())
    assert matches_sentry(odd, SentryFilters(min_level="warning"))
    assert not matches_sentry(odd, SentryFilters(min_level="fatal"))
    del raw["data"]["issue"]["level"]
    [missing] = parse_sentry(json.dumps(raw).encode())
    assert missing.sentry is not None and missing.sentry.level == "error"


async def test_poll_is_webhook_only() -> None:
    with pytest.raises(PollingNotSupportedError, match="only supports webhooks") as exc:
        await SentryProvider().poll(PollConnection(access_token="t"), SentryFilters(), None)
    assert exc.value.provider == "sentry"
