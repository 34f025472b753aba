"""Org isolation: nobody outside org B can read or change anything of org B.

Later areas extend this file: add their org-scoped routes to ``ORG_ROUTES`` and, if a route
needs an org-B resource, a seeder to ``SEEDERS`` that creates it and returns its placeholder.
Every route is then checked for:
- an outsider (member of org A only) → 404, with and without ``X-Org-Id: <org B>``;
- an outsider's API key (org A) → 404;
- a plain member of org B → 403 where the route needs a stronger role;
and org B is checked to be unchanged afterwards.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.api.accounts import Account, assert_error, call
from tests.api.conftest import AccountFactory, ClientFactory


@dataclass(frozen=True)
class OrgRoute:
    """One org-scoped route; ``{name}`` placeholders are filled from the world."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    min_role: str = "member"
    """The weakest org-B role that may use the route (for the 403 check)."""

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class World:
    """Org B with its owner, a plain member and an outsider from org A."""

    owner_b: Account
    member_b: Account
    outsider: Account
    outsider_key: str
    values: dict[str, str] = field(default_factory=dict)

    def fill(self, route: OrgRoute) -> tuple[str, Any]:
        """The route's path and body with placeholders replaced."""
        body = route.body
        if body is not None:
            body = {
                k: v.format(**self.values) if isinstance(v, str) else v for k, v in body.items()
            }
        return route.path.format(**self.values), body


ORG_ROUTES: list[OrgRoute] = [
    OrgRoute("GET", "/api/orgs/{org_id}"),
    OrgRoute("PATCH", "/api/orgs/{org_id}", {"name": "taken over"}, "admin"),
    OrgRoute("GET", "/api/orgs/{org_id}/members"),
    OrgRoute("POST", "/api/orgs/{org_id}/members", {"email": "{outsider_email}"}, "admin"),
    OrgRoute("PATCH", "/api/orgs/{org_id}/members/{owner_id}", {"role": "member"}, "owner"),
    OrgRoute("DELETE", "/api/orgs/{org_id}/members/{owner_id}", None, "admin"),
    OrgRoute("DELETE", "/api/api-keys/{api_key_id}", None, "admin"),
    # automations, triggers, schedules, runs (active-org routes: org B via X-Org-Id or not)
    OrgRoute("GET", "/api/automations/{automation_id}"),
    OrgRoute("PATCH", "/api/automations/{automation_id}", {"name": "taken over"}),
    OrgRoute("DELETE", "/api/automations/{automation_id}"),
    OrgRoute("POST", "/api/automations/{automation_id}/disable"),
    OrgRoute("POST", "/api/automations/{automation_id}/run"),
    OrgRoute("GET", "/api/automations/{automation_id}/triggers"),
    OrgRoute("POST", "/api/automations/{automation_id}/triggers", {"trigger_id": "{trigger_id}"}),
    OrgRoute("DELETE", "/api/automations/{automation_id}/triggers/{trigger_id}"),
    OrgRoute("GET", "/api/automations/{automation_id}/connections"),
    OrgRoute("GET", "/api/triggers/{trigger_id}"),
    OrgRoute("PATCH", "/api/triggers/{trigger_id}", {"enabled": False}),
    OrgRoute("DELETE", "/api/triggers/{trigger_id}"),
    OrgRoute("GET", "/api/triggers/{trigger_id}/events"),
    OrgRoute("GET", "/api/schedules/{schedule_id}"),
    OrgRoute("PATCH", "/api/schedules/{schedule_id}", {"enabled": False}),
    OrgRoute("DELETE", "/api/schedules/{schedule_id}"),
    OrgRoute("GET", "/api/runs/{run_id}"),
    OrgRoute("GET", "/api/runs/{run_id}/events"),
    OrgRoute("POST", "/api/runs/{run_id}/claim"),
    OrgRoute("POST", "/api/runs/{run_id}/unclaim"),
    OrgRoute("POST", "/api/runs/{run_id}/resolve", {"outcome": "failed", "note": "closed"}),
    # preview links and shares of a session (sharing: its creator or an org admin)
    OrgRoute("GET", "/api/sessions/{session_id}/preview"),
    OrgRoute("POST", "/api/sessions/{session_id}/share", None, "admin"),
    OrgRoute("DELETE", "/api/sessions/{session_id}/share", None, "admin"),
    # session pause, resume, snapshot, verification media
    OrgRoute("POST", "/api/sessions/{session_id}/pause"),
    OrgRoute("POST", "/api/sessions/{session_id}/resume"),
    OrgRoute("POST", "/api/sessions/{session_id}/snapshot"),
    OrgRoute("GET", "/api/sessions/{session_id}/verification-media"),
    OrgRoute(
        "GET",
        "/api/sessions/{session_id}/verification-media/file"
        "?key=sessions/{session_id}/verification/x",
    ),
]

Seeder = Callable[[World], Awaitable[dict[str, str]]]


async def _seed_core(world: World) -> dict[str, str]:
    owner = world.owner_b
    status, key = await call(owner.client, "POST", "/api/api-keys", json={"name": "b"})
    assert status == 201, key
    return {
        "org_id": owner.org_id,
        "owner_id": owner.user_id,
        "outsider_email": world.outsider.email,
        "api_key_id": key["id"],
    }


async def _seed_automations(world: World) -> dict[str, str]:
    owner = world.owner_b
    _, auto = await call(owner.client, "POST", "/api/automations", json={"name": "B's"})
    _, trigger = await call(
        owner.client,
        "POST",
        "/api/triggers",
        json={"provider": "github", "automation_id": auto["id"]},
    )
    _, schedule = await call(
        owner.client,
        "POST",
        "/api/schedules",
        json={"automation_id": auto["id"], "cron_expression": "0 0 1 1 *"},
    )
    status, run = await call(owner.client, "POST", f"/api/automations/{auto['id']}/run")
    assert status == 202, run
    return {
        "automation_id": auto["id"],
        "trigger_id": trigger["trigger"]["id"],
        "schedule_id": schedule["id"],
        "run_id": run["run_id"],
    }


async def _seed_session(world: World) -> dict[str, str]:
    owner = world.owner_b
    status, created = await call(owner.client, "POST", "/api/sessions", json={"title": "B's"})
    assert status == 201, created
    return {"session_id": created["session_id"]}


SEEDERS: list[Seeder] = [_seed_core, _seed_automations, _seed_session]


@pytest.fixture
async def world(account: AccountFactory) -> World:
    """A fresh org B (owner + member) and an outsider with an API key of org A."""
    owner_b, member_b, outsider = await account("Bea"), await account("Mo"), await account("Al")
    status, body = await call(
        owner_b.client,
        "POST",
        f"/api/orgs/{owner_b.org_id}/members",
        json={"email": member_b.email, "role": "member"},
    )
    assert status == 201, body
    status, active = await call(
        member_b.client, "POST", "/api/auth/active-org", json={"org_id": owner_b.org_id}
    )
    assert status == 200, active
    status, key = await call(outsider.client, "POST", "/api/api-keys", json={"name": "a"})
    assert status == 201, key
    built = World(owner_b, member_b, outsider, key["key"])
    for seed in SEEDERS:
        built.values.update(await seed(built))
    return built


async def _org_b_snapshot(world: World) -> Any:
    owner = world.owner_b
    results = []
    paths = (
        f"/api/orgs/{owner.org_id}",
        f"/api/orgs/{owner.org_id}/members",
        "/api/api-keys",
        "/api/automations",
        "/api/triggers",
        "/api/schedules",
        "/api/sessions",
    )
    for path in paths:
        status, body = await call(owner.client, "GET", path)
        assert status == 200, body
        if "api_keys" in body:
            body = [(k["id"], k["name"]) for k in body["api_keys"]]
        results.append(body)
    return results


@pytest.mark.parametrize("route", ORG_ROUTES, ids=str)
async def test_outsider_gets_404(world: World, route: OrgRoute, new_client: ClientFactory) -> None:
    before = await _org_b_snapshot(world)
    path, body = world.fill(route)
    attempts = [
        (world.outsider.client, None),
        (world.outsider.client, {"X-Org-Id": world.owner_b.org_id}),
        (new_client(), {"Authorization": f"Bearer {world.outsider_key}"}),
    ]
    for client, headers in attempts:
        status, err = await call(client, route.method, path, json=body, headers=headers)
        assert status == 404, (route, headers, err)
        assert_error(err, "not_found")
    assert await _org_b_snapshot(world) == before


@pytest.mark.parametrize("route", [r for r in ORG_ROUTES if r.min_role != "member"], ids=str)
async def test_member_lacking_the_role_gets_403(world: World, route: OrgRoute) -> None:
    before = await _org_b_snapshot(world)
    path, body = world.fill(route)
    status, err = await call(world.member_b.client, route.method, path, json=body)
    assert status == 403, (route, err)
    assert_error(err, "forbidden")
    assert await _org_b_snapshot(world) == before


async def test_anonymous_gets_401_everywhere(world: World, new_client: ClientFactory) -> None:
    for route in ORG_ROUTES:
        path, body = world.fill(route)
        status, err = await call(new_client(), route.method, path, json=body)
        assert status == 401, (route, err)
        assert_error(err, "unauthorized")
