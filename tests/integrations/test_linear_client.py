"""Linear GraphQL client and Linear polling against the GraphQL fake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from integrations.errors import IntegrationAuthError, IntegrationRateLimitError
from integrations.linear import LinearProvider
from integrations.linear_client import LinearClient, LinearGraphQLError
from schemas.triggers import LinearFilters, PollConnection
from tests.fakes.linear import FakeLinear

TOKEN = "lin_oauth_test"
API_KEY = "lin_api_testkey"
OPS = {"id": "team-ops-0002", "key": "OPS", "name": "Operations"}
T0 = datetime(2026, 2, 10, 9, 0, tzinfo=UTC).timestamp()


def ts(minute: int) -> str:
    """A Linear timestamp ``minute`` minutes after 09:00 UTC."""
    return f"2026-02-10T{9 + minute // 60:02d}:{minute % 60:02d}:00.000Z"


@pytest.fixture
async def linear() -> AsyncIterator[FakeLinear]:
    async with FakeLinear(tokens=(TOKEN,), api_keys=(API_KEY,)) as fake:
        yield fake


async def test_issues_pagination_and_filters(linear: FakeLinear) -> None:
    for i in range(5):
        linear.add_issue(title=f"Bug {i}", created_at=ts(i), labels=("Bug",))
    linear.add_issue(title="Ops task", created_at=ts(30), team=OPS)
    async with LinearClient(TOKEN, base_url=linear.url) as client:
        page = await client.issues_page(first=2)
        assert [i.title for i in page.nodes] == ["Ops task", "Bug 4"]
        assert page.has_next_page and page.end_cursor == page.nodes[-1].id
        everything = await client.list_issues(page_size=2)
        assert len(everything) == 6 and len(linear.requests) == 4
        eng = await client.list_issues(team_id="team-eng-0001", updated_after=ts(2))
        assert [i.title for i in eng] == ["Bug 4", "Bug 3"]
        issue = eng[0]
        assert issue.identifier == "ENG-5" and issue.team is not None and issue.team.key == "ENG"
        assert [label.name for label in issue.label_refs()] == ["Bug"]
    sent = linear.requests[-1]
    assert sent.header("Authorization") == f"Bearer {TOKEN}"
    variables = json.loads(sent.body)["variables"]
    assert variables["filter"] == {
        "updatedAt": {"gt": ts(2)},
        "team": {"id": {"eq": "team-eng-0001"}},
    }


async def test_api_key_goes_bare(linear: FakeLinear) -> None:
    async with LinearClient(API_KEY, base_url=linear.url, token_type="api_key") as client:
        assert (await client.issues_page()).nodes == []
    assert linear.requests[0].header("Authorization") == API_KEY


async def test_authentication_error(linear: FakeLinear) -> None:
    async with LinearClient("lin_oauth_revoked", base_url=linear.url) as client:
        with pytest.raises(IntegrationAuthError) as exc:
            await client.issues_page()
    assert exc.value.code == "AUTHENTICATION_ERROR" and "lin_oauth_revoked" not in str(exc.value)


async def test_rate_limited_400_is_a_rate_limit(linear: FakeLinear) -> None:
    linear.rate_limited_requests = 1
    async with LinearClient(TOKEN, base_url=linear.url) as client:
        with pytest.raises(IntegrationRateLimitError) as exc:
            await client.issues_page()
        assert exc.value.retry_after is not None and 20 < exc.value.retry_after <= 30
        assert (await client.issues_page()).nodes == []


async def test_invalid_query_is_a_graphql_error(linear: FakeLinear) -> None:
    async with LinearClient(TOKEN, base_url=linear.url) as client:
        with pytest.raises(LinearGraphQLError) as exc:
            await client.execute("query { issues { nodes { id nonsense } } }")
    assert exc.value.code == "GRAPHQL_VALIDATION_FAILED" and "nonsense" in exc.value.message


# --- polling --------------------------------------------------------------------------


class Clock:
    """A settable clock for the provider."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_poll_baselines_then_returns_new_and_updated_issues(linear: FakeLinear) -> None:
    linear.add_issue(title="Old issue", created_at="2026-02-10T08:00:00.000Z")
    provider = LinearProvider(clock=Clock(T0))
    conn = PollConnection(access_token=TOKEN, base_url=linear.url)
    first = await provider.poll(conn, LinearFilters(), None)
    assert first.events == () and first.cursor is not None
    assert json.loads(first.cursor) == {"since": "2026-02-10T09:00:00.000Z"}
    assert linear.requests == []  # the baseline needs no API call

    a = linear.add_issue(title="Checkout broken", created_at=ts(5), labels=("Bug",))
    linear.add_issue(title="Docs typo", created_at=ts(7))
    second = await provider.poll(conn, LinearFilters(), first.cursor)
    assert [e.title for e in second.events] == ["ENG-3: Docs typo", "ENG-2: Checkout broken"]
    assert {e.event_type for e in second.events} == {"Issue:create"}
    assert second.cursor is not None and json.loads(second.cursor) == {"since": ts(7)}

    a["updatedAt"] = ts(20)
    a["state"] = {"id": "state-started", "name": "In Progress", "type": "started"}
    third = await provider.poll(conn, LinearFilters(), second.cursor)
    [updated] = third.events
    assert (
        updated.event_type == "Issue:update" and updated.dedup_key == f"linear:{a['id']}:{ts(20)}"
    )
    assert updated.linear is not None and updated.linear.state == "In Progress"
    fourth = await provider.poll(conn, LinearFilters(), third.cursor)
    assert fourth.events == () and fourth.cursor == third.cursor


async def test_poll_resumes_from_page_cursor_at_page_limit(linear: FakeLinear) -> None:
    provider = LinearProvider(clock=Clock(T0), page_size=2, max_pages=1)
    conn = PollConnection(access_token=TOKEN, base_url=linear.url)
    baseline = (await provider.poll(conn, LinearFilters(), None)).cursor
    for i in range(3):
        linear.add_issue(title=f"Issue {i}", created_at=ts(10 + i))
    part = await provider.poll(conn, LinearFilters(), baseline)
    assert [e.title for e in part.events] == ["ENG-3: Issue 2", "ENG-2: Issue 1"]
    assert part.cursor is not None
    state = json.loads(part.cursor)
    assert state["since"] == "2026-02-10T09:00:00.000Z" and state["newest"] == ts(12)
    assert state["after"] == part.events[-1].external_id
    rest = await provider.poll(conn, LinearFilters(), part.cursor)
    assert [e.title for e in rest.events] == ["ENG-1: Issue 0"]
    assert rest.cursor is not None and json.loads(rest.cursor) == {"since": ts(12)}


async def test_poll_pushes_team_filter_into_the_query(linear: FakeLinear) -> None:
    provider = LinearProvider(clock=Clock(T0))
    conn = PollConnection(access_token=TOKEN, base_url=linear.url)
    baseline = (await provider.poll(conn, LinearFilters(), None)).cursor
    linear.add_issue(title="Eng", created_at=ts(1))
    linear.add_issue(title="Ops", created_at=ts(2), team=OPS)
    result = await provider.poll(conn, LinearFilters(team_id="team-ops-0002"), baseline)
    assert [e.title for e in result.events] == ["OPS-1: Ops"]


async def test_unreadable_cursor_restarts_from_now(linear: FakeLinear) -> None:
    provider = LinearProvider(clock=Clock(T0))
    conn = PollConnection(access_token=TOKEN, base_url=linear.url)
    result = await provider.poll(conn, LinearFilters(), "garbage")
    assert result.events == () and result.cursor == '{"since":"2026-02-10T09:00:00.000Z"}'
