"""Run now through the whole pipeline (outbox → run pool), the run history, and the
attention inbox with its claim/unclaim/resolve permissions and conflicts."""

from __future__ import annotations

from typing import Any

from tests.api.accounts import Account, assert_error, call
from tests.api.conftest import AccountFactory
from tests.fixtures.automations import eventually


async def _join(owner: Account, member: Account) -> None:
    status, body = await call(
        owner.client,
        "POST",
        f"/api/orgs/{owner.org_id}/members",
        json={"email": member.email, "role": "member"},
    )
    assert status == 201, body
    status, body = await call(
        member.client, "POST", "/api/auth/active-org", json={"org_id": owner.org_id}
    )
    assert status == 200, body


async def _failed_run(owner: Account) -> dict[str, Any]:
    """Run now on an automation without a configuration: the run fails at its target."""
    _, auto = await call(owner.client, "POST", "/api/automations", json={"name": "No target"})
    headers = {"Idempotency-Key": "click-1"}
    status, queued = await call(
        owner.client, "POST", f"/api/automations/{auto['id']}/run", headers=headers
    )
    assert status == 202, queued
    status, same = await call(
        owner.client, "POST", f"/api/automations/{auto['id']}/run", headers=headers
    )
    assert status == 200 and same == queued

    async def failed() -> dict[str, Any] | None:
        _, run = await call(owner.client, "GET", f"/api/runs/{queued['run_id']}")
        return run if run["status"] == "failed" else None

    return await eventually(failed, within=30)


async def test_run_now_goes_through_the_pipeline(account: AccountFactory) -> None:
    owner = await account()
    run = await _failed_run(owner)
    assert run["status_reason"] == "missing_configuration" and run["failure_stage"] == "target"
    assert run["enrichment"]["summary"]["title"].startswith("Manual run of")
    assert run["enrichment"]["source"]["eventType"] == "manual_trigger"
    status, history = await call(owner.client, "GET", f"/api/runs/{run['id']}/events")
    assert status == 200
    transitions = [
        (e["from_status"], e["to_status"])
        for e in history["events"]
        if e["type"] == "status_transition"
    ]
    assert transitions == [
        (None, "queued"),
        ("queued", "enriching"),
        ("enriching", "ready"),
        ("ready", "running"),
        ("running", "failed"),
    ]
    _, listed = await call(owner.client, "GET", f"/api/runs?automation_id={run['automation_id']}")
    assert [r["id"] for r in listed["runs"]] == [run["id"]]
    _, failed = await call(owner.client, "GET", "/api/runs?status=failed")
    assert run["id"] in [r["id"] for r in failed["runs"]]


async def test_claim_unclaim_resolve(account: AccountFactory) -> None:
    owner, member = await account("Owner"), await account("Member")
    await _join(owner, member)
    run = await _failed_run(owner)
    rid = run["id"]
    _, inbox = await call(member.client, "GET", "/api/runs/attention")
    assert rid in [r["id"] for r in inbox["runs"]]

    status, claimed = await call(member.client, "POST", f"/api/runs/{rid}/claim")
    assert status == 200 and claimed["assigned_to"] == member.user_id
    for method, path, body in [
        ("POST", f"/api/runs/{rid}/claim", None),
        ("POST", f"/api/runs/{rid}/resolve", {"outcome": "succeeded", "note": "mine now"}),
    ]:
        status, err = await call(owner.client, method, path, json=body)
        assert status == 409, err
        assert_error(err, "conflict")
    # The owner (admin) may release the member's claim; the member may not release theirs.
    status, released = await call(owner.client, "POST", f"/api/runs/{rid}/unclaim")
    assert status == 200 and released["assigned_to"] is None
    assert (await call(owner.client, "POST", f"/api/runs/{rid}/claim"))[0] == 200
    status, err = await call(member.client, "POST", f"/api/runs/{rid}/unclaim")
    assert status == 409, err
    status, err = await call(
        owner.client, "POST", f"/api/runs/{rid}/resolve", json={"outcome": "succeeded", "note": ""}
    )
    assert status == 400, err
    status, resolved = await call(
        owner.client,
        "POST",
        f"/api/runs/{rid}/resolve",
        json={"outcome": "succeeded", "note": "Retried by hand"},
    )
    assert status == 200 and resolved["status"] == "succeeded"
    assert resolved["resolution_note"] == "Retried by hand"
    assert resolved["resolved_by"] == owner.user_id
    status, err = await call(
        owner.client,
        "POST",
        f"/api/runs/{rid}/resolve",
        json={"outcome": "failed", "note": "again"},
    )
    assert status == 409, err
    _, inbox = await call(member.client, "GET", "/api/runs/attention")
    assert rid not in [r["id"] for r in inbox["runs"]]


async def test_another_org_sees_nothing(account: AccountFactory) -> None:
    owner, stranger = await account("Owner"), await account("Stranger")
    run = await _failed_run(owner)
    for path in (
        f"/api/runs/{run['id']}",
        f"/api/runs/{run['id']}/events",
        f"/api/automations/{run['automation_id']}",
    ):
        status, err = await call(stranger.client, "GET", path)
        assert status == 404, (path, err)
    for path in ("/api/runs", "/api/runs/attention", "/api/automations"):
        _, body = await call(stranger.client, "GET", path)
        assert run["id"] not in str(body) and run["automation_id"] not in str(body)
    status, _ = await call(stranger.client, "POST", f"/api/runs/{run['id']}/claim")
    assert status == 404
