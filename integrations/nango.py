"""Nango webhooks: the envelope Nango POSTs (:class:`schemas.automations.NangoForward`).

Verify the envelope first with :func:`integrations.signatures.verify_nango` (the HMAC
covers the envelope's raw body). A ``forward`` envelope carries an external provider's
webhook in ``payload``; forwarded deliveries carry no provider headers, so GitHub infers
the event from the payload unless Nango forwarded ``X-GitHub-Event``. ``auth`` and
``sync`` envelopes, and unattributed webhooks (the raw provider body, no wrapper), are
not triggers.
"""

from __future__ import annotations

from integrations._payload import decode_payload
from schemas.automations import NangoForward


def envelope(body: bytes) -> NangoForward:
    """Decode any JSON object Nango sends, or raise :class:`integrations.errors.PayloadError`."""
    return decode_payload("nango", body, NangoForward)


def forwarded(hook: NangoForward) -> bytes | None:
    """The forwarded provider body of a ``forward`` envelope with a connection, else None."""
    body = bytes(hook.payload)
    if hook.type != "forward" or not hook.connectionId or body == b"null":
        return None
    return body
