"""Every error answers with ``{"error": {"code", "message", "field"?}}``, and bad input is
never a 500.

Status policy, as tested here:
- 400: malformed JSON, a non-object body, a wrong type, a missing or unknown field (``field``
  names it), a malformed header value, a NUL in any body, query or path text;
- 401: no or invalid credentials; 403: authenticated but not allowed;
- 404: unknown route, or a resource the caller cannot see (a malformed id included);
- 409: conflicts with existing state (duplicate email, already a member);
- 413: body over ``settings.max_body_bytes``;
- 422: well-formed input that breaks a business rule (demoting/removing the last owner);
- 429: rate limited, with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from core.settings import Settings
from tests.api.accounts import PASSWORD, Account, assert_error, call
from tests.api.conftest import AccountFactory


async def _raw(
    client: aiohttp.ClientSession, method: str, path: str, data: bytes | None
) -> tuple[int, object]:
    headers = {"Content-Type": "application/json"}
    async with client.request(method, path, data=data, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_malformed_json_is_400(http: aiohttp.ClientSession) -> None:
    status, body = await _raw(http, "POST", "/api/auth/sign-up", b'{"email": ')
    assert status == 400
    assert_error(body, "invalid_json")


async def test_empty_body_is_400(http: aiohttp.ClientSession) -> None:
    status, body = await _raw(http, "POST", "/api/auth/sign-in", b"")
    assert status == 400
    assert_error(body, "invalid_json")


async def test_wrong_type_names_the_field(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "POST", "/api/auth/sign-in", json={"email": 5, "password": "x"})
    assert status == 400
    assert_error(body, "invalid", "email")


async def test_missing_field_is_400_naming_it(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "POST", "/api/auth/sign-in", json={"email": "a@b.test"})
    assert status == 400
    assert_error(body, "invalid", "password")


async def test_unknown_field_is_400(http: aiohttp.ClientSession) -> None:
    payload = {"email": "a@b.test", "password": "x", "admin": True}
    status, body = await call(http, "POST", "/api/auth/sign-in", json=payload)
    assert status == 400
    assert_error(body, "invalid", "admin")
    assert "admin" in body["error"]["message"]


async def test_no_credentials_is_401(http: aiohttp.ClientSession) -> None:
    async with http.get("/api/orgs") as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == "Bearer"
        assert_error(await resp.json(), "unauthorized")


async def test_forbidden_is_403(account: AccountFactory) -> None:
    owner, member = await account(), await account()
    await call(
        owner.client, "POST", f"/api/orgs/{owner.org_id}/members", json={"email": member.email}
    )
    status, body = await call(
        member.client, "PATCH", f"/api/orgs/{owner.org_id}", json={"name": "x"}
    )
    assert status == 403
    assert_error(body, "forbidden")


@pytest.mark.parametrize(
    "path", ["/api/nope", "/api/orgs/not-a-uuid", "/api/orgs/00000000-0000-0000-0000-000000000000"]
)
async def test_not_found_is_404(account: AccountFactory, path: str) -> None:
    acct = await account()
    status, body = await call(acct.client, "GET", path)
    assert status == 404
    assert_error(body, "not_found")


async def test_malformed_ids_in_paths_are_404(account: AccountFactory) -> None:
    acct = await account()
    for method, path in [
        ("DELETE", "/api/api-keys/xyz"),
        ("DELETE", f"/api/orgs/{acct.org_id}/members/xyz"),
        ("PATCH", f"/api/orgs/{acct.org_id}/members/%01"),
    ]:
        status, body = await call(acct.client, method, path, json={"role": "member"})
        assert status == 404, (method, path, body)
        assert_error(body, "not_found")


async def test_wrong_method_is_405_json(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "DELETE", "/api/auth/sign-in")
    assert status == 405
    assert_error(body, "method_not_allowed")


async def test_conflict_is_409(account: AccountFactory, http: aiohttp.ClientSession) -> None:
    acct = await account()
    payload = {"email": acct.email, "password": PASSWORD, "name": "Dup"}
    status, body = await call(http, "POST", "/api/auth/sign-up", json=payload)
    assert status == 409
    assert_error(body, "conflict", "email")


async def test_body_over_limit_is_413(http: aiohttp.ClientSession, settings: Settings) -> None:
    assert settings.max_body_bytes == 65536
    big = b'{"email": "' + b"a" * settings.max_body_bytes + b'", "password": "x"}'
    status, body = await _raw(http, "POST", "/api/auth/sign-in", big)
    assert status == 413
    assert_error(body, "payload_too_large")


async def test_chunked_body_over_limit_is_413(
    http: aiohttp.ClientSession, settings: Settings
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "'
        for _ in range(settings.max_body_bytes // 8192 + 2):
            yield b"a" * 8192
        yield b'"}'

    async with http.post("/api/auth/sign-in", data=chunks()) as resp:
        assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert resp.status == 413
        assert_error(await resp.json(), "payload_too_large")


async def test_business_rule_is_422(account: AccountFactory) -> None:
    acct = await account()
    status, body = await call(
        acct.client,
        "PATCH",
        f"/api/orgs/{acct.org_id}/members/{acct.user_id}",
        json={"role": "member"},
    )
    assert status == 422
    assert_error(body, "last_owner")


async def test_rate_limit_is_429(account: AccountFactory, http: aiohttp.ClientSession) -> None:
    acct = await account()
    for _ in range(10):
        await call(
            http, "POST", "/api/auth/sign-in", json={"email": acct.email, "password": "nope nope"}
        )
    async with http.post(
        "/api/auth/sign-in", json={"email": acct.email, "password": "nope"}
    ) as resp:
        assert resp.status == 429
        assert int(resp.headers["Retry-After"]) > 0
        assert_error(await resp.json(), "rate_limited")


JUNK: list[bytes] = [
    b"{",
    b"[]",
    b'"text"',
    b"null",
    b"1",
    b"{}",
    b'{"name": null, "email": null, "role": null, "org_id": null}',
    b'{"name": {"a": 1}, "email": [1], "role": 5, "org_id": 7}',
    b'{"name": "\xff\xfe", "email": "\xc3"}',
    b'{"name": NaN}',
    b"[" * 5000 + b"]" * 5000,
    b'{"email": "' + "é".encode() * 2000 + b'@x.y", "name": "' + b"x" * 5000 + b'"}',
    b'{"org_id": "00000000-0000-0000-0000-00000000000g", "role": "OWNER"}',
    b"\x00\x01\x02",
]


def _body_routes(acct: Account) -> list[tuple[str, str]]:
    base = f"/api/orgs/{acct.org_id}"
    return [
        ("POST", "/api/auth/sign-up"),
        ("POST", "/api/auth/sign-in"),
        ("POST", "/api/auth/active-org"),
        ("POST", "/api/orgs"),
        ("PATCH", base),
        ("POST", f"{base}/members"),
        ("PATCH", f"{base}/members/{acct.user_id}"),
        ("POST", "/api/api-keys"),
    ]


async def test_junk_bodies_are_400_never_500(account: AccountFactory) -> None:
    acct = await account()
    for method, path in _body_routes(acct):
        for junk in JUNK:
            status, body = await _raw(acct.client, method, path, junk)
            assert status == 400, (method, path, junk[:40], body)
            assert_error(body)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/api/orgs", "GET, POST"),
        ("PUT", "/api/orgs/00000000-0000-0000-0000-000000000000", "GET, PATCH"),
        ("DELETE", "/api/auth/sign-in", "POST"),
    ],
)
async def test_405_allows_every_method_of_the_path(
    http: aiohttp.ClientSession, method: str, path: str, allow: str
) -> None:
    async with http.request(method, path) as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == allow
        assert_error(await resp.json(), "method_not_allowed")
