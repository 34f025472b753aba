"""Who is calling: the one place that turns request credentials into a :class:`Caller`.

Credentials are tried in this order:

1. ``Authorization: Bearer wk_...``: an API key; acts as its creator, in the key's org.
2. ``Authorization: Bearer <jwt>`` with ``typ: "service"``: an operator-minted service token.
3. a ``typ: "ws"`` JWT (header, or ``?token=`` for WebSockets): only where ``allow_ws``.
4. ``Authorization: Bearer <hex>``: the sandbox token of the session id in the path; only
   through :func:`require_sandbox` / ``sandbox_session_id``.
5. the ``warren_session`` cookie: a signed-in browser.

A bearer credential that is present but invalid is a 401 at once: it never falls back to
the cookie. Cookie callers may pick an org per request with ``X-Org-Id`` (they must be a
member); otherwise their session's active org applies. API keys are bound to their org.

Status codes: no or bad credentials → 401; authenticated but the wrong kind of caller or
too weak a role → 403; an org the caller is not a member of → 404 (no existence leak).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal

import msgspec
from fastapi import Request
from starlette.requests import HTTPConnection

from api.cookies import REFRESH_EVERY, SESSION_COOKIE, SESSION_TTL, request_cookie_refresh
from api.errors import ApiError, not_found
from api.state import AppState
from schemas.auth import ROLE_RANK, Role
from security import tokens
from store import api_keys as api_keys_store
from store import auth_sessions, orgs

CallerKind = Literal["user", "api_key", "service", "sandbox"]
ORG_HEADER = "x-org-id"
_CACHE_KEY = "warren_caller"


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    """The authenticated principal of a request."""

    kind: CallerKind
    user_id: uuid.UUID | None = None
    """The acting user (user and api_key callers)."""
    org_id: uuid.UUID | None = None
    """The org the request acts in; None for service/sandbox callers and org-less users."""
    role: Role | None = None
    """The user's role in ``org_id``."""
    session_id: str | None = None
    """Sandbox callers: the agent session whose sandbox is calling."""
    service: str | None = None
    """Service callers: the service name from the token."""
    auth_session_id: uuid.UUID | None = None
    """Cookie callers: their browser session (sign-out, org switching)."""
    api_key_id: uuid.UUID | None = None
    """API-key callers: the key used."""

    def has_role(self, min_role: Role) -> bool:
        """True if the caller's role in ``org_id`` is at least ``min_role``."""
        return self.role is not None and ROLE_RANK[self.role] >= ROLE_RANK[min_role]


def unauthorized(message: str = "authentication required") -> ApiError:
    """A 401 with a ``WWW-Authenticate`` hint."""
    return ApiError(401, message, headers={"WWW-Authenticate": "Bearer"})


def _state(conn: HTTPConnection) -> AppState:
    state: AppState = conn.app.state.warren
    return state


def _bearer(conn: HTTPConnection) -> str | None:
    scheme, _, value = conn.headers.get("authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def parse_uuid(value: str, what: str) -> uuid.UUID:
    """``value`` as a UUID, or a 404 for ``what``: a malformed id names nothing that exists."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise not_found(what) from None


def _org_header(conn: HTTPConnection) -> uuid.UUID | None:
    raw = conn.headers.get(ORG_HEADER)
    if raw is None:
        return None
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        raise ApiError(
            400, "X-Org-Id must be an org id", code="invalid", field="X-Org-Id"
        ) from None


async def _from_api_key(conn: HTTPConnection, key: str) -> Caller:
    async with _state(conn).pool.acquire() as db:
        owner = await api_keys_store.authenticate(db, tokens.hash_api_key(key))
    if owner is None:
        raise unauthorized("invalid API key")
    wanted = _org_header(conn)
    if wanted is not None and wanted != owner.org_id:
        raise not_found("org")
    return Caller(
        kind="api_key",
        user_id=owner.user_id,
        org_id=owner.org_id,
        role=owner.role,
        api_key_id=owner.key_id,
    )


async def _from_ws_token(conn: HTTPConnection, token: str) -> Caller:
    try:
        claims = tokens.verify_ws_token(_state(conn).settings.secret_key, token)
        user_id, org_id = uuid.UUID(claims.sub), uuid.UUID(claims.org)
    except (tokens.TokenError, ValueError):
        raise unauthorized("invalid or expired token") from None
    # Membership is re-checked: a token does not outlive the user's removal from the org.
    async with _state(conn).pool.acquire() as db:
        role = await orgs.get_role(db, org_id, user_id)
    if role is None:
        raise unauthorized("invalid or expired token")
    return Caller(kind="user", user_id=user_id, org_id=org_id, role=role)


async def _from_bearer(
    conn: HTTPConnection, token: str, *, allow_ws: bool, sandbox_session_id: str | None
) -> Caller:
    if tokens.looks_like_api_key(token):
        return await _from_api_key(conn, token)
    secret = _state(conn).settings.secret_key
    if token.count(".") == 2:
        try:
            claims = tokens.verify_service_token(secret, token)
            return Caller(kind="service", service=claims.sub)
        except tokens.TokenError:
            if not allow_ws:
                raise unauthorized("invalid or expired token") from None
        return await _from_ws_token(conn, token)
    if sandbox_session_id is not None and tokens.verify_sandbox_token(
        secret, sandbox_session_id, token
    ):
        return Caller(kind="sandbox", session_id=sandbox_session_id)
    raise unauthorized("invalid token")


async def _from_cookie(conn: HTTPConnection, token: str) -> Caller | None:
    state = _state(conn)
    async with state.pool.acquire() as db:
        session = await auth_sessions.get_session(db, tokens.hash_session_token(token))
        if session is None:
            return None
        # Checked here first to skip the UPDATE on most requests; it re-checks atomically.
        if datetime.now(UTC) - session.refreshed_at >= REFRESH_EVERY and (
            await auth_sessions.refresh_session(
                db, session.id, ttl=SESSION_TTL, every=REFRESH_EVERY
            )
        ):
            request_cookie_refresh(conn, token, secure=state.settings.cookie_secure)
        wanted = _org_header(conn)
        org_id = wanted or session.active_org_id
        role = None if org_id is None else await orgs.get_role(db, org_id, session.user_id)
        if role is None and wanted is not None:
            raise not_found("org")
        if role is None:
            # The active org went away (removed, or never set): fall back to the oldest one.
            org_id = await orgs.first_org_id(db, session.user_id)
            if org_id != session.active_org_id:
                await auth_sessions.set_active_org(db, session.id, org_id)
            role = None if org_id is None else await orgs.get_role(db, org_id, session.user_id)
    return Caller(
        kind="user",
        user_id=session.user_id,
        org_id=org_id,
        role=role,
        auth_session_id=session.id,
    )


async def resolve_caller(
    conn: HTTPConnection, *, allow_ws: bool = False, sandbox_session_id: str | None = None
) -> Caller | None:
    """The caller of ``conn`` or None if it carries no credentials; 401 if they are invalid.

    ``allow_ws`` accepts WebSocket tokens (also from ``?token=``); ``sandbox_session_id``
    accepts that session's sandbox token. Plain resolutions are cached on the request.
    """
    plain = not allow_ws and sandbox_session_id is None
    if plain and hasattr(conn.state, _CACHE_KEY):
        cached: Caller | None = getattr(conn.state, _CACHE_KEY)
        return cached
    token = _bearer(conn)
    if token is None and allow_ws:
        token = conn.query_params.get("token") or None
    caller: Caller | None
    if token is not None:
        caller = await _from_bearer(
            conn, token, allow_ws=allow_ws, sandbox_session_id=sandbox_session_id
        )
    else:
        cookie = conn.cookies.get(SESSION_COOKIE)
        caller = await _from_cookie(conn, cookie) if cookie else None
    if plain:
        setattr(conn.state, _CACHE_KEY, caller)
    return caller


# --- FastAPI dependencies ---------------------------------------------------------------------


async def require_caller(request: Request) -> Caller:
    """Any authenticated caller (API key, service token or browser session), else 401."""
    caller = await resolve_caller(request)
    if caller is None:
        raise unauthorized()
    return caller


async def require_user(request: Request) -> Caller:
    """A user: a browser session or an API key (which acts as its creator); 403 for services."""
    caller = await require_caller(request)
    if caller.kind not in ("user", "api_key"):
        raise ApiError(403, "this route needs a user's credentials")
    return caller


async def require_browser_user(request: Request) -> Caller:
    """A user signed in with the session cookie (not an API key): account-level actions."""
    caller = await require_user(request)
    if caller.auth_session_id is None:
        raise ApiError(403, "this route needs a signed-in browser session")
    return caller


async def require_service(request: Request) -> Caller:
    """A service token's bearer, else 401 (no credentials) or 403 (another kind of caller)."""
    caller = await require_caller(request)
    if caller.kind != "service":
        raise ApiError(403, "this route is for services only")
    return caller


def _check_role(caller: Caller, min_role: Role) -> Caller:
    if not caller.has_role(min_role):
        raise ApiError(403, f"this needs the {min_role} role or higher")
    return caller


def require_active_org(min_role: Role = "member") -> Callable[[Request], Awaitable[Caller]]:
    """Dependency: a user acting in their active org (or ``X-Org-Id``) with ``min_role``+."""

    async def dependency(request: Request) -> Caller:
        caller = await require_user(request)
        if caller.org_id is None:
            raise ApiError(403, "you are not a member of any org")
        return _check_role(caller, min_role)

    return dependency


def require_org_member(min_role: Role = "member") -> Callable[[Request, str], Awaitable[Caller]]:
    """Dependency for ``/orgs/{org_id}/...``: the caller, re-scoped to the path's org.

    A caller who is not a member of that org gets 404; a member below ``min_role`` 403.
    API keys only ever reach their own org.
    """

    async def dependency(request: Request, org_id: str) -> Caller:
        caller = await require_user(request)
        target = parse_uuid(org_id, "org")
        if caller.kind == "api_key":
            if target != caller.org_id:
                raise not_found("org")
            return _check_role(caller, min_role)
        assert caller.user_id is not None
        if target == caller.org_id:
            role = caller.role
        else:
            async with _state(request).pool.acquire() as db:
                role = await orgs.get_role(db, target, caller.user_id)
        if role is None:
            raise not_found("org")
        return _check_role(msgspec.structs.replace(caller, org_id=target, role=role), min_role)

    return dependency


async def require_sandbox(conn: HTTPConnection, session_id: str) -> Caller:
    """The sandbox of ``session_id`` (bearer sandbox token), else 401.

    Its ``org_id`` is not known here; routes look the session up (by id) for it.
    """
    token = _bearer(conn)
    if token is None or not tokens.verify_sandbox_token(
        _state(conn).settings.secret_key, session_id, token
    ):
        raise unauthorized("invalid sandbox token")
    return Caller(kind="sandbox", session_id=session_id)


async def require_ws_user(conn: HTTPConnection) -> Caller:
    """For the session WebSocket: a user via ws token (``?token=`` or bearer), key or cookie."""
    caller = await resolve_caller(conn, allow_ws=True)
    if caller is None:
        raise unauthorized()
    if caller.kind not in ("user", "api_key") or caller.org_id is None:
        raise ApiError(403, "this needs a user acting in an org")
    return caller
