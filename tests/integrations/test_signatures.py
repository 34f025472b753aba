"""Webhook signature checks for every provider, against deliveries signed per the docs."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

import aiohttp
import pytest
from aiohttp import web

from integrations.signatures import (
    CUSTOM_SIGNATURE_HEADERS,
    SignatureError,
    VerifiedSignature,
    verify_custom,
    verify_github,
    verify_linear,
    verify_nango,
    verify_posthog,
    verify_sentry,
)
from tests.fakes.base import FakeServer
from tests.fakes.signing import (
    SignedDelivery,
    linear_payload,
    sign_custom,
    sign_github,
    sign_linear,
    sign_nango,
    sign_posthog,
    sign_sentry,
)
from tests.integrations.helpers import payload

SECRET = "5f2b8c1d9e0a4b7c3d6e8f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c"
NOW = 1_770_715_812.0
PostHogMode = Literal["signature", "token", "bearer"]


def _without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() != name.lower()}


def _reason(exc: pytest.ExceptionInfo[SignatureError]) -> str:
    assert SECRET not in str(exc.value)
    return exc.value.reason


# --- GitHub -----------------------------------------------------------------------------


def test_github_accepts_documented_signature() -> None:
    d = sign_github(payload("github_issues_opened"), SECRET, event="issues")
    result = verify_github(d.headers, d.body, SECRET)
    assert result.header == "X-Hub-Signature-256" and result.method == "hmac"


def test_github_header_names_are_case_insensitive() -> None:
    d = sign_github(payload("github_push"), SECRET, event="push")
    lowered = {k.lower(): v for k, v in d.headers.items()}
    verify_github(lowered, d.body, SECRET)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        ("missing", "missing_signature"),
        ("wrong_secret", "bad_signature"),
        ("tampered", "bad_signature"),
        ("bare_hex", "bad_signature"),
    ],
)
def test_github_rejects(mutate: str, reason: str) -> None:
    d = sign_github(payload("github_issues_opened"), SECRET, event="issues")
    headers, body, secret = dict(d.headers), d.body, SECRET
    if mutate == "missing":
        headers = _without(headers, "X-Hub-Signature-256")
    elif mutate == "wrong_secret":
        secret = "not-the-secret"
    elif mutate == "tampered":
        body = body.replace(b"Safari", b"Chrome")
    elif mutate == "bare_hex":
        headers["X-Hub-Signature-256"] = headers["X-Hub-Signature-256"].removeprefix("sha256=")
    with pytest.raises(SignatureError) as exc:
        verify_github(headers, body, secret)
    assert _reason(exc) == reason


def test_empty_secret_is_a_configuration_error() -> None:
    d = sign_github(b"{}", "", event="ping")
    with pytest.raises(SignatureError) as exc:
        verify_github(d.headers, d.body, "")
    assert exc.value.reason == "secret_not_configured"


# --- Linear -----------------------------------------------------------------------------


def _linear(now: float) -> tuple[dict[str, str], bytes]:
    d = sign_linear(linear_payload(payload("linear_issue_create"), now=now), SECRET)
    return d.headers, d.body


def test_linear_accepts_fresh_signed_delivery() -> None:
    headers, body = _linear(NOW)
    assert verify_linear(headers, body, SECRET, now=NOW + 59).header == "Linear-Signature"


@pytest.mark.parametrize("skew", [61.0, -61.0, 3600.0])
def test_linear_rejects_stale_timestamp(skew: float) -> None:
    headers, body = _linear(NOW)
    with pytest.raises(SignatureError) as exc:
        verify_linear(headers, body, SECRET, now=NOW + skew)
    assert _reason(exc) == "stale_timestamp"


def test_linear_checks_signature_before_timestamp() -> None:
    headers, body = _linear(NOW - 3600)
    with pytest.raises(SignatureError) as exc:
        verify_linear(headers, body, "wrong", now=NOW)
    assert _reason(exc) == "bad_signature"


def test_linear_missing_timestamp() -> None:
    raw = payload("linear_issue_create")
    del raw["webhookTimestamp"]
    d = sign_linear(raw, SECRET)
    with pytest.raises(SignatureError) as exc:
        verify_linear(d.headers, d.body, SECRET, now=NOW)
    assert _reason(exc) == "missing_timestamp"


@pytest.mark.parametrize(
    ("mutate", "reason"), [("missing", "missing_signature"), ("tampered", "bad_signature")]
)
def test_linear_rejects(mutate: str, reason: str) -> None:
    headers, body = _linear(NOW)
    if mutate == "missing":
        headers = _without(headers, "Linear-Signature")
    else:
        body = body.replace(b"Safari", b"Firefox")
    with pytest.raises(SignatureError) as exc:
        verify_linear(headers, body, SECRET, now=NOW)
    assert _reason(exc) == reason


# --- Sentry, Nango ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sign", "verify", "header"),
    [
        (sign_sentry, verify_sentry, "Sentry-Hook-Signature"),
        (sign_nango, verify_nango, "X-Nango-Hmac-Sha256"),
    ],
)
def test_hex_providers_accept_and_reject(
    sign: Callable[[Any, str], SignedDelivery],
    verify: Callable[[Mapping[str, str], bytes, str], VerifiedSignature],
    header: str,
) -> None:
    d = sign(payload("sentry_issue_created"), SECRET)
    assert verify(d.headers, d.body, SECRET).header == header
    for headers, body, secret, reason in [
        (_without(d.headers, header), d.body, SECRET, "missing_signature"),
        (d.headers, d.body, "other-secret", "bad_signature"),
        (d.headers, d.body + b" ", SECRET, "bad_signature"),
    ]:
        with pytest.raises(SignatureError) as exc:
            verify(headers, body, secret)
        assert _reason(exc) == reason


# --- PostHog ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "method", "header"),
    [
        ("signature", "hmac", "X-PostHog-Signature"),
        ("token", "token", "X-PostHog-Token"),
        ("bearer", "token", "Authorization"),
    ],
)
def test_posthog_accepts_each_scheme(mode: PostHogMode, method: str, header: str) -> None:
    d = sign_posthog(payload("posthog_action_webhook"), SECRET, mode=mode)
    result = verify_posthog(d.headers, d.body, SECRET)
    assert (result.method, result.header) == (method, header)


@pytest.mark.parametrize("mode", ["signature", "token", "bearer"])
def test_posthog_rejects_wrong_secret(mode: PostHogMode) -> None:
    d = sign_posthog(payload("posthog_action_webhook"), "attacker-secret", mode=mode)
    with pytest.raises(SignatureError) as exc:
        verify_posthog(d.headers, d.body, SECRET)
    assert _reason(exc) == "bad_signature"


def test_posthog_rejects_tampered_body_and_missing_credentials() -> None:
    d = sign_posthog(payload("posthog_action_webhook"), SECRET)
    with pytest.raises(SignatureError) as exc:
        verify_posthog(d.headers, d.body.replace(b"pro", b"free"), SECRET)
    assert _reason(exc) == "bad_signature"
    with pytest.raises(SignatureError) as exc:
        verify_posthog({"Authorization": "Basic abc"}, d.body, SECRET)
    assert _reason(exc) == "missing_signature"


# --- custom -----------------------------------------------------------------------------


@pytest.mark.parametrize("header", CUSTOM_SIGNATURE_HEADERS)
@pytest.mark.parametrize("prefixed", [False, True])
def test_custom_accepts_every_header_and_form(header: str, prefixed: bool) -> None:
    d = sign_custom({"deploy": "done", "sha": "abc"}, SECRET, header=header, prefixed=prefixed)
    assert verify_custom(d.headers, d.body, SECRET).header == header


def test_custom_rejects_and_allows_unsigned_without_secret() -> None:
    d = sign_custom({"a": 1}, SECRET)
    with pytest.raises(SignatureError) as exc:
        verify_custom(d.headers, d.body + b"\n", SECRET)
    assert _reason(exc) == "bad_signature"
    with pytest.raises(SignatureError) as exc:
        verify_custom({"Content-Type": "application/json"}, d.body, SECRET)
    assert _reason(exc) == "missing_signature"
    with pytest.raises(SignatureError) as exc:
        verify_custom(d.headers, d.body, "wrong-secret")
    assert _reason(exc) == "bad_signature"
    assert verify_custom({}, d.body, None).method == "none"


# --- over real HTTP ---------------------------------------------------------------------


class _Receiver(FakeServer):
    """A webhook endpoint that verifies with the real aiohttp request headers."""

    def __init__(self) -> None:
        super().__init__()
        self.app.router.add_post("/hook", self._hook)

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify_github(request.headers, body, SECRET)
        except SignatureError as exc:
            return web.json_response({"error": exc.reason}, status=401)
        return web.json_response({"ok": True})


async def test_signed_request_round_trip_over_http() -> None:
    d = sign_github(payload("github_pull_request_opened"), SECRET, event="pull_request")
    async with _Receiver() as receiver, aiohttp.ClientSession() as http:
        async with http.post(f"{receiver.url}/hook", data=d.body, headers=d.headers) as ok:
            assert ok.status == 200
        forged = dict(d.headers, **{"X-Hub-Signature-256": "sha256=" + "0" * 64})
        async with http.post(f"{receiver.url}/hook", data=d.body, headers=forged) as bad:
            assert bad.status == 401
            assert json.loads(await bad.text()) == {"error": "bad_signature"}
