"""Test helpers for API tests: signed-up accounts, each with its own cookie jar."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

PASSWORD = "correct horse battery staple"


@dataclass
class Account:
    """A signed-up user whose ``client`` carries their session cookie."""

    client: aiohttp.ClientSession
    user_id: str
    org_id: str
    """Their personal org (the active org right after sign-up)."""
    email: str
    name: str
    password: str = PASSWORD


async def sign_up(client: aiohttp.ClientSession, name: str = "Tess Ter") -> Account:
    """Sign up a fresh user (unique email) on ``client``; asserts success."""
    email = f"{uuid.uuid4().hex[:12]}@example.test"
    payload = {"email": email, "password": PASSWORD, "name": name}
    async with client.post("/api/auth/sign-up", json=payload) as resp:
        body = await resp.json()
        assert resp.status == 201, body
    return Account(client, body["user"]["id"], body["org"]["id"], email, name)


async def call(
    client: aiohttp.ClientSession,
    method: str,
    path: str,
    *,
    json: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request; returns (status, parsed JSON body or None when empty)."""
    async with client.request(method, path, json=json, headers=headers) as resp:
        text = await resp.text()
        return resp.status, (None if not text else await resp.json(content_type=None))


def assert_error(body: Any, code: str | None = None, field: str | None = None) -> None:
    """``body`` has exactly Warren's error shape (and the given code/field)."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) <= {"code", "message", "field"}, error
    assert isinstance(error["code"], str) and isinstance(error["message"], str), error
    if code is not None:
        assert error["code"] == code, error
    if field is not None:
        assert error.get("field") == field, error
