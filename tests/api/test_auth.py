"""Sign-up, sign-in, sign-out, cookies, the current user, org switching and ws tokens."""

from __future__ import annotations

import re
import time
import uuid

import aiohttp
import asyncpg

from core.settings import Settings
from security import tokens
from tests.api.accounts import PASSWORD, assert_error, call, sign_up
from tests.api.conftest import AccountFactory, ClientFactory
from tests.security.test_passwords import legacy_scrypt_hash


def _session_cookie_header(resp: aiohttp.ClientResponse) -> str:
    headers = [h for h in resp.headers.getall("Set-Cookie", []) if "warren_session=" in h]
    assert len(headers) == 1, resp.headers
    return headers[0]


async def test_sign_up_creates_user_personal_org_and_session(
    http: aiohttp.ClientSession,
) -> None:
    email = f"Ada.{uuid.uuid4().hex[:8]}@Example.TEST"
    payload = {"email": email, "password": PASSWORD, "name": "Ada Lovelace"}
    async with http.post("/api/auth/sign-up", json=payload) as resp:
        body = await resp.json()
        assert resp.status == 201, body
        cookie = _session_cookie_header(resp)
    user, org = body["user"], body["org"]
    assert set(user) == {"id", "email", "name", "created_at"}
    assert user["email"] == email.lower() and user["name"] == "Ada Lovelace"
    assert org["name"] == "Ada Lovelace's Workspace" and org["is_personal"] is True
    assert org["slug"] == f"ada-lovelace-{uuid.UUID(user['id']).hex[:8]}"
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered
    assert "max-age=604800" in lowered and "secure" not in lowered
    assert PASSWORD not in await resp.text()

    status, me = await call(http, "GET", "/api/auth/me")
    assert status == 200, me
    assert me["user"]["id"] == user["id"]
    assert me["active_org"]["id"] == org["id"]
    assert me["orgs"] == [
        {"id": org["id"], "name": org["name"], "slug": org["slug"], "role": "owner"}
    ]


async def test_sign_up_duplicate_email_is_409(
    account: AccountFactory, new_client: ClientFactory
) -> None:
    first = await account()
    payload = {"email": first.email.upper(), "password": PASSWORD, "name": "Again"}
    status, body = await call(new_client(), "POST", "/api/auth/sign-up", json=payload)
    assert status == 409
    assert_error(body, "conflict", "email")


async def test_sign_up_validates_fields(http: aiohttp.ClientSession) -> None:
    good = {"email": "v@example.test", "password": PASSWORD, "name": "V"}
    cases = [
        ({**good, "email": "not-an-email"}, "email"),
        ({**good, "email": 5}, "email"),
        ({**good, "password": "short"}, "password"),
        ({**good, "name": ""}, "name"),
        ({"email": "v@example.test", "password": PASSWORD}, "name"),
    ]
    for payload, field in cases:
        status, body = await call(http, "POST", "/api/auth/sign-up", json=payload)
        assert status == 400, (payload, body)
        assert_error(body, "invalid", field)
        assert PASSWORD not in str(body)


async def test_sign_in_sets_cookie_and_me_works(
    account: AccountFactory, new_client: ClientFactory
) -> None:
    acct = await account()
    client = new_client()
    payload = {"email": acct.email, "password": PASSWORD}
    async with client.post("/api/auth/sign-in", json=payload) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        assert "httponly" in _session_cookie_header(resp).lower()
    assert body["user"]["id"] == acct.user_id
    assert body["active_org"]["id"] == acct.org_id
    assert "password" not in str(body) and "hash" not in str(body)
    status, me = await call(client, "GET", "/api/auth/me")
    assert status == 200 and me["user"]["email"] == acct.email


async def test_wrong_password_and_unknown_email_look_the_same(
    account: AccountFactory, http: aiohttp.ClientSession
) -> None:
    acct = await account()
    wrong = await call(
        http, "POST", "/api/auth/sign-in", json={"email": acct.email, "password": "wrong password"}
    )
    unknown = await call(
        http,
        "POST",
        "/api/auth/sign-in",
        json={"email": f"nobody-{uuid.uuid4().hex}@x.test", "password": "pw"},
    )
    assert wrong[0] == unknown[0] == 401
    assert wrong[1] == unknown[1]
    assert_error(wrong[1], "invalid_credentials")


async def test_sign_out_invalidates_the_session(
    account: AccountFactory, new_client: ClientFactory
) -> None:
    acct = await account()
    token = next(c.value for c in acct.client.cookie_jar if c.key == "warren_session")
    async with acct.client.post("/api/auth/sign-out") as resp:
        assert resp.status == 204
        assert "max-age=0" in _session_cookie_header(resp).lower()
    status, body = await call(acct.client, "GET", "/api/auth/me")
    assert status == 401
    assert_error(body, "unauthorized")
    # Replaying the old cookie value does not work either: the session row is gone.
    replay = new_client()
    replay.cookie_jar.update_cookies({"warren_session": token})
    status, _ = await call(replay, "GET", "/api/auth/me")
    assert status == 401
    # Signing out again is harmless.
    status, _ = await call(acct.client, "POST", "/api/auth/sign-out")
    assert status == 204


async def test_forged_cookie_is_401(new_client: ClientFactory) -> None:
    client = new_client()
    client.cookie_jar.update_cookies({"warren_session": "forged-token"})
    status, body = await call(client, "GET", "/api/auth/me")
    assert status == 401
    assert_error(body, "unauthorized")


async def test_session_is_refreshed_at_most_daily(
    account: AccountFactory, db: asyncpg.Pool
) -> None:
    acct = await account()
    status, _ = await call(acct.client, "GET", "/api/auth/me")
    assert status == 200
    await db.execute(
        """UPDATE auth_sessions SET refreshed_at = now() - interval '2 days',
                  expires_at = now() + interval '5 days' WHERE user_id = $1""",
        uuid.UUID(acct.user_id),
    )
    async with acct.client.get("/api/auth/me") as resp:
        assert resp.status == 200
        assert "max-age=604800" in _session_cookie_header(resp).lower()
    remaining = await db.fetchval(
        "SELECT expires_at - now() FROM auth_sessions WHERE user_id = $1",
        uuid.UUID(acct.user_id),
    )
    assert remaining.days >= 6
    async with acct.client.get("/api/auth/me") as resp:
        assert resp.status == 200
        assert not [h for h in resp.headers.getall("Set-Cookie", []) if "warren_session" in h]


async def test_sign_in_is_rate_limited_per_email(
    account: AccountFactory, http: aiohttp.ClientSession
) -> None:
    acct = await account()
    bad = {"email": acct.email, "password": "not the password"}
    for _ in range(10):
        status, _ = await call(http, "POST", "/api/auth/sign-in", json=bad)
        assert status == 401
    async with http.post("/api/auth/sign-in", json=bad) as resp:
        assert resp.status == 429
        assert 1 <= int(resp.headers["Retry-After"]) <= 300
        assert_error(await resp.json(), "rate_limited")
    # Blocked even with the right password; other emails are unaffected.
    good = {"email": acct.email, "password": PASSWORD}
    status, _ = await call(http, "POST", "/api/auth/sign-in", json=good)
    assert status == 429
    other = await account()
    status, _ = await call(
        http, "POST", "/api/auth/sign-in", json={"email": other.email, "password": PASSWORD}
    )
    assert status == 200


async def test_switch_active_org(account: AccountFactory) -> None:
    acct, stranger = await account(), await account()
    status, org = await call(acct.client, "POST", "/api/orgs", json={"name": "Second"})
    assert status == 201
    status, me = await call(acct.client, "POST", "/api/auth/active-org", json={"org_id": org["id"]})
    assert status == 200 and me["active_org"]["id"] == org["id"]
    status, me = await call(acct.client, "GET", "/api/auth/me")
    assert me["active_org"]["id"] == org["id"] and len(me["orgs"]) == 2
    status, body = await call(
        acct.client, "POST", "/api/auth/active-org", json={"org_id": stranger.org_id}
    )
    assert status == 404
    assert_error(body, "not_found")
    status, body = await call(acct.client, "POST", "/api/auth/active-org", json={"org_id": "x"})
    assert status == 400
    assert_error(body, "invalid", "org_id")


async def test_x_org_id_header_picks_an_org_for_members_only(account: AccountFactory) -> None:
    acct, stranger = await account(), await account()
    status, org = await call(acct.client, "POST", "/api/orgs", json={"name": "Other"})
    assert status == 201
    status, me = await call(acct.client, "GET", "/api/auth/me", headers={"X-Org-Id": org["id"]})
    assert status == 200 and me["active_org"]["id"] == org["id"]
    status, body = await call(
        acct.client, "GET", "/api/auth/me", headers={"X-Org-Id": stranger.org_id}
    )
    assert status == 404
    assert_error(body, "not_found")
    status, body = await call(acct.client, "GET", "/api/auth/me", headers={"X-Org-Id": "nope"})
    assert status == 400
    assert_error(body, "invalid", "X-Org-Id")


async def test_ws_token_carries_user_and_active_org(
    account: AccountFactory, new_client: ClientFactory, settings: Settings
) -> None:
    acct = await account()
    status, body = await call(acct.client, "POST", "/api/auth/ws-token")
    assert status == 200, body
    claims = tokens.verify_ws_token(settings.secret_key, body["token"])
    assert (claims.sub, claims.org, claims.typ) == (acct.user_id, acct.org_id, "ws")
    assert claims.exp - claims.iat == settings.ws_token_ttl_seconds
    assert abs(claims.iat - time.time()) < 60
    assert re.match(r"^\d{4}-\d\d-\d\dT", body["expires_at"])
    # A ws token is not a credential for ordinary routes.
    status, err = await call(
        new_client(),
        "GET",
        "/api/auth/me",
        headers={"Authorization": f"Bearer {body['token']}"},
    )
    assert status == 401
    assert_error(err, "unauthorized")


async def test_ws_token_needs_credentials(new_client: ClientFactory) -> None:
    status, body = await call(new_client(), "POST", "/api/auth/ws-token")
    assert status == 401
    assert_error(body, "unauthorized")


async def test_service_token_is_not_a_user(new_client: ClientFactory, settings: Settings) -> None:
    token = tokens.mint_service_token(settings.secret_key, "scheduler")
    auth = {"Authorization": f"Bearer {token}"}
    status, body = await call(new_client(), "GET", "/api/auth/me", headers=auth)
    assert status == 403
    assert_error(body, "forbidden")
    expired = tokens.mint_service_token(settings.secret_key, "s", 10, now=int(time.time()) - 60)
    status, body = await call(
        new_client(), "GET", "/api/auth/me", headers={"Authorization": f"Bearer {expired}"}
    )
    assert status == 401
    # Service tokens are minted by operators only: there is no HTTP route for them.
    status, _ = await call(new_client(), "POST", "/api/auth/service-token", json={})
    assert status == 404


async def test_sign_up_then_sign_in_on_same_client_replaces_session(
    new_client: ClientFactory, db: asyncpg.Pool
) -> None:
    client = new_client()
    acct = await sign_up(client)
    status, _ = await call(
        client, "POST", "/api/auth/sign-in", json={"email": acct.email, "password": PASSWORD}
    )
    assert status == 200
    count = await db.fetchval(
        "SELECT count(*) FROM auth_sessions WHERE user_id = $1", uuid.UUID(acct.user_id)
    )
    assert count == 1


async def test_sign_up_stores_an_argon2id_hash(account: AccountFactory, db: asyncpg.Pool) -> None:
    acct = await account()
    stored = await db.fetchval(
        "SELECT password_hash FROM users WHERE id = $1", uuid.UUID(acct.user_id)
    )
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


async def test_sign_in_rehashes_an_old_scrypt_hash_to_argon2id(
    account: AccountFactory, new_client: ClientFactory, db: asyncpg.Pool
) -> None:
    acct = await account()
    user_id = uuid.UUID(acct.user_id)
    old = legacy_scrypt_hash(PASSWORD)
    await db.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, old)

    wrong = {"email": acct.email, "password": "not the password"}
    status, _ = await call(new_client(), "POST", "/api/auth/sign-in", json=wrong)
    assert status == 401
    assert await db.fetchval("SELECT password_hash FROM users WHERE id = $1", user_id) == old

    client = new_client()
    payload = {"email": acct.email, "password": PASSWORD}
    status, body = await call(client, "POST", "/api/auth/sign-in", json=payload)
    assert status == 200, body
    stored = await db.fetchval("SELECT password_hash FROM users WHERE id = $1", user_id)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    # The new hash is the password's: signing in again works, and leaves it alone.
    status, _ = await call(new_client(), "POST", "/api/auth/sign-in", json=payload)
    assert status == 200
    assert await db.fetchval("SELECT password_hash FROM users WHERE id = $1", user_id) == stored
