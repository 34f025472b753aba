"""Automations of the caller's active org: CRUD, enable/disable, trigger binding,
integration connections and Run now.

Any member of the org may manage its automations; another org's automations answer 404.
The Slack bot token is write-only: stored sealed (AES-256-GCM), shown as
``slack_configured``. Run now records a ``manual_trigger`` event on the automation's
hidden, disabled manual trigger and queues the run in the same transaction (202); an
``Idempotency-Key`` header makes a retried click return the same run.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from api.body import body
from api.deps import Caller, parse_uuid
from api.errors import ApiError, not_found
from api.openapi import json_body, returns
from api.responses import json_response
from api.routes._org_scoped import OrgMember, active_org, app_state, json_or_404
from api.state import AppState
from schemas.automations import (
    AddConnection,
    Automation,
    AutomationConnection,
    AutomationList,
    BindTrigger,
    ConnectionList,
    CreateAutomation,
    RunNowResponse,
    Trigger,
    TriggerList,
    UpdateAutomation,
)
from schemas.triggers import TriggerContext
from security.sealing import seal
from store import automations as store
from store import configurations as configurations_store
from store import triggers as triggers_store

router = APIRouter(prefix="/api/automations", tags=["automations"])
SLACK_TOKEN_PURPOSE = "slack-token"


async def _columns(
    state: AppState, org_id: uuid.UUID, req: CreateAutomation | UpdateAutomation
) -> dict[str, Any]:
    """The request's set fields as column values: token sealed, configuration checked."""
    fields = {f: v for f, v in msgspec.structs.asdict(req).items() if v is not msgspec.UNSET}
    if "enabled_tools" in fields:
        fields["enabled_tools"] = list(fields["enabled_tools"])
    if "notify_slack_token" in fields:
        token = fields.pop("notify_slack_token")
        fields["notify_slack_token_sealed"] = (
            None if token is None else seal(state.settings.secret_key, SLACK_TOKEN_PURPOSE, token)
        )
    config_id = fields.get("default_configuration_id")
    if config_id is not None:
        async with state.pool.acquire() as conn:
            if await configurations_store.get_configuration(conn, config_id, org_id) is None:
                raise ApiError(
                    400,
                    "configuration not found in this org",
                    code="invalid",
                    field="default_configuration_id",
                )
    return fields


@router.get("")
@returns(AutomationList)
async def list_automations(request: Request, caller: OrgMember) -> Response:
    """The org's automations, newest first."""
    async with app_state(request).pool.acquire() as conn:
        items = await store.list_automations(conn, active_org(caller))
    return json_response(AutomationList(automations=items))


@router.post("", openapi_extra=json_body(CreateAutomation))
@returns(Automation, 201)
async def create_automation(request: Request, caller: OrgMember) -> Response:
    """Create an automation: 201."""
    req = await body(request, CreateAutomation)
    state = app_state(request)
    fields = await _columns(state, active_org(caller), req)
    async with state.pool.acquire() as conn:
        created = await store.create_automation(conn, active_org(caller), caller.user_id, fields)
    return json_response(created, status=201)


async def _get(request: Request, caller: Caller, automation_id: str) -> Response:
    target = parse_uuid(automation_id, "automation")
    async with app_state(request).pool.acquire() as conn:
        found = await store.get_automation(conn, active_org(caller), target)
    return json_or_404(found, "automation")


@router.get("/{automation_id}")
@returns(Automation)
async def get_automation(request: Request, caller: OrgMember, automation_id: str) -> Response:
    """One automation of the org."""
    return await _get(request, caller, automation_id)


async def _update(
    request: Request, caller: Caller, automation_id: str, fields: dict[str, Any]
) -> Response:
    target = parse_uuid(automation_id, "automation")
    async with app_state(request).pool.acquire() as conn:
        updated = await store.update_automation(conn, active_org(caller), target, fields)
    return json_or_404(updated, "automation")


@router.patch("/{automation_id}", openapi_extra=json_body(UpdateAutomation))
@returns(Automation)
async def update_automation(request: Request, caller: OrgMember, automation_id: str) -> Response:
    """Change the fields sent."""
    req = await body(request, UpdateAutomation)
    fields = await _columns(app_state(request), active_org(caller), req)
    return await _update(request, caller, automation_id, fields)


@router.post("/{automation_id}/enable")
@returns(Automation)
async def enable_automation(request: Request, caller: OrgMember, automation_id: str) -> Response:
    """Enable: its triggers fire runs again."""
    return await _update(request, caller, automation_id, {"enabled": True})


@router.post("/{automation_id}/disable")
@returns(Automation)
async def disable_automation(request: Request, caller: OrgMember, automation_id: str) -> Response:
    """Disable: its events are recorded and skipped (``automation_disabled``)."""
    return await _update(request, caller, automation_id, {"enabled": False})


@router.delete("/{automation_id}")
@returns(None, 204)
async def delete_automation(request: Request, caller: OrgMember, automation_id: str) -> Response:
    """Delete with its runs and schedules; its triggers become unbound. 204."""
    target = parse_uuid(automation_id, "automation")
    async with app_state(request).pool.acquire() as conn:
        if not await store.delete_automation(conn, active_org(caller), target):
            raise not_found("automation")
    return Response(status_code=204)


async def _require(request: Request, caller: Caller, automation_id: str) -> uuid.UUID:
    target = parse_uuid(automation_id, "automation")
    async with app_state(request).pool.acquire() as conn:
        if await store.get_automation(conn, active_org(caller), target) is None:
            raise not_found("automation")
    return target


# --- triggers --------------------------------------------------------------------------------


@router.get("/{automation_id}/triggers")
@returns(TriggerList)
async def list_bound_triggers(request: Request, caller: OrgMember, automation_id: str) -> Response:
    """Triggers bound to the automation."""
    target = await _require(request, caller, automation_id)
    async with app_state(request).pool.acquire() as conn:
        items = await triggers_store.list_triggers(conn, active_org(caller), target)
    return json_response(TriggerList(triggers=items))


@router.post("/{automation_id}/triggers", openapi_extra=json_body(BindTrigger))
@returns(Trigger)
async def bind_trigger(request: Request, caller: OrgMember, automation_id: str) -> Response:
    """Bind one of the org's triggers to this automation (moving it if bound elsewhere)."""
    req = await body(request, BindTrigger)
    target = await _require(request, caller, automation_id)
    async with app_state(request).pool.acquire() as conn:
        bound = await triggers_store.update_trigger(
            conn, active_org(caller), req.trigger_id, {"automation_id": target}
        )
    return json_or_404(bound, "trigger")


@router.delete("/{automation_id}/triggers/{trigger_id}")
@returns(None, 204)
async def unbind_trigger(
    request: Request, caller: OrgMember, automation_id: str, trigger_id: str
) -> Response:
    """Unbind a trigger from this automation (the trigger stays, unbound). 204."""
    target = await _require(request, caller, automation_id)
    trigger = parse_uuid(trigger_id, "trigger")
    async with app_state(request).pool.acquire() as conn:
        found = await triggers_store.get_trigger(conn, active_org(caller), trigger)
        if found is None or found.automation_id != target:
            raise not_found("trigger")
        await triggers_store.update_trigger(
            conn, active_org(caller), trigger, {"automation_id": None}
        )
    return Response(status_code=204)


# --- connections -----------------------------------------------------------------------------


@router.get("/{automation_id}/connections")
@returns(ConnectionList)
async def list_connections(request: Request, caller: OrgMember, automation_id: str) -> Response:
    """Integrations the automation's sessions may use."""
    target = await _require(request, caller, automation_id)
    async with app_state(request).pool.acquire() as conn:
        items = await store.list_connections(conn, target)
    return json_response(ConnectionList(connections=items))


@router.post("/{automation_id}/connections", openapi_extra=json_body(AddConnection))
@returns(AutomationConnection, 201)
async def add_connection(request: Request, caller: OrgMember, automation_id: str) -> Response:
    """Connect an integration (idempotent): 201."""
    req = await body(request, AddConnection)
    target = await _require(request, caller, automation_id)
    async with app_state(request).pool.acquire() as conn:
        added = await store.add_connection(conn, target, req.integration_id)
    return json_response(added, status=201)


@router.delete("/{automation_id}/connections/{integration_id}")
@returns(None, 204)
async def remove_connection(
    request: Request, caller: OrgMember, automation_id: str, integration_id: str
) -> Response:
    """Disconnect an integration: 204."""
    target = await _require(request, caller, automation_id)
    integration = parse_uuid(integration_id, "connection")
    async with app_state(request).pool.acquire() as conn:
        if not await store.remove_connection(conn, target, integration):
            raise not_found("connection")
    return Response(status_code=204)


# --- run now ---------------------------------------------------------------------------------


@router.post("/{automation_id}/run")
@returns(RunNowResponse, 202, errors=(409,))
async def run_now(request: Request, caller: OrgMember, automation_id: str) -> Response:
    """Queue a manual run now: 202 with the run (200 with the same run for a repeated
    ``Idempotency-Key``)."""
    state = app_state(request)
    target = parse_uuid(automation_id, "automation")
    key = request.headers.get("idempotency-key", "").strip()[:200] or uuid.uuid4().hex
    org_id = active_org(caller)
    async with state.pool.acquire() as conn:
        automation = await store.get_automation(conn, org_id, target)
        if automation is None:
            raise not_found("automation")
        trigger_id = await triggers_store.manual_trigger(conn, org_id, target)
        event = await triggers_store.target_by_id(conn, trigger_id)
        assert event is not None
        ctx = TriggerContext(
            provider="webhook",
            event_type="manual_trigger",
            title=f"Manual run of {automation.name}",
            external_id=f"manual:{key}",
            dedup_key=f"manual:{key}",
            description=f"Started from Run now by user {caller.user_id}",
            actor=str(caller.user_id),
            raw={"type": "manual_trigger", "user_id": str(caller.user_id)},
        )
        # No skip check: a manual run ignores the enabled flags, the user asked for it.
        recorded = await triggers_store.record_event(
            conn, event, ctx, received_at=datetime.now(UTC), skip_reason=None
        )
        if recorded.duplicate:
            found = await triggers_store.event_run(conn, trigger_id, ctx.dedup_key)
            if found is None:
                raise ApiError(409, "that Idempotency-Key was used for a run that failed to queue")
            return json_response(RunNowResponse(run_id=found[1], trigger_event_id=found[0]))
    if recorded.run_id is None or recorded.event_id is None:
        raise ApiError(500, "run could not be queued")
    await state.nats.publish(state.subjects.outbox_wake, b"")
    return json_response(
        RunNowResponse(run_id=recorded.run_id, trigger_event_id=recorded.event_id), status=202
    )
