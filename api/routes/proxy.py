"""The port-forwarding proxy, ``/proxy/{session_id}/{token}/{target}/{path}``, and preview links.

The token sits in the path so headerless clients (iframes, terminals, EventSource) can use
it. Two kinds are accepted:

- a WebSocket token (``POST /api/auth/ws-token``) of a user who is still a member of the
  token's org: every target of every session of that org, any method;
- a preview token (:func:`security.tokens.mint_preview_token`): the one session and the one
  ``port-<N>`` target it names, GET and HEAD only (405 otherwise), plus the WebSocket
  upgrade a dev server's hot reload needs; any other session or target is 403.

Bad or expired token → 401; a session outside the token's org → 404; unknown target
→ 404; a session without a running sandbox → 409; a port the sandbox did not expose → 403.
Targets are described in :mod:`api.proxy_targets`, forwarding in :mod:`api.proxy_http`
(HTTP, streamed) and :mod:`api.proxy_ws` (WebSocket). Every open exchange counts as session
activity (:mod:`api.proxy_activity`).

``GET /api/sessions/{id}/preview`` returns the exposed port's URL through the proxy, with a
freshly minted preview token in it (never the caller's WebSocket token).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.websockets import WebSocket

from api.deps import Caller, parse_uuid, require_active_org, unauthorized
from api.errors import ApiError, error_response, not_found
from api.proxy_activity import proxy_activity
from api.proxy_http import forward, location_rewriter, raw_rest, redact_path
from api.proxy_targets import check_port, exposed_port, parse_target, resolve
from api.proxy_ws import UpstreamRefused, bridge, open_upstream
from api.responses import json_response
from api.state import AppState
from schemas.sessions import SessionRecord
from schemas.shares import PreviewClaims, PreviewLink
from security import tokens
from store import orgs
from store import sessions as session_store

router = APIRouter(tags=["proxy"])

PREFIX = "/proxy/{session_id}/{token}/{target}"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
PREVIEW_METHODS = ("GET", "HEAD")
"""What a preview token may do over HTTP (it is read-only)."""
_SEGMENTS = 4  # "proxy", session id, token, target
OrgMember = Annotated[Caller, Depends(require_active_org("member"))]


def _state(conn: HTTPConnection) -> AppState:
    state: AppState = conn.app.state.warren
    return state


def proxy_prefix(session_id: uuid.UUID | str, token: str, target: str) -> str:
    """The public path prefix of one proxy target (no trailing slash)."""
    return f"/proxy/{session_id}/{token}/{target}"


async def authorize(
    conn: HTTPConnection, session_id: str, token: str, target: str, method: str | None
) -> tuple[SessionRecord, bool]:
    """The session ``token`` opens at ``target``, and whether the token is a preview token.

    ``method`` is the HTTP method, None for a WebSocket upgrade. A preview token is tried
    first (its claims cannot be read as a WebSocket token's, nor the other way round).
    """
    secret = _state(conn).settings.secret_key
    try:
        preview = tokens.verify_preview_token(secret, token)
    except tokens.TokenError:
        return await _member_session(conn, session_id, token), False
    return await _preview_session(conn, preview, session_id, target, method), True


async def _member_session(conn: HTTPConnection, session_id: str, token: str) -> SessionRecord:
    state = _state(conn)
    try:
        claims = tokens.verify_ws_token(state.settings.secret_key, token)
        user_id, org_id = uuid.UUID(claims.sub), uuid.UUID(claims.org)
    except (tokens.TokenError, ValueError):
        raise unauthorized("invalid or expired token") from None
    async with state.pool.acquire() as db:
        # Membership is re-checked: a token does not outlive the user's removal.
        if await orgs.get_role(db, org_id, user_id) is None:
            raise unauthorized("invalid or expired token")
        record = await session_store.get_session(
            db, parse_uuid(session_id, "session"), org_id=org_id
        )
    if record is None:
        raise not_found("session")
    return record


async def _preview_session(
    conn: HTTPConnection, claims: PreviewClaims, session_id: str, target: str, method: str | None
) -> SessionRecord:
    wanted = parse_uuid(session_id, "session")
    try:
        granted, org_id = uuid.UUID(claims.sub), uuid.UUID(claims.org)
    except ValueError:
        raise unauthorized("invalid or expired token") from None
    if granted != wanted or claims.target != target:
        raise ApiError(403, "this preview link opens only its own session's preview port")
    if method is not None and method not in PREVIEW_METHODS:
        raise ApiError(
            405,
            f"a preview link is read-only: {', '.join(PREVIEW_METHODS)} only",
            headers={"Allow": ", ".join(PREVIEW_METHODS)},
        )
    record = await session_store.get_session(_state(conn).pool, granted, org_id=org_id)
    if record is None:
        raise not_found("session")
    return record


def _redact(conn: HTTPConnection, session_id: str, target: str) -> None:
    redact_path(conn.scope, f"/proxy/{session_id}/<token>/{target}/…")


@router.api_route(PREFIX, methods=METHODS, include_in_schema=False)
@router.api_route(PREFIX + "/{path:path}", methods=METHODS, include_in_schema=False)
async def proxy_http(
    request: Request, session_id: str, token: str, target: str, path: str = ""
) -> Response:
    """Forward one HTTP exchange to the session's sandbox (see the module docstring)."""
    rest = raw_rest(request.scope, _SEGMENTS, path)
    _redact(request, session_id, target)
    record, preview = await authorize(request, session_id, token, target, request.method)
    parsed = parse_target(target)
    if parsed.kind == "terminal":
        raise ApiError(400, "the terminal is a WebSocket: connect with ws:// or wss://")
    settings = _state(request).settings
    upstream = await resolve(request, settings.secret_key, settings.data_dir, record, parsed, rest)
    release = proxy_activity().opened(str(record.id), parsed.kind)
    return await forward(
        request,
        upstream.url,
        extra_headers=upstream.headers,
        location=location_rewriter(upstream.base, proxy_prefix(record.id, token, target)),
        on_close=release,
        allow_body=not preview,
    )


async def deny(websocket: WebSocket, error: ApiError) -> None:
    """Refuse a WebSocket before its handshake completes: with the HTTP error itself when
    the server supports denial responses, else a close (the server answers 403)."""
    if "websocket.http.response" in (websocket.scope.get("extensions") or {}):
        response = error_response(error.status, error.code, error.message, error.field)
        await websocket.send_denial_response(response)
        return
    await websocket.close(4000 + error.status)


@router.websocket(PREFIX)
@router.websocket(PREFIX + "/{path:path}")
async def proxy_socket(
    websocket: WebSocket, session_id: str, token: str, target: str, path: str = ""
) -> None:
    """Bridge a WebSocket to the session's sandbox (the terminal, or an exposed port)."""
    rest = raw_rest(websocket.scope, _SEGMENTS, path)
    _redact(websocket, session_id, target)
    settings = _state(websocket).settings
    try:
        record, _ = await authorize(websocket, session_id, token, target, None)
        parsed = parse_target(target)
        upstream = await resolve(
            websocket, settings.secret_key, settings.data_dir, record, parsed, rest
        )
        try:
            upstream_ws = await open_upstream(websocket, upstream.url, upstream.headers)
        except UpstreamRefused:
            raise ApiError(502, "the sandbox refused the WebSocket") from None
    except ApiError as exc:
        await deny(websocket, exc)
        return
    release = proxy_activity().opened(str(record.id), parsed.kind)
    try:
        await bridge(websocket, upstream_ws)
    finally:
        release()


@router.get("/api/sessions/{session_id}/preview")
async def preview(request: Request, session_id: str, caller: OrgMember) -> Response:
    """The URL of the sandbox's exposed port through the proxy, with a fresh preview token
    that opens that port of this session (read-only) and nothing else."""
    assert caller.user_id is not None and caller.org_id is not None
    state = _state(request)
    settings = state.settings
    record = await session_store.get_session(
        state.pool, parse_uuid(session_id, "session"), org_id=caller.org_id
    )
    if record is None:
        raise not_found("session")
    port = await exposed_port(request, settings.secret_key, record)
    if port is None:
        raise ApiError(
            409, "the sandbox has not exposed a preview port yet", code="no_exposed_port"
        )
    await check_port(request, settings.secret_key, settings.data_dir, record, port)
    target = f"port-{port}"
    token, exp = tokens.mint_preview_token(
        settings.secret_key,
        str(record.id),
        str(record.org_id),
        target,
        settings.ws_token_ttl_seconds,
    )
    url = settings.api_url + proxy_prefix(record.id, token, target) + "/"
    return json_response(
        PreviewLink(url=url, port=port, expires_at=datetime.fromtimestamp(exp, UTC))
    )
