"""Webhook signature checks, one function per provider, constant-time, over the raw body.

Every check takes the request headers (any mapping; names are matched case-insensitively),
the raw body bytes exactly as received and the shared secret. It returns a
:class:`VerifiedSignature` or raises :class:`SignatureError` whose ``reason`` says why:
``missing_signature`` (no header), ``bad_signature`` (wrong secret or tampered body),
``missing_timestamp``/``stale_timestamp`` (Linear replay protection) or
``secret_not_configured``. Formats, per each provider's documentation:

- GitHub ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(body)>``.
- Linear ``Linear-Signature: <hex HMAC-SHA256(body)>``; the body's ``webhookTimestamp``
  (Unix ms) must be within 60 s of now.
- Sentry ``Sentry-Hook-Signature: <hex HMAC-SHA256(body)>`` keyed by the client secret.
- PostHog ``X-PostHog-Signature: <hex HMAC>``, else ``X-PostHog-Token`` or
  ``Authorization: Bearer`` equal to the secret.
- Nango ``X-Nango-Hmac-Sha256: <hex HMAC-SHA256(body)>``.
- Custom webhooks: the first of ``X-Webhook-Signature``, ``X-Signature``,
  ``X-Hub-Signature-256``, ``X-Signature-256``, as hex or ``sha256=<hex>``; only when the
  trigger has a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Literal

import msgspec

SignatureProvider = Literal["github", "linear", "sentry", "posthog", "nango", "custom"]
FailureReason = Literal[
    "missing_signature",
    "bad_signature",
    "missing_timestamp",
    "stale_timestamp",
    "secret_not_configured",
]

LINEAR_TOLERANCE_SECONDS = 60.0
CUSTOM_SIGNATURE_HEADERS = (
    "X-Webhook-Signature",
    "X-Signature",
    "X-Hub-Signature-256",
    "X-Signature-256",
)


class SignatureError(Exception):
    """A webhook failed verification; ``reason`` is machine-readable, never the secret."""

    def __init__(
        self, provider: SignatureProvider, reason: FailureReason, header: str | None = None
    ) -> None:
        where = f" ({header})" if header else ""
        super().__init__(f"{provider} webhook rejected: {reason}{where}")
        self.provider: SignatureProvider = provider
        self.reason: FailureReason = reason
        self.header = header


class VerifiedSignature(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery passed: which header proved it and how (``none`` = no secret required)."""

    provider: SignatureProvider
    header: str | None
    method: Literal["hmac", "token", "none"]


def hmac_sha256_hex(secret: str, body: bytes) -> str:
    """Lower-case hex HMAC-SHA256 of ``body`` keyed by the UTF-8 bytes of ``secret``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` (case-insensitive), or None if absent or blank."""
    wanted = name.lower()
    # ASGI servers hand headers over lower-cased: look that up before scanning them all.
    value = headers.get(wanted)
    if value is None:
        value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if key.lower() == wanted:
                value = candidate
                break
    if value is None or not value.strip():
        return None
    return value.strip()


def _equal(provided: str, expected: str) -> bool:
    # Bytes, so a non-ASCII header cannot raise; compare_digest is constant-time.
    return hmac.compare_digest(provided.encode(), expected.encode())


def _require_secret(provider: SignatureProvider, secret: str) -> None:
    if not secret:
        raise SignatureError(provider, "secret_not_configured")


def _check_hex(
    provider: SignatureProvider,
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    header: str,
    *,
    prefix: str = "",
) -> VerifiedSignature:
    _require_secret(provider, secret)
    provided = header_value(headers, header)
    if provided is None:
        raise SignatureError(provider, "missing_signature", header)
    expected = prefix + hmac_sha256_hex(secret, body)
    if not _equal(provided.lower(), expected):
        raise SignatureError(provider, "bad_signature", header)
    return VerifiedSignature(provider=provider, header=header, method="hmac")


def verify_github(headers: Mapping[str, str], body: bytes, secret: str) -> VerifiedSignature:
    """GitHub (or GitHub App): ``X-Hub-Signature-256: sha256=<hex>``."""
    return _check_hex("github", headers, body, secret, "X-Hub-Signature-256", prefix="sha256=")


class _LinearStamp(msgspec.Struct):
    webhookTimestamp: float | None = None


def verify_linear(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    now: float | None = None,
    tolerance: float = LINEAR_TOLERANCE_SECONDS,
) -> VerifiedSignature:
    """Linear: ``Linear-Signature`` hex, then ``webhookTimestamp`` (ms) within ``tolerance`` s.

    The signature is checked first so an unsigned request learns nothing about timing.
    """
    verified = _check_hex("linear", headers, body, secret, "Linear-Signature")
    try:
        stamp = msgspec.json.decode(body, type=_LinearStamp).webhookTimestamp
    except msgspec.DecodeError:
        stamp = None
    if stamp is None:
        raise SignatureError("linear", "missing_timestamp")
    current = time.time() if now is None else now
    if abs(current - stamp / 1000.0) > tolerance:
        raise SignatureError("linear", "stale_timestamp")
    return verified


def verify_sentry(headers: Mapping[str, str], body: bytes, secret: str) -> VerifiedSignature:
    """Sentry integration platform: ``Sentry-Hook-Signature`` hex, keyed by the client secret."""
    return _check_hex("sentry", headers, body, secret, "Sentry-Hook-Signature")


def verify_nango(headers: Mapping[str, str], body: bytes, secret: str) -> VerifiedSignature:
    """Nango: ``X-Nango-Hmac-Sha256`` hex, keyed by the environment's secret key."""
    return _check_hex("nango", headers, body, secret, "X-Nango-Hmac-Sha256")


def verify_posthog(headers: Mapping[str, str], body: bytes, secret: str) -> VerifiedSignature:
    """PostHog: an ``X-PostHog-Signature`` HMAC if sent, else a token equal to the secret.

    The token comes from ``X-PostHog-Token`` or ``Authorization: Bearer <token>`` (PostHog
    webhook destinations send whatever headers the user configured). Whether PostHog
    deliveries must be verified at all is the trigger's ``require_signature_verification``.
    """
    if header_value(headers, "X-PostHog-Signature") is not None:
        return _check_hex("posthog", headers, body, secret, "X-PostHog-Signature")
    _require_secret("posthog", secret)
    token = header_value(headers, "X-PostHog-Token")
    used = "X-PostHog-Token"
    if token is None:
        auth = header_value(headers, "Authorization")
        scheme, _, value = (auth or "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            token, used = value.strip(), "Authorization"
    if token is None:
        raise SignatureError("posthog", "missing_signature", "X-PostHog-Signature")
    if not _equal(token, secret):
        raise SignatureError("posthog", "bad_signature", used)
    return VerifiedSignature(provider="posthog", header=used, method="token")


def verify_custom(headers: Mapping[str, str], body: bytes, secret: str | None) -> VerifiedSignature:
    """Custom webhook: with a secret, the first signature header present must match.

    Without a secret (``None`` or empty) every delivery is accepted, as the trigger asked.
    """
    if not secret:
        return VerifiedSignature(provider="custom", header=None, method="none")
    for name in CUSTOM_SIGNATURE_HEADERS:
        provided = header_value(headers, name)
        if provided is None:
            continue
        digest = provided.lower().removeprefix("sha256=")
        if not _equal(digest, hmac_sha256_hex(secret, body)):
            raise SignatureError("custom", "bad_signature", name)
        return VerifiedSignature(provider="custom", header=name, method="hmac")
    raise SignatureError("custom", "missing_signature", CUSTOM_SIGNATURE_HEADERS[0])
