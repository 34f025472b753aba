"""Public, read-only shares of a session.

- ``POST /api/sessions/{id}/share`` → {share_id, url}: the session's creator or an org
  admin shares it (201; 200 with the same share when it is shared already).
- ``DELETE /api/sessions/{id}/share``: revoke (204; 404 if it was not shared).
- ``GET /share/{share_id}``: the page (no auth): title, status, transcript from Postgres,
  and, while the sandbox runs with an exposed port, an iframe of the preview.
- ``GET|HEAD /share/{share_id}/preview/{path}``: the exposed port, read-only: no other
  method, no request body, no WebSocket, never the terminal, OpenCode or the agent.

An unknown or revoked share id, or a share of a deleted session, is 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import HTMLResponse, Response
from yarl import URL

from api.deps import Caller, parse_uuid, require_active_org
from api.errors import ApiError, not_found
from api.openapi import returns
from api.proxy_activity import proxy_activity
from api.proxy_http import forward, location_rewriter, raw_rest, redact_path
from api.proxy_targets import check_port, exposed_port, require_running
from api.responses import json_response
from api.share_page import PAGE_HEADERS, render_share_page
from api.state import AppState
from schemas.sessions import SessionRecord
from schemas.shares import ShareCreated, ShareRecord
from store import messages as message_store
from store import sessions as session_store
from store import shares as share_store

router = APIRouter(tags=["shares"])

OrgMember = Annotated[Caller, Depends(require_active_org("member"))]
ALL_EVENTS = 2**63 - 1
"""A stream position past every event: the page shows every message stored complete."""
_PREVIEW_SEGMENTS = 3  # "share", share id, "preview"


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.warren
    return state


def share_path(share_id: str) -> str:
    """The public page of a share (relative to the API)."""
    return f"/share/{share_id}"


async def _owned_session(request: Request, caller: Caller, session_id: str) -> SessionRecord:
    assert caller.org_id is not None
    record = await session_store.get_session(
        _state(request).pool, parse_uuid(session_id, "session"), org_id=caller.org_id
    )
    if record is None:
        raise not_found("session")
    if caller.user_id != record.created_by and not caller.has_role("admin"):
        raise ApiError(403, "only the session's creator or an org admin may share it")
    return record


@router.post("/api/sessions/{session_id}/share")
@returns(ShareCreated, 201)
@returns(ShareCreated)
async def create_share(request: Request, session_id: str, caller: OrgMember) -> Response:
    """Share the session publicly (read-only)."""
    record = await _owned_session(request, caller, session_id)
    state = _state(request)
    share, created = await share_store.create_share(
        state.pool, record.id, record.org_id, caller.user_id
    )
    body = ShareCreated(
        share_id=share.id,
        url=state.settings.api_url + share_path(share.id),
        created_at=share.created_at,
    )
    return json_response(body, 201 if created else 200)


@router.delete("/api/sessions/{session_id}/share")
@returns(None, 204)
async def revoke_share(request: Request, session_id: str, caller: OrgMember) -> Response:
    """Revoke the session's share: its link stops working at once."""
    record = await _owned_session(request, caller, session_id)
    if not await share_store.revoke_share(
        _state(request).pool, record.id, record.org_id, caller.user_id
    ):
        raise not_found("share")
    return Response(status_code=204)


async def _shared(request: Request, share_id: str) -> tuple[ShareRecord, SessionRecord]:
    pool = _state(request).pool
    share = await share_store.get_active_share(pool, share_id)
    if share is None:
        raise not_found("share")
    record = await session_store.get_session(pool, share.session_id, org_id=share.org_id)
    if record is None:
        raise not_found("share")
    return share, record


async def _preview_src(request: Request, share: ShareRecord, record: SessionRecord) -> str | None:
    if record.status != "running" or not record.sandbox_agent_url:
        return None
    settings = _state(request).settings
    try:
        port = await exposed_port(request, settings.secret_key, record)
        if port is None:
            return None
        await check_port(request, settings.secret_key, settings.data_dir, record, port)
    except ApiError:
        return None  # no usable preview right now; the page still shows the transcript
    return share_path(share.id) + "/preview/"


@router.get("/share/{share_id}", include_in_schema=False)
async def share_page(request: Request, share_id: str) -> Response:
    """The public page of a shared session."""
    share, record = await _shared(request, share_id)
    messages, _ = await message_store.load_transcript(_state(request).pool, record.id, ALL_EVENTS)
    html = render_share_page(record, messages, await _preview_src(request, share, record))
    return HTMLResponse(html, headers=PAGE_HEADERS)


@router.api_route("/share/{share_id}/preview", methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route(
    "/share/{share_id}/preview/{path:path}", methods=["GET", "HEAD"], include_in_schema=False
)
async def share_preview(request: Request, share_id: str, path: str = "") -> Response:
    """The shared session's exposed port, GET and HEAD only."""
    rest = raw_rest(request.scope, _PREVIEW_SEGMENTS, path)
    redact_path(request.scope, "/share/<share>/preview/…")
    share, record = await _shared(request, share_id)
    require_running(record)
    settings = _state(request).settings
    port = await exposed_port(request, settings.secret_key, record)
    if port is None:
        raise ApiError(409, "the sandbox has not exposed a preview port", code="no_exposed_port")
    base = str(await check_port(request, settings.secret_key, settings.data_dir, record, port))
    release = proxy_activity().opened(str(record.id), "share")
    return await forward(
        request,
        URL(base + "/" + rest.lstrip("/"), encoded=True),
        location=location_rewriter(base, share_path(share.id) + "/preview"),
        on_close=release,
        allow_body=False,
    )
