"""api.deps resolvers that no route of this area exposes yet: service, sandbox and ws callers.

They run against a real request object and the real test database; only the ASGI app
around them is a plain carrier of ``state.warren`` (settings and pool).
"""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import asyncpg
import pytest
from starlette.requests import Request

from api.deps import require_sandbox, require_service, require_ws_user, resolve_caller
from api.errors import ApiError
from core.migrate import apply_migrations
from core.settings import Settings
from security import tokens
from store import orgs, users


@pytest.fixture
async def pool(db: asyncpg.Pool) -> asyncpg.Pool:
    """The test database, migrated."""
    async with db.acquire() as conn:
        await apply_migrations(conn)
    return db


def _request(
    settings: Settings, pool: asyncpg.Pool, *, bearer: str | None = None, query: str = ""
) -> Request:
    app = SimpleNamespace(
        state=SimpleNamespace(warren=SimpleNamespace(settings=settings, pool=pool))
    )
    headers = [] if bearer is None else [(b"authorization", f"Bearer {bearer}".encode())]
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": headers,
        "query_string": query.encode(),
        "app": app,
    }
    return Request(scope)


async def _user_in_org(pool: asyncpg.Pool) -> tuple[uuid.UUID, uuid.UUID]:
    async with pool.acquire() as conn:
        user = await users.create_user(
            conn, email=f"{uuid.uuid4().hex[:10]}@deps.test", name="D", password_hash="h"
        )
        org = await orgs.create_org(conn, name="D", owner_id=user.id)
    return user.id, org.id


async def test_require_service(settings: Settings, pool: asyncpg.Pool) -> None:
    token = tokens.mint_service_token(settings.secret_key, "scheduler")
    caller = await require_service(_request(settings, pool, bearer=token))
    assert (caller.kind, caller.service, caller.user_id) == ("service", "scheduler", None)
    with pytest.raises(ApiError) as info:
        await require_service(_request(settings, pool))
    assert info.value.status == 401
    expired = tokens.mint_service_token(settings.secret_key, "s", 10, now=int(time.time()) - 60)
    with pytest.raises(ApiError) as info:
        await require_service(_request(settings, pool, bearer=expired))
    assert info.value.status == 401
    forged = tokens.mint_service_token("f" * 40, "scheduler")
    with pytest.raises(ApiError) as info:
        await require_service(_request(settings, pool, bearer=forged))
    assert info.value.status == 401


async def test_require_service_refuses_users(settings: Settings, pool: asyncpg.Pool) -> None:
    user_id, org_id = await _user_in_org(pool)
    ws, _ = tokens.mint_ws_token(settings.secret_key, str(user_id), str(org_id), 60)
    with pytest.raises(ApiError) as info:
        await require_service(_request(settings, pool, bearer=ws))
    assert info.value.status == 401  # ws tokens are not accepted outside the WebSocket


async def test_require_sandbox(settings: Settings, pool: asyncpg.Pool) -> None:
    token = tokens.sandbox_token(settings.secret_key, "sess-a")
    caller = await require_sandbox(_request(settings, pool, bearer=token), "sess-a")
    assert (caller.kind, caller.session_id, caller.org_id) == ("sandbox", "sess-a", None)
    for bearer, session in [(token, "sess-b"), (None, "sess-a"), ("0" * 64, "sess-a")]:
        with pytest.raises(ApiError) as info:
            await require_sandbox(_request(settings, pool, bearer=bearer), session)
        assert info.value.status == 401


async def test_sandbox_token_only_counts_where_a_session_is_named(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    token = tokens.sandbox_token(settings.secret_key, "sess-a")
    caller = await resolve_caller(
        _request(settings, pool, bearer=token), sandbox_session_id="sess-a"
    )
    assert caller is not None and caller.kind == "sandbox"
    with pytest.raises(ApiError) as info:
        await resolve_caller(_request(settings, pool, bearer=token))
    assert info.value.status == 401


async def test_require_ws_user(settings: Settings, pool: asyncpg.Pool) -> None:
    user_id, org_id = await _user_in_org(pool)
    token, _ = tokens.mint_ws_token(settings.secret_key, str(user_id), str(org_id), 60)
    for request in (
        _request(settings, pool, query=f"token={token}"),
        _request(settings, pool, bearer=token),
    ):
        caller = await require_ws_user(request)
        assert (caller.kind, caller.user_id, caller.org_id, caller.role) == (
            "user",
            user_id,
            org_id,
            "owner",
        )


async def test_ws_token_expiry_and_membership(settings: Settings, pool: asyncpg.Pool) -> None:
    user_id, org_id = await _user_in_org(pool)
    expired, _ = tokens.mint_ws_token(
        settings.secret_key, str(user_id), str(org_id), 10, now=int(time.time()) - 30
    )
    other_user, _ = await _user_in_org(pool)
    not_member, _ = tokens.mint_ws_token(settings.secret_key, str(other_user), str(org_id), 60)
    for bad in (expired, not_member, "garbage", "a.b.c"):
        with pytest.raises(ApiError) as info:
            await require_ws_user(_request(settings, pool, query=f"token={bad}"))
        assert info.value.status == 401
    with pytest.raises(ApiError) as info:
        await require_ws_user(_request(settings, pool))
    assert info.value.status == 401
