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


def test_issue_alert_becomes_an_event_from_data_event() -> None:
    # An issue-alert (event_alert) delivery carries data.event, not data.issue.
    [ctx] = parse_sentry(payload_bytes("sentry_event_alert"), "event_alert")
    s = ctx.sentry
    assert s is not None and s.resource == "event_alert"
    assert ctx.event_type == "event_alert:triggered"
    assert ctx.title == "ReferenceError: heck is not defined"
    assert (s.issue_id, s.event_id) == ("1117540176", "e4874d664c3540c1a32eab185f12c5ab")
    assert s.triggered_rule == "Very Important Alert Rule!"
    assert (s.project_slug, s.level, s.error_type) == ("front-end", "error", "ReferenceError")
    assert ctx.url is not None and "/issues/1117540176/events/" in ctx.url
    assert parse_sentry(payload_bytes("sentry_event_alert")) == [ctx]  # inferred


def test_error_created_becomes_an_event_from_data_error() -> None:
    [ctx] = parse_sentry(payload_bytes("sentry_error_created"), "error")
    s = ctx.sentry
    assert s is not None and s.resource == "error"
    assert ctx.event_type == "error:created"
    assert (s.issue_id, s.environment, s.project_slug) == ("1117540176", "production", "front-end")
    assert ctx.related_files == ("/js/runner.min.js", "/js/app.js")
    assert s.stack_trace is not None and s.stack_trace.startswith("  at checkout (/js/app.js")


def test_resources_filter() -> None:
    [issue] = parse_sentry(payload_bytes("sentry_issue_created"), "issue")
    [alert] = parse_sentry(payload_bytes("sentry_event_alert"), "event_alert")
    [error] = parse_sentry(payload_bytes("sentry_error_created"), "error")
    alerts_and_errors = SentryFilters(resources=("event_alert", "error"))
    assert [matches_sentry(c, alerts_and_errors) for c in (issue, alert, error)] == [
        False,
        True,
        True,
    ]
    assert all(matches_sentry(c, SentryFilters()) for c in (issue, alert, error))
    # Other resources (comments, installations) are not events.
    assert parse_sentry(payload_bytes("sentry_issue_created"), "comment") == []


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
