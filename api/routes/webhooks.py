"""Webhook ingestion: verify, parse, durably enqueue on JetStream, then answer.

Routes (no user auth: the signature is the credential):

- ``POST /webhooks/{github|linear|sentry|posthog|custom}/{trigger_path}``: each trigger
  has its own URL path (``t_<12 hex>``) and 32-byte secret, generated on create. The path
  finds the trigger, the trigger's secret verifies the delivery (constant time, raw body).
- ``POST /webhooks/nango``: Nango's forward envelope, verified with
  ``settings.nango_secret_key``; it fires every enabled trigger of the connection.

Answers: 202 once the event is stored in JetStream (publish acked, ``Nats-Msg-Id`` =
SHA-256 of trigger and body, so a retried delivery is stored once); 200 ``ignored`` for
deliveries that carry no event (``ping``, unsupported kinds); 400 malformed; 401 bad or
missing signature (nothing stored); 404 unknown path; 413 over
``settings.max_webhook_bytes``; 503 when JetStream does not ack, so the provider retries.
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
from integrations.errors import PayloadError
from integrations.provider import decode_filters
from integrations.registry import default_registry
from integrations.signatures import SignatureError, verify_custom, verify_nango, verify_posthog
from schemas.automations import NangoForward, TriggerEnvelope, WebhookAccepted
from schemas.triggers import PostHogFilters, TriggerContext
from security.sealing import unseal
from store import triggers as store

router = APIRouter(tags=["webhooks"])
log = logging.getLogger(__name__)

WEBHOOK_SECRET_PURPOSE = "webhook-secret"
PUBLISH_TIMEOUT_SECONDS = 5.0
# Route segment → provider types served there.
_ROUTES: dict[str, tuple[str, ...]] = {
    "github": ("github",),
    "linear": ("linear",),
    "sentry": ("sentry",),
    "posthog": ("posthog",),
    "custom": ("custom", "webhook"),
}
# Nango integration keys name the provider (e.g. "github", "linear-prod").
_NANGO_PROVIDERS = ("github", "linear", "sentry")


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.warren
    return state


def _verify(
    provider: str, headers: dict[str, str], body: bytes, secret: str, config: dict[str, object]
) -> None:
    registry = default_registry()
    if provider in ("custom", "webhook"):
        verify_custom(headers, body, secret)
    elif provider == "posthog":
        filters = decode_filters(PostHogFilters, config)
        if filters.require_signature_verification:
            verify_posthog(headers, body, secret)
    else:
        registry.verifier(provider)(headers, body, secret)


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


def _answer(count: int) -> Response:
    if count == 0:
        return json_response(WebhookAccepted(status="ignored", events=0))
    return json_response(WebhookAccepted(status="accepted", events=count), status=202)


@router.post("/webhooks/nango")
async def nango_webhook(request: Request) -> Response:
    """Nango forward: verify, then enqueue for every trigger of the connection."""
    state = _state(request)
    body = await read_body(request, state.settings.max_webhook_bytes)
    secret = state.settings.nango_secret_key
    if not secret:
        raise not_found("nango webhook endpoint")
    headers = dict(request.headers)
    try:
        verify_nango(headers, body, secret)
    except SignatureError as exc:
        raise ApiError(401, "webhook signature rejected", code=exc.reason) from None
    try:
        forward = msgspec.json.decode(body, type=NangoForward)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise ApiError(400, "malformed nango envelope", code="malformed") from None
    key = (forward.providerConfigKey or "").lower()
    provider = next((p for p in _NANGO_PROVIDERS if p in key), None)
    if forward.type != "forward" or provider is None or bytes(forward.payload) == b"null":
        return _answer(0)
    if not forward.connectionId:
        raise ApiError(400, "nango forward without connectionId", code="malformed")
    payload = bytes(forward.payload)
    contexts = _parse(provider, payload, {})
    if not contexts:
        return _answer(0)
    envelope = TriggerEnvelope(
        provider=provider,  # type: ignore[arg-type]
        connection_id=forward.connectionId,
        received_at=time.time(),
        contexts=tuple(contexts),
        raw_payload=forward.payload,
    )
    await _enqueue(state, envelope, payload, f"nango:{forward.connectionId}")
    return _answer(len(contexts))


@router.post("/webhooks/{route}/{trigger_path}")
async def trigger_webhook(request: Request, route: str, trigger_path: str) -> Response:
    """A delivery to one trigger's URL."""
    providers = _ROUTES.get(route)
    if providers is None:
        raise not_found("webhook endpoint")
    state = _state(request)
    body = await read_body(request, state.settings.max_webhook_bytes)
    async with state.pool.acquire() as conn:
        target = await store.webhook_target(conn, trigger_path)
    if target is None or target.provider not in providers:
        raise not_found("webhook endpoint")
    secret = ""
    if target.secret_sealed:
        secret = unseal(state.settings.secret_key, WEBHOOK_SECRET_PURPOSE, target.secret_sealed)
    headers = dict(request.headers)
    try:
        _verify(target.provider, headers, body, secret, target.config)
    except SignatureError as exc:
        raise ApiError(401, "webhook signature rejected", code=exc.reason) from None
    contexts = _parse(target.provider, body, headers)
    if not contexts:
        return _answer(0)
    custom = target.provider in ("custom", "webhook")
    envelope = TriggerEnvelope(
        provider=target.provider,  # type: ignore[arg-type]
        trigger_id=str(target.id),
        received_at=time.time(),
        contexts=tuple(contexts),
        # Custom bodies may not be JSON; their context already holds the decoded payload.
        raw_payload=msgspec.Raw(b"null") if custom else msgspec.Raw(body),
    )
    await _enqueue(state, envelope, body, str(target.id))
    return _answer(len(contexts))
