"""Agent tool callbacks: ``POST /api/sessions/{id}/tools/{name}`` from the sandbox.

Only the session's own sandbox may call (its bearer sandbox token; anything else is 403).
Unknown tools are 404, arguments that don't fit the tool's schema 400 naming the field
(``args.commands[0].name``). The call runs in the session actor once per
``tool_call_id`` (see actors/session/tools.py); a call whose response is already recorded is
answered from Postgres without waking the actor. Actor failures answer 503 so the plugin
retries with the same id.
"""

from __future__ import annotations

import uuid

import msgspec
from fastapi import APIRouter, Request
from ray.exceptions import RayError
from starlette.responses import Response

from actors import session_client
from actors.session_client import SessionGone, SessionStopped, SessionUnavailable
from api.body import body, field_of
from api.errors import ApiError, not_found
from api.openapi import json_body, returns
from api.responses import json_response
from api.state import AppState
from schemas.tools import TOOL_ALIASES, TOOL_ARGS, ToolCallRequest, ToolCallResponse, ToolName
from security import tokens
from store import sessions as session_store
from store import tool_invocations as tool_invocations_store

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


def _sandbox_token_ok(request: Request, state: AppState, session_id: str) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return False
    return tokens.verify_sandbox_token(state.settings.secret_key, session_id, token)


def _tool_name(name: str) -> ToolName:
    resolved = TOOL_ALIASES.get(name, name)
    if resolved not in TOOL_ARGS:
        raise ApiError(404, f"unknown tool {name!r}")
    return resolved


@router.post("/{session_id}/tools/{tool}", openapi_extra=json_body(ToolCallRequest))
@returns(ToolCallResponse, errors=(403, 409, 503))
async def tool_callback(request: Request, session_id: str, tool: str) -> Response:
    """Run (or replay) one tool call for the sandbox."""
    state: AppState = request.app.state.warren
    if not _sandbox_token_ok(request, state, session_id):
        raise ApiError(403, "tool callbacks need this session's sandbox token")
    name = _tool_name(tool)
    call = await body(request, ToolCallRequest)
    try:
        msgspec.convert(call.args, TOOL_ARGS[name])
    except msgspec.ValidationError as exc:
        inner = field_of(exc)
        reason = str(exc).split(" - at `", 1)[0]
        field = f"args.{inner}" if inner else "args"
        raise ApiError(400, reason, code="invalid", field=field) from None
    try:
        sid = uuid.UUID(session_id)
    except ValueError:
        raise not_found("session") from None
    record = await session_store.get_session(state.pool, sid)
    if record is None:
        raise not_found("session")
    previous = await tool_invocations_store.recorded_tool_response(
        state.pool, sid, name, call.tool_call_id
    )
    if previous is not None:
        return json_response(msgspec.convert(previous, ToolCallResponse))
    if record.status == "stopped":
        raise ApiError(409, "the session is stopped", code="session_stopped")
    try:
        _, response = await session_client.call_live(
            session_id, state.settings, "tool_call", name, call.tool_call_id, call.args
        )
    except SessionStopped:
        raise ApiError(409, "the session is stopped", code="session_stopped") from None
    except SessionGone:
        raise not_found("session") from None
    except (RayError, SessionUnavailable):
        raise ApiError(503, "the session is unavailable, retry the call") from None
    return json_response(response)
