"""Sign-up, sign-in, sign-out, the current user, org switching and WebSocket tokens.

Passwords are hashed with argon2id in a worker thread so the event loop keeps serving; a
successful sign-in replaces an older hash (scrypt, or weaker argon2 parameters).
Sign-in failures are rate limited per email (10 per 5 minutes per replica → 429 with
``Retry-After``); unknown emails and wrong passwords get the same 401 after the same work.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from api.body import body
from api.cookies import SESSION_COOKIE, SESSION_TTL, clear_session_cookie, set_session_cookie
from api.deps import Caller, require_active_org, require_browser_user, require_user
from api.errors import ApiError, not_found
from api.openapi import json_body, returns
from api.responses import json_response
from api.state import AppState
from schemas.auth import (
    ActiveOrgRequest,
    MeResponse,
    SignInRequest,
    SignUpRequest,
    SignUpResponse,
    WsToken,
)
from security import passwords, tokens
from security.ratelimit import FailureLimiter
from store import auth_sessions, orgs, users

router = APIRouter(prefix="/api/auth", tags=["auth"])

SIGN_IN_MAX_FAILURES = 10
SIGN_IN_WINDOW_SECONDS = 300
_BAD_CREDENTIALS = "invalid email or password"


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.warren
    return state


def _limiter(request: Request) -> FailureLimiter:
    limiter: FailureLimiter | None = getattr(request.app.state, "sign_in_limiter", None)
    if limiter is None:
        limiter = FailureLimiter(SIGN_IN_MAX_FAILURES, SIGN_IN_WINDOW_SECONDS)
        request.app.state.sign_in_limiter = limiter
    return limiter


async def _start_session(
    db: asyncpg.Connection, request: Request, user_id: uuid.UUID, org_id: uuid.UUID | None
) -> str:
    """Record a browser session and return the cookie token; drops any session it replaces."""
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await auth_sessions.delete_session(db, tokens.hash_session_token(old))
    token, token_hash = tokens.new_session_token()
    await auth_sessions.create_session(
        db, token_hash=token_hash, user_id=user_id, active_org_id=org_id, ttl=SESSION_TTL
    )
    return token


async def _me(db: asyncpg.Connection, user_id: uuid.UUID, org_id: uuid.UUID | None) -> MeResponse:
    user = await users.get_user(db, user_id)
    if user is None:
        raise ApiError(401, "authentication required")
    memberships = await orgs.list_user_orgs(db, user_id)
    active = None if org_id is None else await orgs.get_org(db, org_id)
    return MeResponse(user=user, active_org=active, orgs=memberships)


@router.post("/sign-up", openapi_extra=json_body(SignUpRequest))
@returns(SignUpResponse, 201, errors=(409,))
async def sign_up(request: Request) -> Response:
    """Create a user and their personal org (as owner), sign them in: 201 {user, org}.

    400 for a bad email/short password (naming the field), 409 if the email is taken.
    """
    req = await body(request, SignUpRequest)
    password_hash = await asyncio.to_thread(passwords.hash_password, req.password)
    state = _state(request)
    async with state.pool.acquire() as db, db.transaction():
        try:
            user = await users.create_user(
                db, email=req.email, name=req.name, password_hash=password_hash
            )
        except users.EmailTaken:
            raise ApiError(409, "a user with this email exists", field="email") from None
        org = await orgs.create_org(
            db,
            name=f"{req.name}'s Workspace",
            slug_stem=req.name,
            slug_suffix=user.id.hex[:8],
            owner_id=user.id,
            is_personal=True,
        )
        token = await _start_session(db, request, user.id, org.id)
    response = json_response(SignUpResponse(user=user, org=org), status=201)
    set_session_cookie(response, token, secure=state.settings.cookie_secure)
    return response


@router.post("/sign-in", openapi_extra=json_body(SignInRequest))
@returns(MeResponse, errors=(401, 429))
async def sign_in(request: Request) -> Response:
    """Check email and password and set the session cookie: 200 with the ``/me`` body.

    401 for a wrong password or unknown email alike; 429 once an email has failed too often.
    """
    req = await body(request, SignInRequest)
    key = users.normalize_email(req.email)
    limiter = _limiter(request)
    retry_after = limiter.retry_after(key)
    if retry_after is not None:
        raise ApiError(
            429, "too many failed sign-in attempts", headers={"Retry-After": str(retry_after)}
        )
    state = _state(request)
    async with state.pool.acquire() as db:
        credentials = await users.get_credentials(db, key)
    if credentials is None:
        await asyncio.to_thread(passwords.burn_verification, req.password)
        ok = False
    else:
        ok = await asyncio.to_thread(
            passwords.verify_password, req.password, credentials.password_hash
        )
    if not ok or credentials is None:
        limiter.record_failure(key)
        raise ApiError(401, _BAD_CREDENTIALS, code="invalid_credentials")
    limiter.reset(key)
    user_id = credentials.user.id
    rehashed = None
    if passwords.needs_rehash(credentials.password_hash):
        rehashed = await asyncio.to_thread(passwords.hash_password, req.password)
    async with state.pool.acquire() as db:
        if rehashed is not None:
            await users.set_password_hash(db, user_id, rehashed)
        org_id = await orgs.first_org_id(db, user_id)
        token = await _start_session(db, request, user_id, org_id)
        me = await _me(db, user_id, org_id)
    response = json_response(me)
    set_session_cookie(response, token, secure=state.settings.cookie_secure)
    return response


@router.post("/sign-out")
@returns(None, 204)
async def sign_out(request: Request) -> Response:
    """Delete the browser session (if any) and clear the cookie: 204, idempotent."""
    state = _state(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with state.pool.acquire() as db:
            await auth_sessions.delete_session(db, tokens.hash_session_token(token))
    response = Response(status_code=204)
    clear_session_cookie(response, secure=state.settings.cookie_secure)
    return response


@router.get("/me")
@returns(MeResponse)
async def me(request: Request, caller: Annotated[Caller, Depends(require_user)]) -> Response:
    """The caller, their active org (an API key's own org) and every org they belong to."""
    assert caller.user_id is not None
    async with _state(request).pool.acquire() as db:
        result = await _me(db, caller.user_id, caller.org_id)
    if caller.kind == "api_key":
        result = MeResponse(
            user=result.user,
            active_org=result.active_org,
            orgs=[m for m in result.orgs if m.id == caller.org_id],
        )
    return json_response(result)


@router.post("/active-org", openapi_extra=json_body(ActiveOrgRequest))
@returns(MeResponse, errors=(404,))
async def set_active_org(
    request: Request, caller: Annotated[Caller, Depends(require_browser_user)]
) -> Response:
    """Switch the browser session's active org: 200 with the ``/me`` body; 404 if not a member."""
    req = await body(request, ActiveOrgRequest)
    assert caller.user_id is not None and caller.auth_session_id is not None
    async with _state(request).pool.acquire() as db:
        if await orgs.get_role(db, req.org_id, caller.user_id) is None:
            raise not_found("org")
        await auth_sessions.set_active_org(db, caller.auth_session_id, req.org_id)
        result = await _me(db, caller.user_id, req.org_id)
    return json_response(result)


@router.post("/ws-token")
@returns(WsToken)
async def ws_token(
    request: Request, caller: Annotated[Caller, Depends(require_active_org())]
) -> Response:
    """A short-lived token for the session WebSocket, for the caller's user and org."""
    assert caller.user_id is not None and caller.org_id is not None
    settings = _state(request).settings
    token, exp = tokens.mint_ws_token(
        settings.secret_key, str(caller.user_id), str(caller.org_id), settings.ws_token_ttl_seconds
    )
    return json_response(WsToken(token=token, expires_at=datetime.fromtimestamp(exp, UTC)))
