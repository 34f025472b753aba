"""Pause, resume, snapshot and verification media of a session.

- ``POST /api/sessions/{id}/pause``: snapshot and stop the sandbox; the session is
  ``paused`` (reason ``manual``) and its actor exits. Pausing a paused session answers
  its snapshot again.
- ``POST /api/sessions/{id}/resume``: boot the sandbox from the snapshot and wait until it
  runs (a WebSocket connect or a prompt resumes implicitly too).
- ``POST /api/sessions/{id}/snapshot``: save the sandbox's files; it keeps running.
- ``GET /api/sessions/{id}/verification-media``: the files the ``verify`` tool uploaded,
  with a presigned URL where the artifact store has one, else an API path
  (``/verification-media/file?key=``) that streams the file.

Every route is org-scoped like the rest of ``/api/sessions`` (another org's session: 404).
"""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from actors import session_client
from actors.session_client import NothingToPause
from api.deps import Caller, require_active_org
from api.errors import ApiError, not_found
from api.openapi import returns
from api.responses import json_response
from api.routes.sessions import actor_errors, load_session
from api.state import AppState
from artifacts.store import ArtifactError, ArtifactNotFound, ArtifactStore
from schemas.sessions import (
    PauseResponse,
    SessionView,
    SnapshotResponse,
    VerificationMedia,
    VerificationMediaList,
)
from store import sessions as session_store

router = APIRouter(prefix="/api/sessions", tags=["sessions"])

OrgMember = Annotated[Caller, Depends(require_active_org("member"))]
_stores: dict[int, ArtifactStore] = {}


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.warren
    return state


def _artifacts(state: AppState) -> ArtifactStore:
    # One store per replica, built on first use (the S3 client stack is heavy).
    store = _stores.get(id(state))
    if store is None:
        from artifacts.factory import artifact_store_from_settings

        store = _stores[id(state)] = artifact_store_from_settings(state.settings)
    return store


def _stopped() -> ApiError:
    return ApiError(409, "the session is stopped", code="session_stopped")


@router.post("/{session_id}/pause")
@returns(PauseResponse, errors=(409,))
async def pause(request: Request, session_id: str, caller: OrgMember) -> Response:
    """Snapshot and stop the sandbox; the session is paused (manual) and its actor exits."""
    record = await load_session(request, caller, session_id)
    state = _state(request)
    sid = str(record.id)
    if record.status == "stopped":
        raise _stopped()
    handle = await session_client.existing_session_actor(sid)
    if handle is None and record.sandbox_id is None:
        if record.status == "paused":
            return json_response(_paused(record.id, record.snapshot_id))
        raise ApiError(409, "the session has no sandbox to pause", code="not_running")
    try:
        with actor_errors():
            _, snapshot_id = await session_client.call_live(
                sid, state.settings, "pause", "manual", handle=handle
            )
    except NothingToPause:
        current = await session_store.get_session(state.pool, record.id)
        if current is not None and current.status == "paused":
            return json_response(_paused(record.id, current.snapshot_id))
        raise ApiError(409, "the session has no sandbox to pause", code="not_running") from None
    session_client.forget_actor(sid)
    return json_response(_paused(record.id, snapshot_id))


def _paused(session_id: uuid.UUID, snapshot_id: str | None) -> PauseResponse:
    return PauseResponse(session_id=session_id, status="paused", snapshot_id=snapshot_id)


@router.post("/{session_id}/resume")
@returns(SessionView, errors=(409,))
async def resume(request: Request, session_id: str, caller: OrgMember) -> Response:
    """Boot the session's sandbox (from its snapshot) and wait until it runs."""
    record = await load_session(request, caller, session_id)
    state = _state(request)
    if record.status == "stopped":
        raise _stopped()
    with actor_errors():
        await session_client.call_live(str(record.id), state.settings, "ensure_runtime_ready")
    current = await session_store.get_session(state.pool, record.id) or record
    return json_response(current.view())


@router.post("/{session_id}/snapshot")
@returns(SnapshotResponse, errors=(409,))
async def snapshot(request: Request, session_id: str, caller: OrgMember) -> Response:
    """Save the running sandbox's files (the sandbox keeps running); returns the id."""
    record = await load_session(request, caller, session_id)
    if record.status != "running" or record.sandbox_id is None:
        raise ApiError(409, "the session has no running sandbox", code="not_running")
    with actor_errors():
        reached, result = await session_client.call_existing(str(record.id), "save_snapshot")
    if not reached:
        raise ApiError(409, "the session has no running sandbox", code="not_running")
    if not result.success or result.data is None:
        raise ApiError(409, result.result, code="snapshot_failed")
    return json_response(
        SnapshotResponse(
            session_id=record.id,
            snapshot_id=str(result.data["snapshotId"]),
            target=result.data["target"],
        )
    )


def _media_prefix(session_id: uuid.UUID) -> str:
    return f"sessions/{session_id}/verification/"


@router.get("/{session_id}/verification-media")
@returns(VerificationMediaList)
async def verification_media(request: Request, session_id: str, caller: OrgMember) -> Response:
    """The files the agent's ``verify`` tool uploaded, with download URLs."""
    record = await load_session(request, caller, session_id)
    store = _artifacts(_state(request))
    prefix = _media_prefix(record.id)
    items: list[VerificationMedia] = []
    for key in await store.list(prefix):
        url = await store.presigned_url(key)
        if url is None:
            url = f"/api/sessions/{record.id}/verification-media/file?key={quote(key, safe='')}"
        items.append(VerificationMedia(key=key, name=key[len(prefix) :], url=url))
    return json_response(VerificationMediaList(items=items))


@router.get("/{session_id}/verification-media/file")
async def verification_file(request: Request, session_id: str, caller: OrgMember) -> Response:
    """One verification file (for stores without presigned URLs)."""
    record = await load_session(request, caller, session_id)
    key = request.query_params.get("key", "")
    if not key.startswith(_media_prefix(record.id)) or "/../" in key or key.endswith("/.."):
        raise not_found("verification file")
    try:
        obj = await _artifacts(_state(request)).get(key)
    except ArtifactNotFound:
        raise not_found("verification file") from None
    except ArtifactError:
        raise not_found("verification file") from None
    name = key.rsplit("/", 1)[-1]
    return Response(
        obj.data,
        media_type=obj.content_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "X-Content-Type-Options": "nosniff",
        },
    )
