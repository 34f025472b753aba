"""Linear Issue webhooks: parsing, filters and dedup keys."""

from __future__ import annotations

import json

import msgspec
import pytest

from integrations.linear import matches_linear, parse_linear
from schemas.triggers import LinearFilters, TriggerContext
from tests.integrations.helpers import payload, payload_bytes


def _ctx(name: str) -> TriggerContext:
    [ctx] = parse_linear(payload_bytes(name))
    return ctx


CREATE = _ctx("linear_issue_create")
UPDATE = _ctx("linear_issue_update")


def test_issue_create() -> None:
    li = CREATE.linear
    assert li is not None
    assert CREATE.provider == "linear"
    assert CREATE.event_type == "Issue:create"
    assert CREATE.title == "ENG-123: Checkout fails on Safari"
    assert CREATE.description is not None and CREATE.description.startswith("Steps:")
    assert CREATE.url == "https://linear.app/acme/issue/ENG-123/checkout-fails-on-safari"
    assert CREATE.external_id == "2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9"
    assert CREATE.dedup_key.startswith("linear:")
    assert CREATE.labels == ("Bug", "Agent")
    assert CREATE.actor == "Ada Lovelace"
    assert (li.state, li.state_type, li.priority) == ("Todo", "unstarted", 2)
    assert (li.team_key, li.number, li.identifier) == ("ENG", 123, "ENG-123")
    assert li.assignee_name == "Grace Hopper" and li.project_name == "Storefront"


def test_every_update_delivery_has_its_own_dedup_key() -> None:
    li = UPDATE.linear
    assert li is not None
    assert UPDATE.event_type == "Issue:update"
    body = msgspec.json.decode(payload_bytes("linear_issue_update"))
    again = {**body, "webhookTimestamp": body.get("webhookTimestamp", 0) + 5000}
    [later] = parse_linear(msgspec.json.encode(again))
    assert later.external_id == UPDATE.external_id and later.dedup_key != UPDATE.dedup_key
    assert UPDATE.dedup_key != CREATE.dedup_key
    assert (li.state, li.priority) == ("In Progress", 1)
    assert UPDATE.actor == "Grace Hopper"


@pytest.mark.parametrize(
    "change",
    [{"action": "remove"}, {"type": "Comment"}, {"type": "Project"}, {"action": "restore"}],
)
def test_ignored_deliveries(change: dict[str, str]) -> None:
    assert parse_linear(json.dumps({**payload("linear_issue_create"), **change}).encode()) == []


def test_flat_ids_are_used_when_objects_are_absent() -> None:
    raw = payload("linear_issue_create")
    for key in ("team", "assignee", "project", "labels", "priority"):
        del raw["data"][key]
    [ctx] = parse_linear(json.dumps(raw).encode())
    li = ctx.linear
    assert li is not None
    assert li.team_id == "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"
    assert li.assignee_id == "9d8c7b6a-5f4e-4d3c-2b1a-0f9e8d7c6b5a"
    assert li.label_ids == (
        "3e1f8b2a-91c4-4f59-8d0b-6b3f0f7e2a11",
        "8c2d4a6e-1f3b-4c5d-9e7f-0a1b2c3d4e5f",
    )
    assert li.priority == 4  # missing priority counts as low, as in the reference


def test_filters() -> None:
    team = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"
    assert matches_linear(CREATE, LinearFilters())
    assert matches_linear(CREATE, LinearFilters(team_id=team))
    assert not matches_linear(CREATE, LinearFilters(team_id="other-team"))
    assert matches_linear(CREATE, LinearFilters(states=("Todo", "Backlog")))
    assert not matches_linear(UPDATE, LinearFilters(states=("Todo",)))
    assert matches_linear(UPDATE, LinearFilters(priorities=(1, 2)))
    assert not matches_linear(CREATE, LinearFilters(priorities=(1,)))
    assert matches_linear(CREATE, LinearFilters(labels=("Agent", "Docs")))
    assert not matches_linear(CREATE, LinearFilters(labels=("Docs",)))
    assert matches_linear(
        CREATE, LinearFilters(assignee_ids=("9d8c7b6a-5f4e-4d3c-2b1a-0f9e8d7c6b5a",))
    )
    assert not matches_linear(CREATE, LinearFilters(assignee_ids=("someone-else",)))
    assert matches_linear(
        CREATE, LinearFilters(project_ids=("5f4e3d2c-1b0a-4f9e-8d7c-6b5a4f3e2d1c",))
    )
    assert not matches_linear(CREATE, LinearFilters(project_ids=("p2",)))
    assert matches_linear(CREATE, LinearFilters(actions=("create",)))
    assert not matches_linear(UPDATE, LinearFilters(actions=("create",)))
