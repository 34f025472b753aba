"""``api.body``: decoding request bodies into Structs, 400s naming the offending field."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import msgspec
import pytest

from api.body import decode, field_of, nul_field
from api.errors import ApiError
from tests.api.accounts import PASSWORD, Account, assert_error, call
from tests.api.conftest import AccountFactory


class Repo(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: str


class Request(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    repos: list[Repo] = []


def _error(data: bytes) -> msgspec.ValidationError:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(data, type=Request)
    return caught.value


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b'{"name": "a", "admin": true}', "admin"),
        (b'{"name": "a", "repos": [{"url": "u"}, {"url": "u", "branch": "x"}]}', "repos[1].branch"),
        (b'{"repos": []}', "name"),
        (b'{"name": "a", "repos": [{}]}', "repos[0].url"),
        (b'{"name": 5}', "name"),
        (b'{"name": "a", "repos": [{"url": 1}]}', "repos[0].url"),
    ],
)
def test_field_of_names_the_field(data: bytes, field: str) -> None:
    assert field_of(_error(data)) == field


def test_field_of_is_none_for_a_whole_body_error() -> None:
    assert field_of(_error(b"[]")) is None


def test_decode_unknown_field_is_400_naming_it() -> None:
    with pytest.raises(ApiError) as caught:
        decode(b'{"name": "a", "repos": [{"url": "u", "token": "x"}]}', Request)
    assert caught.value.status == 400
    assert caught.value.field == "repos[0].token"
    assert "unknown field `token`" in caught.value.message


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"a": {"b": ["x", "y\x00"]}}, "a.b[1]"),
        ({"ok": "x", "k\x00": 1}, "k\\u0000"),
        ("\x00", ""),
        ({"a": ["fine", {"b": "fine"}]}, None),
    ],
)
def test_nul_field_finds_nested_text(value: object, field: str | None) -> None:
    assert nul_field(value) == field


def test_nul_check_survives_deep_nesting() -> None:
    deep = b"[" * 900 + b'"\\u0000"' + b"]" * 900
    with pytest.raises(ApiError) as caught:
        decode(deep, list[Any])
    assert caught.value.status == 400
    assert caught.value.field == "[0]" + "[0]" * 899


def test_an_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    assert decode(b'{"name": "\\\\u0000"}', Request).name == "\\u0000"


# Through the real routes: each of these reached Postgres and answered 500 before.
NUL_BODIES: list[tuple[str, str, Callable[[Account], dict[str, Any]], str]] = [
    (
        "POST",
        "/api/auth/sign-up",
        lambda a: {"email": "nul\u0000@example.test", "password": PASSWORD, "name": "N"},
        "email",
    ),
    (
        "POST",
        "/api/auth/sign-up",
        lambda a: {
            "email": f"n{uuid.uuid4().hex[:8]}@example.test",
            "password": PASSWORD,
            "name": "Nu\u0000l",
        },
        "name",
    ),
    (
        "POST",
        "/api/auth/sign-in",
        lambda a: {"email": a.email + "\u0000", "password": "x"},
        "email",
    ),
    (
        "POST",
        "/api/automations",
        lambda a: {"name": "A", "enabled_tools": ["ok", "b\u0000d"]},
        "enabled_tools[1]",
    ),
    (
        "POST",
        "/api/sessions",
        lambda a: {"client_metadata": {"k\u0000": "v"}},
        "client_metadata.k\\u0000",
    ),
    (
        "POST",
        "/api/sessions",
        lambda a: {"client_metadata": {"k": {"deep": ["\u0000"]}}},
        "client_metadata.k.deep[0]",
    ),
    (
        "POST",
        "/api/triggers",
        lambda a: {"provider": "custom", "config": {"\u0000": 1}},
        "config.\\u0000",
    ),
    ("PATCH", "/api/orgs/{org}", lambda a: {"name": "\u0000"}, "name"),
]


@pytest.mark.parametrize(("method", "path", "payload", "field"), NUL_BODIES)
async def test_nul_in_body_text_is_400_naming_the_field(
    account: AccountFactory,
    method: str,
    path: str,
    payload: Callable[[Account], dict[str, Any]],
    field: str,
) -> None:
    acct = await account()
    url = path.format(org=acct.org_id)
    status, body = await call(acct.client, method, url, json=payload(acct))
    assert status == 400, body
    assert_error(body, "invalid", field)
    assert "NUL" in body["error"]["message"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/runs?status=run%00ning", "status"),
        ("/api/sessions?status=%00", "status"),
        ("/api/sessions/%00abc", "session_id"),
        ("/api/triggers?automation_id=%00", "automation_id"),
    ],
)
async def test_nul_in_query_or_path_is_400_naming_it(
    account: AccountFactory, path: str, field: str
) -> None:
    acct = await account()
    status, body = await call(acct.client, "GET", path)
    assert status == 400, body
    assert_error(body, "invalid", field)


async def test_nul_in_a_websocket_query_refuses_the_handshake(
    account: AccountFactory, api_url: str
) -> None:
    # Refused before accept with the JSON 400 (no handler runs, nothing reaches SQL).
    acct = await account()
    url = f"{api_url}/api/sessions/{uuid.uuid4()}/ws?note=%00"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await acct.client.ws_connect(url)
    assert refused.value.status == 400
