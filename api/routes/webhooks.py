"""Webhook ingestion: verify, parse, durably enqueue on JetStream, then answer.

Routes (no user auth: the signature is the credential):

- ``POST /webhooks/{route}/{trigger_path}``: each trigger has its own URL path
  (``t_<12 hex>``) and 32-byte secret, generated on create; the route segment and the
  signature scheme come from the provider registry (:mod:`integrations.registry`). The
  path finds the trigger, the trigger's secret verifies the delivery (constant time, raw
  body).
- ``POST /webhooks/nango``: Nango's envelope, verified with ``settings.nango_secret_key``;
  a ``forward`` fires every enabled trigger of the connection in the org that owns it.

Answers: 202 once the event is stored in JetStream (publish acked, ``Nats-Msg-Id`` =
SHA-256 of trigger and body, so a retried delivery is stored once); 200 ``ignored`` for
deliveries that carry no event (``ping``, unsupported kinds, Nango envelopes Warren does
not route, which must not be refused: Nango retries 4xx); 400 malformed; 401 bad or
missing signature (nothing stored); 404 unknown path; 413 over
``settings.max_webhook_bytes``; 503 when JetStream does not ack, so the provider retries.
Every answer counts in ``warren_webhooks_total``.
"""

from __future__ import annotations

import hashlib
import logging
import time

import msgspec
from fastapi import APIRouter, Request
from starlette.responses import Response

from api.body import read_body
from api.errors import ApiError, not_found
from api.responses import json_response
from api.state import AppState
from core.metrics import WEBHOOKS
from integrations import nango
from integrations.errors import PayloadError
from integrations.registry import WEBHOOK_SECRET_PURPOSE, default_registry
from integrations.signatures import SignatureError, verify_nango
from schemas.automations import NangoForward, TriggerEnvelope, WebhookAccepted
from schemas.triggers import ProviderType, TriggerContext
from security.sealing import unseal
from store import triggers as store

router = APIRouter(tags=["webhooks"])
log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 5.0


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.warren
    return state


def _parse(provider: str, body: bytes, headers: dict[str, str]) -> list[TriggerContext]:
    try:
        return default_registry().parse_webhook(provider, body, headers)
    except (PayloadError, msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        raise ApiError(400, f"malformed {provider} webhook body", code="malformed") from None


async def _enqueue(state: AppState, envelope: TriggerEnvelope, body: bytes, key: str) -> None:
    """Publish and wait for JetStream's ack; 503 if it does not come."""
    msg_id = hashlib.sha256(key.encode() + b"\0" + body).hexdigest()
    try:
        await state.js.publish(
            state.subjects.trigger_events(envelope.provider),
            msgspec.json.encode(envelope),
            timeout=PUBLISH_TIMEOUT_SECONDS,
            headers={"Nats-Msg-Id": msg_id},
        )
    except Exception as exc:  # any failure to store means "not accepted"
        log.warning("webhook not enqueued: %s", type(exc).__name__)
        raise ApiError(
            503, "event store unavailable, retry later", headers={"Retry-After": "5"}
        ) from None


def _ignored(provider: str, reason: str) -> Response:
    WEBHOOKS.labels(provider, "ignored", reason).inc()
    return json_response(WebhookAccepted(status="ignored", events=0))


def _accepted(provider: str, count: int) -> Response:
    WEBHOOKS.labels(provider, "accepted", "event").inc()
    return json_response(WebhookAccepted(status="accepted", events=count), status=202)


def _rejected(provider: str, error: ApiError) -> ApiError:
    WEBHOOKS.labels(provider, "rejected", error.code).inc()
    return error


@router.post("/webhooks/nango")
async def nango_webhook(request: Request) -> Response:
    """Nango envelope: verify; enqueue a forward for the connection's triggers; acknowledge
    every other well-formed envelope as ``ignored``."""
    try:
        return await _nango(request)
    except ApiError as exc:
        raise _rejected("nango", exc) from None


async def _nango(request: Request) -> Response:
    state = _state(request)
    body = await read_body(request, state.settings.max_webhook_bytes)
    secret = state.settings.nango_secret_key
    if not secret:
        raise not_found("nango webhook endpoint")
    try:
        verify_nango(dict(request.headers), body, secret)
    except SignatureError as exc:
        raise ApiError(401, "webhook signature rejected", code=exc.reason) from None
    try:
        hook = nango.envelope(body)
    except PayloadError:
        raise ApiError(400, "malformed nango envelope", code="malformed") from None
    payload = nango.forwarded(hook)
    spec = default_registry().nango_provider(hook.providerConfigKey or hook.source)
    if payload is None or spec is None or hook.connectionId is None:
        reason = "not_forward" if payload is None else "unknown_provider"
        return _nango_ignored(hook, reason)
    async with state.pool.acquire() as conn:
        routed = await store.targets_by_connection(conn, hook.connectionId, (spec.name,))
    if not routed:
        return _nango_ignored(hook, "no_trigger")
    try:
        # Nango passes the provider's safe headers on (event kind, delivery id).
        contexts = _parse(spec.name, payload, dict(request.headers))
    except ApiError:
        return _nango_ignored(hook, "bad_payload")
    if not contexts:
        return _ignored(spec.name, "no_event")
    envelope = TriggerEnvelope(
        provider=spec.name,
        connection_id=hook.connectionId,
        received_at=time.time(),
        contexts=tuple(contexts),
        raw_payload=hook.payload,
    )
    await _enqueue(state, envelope, payload, f"nango:{hook.connectionId}")
    return _accepted(spec.name, len(contexts))


def _nango_ignored(hook: NangoForward, reason: str) -> Response:
    """Acknowledge a well-formed envelope Warren does not route (Nango retries 4xx)."""
    log.info(
        "nango webhook ignored: %s (type %r, integration %r, connection %r)",
        reason,
        hook.type,
        hook.providerConfigKey,
        hook.connectionId,
    )
    return _ignored("nango", reason)


@router.post("/webhooks/{route}/{trigger_path}")
async def trigger_webhook(request: Request, route: str, trigger_path: str) -> Response:
    """A delivery to one trigger's URL."""
    try:
        return await _delivery(request, route, trigger_path)
    except ApiError as exc:
        known = route if route in default_registry().routes() else "unknown"
        raise _rejected(known, exc) from None


async def _delivery(request: Request, route: str, trigger_path: str) -> Response:
    registry = default_registry()
    if route not in registry.routes():
        raise not_found("webhook endpoint")
    state = _state(request)
    body = await read_body(request, state.settings.max_webhook_bytes)
    async with state.pool.acquire() as conn:
        target = await store.webhook_target(conn, route, trigger_path)
    if target is None:
        raise not_found("webhook endpoint")
    spec = registry.spec(target.provider)
    secret = ""
    if target.secret_sealed:
        secret = unseal(state.settings.secret_key, WEBHOOK_SECRET_PURPOSE, target.secret_sealed)
    headers = dict(request.headers)
    try:
        if spec.verify is not None:
            spec.verify(headers, body, secret, target.config)
    except SignatureError as exc:
        raise ApiError(401, "webhook signature rejected", code=exc.reason) from None
    contexts = _parse(target.provider, body, headers)
    if not contexts:
        return _ignored(route, "no_event")
    provider: ProviderType = spec.name
    envelope = TriggerEnvelope(
        provider=provider,
        trigger_id=str(target.id),
        received_at=time.time(),
        contexts=tuple(contexts),
        raw_payload=msgspec.Raw(body) if spec.json_body else msgspec.Raw(b"null"),
    )
    await _enqueue(state, envelope, body, str(target.id))
    return _accepted(route, len(contexts))
