"""Sessions over HTTP: create, list, read, rename, delete, and prompt/cancel/status/heartbeat.

Every route is scoped by the caller's org: another org's session is 404, exactly like one
that does not exist. Service tokens (internal callers such as Slack) may prompt, cancel,
read the status of and eager-start any session. Live work is asked of the session actor by
name, always through :func:`actors.session_client.call_live` (get-or-create) or
:func:`~actors.session_client.call_existing` (only a live actor), which drop a handle whose
actor exited; this replica holds no session state. What an actor raises on purpose maps to
HTTP in :func:`actor_errors`.

``Idempotency-Key`` (create, message): the first response is stored in Postgres and replayed
for the same key; a duplicate while the first is still running gets 409, and the same key
with a different body 422.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Request
from ray.exceptions import RayError
from starlette.responses import Response

from actors import session_client
from actors.session_client import SessionGone, SessionStopped, SessionUnavailable
from api.body import convert, decode, read_body
from api.deps import Caller, parse_uuid, require_active_org, require_caller, require_service
from api.errors import ApiError, not_found
from api.openapi import json_body, returns
from api.repo_urls import check_repos
from api.responses import json_response
from api.state import AppState
from schemas.sessions import (
    Accepted,
    CreateSessionRequest,
    CreateSessionResponse,
    NewSession,
    RenameSessionRequest,
    SendMessageRequest,
    SendMessageResponse,
    SessionList,
    SessionListQuery,
    SessionRecord,
    SessionStatusResponse,
    SessionView,
    client_status,
)
from store import configurations as configurations_store
from store import idempotency as idempotency_store
from store import sessions as session_store

router = APIRouter(prefix="/api/sessions", tags=["sessions"])

OrgMember = Annotated[Caller, Depends(require_active_org("member"))]
AnyCaller = Annotated[Caller, Depends(require_caller)]
Service = Annotated[Caller, Depends(require_service)]
IDEMPOTENCY_HEADER = "idempotency-key"
MAX_IDEMPOTENCY_KEY = 200


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.warren
    return state


def ws_path(session_id: uuid.UUID) -> str:
    """The session's WebSocket path (relative to the API)."""
    return f"/api/sessions/{session_id}/ws"


async def load_session(request: Request, caller: Caller, session_id: str) -> SessionRecord:
    """The session if the caller may see it, else 404 (services see every org's)."""
    sid = parse_uuid(session_id, "session")
    if caller.kind == "service":
        record = await session_store.get_session(_state(request).pool, sid)
    elif caller.kind in ("user", "api_key") and caller.org_id is not None:
        record = await session_store.get_session(_state(request).pool, sid, org_id=caller.org_id)
    else:
        raise ApiError(403, "this route needs a user's or a service's credentials")
    if record is None:
        raise not_found("session")
    return record


@contextlib.contextmanager
def actor_errors() -> Iterator[None]:
    """Map what a session actor raises on purpose to HTTP (stopped 409, deleted 410,
    changing state 503 with Retry-After)."""
    try:
        yield
    except SessionStopped:
        raise ApiError(409, "the session is stopped", code="session_stopped") from None
    except SessionGone:
        raise ApiError(410, "the session was deleted", code="session_gone") from None
    except SessionUnavailable:
        raise ApiError(
            503,
            "the session is changing state, retry shortly",
            code="session_unavailable",
            headers={"Retry-After": "1"},
        ) from None


async def _idempotent(
    request: Request,
    org_id: uuid.UUID,
    scope: str,
    raw: bytes,
    run: Callable[[], Awaitable[tuple[int, Any]]],
) -> Response:
    """Run ``run`` once per Idempotency-Key (see the module docstring)."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        status, content = await run()
        return json_response(content, status)
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise ApiError(400, "Idempotency-Key must be 1-200 characters", field="Idempotency-Key")
    pool = _state(request).pool
    digest = hashlib.sha256(raw).hexdigest()
    hit = await idempotency_store.claim_idempotency_key(pool, org_id, scope, key, digest)
    if hit is not None:
        if hit.request_hash != digest:
            raise ApiError(
                422,
                "Idempotency-Key was used with a different request",
                code="idempotency_mismatch",
            )
        if hit.in_flight:
            raise ApiError(
                409,
                "a request with this Idempotency-Key is in progress",
                code="idempotency_in_flight",
            )
        return json_response(hit.response, hit.status_code or 200)
    try:
        status, content = await run()
    except BaseException:
        await idempotency_store.release_idempotency_key(pool, org_id, scope, key)
        raise
    await idempotency_store.complete_idempotency_key(
        pool, org_id, scope, key, status, msgspec.to_builtins(content)
    )
    return json_response(content, status)


@router.post("", openapi_extra=json_body(CreateSessionRequest))
@returns(CreateSessionResponse, 201)
async def create_session(request: Request, caller: OrgMember) -> Response:
    """Create a session (201). ``sandbox_mode: immediate`` starts booting it now."""
    assert caller.org_id is not None
    state = _state(request)
    raw = await read_body(request, state.settings.max_body_bytes)
    req = decode(raw, CreateSessionRequest)
    org_id = caller.org_id
    repos = check_repos(req.repos, allow_local=state.settings.sandbox_provider == "local")

    async def run() -> tuple[int, Any]:
        if req.configuration_id is not None:
            found = await configurations_store.get_configuration(
                state.pool, req.configuration_id, org_id
            )
            if found is None:
                raise ApiError(400, "no such configuration", field="configuration_id")
        agent_config = {"model_id": req.agent_config.model_id} if req.agent_config.model_id else {}
        new = NewSession(
            org_id=org_id,
            created_by=caller.user_id,
            configuration_id=req.configuration_id,
            session_type=req.session_type,
            client_type=req.client_type,
            client_metadata=req.client_metadata,
            sandbox_mode=req.sandbox_mode,
            sandbox_provider=state.settings.sandbox_provider,
            initial_prompt=req.initial_prompt,
            title=req.title or "",
            agent_config=agent_config,
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
            repos=repos,
        )
        record, is_new = await session_client.create_session(
            state.pool, state.js, state.subjects, state.settings, new
        )
        return 201, CreateSessionResponse(
            session_id=record.id,
            configuration_id=record.configuration_id,
            status=client_status(record.status),
            gateway_url=ws_path(record.id),
            has_snapshot=record.snapshot_id is not None,
            is_new=is_new,
            session=record.view(),
        )

    return await _idempotent(request, org_id, "sessions.create", raw, run)


@router.get("")
@returns(SessionList)
async def list_sessions(request: Request, caller: OrgMember) -> Response:
    """The org's sessions, newest first (filters: status, client_type, created_by)."""
    assert caller.org_id is not None
    query = convert(dict(request.query_params), SessionListQuery)
    try:
        records, cursor = await session_store.list_sessions(
            _state(request).pool,
            caller.org_id,
            status=query.status,
            client_type=query.client_type,
            created_by=query.created_by,
            limit=query.limit,
            cursor=query.cursor,
        )
    except ValueError:
        raise ApiError(400, "malformed cursor", field="cursor") from None
    return json_response(SessionList(sessions=[r.view() for r in records], next_cursor=cursor))


@router.get("/{session_id}")
@returns(SessionView)
async def get_session(request: Request, session_id: str, caller: OrgMember) -> Response:
    """One session."""
    return json_response((await load_session(request, caller, session_id)).view())


@router.patch("/{session_id}", openapi_extra=json_body(RenameSessionRequest))
@returns(SessionView)
async def rename_session(request: Request, session_id: str, caller: OrgMember) -> Response:
    """Rename; connected clients get ``title_update``."""
    record = await load_session(request, caller, session_id)
    state = _state(request)
    req = decode(await read_body(request, state.settings.max_body_bytes), RenameSessionRequest)
    renamed = await session_store.rename_session(
        state.pool, record.id, req.title, org_id=record.org_id
    )
    if renamed is None:
        raise not_found("session")
    try:
        await session_client.call_existing(str(record.id), "rename", req.title)
    except (RayError, SessionUnavailable):
        pass  # the title is stored; live clients see it on their next init
    return json_response(renamed.view())


@router.delete("/{session_id}")
@returns(None, 204)
async def delete_session(request: Request, session_id: str, caller: OrgMember) -> Response:
    """Terminate the sandbox (if any), stop the actor and delete the session (204)."""
    record = await load_session(request, caller, session_id)
    state = _state(request)
    sid = str(record.id)
    live = record.sandbox_id is not None or record.status in ("starting", "running")
    with actor_errors():
        reached, _ = await session_client.call_existing(sid, "terminate", "manual")
        if not reached and live:
            await session_client.call_live(sid, state.settings, "terminate", "manual")
    await session_client.kill_session_actor(sid)
    if not await session_store.soft_delete(state.pool, record.id, record.org_id):
        raise not_found("session")
    return Response(status_code=204)


@router.post("/{session_id}/message", openapi_extra=json_body(SendMessageRequest))
@returns(SendMessageResponse, 202, errors=(409,))
async def send_message(request: Request, session_id: str, caller: AnyCaller) -> Response:
    """Prompt the agent (202 once OpenCode accepted it; boots the sandbox if needed)."""
    record = await load_session(request, caller, session_id)
    state = _state(request)
    raw = await read_body(request, state.settings.max_body_bytes)
    req = decode(raw, SendMessageRequest)
    if record.status == "stopped":
        raise ApiError(409, "the session is stopped", code="session_stopped")
    key = request.headers.get(IDEMPOTENCY_HEADER)
    sid = str(record.id)
    message_id = (
        session_client.message_id_for_key(sid, key) if key else session_client.new_message_id()
    )
    default_source = "api" if caller.kind in ("api_key", "service") else "web"
    source = req.source if caller.kind == "service" and req.source else default_source

    async def run() -> tuple[int, Any]:
        with actor_errors():
            # call_live: a paused session's actor is gone (or exiting); the next one resumes.
            await session_client.call_live(
                sid,
                state.settings,
                "prompt",
                message_id,
                req.content,
                req.images,
                str(caller.user_id) if caller.user_id else None,
                source,
            )
        return 202, SendMessageResponse(message_id=message_id, session_id=record.id)

    return await _idempotent(request, record.org_id, f"sessions.message:{sid}", raw, run)


@router.get("/{session_id}/status")
@returns(SessionStatusResponse)
async def session_status(request: Request, session_id: str, caller: AnyCaller) -> Response:
    """``{state running|terminated, status, terminated_at, reason}``."""
    record = await load_session(request, caller, session_id)
    terminated = record.status in ("stopped", "failed")
    return json_response(
        SessionStatusResponse(
            state="terminated" if terminated else "running",
            status=client_status(record.status),
            terminated_at=record.ended_at,
            reason=record.stop_reason or record.pause_reason,
        )
    )


@router.post("/{session_id}/cancel")
@returns(Accepted)
async def cancel(request: Request, session_id: str, caller: AnyCaller) -> Response:
    """Abort the agent's current work (``accepted`` false when nothing ran)."""
    record = await load_session(request, caller, session_id)
    with actor_errors():
        _, cancelled = await session_client.call_existing(str(record.id), "cancel")
    return json_response(Accepted(accepted=bool(cancelled)))


@router.post("/{session_id}/heartbeat")
@returns(Accepted)
async def heartbeat(request: Request, session_id: str, caller: AnyCaller) -> Response:
    """Record activity: the live actor's idle grace starts over (no actor: nothing to keep)."""
    record = await load_session(request, caller, session_id)
    await session_store.touch_activity(_state(request).pool, record.id)
    with actor_errors():
        await session_client.call_existing(str(record.id), "heartbeat")
    return json_response(Accepted())


@router.post("/{session_id}/eager-start")
@returns(Accepted, 202)
async def eager_start(request: Request, session_id: str, caller: Service) -> Response:
    """Boot the sandbox now, in the background; the initial prompt follows (202)."""
    record = await load_session(request, caller, session_id)
    if record.status == "stopped":
        raise ApiError(409, "the session is stopped", code="session_stopped")
    with actor_errors():
        await session_client.call_live(str(record.id), _state(request).settings, "eager_start")
    return json_response(Accepted(), 202)
