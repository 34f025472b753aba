"""Triggers of the caller's active org: CRUD and their recorded events.

Webhook triggers get a URL path ``/webhooks/<provider>/t_<12 hex>`` and a 32-byte hex
secret on create; the secret is returned only in that 201 answer and stored sealed.
Polling triggers (``scheduled`` cron firings, Linear and Gmail polls) need a 5- or
6-field ``polling_cron`` in ``timezone``; Linear and Gmail also a write-only
``poll_access_token``. What each provider allows comes from its declaration in
:mod:`integrations.registry`. ``config`` must decode as the provider's filters. A Nango
``connection_id`` belongs to one org: binding one that another org's trigger uses is 409.
Other orgs' triggers answer 404.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
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
from api.state import AppState
from core import cron
from integrations.provider import decode_filters
from integrations.registry import (
    POLL_TOKEN_PURPOSE,
    ProviderSpec,
    default_registry,
)
from schemas.automations import (
    CreatedTrigger,
    CreateTrigger,
    Trigger,
    TriggerEventList,
    TriggerList,
    UpdateTrigger,
)
from security.sealing import seal
from store import triggers as store

router = APIRouter(prefix="/api/triggers", tags=["triggers"])


def _check_config(provider: str, config: dict[str, Any]) -> None:
    try:
        decode_filters(default_registry().get(provider).filters_type, config)
    except msgspec.ValidationError as exc:
        raise ApiError(400, f"config: {exc}", code="invalid", field="config") from None


def _next_fire(expression: str, timezone: str) -> datetime:
    try:
        return cron.next_slot(expression, timezone, datetime.now(UTC))
    except cron.CronError as exc:
        raise ApiError(400, str(exc), code="invalid", field="polling_cron") from None


def _create_columns(state: AppState, req: CreateTrigger) -> tuple[dict[str, Any], str | None]:
    """Column values for a new trigger, and its webhook secret (shown once) if any."""
    fields: dict[str, Any] = {
        "automation_id": req.automation_id,
        "name": req.name,
        "trigger_type": req.trigger_type,
        "provider": req.provider,
        "enabled": req.enabled,
        "config": req.config,
        "timezone": req.timezone,
        "connection_id": req.connection_id,
        "integration_id": req.integration_id,
    }
    _check_config(req.provider, req.config)
    spec = default_registry().spec(req.provider)
    secret: str | None = None
    if req.trigger_type == "webhook":
        if spec.route is None or spec.secret_purpose is None:
            raise ApiError(
                400,
                f"{req.provider} triggers cannot receive webhooks",
                code="invalid",
                field="provider",
            )
        secret = secrets.token_hex(32)
        fields["webhook_url_path"] = "t_" + secrets.token_hex(6)
        fields["webhook_route"] = spec.route
        fields["webhook_secret_sealed"] = seal(
            state.settings.secret_key, spec.secret_purpose, secret
        )
        return fields, secret
    return _polling_columns(state, spec, req, fields)


def _polling_columns(
    state: AppState, spec: ProviderSpec, req: CreateTrigger, fields: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    if not spec.polling:
        raise ApiError(
            400, f"{req.provider} triggers cannot be polled", code="invalid", field="provider"
        )
    if req.polling_cron is None:
        raise ApiError(
            400, "polling triggers need polling_cron", code="invalid", field="polling_cron"
        )
    if spec.poll_token and req.poll_access_token is None:
        raise ApiError(
            400,
            f"{req.provider} polling needs poll_access_token",
            code="invalid",
            field="poll_access_token",
        )
    fields["polling_cron"] = req.polling_cron
    fields["next_fire_at"] = _next_fire(req.polling_cron, req.timezone)
    if req.poll_access_token is not None:
        fields["poll_token_sealed"] = seal(
            state.settings.secret_key, POLL_TOKEN_PURPOSE, req.poll_access_token
        )
    return fields, None


async def _bind_connection(
    conn: asyncpg.Connection, org_id: uuid.UUID, connection_id: str | None
) -> None:
    try:
        await store.bind_connection(conn, org_id, connection_id)
    except store.ConnectionTakenError:
        raise ApiError(
            409,
            "connection_id is bound to another organization",
            code="conflict",
            field="connection_id",
        ) from None


@router.get("")
@returns(TriggerList, errors=(404,))
async def list_triggers(
    request: Request, caller: OrgMember, automation_id: Annotated[str | None, Query()] = None
) -> Response:
    """The org's triggers (optionally one automation's), newest first."""
    automation = None if automation_id is None else parse_uuid(automation_id, "automation")
    async with app_state(request).pool.acquire() as conn:
        items = await store.list_triggers(conn, active_org(caller), automation)
    return json_response(TriggerList(triggers=items))


@router.post("", openapi_extra=json_body(CreateTrigger))
@returns(CreatedTrigger, 201)
async def create_trigger(request: Request, caller: OrgMember) -> Response:
    """Create a trigger: 201 with the webhook secret, the only time it is shown."""
    req = await body(request, CreateTrigger)
    state = app_state(request)
    fields, secret = _create_columns(state, req)
    async with state.pool.acquire() as conn, conn.transaction():
        if req.automation_id is not None:
            await require_automation_in_org(conn, active_org(caller), req.automation_id)
        await _bind_connection(conn, active_org(caller), req.connection_id)
        created = await store.create_trigger(conn, active_org(caller), caller.user_id, fields)
    return json_response(CreatedTrigger(trigger=created, webhook_secret=secret), status=201)


@router.get("/{trigger_id}")
@returns(Trigger)
async def get_trigger(request: Request, caller: OrgMember, trigger_id: str) -> Response:
    """One trigger of the org (never its secret)."""
    target = parse_uuid(trigger_id, "trigger")
    async with app_state(request).pool.acquire() as conn:
        found = await store.get_trigger(conn, active_org(caller), target)
    return json_or_404(found, "trigger")


@router.patch("/{trigger_id}", openapi_extra=json_body(UpdateTrigger))
@returns(Trigger)
async def update_trigger(request: Request, caller: OrgMember, trigger_id: str) -> Response:
    """Change name, enabled, filters, cron, time zone, poll token or connection."""
    req = await body(request, UpdateTrigger)
    state = app_state(request)
    target = parse_uuid(trigger_id, "trigger")
    fields = {f: v for f, v in msgspec.structs.asdict(req).items() if v is not msgspec.UNSET}
    async with state.pool.acquire() as conn, conn.transaction():
        current = await store.get_trigger(conn, active_org(caller), target)
        if current is None:
            raise not_found("trigger")
        if fields.get("connection_id") is not None:
            await _bind_connection(conn, active_org(caller), fields["connection_id"])
        if "config" in fields:
            _check_config(current.provider, fields["config"])
        if "poll_access_token" in fields:
            token = fields.pop("poll_access_token")
            fields["poll_token_sealed"] = (
                None
                if token is None
                else seal(state.settings.secret_key, POLL_TOKEN_PURPOSE, token)
            )
        cron_now = fields.get("polling_cron", current.polling_cron)
        if cron_now is not None and ({"polling_cron", "timezone", "enabled"} & set(fields)):
            fields["next_fire_at"] = _next_fire(cron_now, fields.get("timezone", current.timezone))
            # A new schedule starts clean: the scheduler reports its own errors again.
            fields.update(last_error=None, consecutive_errors=0)
        if "polling_cron" in fields and current.trigger_type != "polling":
            raise ApiError(
                400, "only polling triggers have a cron", code="invalid", field="polling_cron"
            )
        updated = await store.update_trigger(conn, active_org(caller), target, fields)
    return json_or_404(updated, "trigger")


@router.delete("/{trigger_id}")
@returns(None, 204)
async def delete_trigger(request: Request, caller: OrgMember, trigger_id: str) -> Response:
    """Delete a trigger with its events (and their runs): 204."""
    target = parse_uuid(trigger_id, "trigger")
    async with app_state(request).pool.acquire() as conn:
        if not await store.delete_trigger(conn, active_org(caller), target):
            raise not_found("trigger")
    return Response(status_code=204)


@router.get("/{trigger_id}/events")
@returns(TriggerEventList)
async def list_trigger_events(
    request: Request,
    caller: OrgMember,
    trigger_id: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    """The trigger's recorded events (skipped and failed ones included), newest first."""
    target = parse_uuid(trigger_id, "trigger")
    async with app_state(request).pool.acquire() as conn:
        if await store.get_trigger(conn, active_org(caller), target) is None:
            raise not_found("trigger")
        events = await store.list_events(conn, active_org(caller), target, limit=limit)
    return json_response(TriggerEventList(events=events))
