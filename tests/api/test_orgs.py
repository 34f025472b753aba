"""Orgs and members through the real app: roles, the last-owner rule, member removal."""

from __future__ import annotations

import uuid

from tests.api.accounts import Account, assert_error, call
from tests.api.conftest import AccountFactory


async def _add(owner: Account, who: Account, role: str) -> None:
    status, body = await call(
        owner.client,
        "POST",
        f"/api/orgs/{owner.org_id}/members",
        json={"email": who.email, "role": role},
    )
    assert status == 201, body


async def test_create_list_get_rename(account: AccountFactory) -> None:
    acct = await account()
    status, org = await call(acct.client, "POST", "/api/orgs", json={"name": "Acme Corp"})
    assert status == 201, org
    assert org["name"] == "Acme Corp" and org["slug"].startswith("acme-corp-")
    assert org["is_personal"] is False
    status, listed = await call(acct.client, "GET", "/api/orgs")
    assert status == 200
    assert {(o["id"], o["role"]) for o in listed["orgs"]} == {
        (acct.org_id, "owner"),
        (org["id"], "owner"),
    }
    status, got = await call(acct.client, "GET", f"/api/orgs/{org['id']}")
    assert status == 200 and got == org
    status, renamed = await call(
        acct.client, "PATCH", f"/api/orgs/{org['id']}", json={"name": "Acme Inc"}
    )
    assert status == 200 and renamed["name"] == "Acme Inc" and renamed["slug"] == org["slug"]


async def test_add_member_rules(account: AccountFactory) -> None:
    owner, admin, member, later = await account(), await account(), await account(), await account()
    await _add(owner, admin, "admin")
    await _add(owner, member, "member")
    path = f"/api/orgs/{owner.org_id}/members"
    status, body = await call(owner.client, "POST", path, json={"email": member.email})
    assert status == 409
    assert_error(body, "conflict", "email")
    status, body = await call(owner.client, "POST", path, json={"email": "ghost@none.test"})
    assert status == 404
    assert_error(body, "not_found", "email")
    # Members cannot add; admins can, but cannot grant owner.
    status, body = await call(
        member.client, "POST", path, json={"email": later.email}, headers={"X-Org-Id": owner.org_id}
    )
    assert status == 403
    assert_error(body, "forbidden")
    status, body = await call(
        admin.client, "POST", path, json={"email": later.email, "role": "owner"}
    )
    assert status == 403
    status, added = await call(admin.client, "POST", path, json={"email": later.email})
    assert status == 201 and added["role"] == "member" and added["user_id"] == later.user_id
    status, members = await call(member.client, "GET", path)
    assert status == 200
    assert [(m["user_id"], m["role"]) for m in members["members"]] == [
        (owner.user_id, "owner"),
        (admin.user_id, "admin"),
        (member.user_id, "member"),
        (later.user_id, "member"),
    ]


async def test_role_changes_are_owner_only_and_keep_an_owner(account: AccountFactory) -> None:
    owner, admin, member = await account(), await account(), await account()
    await _add(owner, admin, "admin")
    await _add(owner, member, "member")
    base = f"/api/orgs/{owner.org_id}/members"
    status, body = await call(
        admin.client, "PATCH", f"{base}/{member.user_id}", json={"role": "admin"}
    )
    assert status == 403
    status, body = await call(
        owner.client, "PATCH", f"{base}/{owner.user_id}", json={"role": "admin"}
    )
    assert status == 422
    assert_error(body, "last_owner")
    status, body = await call(
        owner.client, "PATCH", f"{base}/{member.user_id}", json={"role": "admin"}
    )
    assert status == 200 and body["role"] == "admin"
    status, body = await call(
        owner.client, "PATCH", f"{base}/{uuid.uuid4()}", json={"role": "admin"}
    )
    assert status == 404
    status, body = await call(
        owner.client, "PATCH", f"{base}/{member.user_id}", json={"role": "boss"}
    )
    assert status == 400
    assert_error(body, "invalid", "role")
    # With a second owner, the first may step down.
    status, _ = await call(owner.client, "PATCH", f"{base}/{admin.user_id}", json={"role": "owner"})
    assert status == 200
    status, body = await call(
        owner.client, "PATCH", f"{base}/{owner.user_id}", json={"role": "member"}
    )
    assert status == 200 and body["role"] == "member"


async def test_member_removal_rules(account: AccountFactory) -> None:
    owner, admin, member = await account(), await account(), await account()
    await _add(owner, admin, "admin")
    await _add(owner, member, "member")
    base = f"/api/orgs/{owner.org_id}/members"
    status, body = await call(
        member.client, "DELETE", f"{base}/{admin.user_id}", headers={"X-Org-Id": owner.org_id}
    )
    assert status == 403
    status, body = await call(admin.client, "DELETE", f"{base}/{owner.user_id}")
    assert status == 403
    assert_error(body, "forbidden")
    status, body = await call(owner.client, "DELETE", f"{base}/{owner.user_id}")
    assert status == 422
    assert_error(body, "last_owner")
    status, _ = await call(admin.client, "DELETE", f"{base}/{member.user_id}")
    assert status == 204
    status, body = await call(admin.client, "DELETE", f"{base}/{member.user_id}")
    assert status == 404
    # The removed member no longer sees the org; their active org falls back to their own.
    status, body = await call(member.client, "GET", f"/api/orgs/{owner.org_id}")
    assert status == 404
    status, me = await call(member.client, "GET", "/api/auth/me")
    assert status == 200 and me["active_org"]["id"] == member.org_id


async def test_active_org_falls_back_when_removed(account: AccountFactory) -> None:
    owner, member = await account(), await account()
    await _add(owner, member, "member")
    status, _ = await call(
        member.client, "POST", "/api/auth/active-org", json={"org_id": owner.org_id}
    )
    assert status == 200
    status, _ = await call(
        owner.client, "DELETE", f"/api/orgs/{owner.org_id}/members/{member.user_id}"
    )
    assert status == 204
    status, me = await call(member.client, "GET", "/api/auth/me")
    assert status == 200 and me["active_org"]["id"] == member.org_id
