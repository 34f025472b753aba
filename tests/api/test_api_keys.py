"""API keys through the real app: shown once, bearer auth, org scoping, revocation."""

from __future__ import annotations

from tests.api.accounts import Account, assert_error, call
from tests.api.conftest import AccountFactory, ClientFactory


async def _create_key(acct: Account, name: str = "ci") -> dict[str, str]:
    status, body = await call(acct.client, "POST", "/api/api-keys", json={"name": name})
    assert status == 201, body
    return dict(body)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_create_shows_key_once_and_list_hides_it(account: AccountFactory) -> None:
    acct = await account()
    created = await _create_key(acct)
    assert set(created) == {"id", "name", "prefix", "key", "created_at"}
    assert created["key"].startswith("wk_") and created["key"].startswith(created["prefix"])
    assert len(created["prefix"]) < len(created["key"]) // 3
    async with acct.client.get("/api/api-keys") as resp:
        text = await resp.text()
        assert resp.status == 200
        listed = (await resp.json())["api_keys"]
    assert created["key"] not in text
    assert [k["id"] for k in listed] == [created["id"]]
    assert set(listed[0]) == {"id", "name", "prefix", "created_by", "created_at", "last_used_at"}
    assert listed[0]["created_by"] == acct.user_id


async def test_bearer_key_authenticates_in_its_org(
    account: AccountFactory, new_client: ClientFactory
) -> None:
    acct = await account()
    key = (await _create_key(acct))["key"]
    bare = new_client()
    status, me = await call(bare, "GET", "/api/auth/me", headers=_bearer(key))
    assert status == 200, me
    assert me["user"]["id"] == acct.user_id and me["active_org"]["id"] == acct.org_id
    status, orgs = await call(bare, "GET", "/api/orgs", headers=_bearer(key))
    assert status == 200 and [o["id"] for o in orgs["orgs"]] == [acct.org_id]
    status, org = await call(bare, "GET", f"/api/orgs/{acct.org_id}", headers=_bearer(key))
    assert status == 200 and org["id"] == acct.org_id
    status, listed = await call(bare, "GET", "/api/api-keys", headers=_bearer(key))
    assert status == 200 and listed["api_keys"][0]["last_used_at"] is not None


async def test_key_is_bound_to_its_org(account: AccountFactory, new_client: ClientFactory) -> None:
    acct = await account()
    status, other = await call(acct.client, "POST", "/api/orgs", json={"name": "Elsewhere"})
    assert status == 201
    key = (await _create_key(acct))["key"]
    bare = new_client()
    status, body = await call(bare, "GET", f"/api/orgs/{other['id']}", headers=_bearer(key))
    assert status == 404
    assert_error(body, "not_found")
    status, body = await call(
        bare, "GET", "/api/auth/me", headers={**_bearer(key), "X-Org-Id": other["id"]}
    )
    assert status == 404
    # A key cannot switch the active org, create orgs or mint more keys.
    status, _ = await call(
        bare, "POST", "/api/auth/active-org", json={"org_id": other["id"]}, headers=_bearer(key)
    )
    assert status == 403
    status, _ = await call(bare, "POST", "/api/orgs", json={"name": "x"}, headers=_bearer(key))
    assert status == 403
    status, body = await call(
        bare, "POST", "/api/api-keys", json={"name": "more"}, headers=_bearer(key)
    )
    assert status == 403
    assert_error(body, "forbidden")


async def test_revoked_key_is_401(account: AccountFactory, new_client: ClientFactory) -> None:
    acct = await account()
    created = await _create_key(acct)
    bare = new_client()
    status, _ = await call(bare, "GET", "/api/auth/me", headers=_bearer(created["key"]))
    assert status == 200
    status, _ = await call(acct.client, "DELETE", f"/api/api-keys/{created['id']}")
    assert status == 204
    status, body = await call(bare, "GET", "/api/auth/me", headers=_bearer(created["key"]))
    assert status == 401
    assert_error(body, "unauthorized")
    status, listed = await call(acct.client, "GET", "/api/api-keys")
    assert listed["api_keys"] == []
    status, body = await call(acct.client, "DELETE", f"/api/api-keys/{created['id']}")
    assert status == 404
    assert_error(body, "not_found")


async def test_unknown_key_is_401_and_never_falls_back_to_cookie(account: AccountFactory) -> None:
    acct = await account()
    status, body = await call(acct.client, "GET", "/api/auth/me", headers=_bearer("wk_" + "A" * 43))
    assert status == 401
    assert_error(body, "unauthorized")


async def test_members_revoke_only_their_own_keys(account: AccountFactory) -> None:
    owner, member = await account("Owner"), await account("Member")
    status, _ = await call(
        owner.client,
        "POST",
        f"/api/orgs/{owner.org_id}/members",
        json={"email": member.email, "role": "member"},
    )
    assert status == 201
    headers = {"X-Org-Id": owner.org_id}
    status, mine = await call(
        member.client, "POST", "/api/api-keys", json={"name": "mine"}, headers=headers
    )
    assert status == 201
    owners_key = await _create_key(owner)
    status, body = await call(
        member.client, "DELETE", f"/api/api-keys/{owners_key['id']}", headers=headers
    )
    assert status == 403
    assert_error(body, "forbidden")
    status, _ = await call(member.client, "DELETE", f"/api/api-keys/{mine['id']}", headers=headers)
    assert status == 204
    # The owner (admin+) may revoke anyone's key.
    status, theirs = await call(
        member.client, "POST", "/api/api-keys", json={"name": "again"}, headers=headers
    )
    status, _ = await call(owner.client, "DELETE", f"/api/api-keys/{theirs['id']}")
    assert status == 204


async def test_removed_member_key_stops_working(
    account: AccountFactory, new_client: ClientFactory
) -> None:
    owner, member = await account(), await account()
    await call(
        owner.client,
        "POST",
        f"/api/orgs/{owner.org_id}/members",
        json={"email": member.email, "role": "admin"},
    )
    status, created = await call(
        member.client,
        "POST",
        "/api/api-keys",
        json={"name": "k"},
        headers={"X-Org-Id": owner.org_id},
    )
    assert status == 201
    bare = new_client()
    status, _ = await call(bare, "GET", "/api/api-keys", headers=_bearer(created["key"]))
    assert status == 200
    status, _ = await call(
        owner.client, "DELETE", f"/api/orgs/{owner.org_id}/members/{member.user_id}"
    )
    assert status == 204
    status, _ = await call(bare, "GET", "/api/api-keys", headers=_bearer(created["key"]))
    assert status == 401
