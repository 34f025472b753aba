"""Gmail API client and Gmail polling against the Gmail fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from integrations.errors import IntegrationAuthError, IntegrationRateLimitError
from integrations.gmail import GmailProvider, matches_gmail
from integrations.gmail_client import GmailClient, GmailHistoryExpiredError
from integrations.registry import get_provider
from schemas.triggers import GmailFilters, PollConnection
from tests.fakes.gmail import FakeGmail

TOKEN = "ya29.test-token"


@pytest.fixture
async def gmail() -> AsyncIterator[FakeGmail]:
    async with FakeGmail(tokens=(TOKEN,)) as fake:
        yield fake


async def test_profile_history_pages_and_metadata(gmail: FakeGmail) -> None:
    start = gmail.history_id
    sent = [gmail.add_message(subject=f"Alert {i}", sender="pager@acme.test") for i in range(5)]
    async with GmailClient(TOKEN, base_url=gmail.url) as client:
        profile = await client.get_profile()
        assert profile.historyId == str(gmail.history_id)
        assert profile.emailAddress == "ops@example.com"
        history = await client.list_history(str(start), page_size=2)
        ids = [a.message.id for r in history.records for a in r.messagesAdded]
        assert ids == [m["id"] for m in sent]
        assert history.history_id == str(gmail.history_id)
        pages = gmail.requests_to("/gmail/v1/users/me/history")
        assert [r.query.get("pageToken") for r in pages] == [None, "2", "4"]
        assert pages[0].query.getall("historyTypes") == ["messageAdded"]
        message = await client.get_message(sent[0]["id"], metadata_headers=("Subject", "From"))
        assert message.header("subject") == "Alert 0" and message.header("To") is None
        assert message.labelIds == ["INBOX", "UNREAD"]
    got = gmail.requests_to(f"/gmail/v1/users/me/messages/{sent[0]['id']}")[0]
    assert got.query.get("format") == "metadata"
    assert got.query.getall("metadataHeaders") == ["Subject", "From"]
    assert got.header("Authorization") == f"Bearer {TOKEN}"


async def test_history_label_filter(gmail: FakeGmail) -> None:
    start = str(gmail.history_id)
    gmail.add_message(subject="Invoice", sender="billing@x.test", label_ids=("INBOX", "Label_7"))
    gmail.add_message(
        subject="Newsletter", sender="news@x.test", label_ids=("CATEGORY_PROMOTIONS",)
    )
    async with GmailClient(TOKEN, base_url=gmail.url) as client:
        history = await client.list_history(start, label_id="Label_7")
    assert len(history.records) == 1


async def test_errors(gmail: FakeGmail) -> None:
    gmail.add_message(subject="x", sender="y@z.test")
    gmail.expire_history_before(gmail.history_id)
    async with GmailClient(TOKEN, base_url=gmail.url) as client:
        with pytest.raises(GmailHistoryExpiredError) as expired:
            await client.list_history("9000")
        assert expired.value.status == 404 and expired.value.code == "notFound"
        gmail.rate_limited_requests = 1
        with pytest.raises(IntegrationRateLimitError) as limited:
            await client.get_profile()
        assert limited.value.retry_after == 2.0
    async with GmailClient("ya29.expired", base_url=gmail.url) as bad:
        with pytest.raises(IntegrationAuthError) as auth:
            await bad.get_profile()
    assert auth.value.code == "authError" and "ya29.expired" not in str(auth.value)


async def test_poll_baseline_then_new_messages(gmail: FakeGmail) -> None:
    gmail.add_message(subject="Before the trigger existed", sender="old@acme.test")
    provider = GmailProvider()
    conn = PollConnection(access_token=TOKEN, base_url=gmail.url)
    first = await provider.poll(conn, GmailFilters(), None)
    assert first.events == () and first.cursor == str(gmail.history_id)

    m1 = gmail.add_message(
        subject="Prod is down", sender="Pager <pager@acme.test>", snippet="API 5xx rate above 20%"
    )
    m2 = gmail.add_message(
        subject="Weekly digest", sender="news@acme.test", label_ids=("CATEGORY_UPDATES",)
    )
    second = await provider.poll(conn, GmailFilters(), first.cursor)
    assert [e.title for e in second.events] == ["Prod is down", "Weekly digest"]
    ctx = second.events[0]
    assert ctx.dedup_key == f"gmail:{m1['id']}" and ctx.actor == "Pager <pager@acme.test>"
    assert ctx.description == "API 5xx rate above 20%"
    assert ctx.gmail is not None and ctx.gmail.label_ids == ("INBOX", "UNREAD")
    assert second.cursor == str(gmail.history_id)
    assert matches_gmail(second.events[1], GmailFilters(label_ids=("CATEGORY_UPDATES",)))
    assert not matches_gmail(ctx, GmailFilters(label_ids=("CATEGORY_UPDATES",)))
    assert m2["id"] != m1["id"]

    third = await provider.poll(conn, GmailFilters(), second.cursor)
    assert third.events == () and third.cursor == second.cursor


async def test_poll_skips_deleted_messages_and_rebaselines_expired_history(
    gmail: FakeGmail,
) -> None:
    provider = get_provider("gmail")
    conn = PollConnection(access_token=TOKEN, base_url=gmail.url)
    cursor = (await provider.poll(conn, GmailFilters(), None)).cursor
    gone = gmail.add_message(subject="Deleted quickly", sender="a@b.test")
    gmail.add_message(subject="Kept", sender="a@b.test")
    del gmail.messages[gone["id"]]
    result = await provider.poll(conn, GmailFilters(), cursor)
    assert [e.title for e in result.events] == ["Kept"]

    gmail.add_message(subject="Lost in expired history", sender="a@b.test")
    gmail.expire_history_before(gmail.history_id + 1)
    rebased = await provider.poll(conn, GmailFilters(), result.cursor)
    assert rebased.events == () and rebased.cursor == str(gmail.history_id)


async def test_poll_uses_single_label_in_the_query(gmail: FakeGmail) -> None:
    provider = GmailProvider()
    conn = PollConnection(access_token=TOKEN, base_url=gmail.url)
    cursor = (await provider.poll(conn, GmailFilters(), None)).cursor
    gmail.add_message(subject="Tagged", sender="a@b.test", label_ids=("Label_7",))
    gmail.add_message(subject="Untagged", sender="a@b.test")
    result = await provider.poll(conn, GmailFilters(label_ids=("Label_7",)), cursor)
    assert [e.title for e in result.events] == ["Tagged"]
    assert gmail.requests_to("/gmail/v1/users/me/history")[-1].query.get("labelId") == "Label_7"


async def test_poll_limits_resume_without_skipping(gmail: FakeGmail) -> None:
    conn = PollConnection(access_token=TOKEN, base_url=gmail.url)
    cursor = (await GmailProvider().poll(conn, GmailFilters(), None)).cursor
    for i in range(5):
        gmail.add_message(subject=f"Alert {i}", sender="pager@acme.test")
    seen: list[str] = []
    # At most two messages a poll.
    capped = GmailFilters(max_messages=2)
    for _ in range(3):
        result = await GmailProvider().poll(conn, capped, cursor)
        seen += [e.title for e in result.events]
        cursor = result.cursor
    assert seen == [f"Alert {i}" for i in range(5)]
    assert cursor == str(gmail.history_id)
    # One page of one record a poll: the page limit also resumes where it stopped.
    for i in range(3):
        gmail.add_message(subject=f"Page {i}", sender="pager@acme.test")
    paged = GmailProvider(page_size=1, max_pages=1)
    titles: list[str] = []
    for _ in range(3):
        result = await paged.poll(conn, GmailFilters(), cursor)
        titles += [e.title for e in result.events]
        cursor = result.cursor
    assert titles == ["Page 0", "Page 1", "Page 2"]
