"""Sign webhook deliveries the way each provider does, for tests that send real requests.

Each ``sign_*`` returns a :class:`SignedDelivery` (body bytes + headers) ready to POST.
The HMACs are computed here independently of ``integrations.signatures``, from each
provider's documented format, so a test of the verifier checks it against the spec.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class SignedDelivery:
    """A webhook request body and the headers the provider would send with it."""

    body: bytes
    headers: dict[str, str]


def _body(payload: Any) -> bytes:
    if isinstance(payload, bytes):
        return payload
    return json.dumps(payload, separators=(",", ":")).encode()


def _hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def sign_github(
    payload: Any, secret: str, *, event: str, delivery: str | None = None
) -> SignedDelivery:
    """GitHub: ``X-Hub-Signature-256: sha256=<hex>`` plus event and delivery headers."""
    body = _body(payload)
    return SignedDelivery(
        body,
        {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/044aadd",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-GitHub-Hook-ID": "292430182",
            "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
            "X-Hub-Signature-256": "sha256=" + _hex(secret, body),
        },
    )


def linear_payload(payload: dict[str, Any], *, now: float | None = None) -> dict[str, Any]:
    """``payload`` with ``webhookTimestamp`` (Unix ms) set to ``now`` as Linear sends it."""
    stamp = int((time.time() if now is None else now) * 1000)
    return {**payload, "webhookTimestamp": stamp}


def sign_linear(payload: Any, secret: str) -> SignedDelivery:
    """Linear: ``Linear-Signature: <hex>`` over the body (set the timestamp first)."""
    body = _body(payload)
    model = payload.get("type", "Issue") if isinstance(payload, dict) else "Issue"
    return SignedDelivery(
        body,
        {
            "Content-Type": "application/json; charset=utf-8",
            "Linear-Delivery": str(uuid.uuid4()),
            "Linear-Event": model,
            "Linear-Signature": _hex(secret, body),
            "User-Agent": "Linear-Webhook",
        },
    )


def sign_sentry(payload: Any, secret: str, *, resource: str = "issue") -> SignedDelivery:
    """Sentry integration platform: ``Sentry-Hook-Signature: <hex>`` keyed by client secret."""
    body = _body(payload)
    return SignedDelivery(
        body,
        {
            "Content-Type": "application/json",
            "Request-ID": str(uuid.uuid4()),
            "Sentry-Hook-Resource": resource,
            "Sentry-Hook-Timestamp": str(int(time.time())),
            "Sentry-Hook-Signature": _hex(secret, body),
        },
    )


def sign_posthog(
    payload: Any, secret: str, *, mode: Literal["signature", "token", "bearer"] = "signature"
) -> SignedDelivery:
    """PostHog: an ``X-PostHog-Signature`` HMAC, or the secret as a token header."""
    body = _body(payload)
    headers = {"Content-Type": "application/json"}
    if mode == "signature":
        headers["X-PostHog-Signature"] = _hex(secret, body)
    elif mode == "token":
        headers["X-PostHog-Token"] = secret
    else:
        headers["Authorization"] = f"Bearer {secret}"
    return SignedDelivery(body, headers)


def sign_nango(payload: Any, secret: str) -> SignedDelivery:
    """Nango: ``X-Nango-Hmac-Sha256: <hex>`` keyed by the environment secret."""
    body = _body(payload)
    return SignedDelivery(
        body, {"Content-Type": "application/json", "X-Nango-Hmac-Sha256": _hex(secret, body)}
    )


def sign_custom(
    payload: Any,
    secret: str,
    *,
    header: str = "X-Webhook-Signature",
    prefixed: bool = False,
) -> SignedDelivery:
    """A custom webhook sender: hex (or ``sha256=<hex>``) HMAC in one of the accepted headers."""
    body = _body(payload)
    digest = _hex(secret, body)
    return SignedDelivery(
        body,
        {"Content-Type": "application/json", header: f"sha256={digest}" if prefixed else digest},
    )
