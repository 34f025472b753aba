"""Nango envelopes: verify, unwrap, and parse the forwarded provider webhook."""

from __future__ import annotations

import pytest

from integrations.errors import PayloadError
from integrations.nango import envelope, forwarded
from integrations.registry import get_provider
from integrations.signatures import SignatureError, verify_nango
from tests.fakes.signing import sign_nango
from tests.integrations.helpers import payload

SECRET = "nango-env-secret-key"


def test_forwarded_github_webhook_round_trip() -> None:
    sent = {
        "from": "github",
        "type": "forward",
        "connectionId": "conn-acme-gh",
        "providerConfigKey": "github",
        "payload": payload("github_check_run_completed"),
    }
    d = sign_nango(sent, SECRET)
    verify_nango(d.headers, d.body, SECRET)
    hook = envelope(d.body)
    body = forwarded(hook)
    assert body is not None
    assert (hook.connectionId, hook.providerConfigKey, hook.source) == (
        "conn-acme-gh",
        "github",
        "github",
    )
    # No X-GitHub-Event on forwarded deliveries: the kind is inferred from the payload.
    [ctx] = get_provider("github").parse_webhook(body, {})
    assert ctx.event_type == "check_run:completed"
    with pytest.raises(SignatureError):
        verify_nango(d.headers, d.body.replace(b"failure", b"success"), SECRET)


def test_other_envelopes_are_not_forwards() -> None:
    auth = b'{"type": "auth", "operation": "creation", "connectionId": "c", "success": true}'
    assert forwarded(envelope(auth)) is None
    assert forwarded(envelope(b'{"type": "forward", "payload": {}}')) is None
    assert forwarded(envelope(b'{"type": "forward", "connectionId": "c"}')) is None
    # Unattributed: Nango forwards the raw provider body, without the wrapper.
    assert forwarded(envelope(b'{"action": "opened", "issue": {"id": 1}}')) is None
    with pytest.raises(PayloadError):
        envelope(b'["not", "an", "object"]')
