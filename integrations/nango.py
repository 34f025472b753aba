"""Nango webhooks: the envelope Nango POSTs, and the provider payload it forwards.

Verify the envelope first with :func:`integrations.signatures.verify_nango` (the HMAC
covers the envelope's raw body). A ``forward`` envelope carries an external provider's
webhook in ``payload``; :func:`forwarded` re-encodes it so the provider's
``parse_webhook`` can read it (forwarded deliveries carry no provider headers, so GitHub
infers the event from the payload). ``auth`` and ``sync`` envelopes are not triggers.
"""

from __future__ import annotations

from typing import Any

import msgspec

from integrations._payload import decode_payload


class NangoWebhook(msgspec.Struct, frozen=True, kw_only=True):
    """Any Nango webhook envelope (``type``: ``forward``, ``auth``, ``sync``...)."""

    type: str
    connectionId: str | None = None
    providerConfigKey: str | None = None
    source: str | None = msgspec.field(default=None, name="from")
    payload: Any = None


class NangoForward(msgspec.Struct, frozen=True, kw_only=True):
    """A forwarded provider webhook: which connection it belongs to, and its body."""

    connection_id: str
    provider_config_key: str
    body: bytes
    """The provider's payload as JSON bytes, ready for ``parse_webhook``."""


def forwarded(body: bytes) -> NangoForward | None:
    """The forwarded webhook in a Nango envelope, or None for other envelope types."""
    hook = decode_payload("nango", body, NangoWebhook)
    if hook.type != "forward" or not hook.connectionId or not hook.providerConfigKey:
        return None
    return NangoForward(
        connection_id=hook.connectionId,
        provider_config_key=hook.providerConfigKey,
        body=msgspec.json.encode(hook.payload),
    )
