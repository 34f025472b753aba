"""Linear trigger provider: Issue webhooks and polling of the GraphQL issues query.

Webhooks: only ``type: Issue`` with action ``create`` or ``update`` yield a context
(``remove`` and other models are ignored). Dedup key: one per delivery, never per issue
(the reference dropped every update after the first): ``linear:<webhookId>:<webhookTimestamp>``
from the body (the registry prefers the ``Linear-Delivery`` header), else a body hash.
A polled issue is keyed by its ``updatedAt``, so each change polled is one event.

Polling: the cursor is an opaque string (JSON inside) holding the ``updatedAt`` watermark
and, when a poll stopped at its page limit, Linear's page cursor to resume from. The first
poll (cursor None) only records "now" as the watermark and returns nothing, so creating a
trigger never replays the workspace's history. A polled issue created after the
watermark is a ``create``, otherwise an ``update``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import msgspec

from integrations._payload import body_key, decode_payload
from integrations.linear_client import LINEAR_API_URL, LinearClient, LinearIssue
from schemas.triggers import (
    LinearAction,
    LinearContext,
    LinearFilters,
    PollConnection,
    PollResult,
    ProviderType,
    TriggerContext,
)

POLL_PAGE_SIZE = 50
POLL_MAX_PAGES = 10


class _Actor(msgspec.Struct):
    id: str | None = None
    name: str | None = None


class _Webhook(msgspec.Struct):
    action: str
    type: str
    data: LinearIssue | None = None
    actor: _Actor | None = None
    url: str | None = None
    webhookTimestamp: float | None = None
    webhookId: str | None = None
    organizationId: str | None = None


class _Cursor(msgspec.Struct, frozen=True, omit_defaults=True):
    since: str
    after: str | None = None
    newest: str | None = None


def _iso(dt: datetime) -> str:
    """Linear's timestamp format: UTC with milliseconds and ``Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def issue_context(
    issue: LinearIssue,
    action: LinearAction,
    *,
    dedup_key: str,
    actor: str | None = None,
    fallback_url: str | None = None,
) -> TriggerContext:
    """The context of one Linear issue, from a webhook's ``data`` or a polled node."""
    labels = issue.label_refs()
    title = issue.title or "Untitled"
    team_id = issue.team.id if issue.team else issue.teamId
    assignee_id = issue.assignee.id if issue.assignee else issue.assigneeId
    project_id = issue.project.id if issue.project else issue.projectId
    ctx = LinearContext(
        issue_id=issue.id,
        action=action,
        identifier=issue.identifier,
        number=int(issue.number) if issue.number is not None else None,
        state=issue.state.name if issue.state else None,
        state_type=issue.state.type if issue.state else None,
        priority=int(issue.priority) if issue.priority is not None else 4,
        team_id=team_id,
        team_key=issue.team.key if issue.team else None,
        assignee_id=assignee_id,
        assignee_name=issue.assignee.name if issue.assignee else None,
        project_id=project_id,
        project_name=issue.project.name if issue.project else None,
        label_ids=tuple(label.id for label in labels) or tuple(issue.labelIds),
        updated_at=issue.updatedAt,
    )
    raw: dict[str, Any] = {"issueId": issue.id, "action": action}
    if issue.identifier:
        raw["identifier"] = issue.identifier
    if team_id:
        raw["teamId"] = team_id
    return TriggerContext(
        provider="linear",
        event_type=f"Issue:{action}",
        title=f"{issue.identifier}: {title}" if issue.identifier else title,
        external_id=issue.id,
        dedup_key=dedup_key,
        description=issue.description or None,
        url=issue.url or fallback_url or f"https://linear.app/issue/{issue.id}",
        labels=tuple(label.name for label in labels if label.name),
        actor=actor or (issue.creator.name if issue.creator else None),
        raw=raw,
        linear=ctx,
    )


def parse_linear(body: bytes) -> list[TriggerContext]:
    """Contexts for one Linear webhook delivery (Issue create/update only)."""
    hook = decode_payload("linear", body, _Webhook)
    if hook.type != "Issue" or hook.data is None:
        return []
    action: LinearAction
    if hook.action == "create":
        action = "create"
    elif hook.action == "update":
        action = "update"
    else:
        return []
    if hook.webhookId and hook.webhookTimestamp is not None:
        key = f"linear:{hook.webhookId}:{int(hook.webhookTimestamp)}"
    else:
        key = body_key("linear", body)
    return [
        issue_context(
            hook.data,
            action,
            dedup_key=key,
            actor=hook.actor.name if hook.actor else None,
            fallback_url=hook.url,
        )
    ]


def matches_linear(ctx: TriggerContext, f: LinearFilters) -> bool:
    """Apply Linear filters: team id, state names, priorities (missing = 4), label names
    (any), assignee ids, project ids, and create/update."""
    li = ctx.linear
    if li is None:
        return False
    if f.team_id and li.team_id != f.team_id:
        return False
    if f.states and li.state not in f.states:
        return False
    if f.priorities and li.priority not in f.priorities:
        return False
    if f.labels and not set(f.labels) & set(ctx.labels):
        return False
    if f.assignee_ids and li.assignee_id not in f.assignee_ids:
        return False
    if f.project_ids and li.project_id not in f.project_ids:
        return False
    return not (f.actions and li.action not in f.actions)


def _decode_cursor(cursor: str | None) -> _Cursor | None:
    if not cursor:
        return None
    try:
        return msgspec.json.decode(cursor, type=_Cursor)
    except msgspec.DecodeError:
        # An unreadable cursor (older format, manual edit) restarts from "now".
        return None


def _encode_cursor(cursor: _Cursor) -> str:
    return msgspec.json.encode(cursor).decode()


class LinearProvider:
    """Linear webhooks and GraphQL polling."""

    name: ClassVar[ProviderType] = "linear"
    filters_type: ClassVar[type[msgspec.Struct]] = LinearFilters

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        token_type: Literal["bearer", "api_key"] = "bearer",
        page_size: int = POLL_PAGE_SIZE,
        max_pages: int = POLL_MAX_PAGES,
    ) -> None:
        self._clock = clock
        self._token_type: Literal["bearer", "api_key"] = token_type
        self._page_size = page_size
        self._max_pages = max_pages

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[TriggerContext]:
        """See :func:`parse_linear`."""
        return parse_linear(body)

    def matches(self, ctx: TriggerContext, filters: LinearFilters) -> bool:
        """See :func:`matches_linear`."""
        return matches_linear(ctx, filters)

    async def poll(
        self, connection: PollConnection, filters: LinearFilters, cursor: str | None
    ) -> PollResult:
        """Issues updated since the cursor's watermark, at most ``max_pages`` pages a poll."""
        state = _decode_cursor(cursor)
        if state is None:
            now = datetime.fromtimestamp(self._clock(), tz=UTC)
            return PollResult(events=(), cursor=_encode_cursor(_Cursor(since=_iso(now))))
        since = _parse_time(state.since) or datetime.fromtimestamp(self._clock(), tz=UTC)
        newest = _parse_time(state.newest) or since
        after = state.after
        events: list[TriggerContext] = []
        async with LinearClient(
            connection.access_token,
            base_url=connection.base_url or LINEAR_API_URL,
            token_type=self._token_type,
        ) as client:
            for _ in range(self._max_pages):
                page = await client.issues_page(
                    first=self._page_size,
                    after=after,
                    updated_after=state.since,
                    team_id=filters.team_id,
                )
                for issue in page.nodes:
                    created = _parse_time(issue.createdAt)
                    action: LinearAction = "create" if created and created > since else "update"
                    changed = issue.updatedAt or issue.createdAt or action
                    key = f"linear:{issue.id}:{changed}"
                    events.append(issue_context(issue, action, dedup_key=key))
                    updated = _parse_time(issue.updatedAt)
                    if updated and updated > newest:
                        newest = updated
                after = page.end_cursor if page.has_next_page else None
                if after is None:
                    break
        if after is None:
            next_cursor = _Cursor(since=_iso(newest))
        else:
            # Page limit reached: resume the same window from Linear's page cursor.
            next_cursor = _Cursor(since=state.since, after=after, newest=_iso(newest))
        return PollResult(events=tuple(events), cursor=_encode_cursor(next_cursor))
