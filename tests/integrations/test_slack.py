"""Slack chat.postMessage client against the Slack fake, and the run notification blocks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest

from integrations.errors import (
    IntegrationAuthError,
    IntegrationError,
    IntegrationForbiddenError,
    IntegrationNotFoundError,
    IntegrationRateLimitError,
    IntegrationValidationError,
)
from integrations.slack_blocks import SECTION_TEXT_LIMIT, run_notification_message
from integrations.slack_client import SlackClient
from schemas.triggers import RunNotification
from tests.fakes.slack import FakeSlack

TOKEN = "xoxb-test-token"
RUN_URL = "https://warren.acme.test/runs/run_01J"


def _notification(**changes: object) -> RunNotification:
    base = RunNotification(
        run_id="run_01J",
        status="succeeded",
        automation_name="Fix Sentry errors",
        run_url=RUN_URL,
        summary="Opened PR #108 fixing the Safari checkout handler.",
    )
    return msgspec.structs.replace(base, **changes)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(
        tokens=(TOKEN,), channels=("C0RUNS",), not_joined=("C0PRIVATE",), archived=("C0OLD",)
    ) as fake:
        yield fake


async def test_post_run_notification(slack: FakeSlack) -> None:
    message = run_notification_message(_notification())
    async with SlackClient(TOKEN, base_url=f"{slack.url}/api") as client:
        result = await client.post_message("C0RUNS", text=message.text, blocks=message.blocks)
    assert result.channel == "C0RUNS" and result.ts.startswith("1770000000.")
    [posted] = slack.messages
    assert posted["text"] == "Run succeeded · Fix Sentry errors"
    section = posted["blocks"][0]
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert section["accessory"] == {
        "type": "button",
        "text": {"type": "plain_text", "text": "View run", "emoji": True},
        "url": RUN_URL,
        "action_id": "view_run",
    }
    [req] = slack.requests
    assert req.header("Authorization") == f"Bearer {TOKEN}"
    assert req.header("Content-Type") == "application/json; charset=utf-8"


async def test_thread_reply(slack: FakeSlack) -> None:
    async with SlackClient(TOKEN, base_url=f"{slack.url}/api") as client:
        await client.post_message("C0RUNS", text="done", thread_ts="1770000000.000001")
    assert slack.messages[0]["thread_ts"] == "1770000000.000001"


@pytest.mark.parametrize(
    ("token", "channel", "error", "code"),
    [
        (TOKEN, "C0NOPE", IntegrationNotFoundError, "channel_not_found"),
        ("xoxb-revoked", "C0RUNS", IntegrationAuthError, "invalid_auth"),
        (TOKEN, "C0PRIVATE", IntegrationForbiddenError, "not_in_channel"),
        (TOKEN, "C0OLD", IntegrationForbiddenError, "is_archived"),
    ],
)
async def test_ok_false_errors_are_typed(
    slack: FakeSlack, token: str, channel: str, error: type[IntegrationError], code: str
) -> None:
    async with SlackClient(token, base_url=f"{slack.url}/api") as client:
        with pytest.raises(error) as exc:
            await client.post_message(channel, text="hello")
    assert exc.value.code == code and token not in str(exc.value)
    assert slack.messages == []


async def test_invalid_blocks(slack: FakeSlack) -> None:
    async with SlackClient(TOKEN, base_url=f"{slack.url}/api") as client:
        with pytest.raises(IntegrationValidationError) as exc:
            await client.post_message("C0RUNS", text="x", blocks=[{"type": "bogus"}])
    assert exc.value.code == "invalid_blocks"


async def test_ratelimited_carries_retry_after(slack: FakeSlack) -> None:
    slack.rate_limit_next(1, retry_after=7)
    async with SlackClient(TOKEN, base_url=f"{slack.url}/api") as client:
        with pytest.raises(IntegrationRateLimitError) as exc:
            await client.post_message("C0RUNS", text="hello")
        assert (exc.value.retry_after, exc.value.status, exc.value.code) == (
            7.0,
            429,
            "ratelimited",
        )
        await client.post_message("C0RUNS", text="hello again")
    assert [m["text"] for m in slack.messages] == ["hello again"]


# --- blocks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "header", "detail"),
    [
        ({}, "*Run succeeded* · Fix Sentry errors", "Opened PR #108 fixing the Safari"),
        ({"summary": None}, "*Run succeeded*", "The run completed successfully."),
        (
            {"status": "failed", "status_reason": "no_completion", "error_message": "agent exited"},
            "*Run failed*",
            "Reason: no_completion — agent exited",
        ),
        ({"status": "failed"}, "*Run failed*", "Reason: unknown"),
        ({"status": "timed_out"}, "*Run timed out*", "The run exceeded its deadline."),
        ({"status": "needs_human", "summary": None}, "*Run needs review*", "needs human review"),
    ],
)
def test_blocks_per_status(changes: dict[str, object], header: str, detail: str) -> None:
    message = run_notification_message(_notification(**changes))
    encoded = msgspec.to_builtins(message)
    section, context = encoded["blocks"]
    assert header in section["text"]["text"] and detail in section["text"]["text"]
    assert section["accessory"]["url"] == RUN_URL
    assert context == {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": f"Run `run_01J` · status `{message_status(changes)}`"}
        ],
    }


def message_status(changes: dict[str, object]) -> str:
    return str(changes.get("status", "succeeded"))


def test_user_text_is_escaped_and_truncated() -> None:
    message = run_notification_message(
        _notification(automation_name="<!channel> & co", summary="x" * 5000)
    )
    text = msgspec.to_builtins(message)["blocks"][0]["text"]["text"]
    assert "&lt;!channel&gt; &amp; co" in text and "<!channel>" not in text
    assert len(text) <= SECTION_TEXT_LIMIT and text.endswith("…")
