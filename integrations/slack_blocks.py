"""Block Kit for the run-terminal Slack notification.

One section (status, automation name, summary or failure reason) with a "View run"
button linking to the run, and a context line with the run id. User-supplied text is
escaped (``&``, ``<``, ``>``) as Slack requires, and the section is kept under Slack's
3,000-character limit.
"""

from __future__ import annotations

import msgspec

from schemas.triggers import RunNotification

SECTION_TEXT_LIMIT = 3000

STATUS_LABELS = {
    "succeeded": "Run succeeded",
    "failed": "Run failed",
    "timed_out": "Run timed out",
    "needs_human": "Run needs review",
}
STATUS_EMOJI = {
    "succeeded": ":white_check_mark:",
    "failed": ":x:",
    "timed_out": ":hourglass:",
    "needs_human": ":raising_hand:",
}


class PlainText(msgspec.Struct, frozen=True, tag="plain_text", tag_field="type"):
    """A ``plain_text`` text object."""

    text: str
    emoji: bool = True


class Mrkdwn(msgspec.Struct, frozen=True, tag="mrkdwn", tag_field="type"):
    """A ``mrkdwn`` text object."""

    text: str


class Button(msgspec.Struct, frozen=True, tag="button", tag_field="type"):
    """A link button element."""

    text: PlainText
    url: str
    action_id: str


class SectionBlock(
    msgspec.Struct, frozen=True, omit_defaults=True, tag="section", tag_field="type"
):
    """A ``section`` block with an optional accessory."""

    text: Mrkdwn
    accessory: Button | None = None


class ContextBlock(msgspec.Struct, frozen=True, tag="context", tag_field="type"):
    """A ``context`` block (small grey text)."""

    elements: list[Mrkdwn | PlainText]


class SlackMessage(msgspec.Struct, frozen=True, kw_only=True):
    """What ``chat.postMessage`` needs: fallback ``text`` and ``blocks``."""

    text: str
    blocks: list[SectionBlock | ContextBlock]


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _detail(n: RunNotification) -> str:
    if n.status == "succeeded":
        return n.summary or "The run completed successfully."
    if n.status == "failed":
        reason = f"Reason: {n.status_reason or 'unknown'}"
        return f"{reason} — {n.error_message}" if n.error_message else reason
    if n.status == "timed_out":
        return "The run exceeded its deadline."
    return n.summary or "The agent needs human review to proceed."


def run_notification_message(n: RunNotification) -> SlackMessage:
    """The Slack message announcing that run ``n.run_id`` reached ``n.status``."""
    label = STATUS_LABELS.get(n.status, f"Run {n.status}")
    head = f"{STATUS_EMOJI.get(n.status, '')} *{label}* · {escape(n.automation_name)}".strip()
    detail = escape(_detail(n))
    room = SECTION_TEXT_LIMIT - len(head) - 1
    if len(detail) > room:
        detail = detail[: room - 1] + "…"
    section = SectionBlock(
        text=Mrkdwn(text=f"{head}\n{detail}"),
        accessory=Button(text=PlainText(text="View run"), url=n.run_url, action_id="view_run"),
    )
    context = ContextBlock(
        elements=[Mrkdwn(text=f"Run `{escape(n.run_id)}` · status `{n.status}`")]
    )
    return SlackMessage(text=f"{label} · {n.automation_name}", blocks=[section, context])
