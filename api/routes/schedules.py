"""Cron schedules of the caller's active org: CRUD with the next firing time shown.

Five fields (minute resolution) or six with seconds first, evaluated in ``timezone``
(IANA, default UTC); ``next_run_at`` is recomputed whenever the cron, zone or enabled flag
changes. The scheduler actor fires them (see actors/scheduler.py). Other orgs get 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api.body import body
from api.deps import parse_uuid
from api.errors import ApiError, not_found
from api.openapi import json_body, returns
from api.responses import json_response
from api.routes._org_scoped import (
    OrgMember,
    active_org,
    app_state,
    json_or_404,
    require_automation_in_org,
)
from core import cron
from schemas.automations import CreateSchedule, Schedule, ScheduleList, UpdateSchedule
from store import schedules as store

router = APIRouter(prefix="/api/schedules", tags=["schedules"])


def _next_run(expression: str, timezone: str) -> datetime:
    try:
        return cron.next_slot(expression, timezone, datetime.now(UTC))
    except cron.CronError as exc:
        field = "timezone" if "time zone" in str(exc) else "cron_expression"
        raise ApiError(400, str(exc), code="invalid", field=field) from None


@router.get("")
@returns(ScheduleList, errors=(404,))
async def list_schedules(
    request: Request, caller: OrgMember, automation_id: Annotated[str | None, Query()] = None
) -> Response:
    """The org's schedules (optionally one automation's)."""
    automation = None if automation_id is None else parse_uuid(automation_id, "automation")
    async with app_state(request).pool.acquire() as conn:
        items = await store.list_schedules(conn, active_org(caller), automation)
    return json_response(ScheduleList(schedules=items))


@router.post("", openapi_extra=json_body(CreateSchedule))
@returns(Schedule, 201)
async def create_schedule(request: Request, caller: OrgMember) -> Response:
    """Create a schedule: 201 with its next run."""
    req = await body(request, CreateSchedule)
    fields: dict[str, Any] = {
        "name": req.name,
        "cron_expression": req.cron_expression,
        "timezone": req.timezone,
        "enabled": req.enabled,
        "next_run_at": _next_run(req.cron_expression, req.timezone),
    }
    async with app_state(request).pool.acquire() as conn:
        await require_automation_in_org(conn, active_org(caller), req.automation_id)
        created = await store.create_schedule(
            conn, active_org(caller), caller.user_id, req.automation_id, fields
        )
    return json_response(created, status=201)


@router.get("/{schedule_id}")
@returns(Schedule)
async def get_schedule(request: Request, caller: OrgMember, schedule_id: str) -> Response:
    """One schedule of the org."""
    target = parse_uuid(schedule_id, "schedule")
    async with app_state(request).pool.acquire() as conn:
        found = await store.get_schedule(conn, active_org(caller), target)
    return json_or_404(found, "schedule")


@router.patch("/{schedule_id}", openapi_extra=json_body(UpdateSchedule))
@returns(Schedule)
async def update_schedule(request: Request, caller: OrgMember, schedule_id: str) -> Response:
    """Change name, cron, time zone or enabled; the next run is recomputed."""
    req = await body(request, UpdateSchedule)
    target = parse_uuid(schedule_id, "schedule")
    fields = {f: v for f, v in msgspec.structs.asdict(req).items() if v is not msgspec.UNSET}
    async with app_state(request).pool.acquire() as conn:
        current = await store.get_schedule(conn, active_org(caller), target)
        if current is None:
            raise not_found("schedule")
        if {"cron_expression", "timezone", "enabled"} & set(fields):
            fields["next_run_at"] = _next_run(
                fields.get("cron_expression", current.cron_expression),
                fields.get("timezone", current.timezone),
            )
            # A new schedule starts clean: the scheduler reports its own errors again.
            fields.update(last_error=None, last_error_at=None)
        updated = await store.update_schedule(conn, active_org(caller), target, fields)
    return json_or_404(updated, "schedule")


@router.delete("/{schedule_id}")
@returns(None, 204)
async def delete_schedule(request: Request, caller: OrgMember, schedule_id: str) -> Response:
    """Delete a schedule: 204."""
    target = parse_uuid(schedule_id, "schedule")
    async with app_state(request).pool.acquire() as conn:
        if not await store.delete_schedule(conn, active_org(caller), target):
            raise not_found("schedule")
    return Response(status_code=204)
