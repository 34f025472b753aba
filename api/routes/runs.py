"""Automation runs of the caller's active org: list, read, history, and the attention inbox.

The inbox (``GET /api/runs/attention``) lists failed, needs_human and timed_out runs of
the last 7 days. A member claims a run to work on it; claiming a run someone else holds
is 409. The holder unclaims (admins and owners may unclaim anyone's claim). Resolving
(succeeded or failed, with a note) is open to the holder, or to anyone while unclaimed;
409 if someone else holds it or the run is not awaiting attention. Other orgs get 404.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api.body import body
from api.deps import Caller, parse_uuid
from api.errors import ApiError, not_found
from api.openapi import json_body, returns
from api.responses import json_response
from api.routes._org_scoped import OrgMember, active_org, app_state, json_or_404
from schemas.automations import ResolveRun, Run, RunEventList, RunList
from store import attention
from store import run_events as history
from store import runs as store

router = APIRouter(prefix="/api/runs", tags=["runs"])
ATTENTION_DAYS = 7


def _user(caller: Caller) -> uuid.UUID:
    assert caller.user_id is not None
    return caller.user_id


@router.get("")
@returns(RunList, errors=(404,))
async def list_runs(
    request: Request,
    caller: OrgMember,
    automation_id: Annotated[str | None, Query()] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    before: Annotated[datetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """The org's runs, newest first; filter by automation or status, page with ``before``."""
    automation = None if automation_id is None else parse_uuid(automation_id, "automation")
    async with app_state(request).pool.acquire() as conn:
        items = await store.list_runs(
            conn,
            active_org(caller),
            automation_id=automation,
            status=status,
            before=before,
            limit=limit,
        )
    return json_response(RunList(runs=items))


@router.get("/attention")
@returns(RunList)
async def attention_inbox(request: Request, caller: OrgMember) -> Response:
    """Failed, needs_human and timed_out runs of the last 7 days, newest first."""
    async with app_state(request).pool.acquire() as conn:
        items = await attention.list_attention(conn, active_org(caller), days=ATTENTION_DAYS)
    return json_response(RunList(runs=items))


async def _run(request: Request, caller: Caller, run_id: uuid.UUID) -> Response:
    async with app_state(request).pool.acquire() as conn:
        found = await store.get_run(conn, active_org(caller), run_id)
    return json_or_404(found, "run")


@router.get("/{run_id}")
@returns(Run)
async def get_run(request: Request, caller: OrgMember, run_id: str) -> Response:
    """One run of the org."""
    return await _run(request, caller, parse_uuid(run_id, "run"))


@router.get("/{run_id}/events")
@returns(RunEventList)
async def run_events(request: Request, caller: OrgMember, run_id: str) -> Response:
    """The run's history, oldest first."""
    target = parse_uuid(run_id, "run")
    async with app_state(request).pool.acquire() as conn:
        if await store.get_run(conn, active_org(caller), target) is None:
            raise not_found("run")
        events = await history.list_events(conn, target)
    return json_response(RunEventList(events=events))


def _conflict(exc: attention.AssignmentConflict) -> ApiError:
    return ApiError(409, str(exc), code="conflict")


@router.post("/{run_id}/claim")
@returns(Run, errors=(409,))
async def claim_run(request: Request, caller: OrgMember, run_id: str) -> Response:
    """Claim the run for yourself (idempotent); 409 if someone else holds it."""
    target = parse_uuid(run_id, "run")
    try:
        async with app_state(request).pool.acquire() as conn:
            found = await attention.assign(conn, active_org(caller), target, _user(caller))
    except attention.AssignmentConflict as exc:
        raise _conflict(exc) from None
    if not found:
        raise not_found("run")
    return await _run(request, caller, target)


@router.post("/{run_id}/unclaim")
@returns(Run, errors=(409,))
async def unclaim_run(request: Request, caller: OrgMember, run_id: str) -> Response:
    """Release your claim (admins may release anyone's); 409 if someone else holds it."""
    target = parse_uuid(run_id, "run")
    try:
        async with app_state(request).pool.acquire() as conn:
            found = await attention.unassign(
                conn, active_org(caller), target, _user(caller), force=caller.has_role("admin")
            )
    except attention.AssignmentConflict as exc:
        raise _conflict(exc) from None
    if not found:
        raise not_found("run")
    return await _run(request, caller, target)


@router.post("/{run_id}/resolve", openapi_extra=json_body(ResolveRun))
@returns(Run, errors=(409,))
async def resolve_run(request: Request, caller: OrgMember, run_id: str) -> Response:
    """Close an attention run as succeeded or failed with a note."""
    req = await body(request, ResolveRun)
    target = parse_uuid(run_id, "run")
    try:
        async with app_state(request).pool.acquire() as conn:
            found = await attention.resolve(
                conn, active_org(caller), target, _user(caller), outcome=req.outcome, note=req.note
            )
    except attention.AssignmentConflict as exc:
        raise _conflict(exc) from None
    if not found:
        raise not_found("run")
    return await _run(request, caller, target)
