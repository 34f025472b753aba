"""Gmail trigger provider: polls the mailbox history for new messages.

The cursor is Gmail's ``historyId`` as a string. The first poll (cursor None) reads the
current ``historyId`` from ``users.getProfile`` and returns nothing; later polls walk
``users.history.list`` from the cursor (``historyTypes=messageAdded``; ``labelId`` when
exactly one label is configured), fetch each added message's metadata and return the new
``historyId`` (or, when ``max_messages`` or the page limit cut the walk short, the id of
the last history record taken, so the next poll resumes there). If Gmail no longer has
history that old (404), the poll re-baselines from the profile. Messages deleted before
they are fetched are skipped. Dedup key ``gmail:{messageId}``. ``parse_webhook`` accepts
a ``users.messages.get`` resource, for sources that push messages; Gmail has no signed
webhook of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from integrations._payload import decode_payload
from integrations.errors import IntegrationNotFoundError
from integrations.gmail_client import (
    GMAIL_API_URL,
    GmailClient,
    GmailHistory,
    GmailHistoryExpiredError,
    GmailMessage,
)
from schemas.triggers import (
    GmailContext,
    GmailFilters,
    PollConnection,
    PollResult,
    ProviderType,
    TriggerContext,
)

FETCH_CONCURRENCY = 8


def message_context(message: GmailMessage) -> TriggerContext:
    """The context of one Gmail message (metadata format)."""
    subject = message.header("Subject")
    sender = message.header("From")
    raw: dict[str, Any] = {"messageId": message.id}
    if message.threadId:
        raw["threadId"] = message.threadId
    return TriggerContext(
        provider="gmail",
        event_type="gmail_message_received",
        title=subject or "(no subject)",
        external_id=message.id,
        dedup_key=f"gmail:{message.id}",
        description=message.snippet or None,
        labels=tuple(message.labelIds),
        actor=sender,
        raw=raw,
        gmail=GmailContext(
            message_id=message.id,
            thread_id=message.threadId,
            subject=subject,
            sender=sender,
            to=message.header("To"),
            date=message.header("Date"),
            snippet=message.snippet,
            label_ids=tuple(message.labelIds),
            history_id=message.historyId,
        ),
    )


def _take(history: GmailHistory, cursor: str, limit: int) -> tuple[list[str], str]:
    """Message ids to fetch (at most ``limit``) and the cursor that resumes after them.

    The mailbox's latest history id is the next cursor only if every record was read;
    otherwise the cursor stops at the last record taken whole, so nothing is skipped
    (a record taken twice is harmless: its messages dedup on ``gmail:{id}``).
    """
    ids: list[str] = []
    last = cursor
    for record in history.records:
        new = [a.message.id for a in record.messagesAdded if a.message.id not in ids]
        if ids and len(ids) + len(new) > limit:
            return ids, last
        ids.extend(new)
        last = record.id
    if history.complete:
        return ids, history.history_id or last
    return ids, last


def matches_gmail(ctx: TriggerContext, f: GmailFilters) -> bool:
    """Apply the Gmail filter: the message has any of ``label_ids``."""
    gm = ctx.gmail
    if gm is None:
        return False
    return not (f.label_ids and not set(f.label_ids) & set(gm.label_ids))


class GmailProvider:
    """Gmail polling via the Gmail API."""

    name: ClassVar[ProviderType] = "gmail"
    filters_type: ClassVar[type[msgspec.Struct]] = GmailFilters

    def __init__(self, *, page_size: int = 100, max_pages: int = 20) -> None:
        self._page_size = page_size
        self._max_pages = max_pages

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[TriggerContext]:
        """A pushed ``users.messages.get`` resource as one context."""
        return [message_context(decode_payload("gmail", body, GmailMessage))]

    def matches(self, ctx: TriggerContext, filters: GmailFilters) -> bool:
        """See :func:`matches_gmail`."""
        return matches_gmail(ctx, filters)

    async def poll(
        self, connection: PollConnection, filters: GmailFilters, cursor: str | None
    ) -> PollResult:
        """New messages since the ``historyId`` cursor, and the mailbox's latest one."""
        async with GmailClient(
            connection.access_token, base_url=connection.base_url or GMAIL_API_URL
        ) as client:
            if not cursor:
                profile = await client.get_profile()
                return PollResult(events=(), cursor=profile.historyId)
            label = filters.label_ids[0] if len(filters.label_ids) == 1 else None
            try:
                history = await client.list_history(
                    cursor, label_id=label, page_size=self._page_size, max_pages=self._max_pages
                )
            except GmailHistoryExpiredError:
                profile = await client.get_profile()
                return PollResult(events=(), cursor=profile.historyId)
            ids, next_cursor = _take(history, cursor, filters.max_messages)
            gate = asyncio.Semaphore(FETCH_CONCURRENCY)

            async def fetch(message_id: str) -> GmailMessage | None:
                async with gate:
                    try:
                        return await client.get_message(
                            message_id, metadata_headers=filters.metadata_headers
                        )
                    except IntegrationNotFoundError:
                        return None

            messages = await asyncio.gather(*(fetch(i) for i in ids))
        events = tuple(message_context(m) for m in messages if m is not None)
        return PollResult(events=events, cursor=next_cursor)
