"""Slack Web API client: ``chat.postMessage`` with Block Kit blocks.

Slack answers HTTP 200 with ``{"ok": false, "error": "<code>"}`` for most failures and
HTTP 429 with ``Retry-After`` when rate limited. Codes map to typed errors (the Slack
code is kept in ``.code``): auth codes → :class:`IntegrationAuthError`,
``channel_not_found`` → :class:`IntegrationNotFoundError`, channel/scope refusals →
:class:`IntegrationForbiddenError`, ``ratelimited`` → :class:`IntegrationRateLimitError`,
bad content → :class:`IntegrationValidationError`, Slack-side faults →
:class:`IntegrationUnavailableError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
import msgspec

from integrations._http import HttpResponse, JsonHttpClient
from integrations.errors import (
    IntegrationAuthError,
    IntegrationError,
    IntegrationForbiddenError,
    IntegrationNotFoundError,
    IntegrationUnavailableError,
    IntegrationValidationError,
)

SLACK_API_URL = "https://slack.com/api"
SLACK_TIMEOUT_SECONDS = 10.0

_AUTH = frozenset(
    {"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired"}
)
_FORBIDDEN = frozenset(
    {"not_in_channel", "is_archived", "missing_scope", "restricted_action", "ekm_access_denied"}
)
_INVALID = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_arguments",
        "invalid_arg_name",
        "msg_too_long",
        "no_text",
        "too_many_attachments",
        "invalid_json",
        "json_not_object",
    }
)
_UNAVAILABLE = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class SlackPostResult(msgspec.Struct, frozen=True, kw_only=True):
    """Where the message landed: channel id and message timestamp (its id)."""

    channel: str
    ts: str


class _Envelope(msgspec.Struct):
    ok: bool = False
    error: str | None = None
    channel: str | None = None
    ts: str | None = None


class SlackClient(JsonHttpClient):
    """Async Slack Web API client for one bot token."""

    provider = "slack"

    def __init__(
        self,
        token: str,
        *,
        base_url: str = SLACK_API_URL,
        timeout: float = SLACK_TIMEOUT_SECONDS,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            secrets=(token,),
            timeout=timeout,
            session=session,
        )

    def _raise(self, resp: HttpResponse, envelope: _Envelope) -> None:
        code = envelope.error or ("ratelimited" if resp.status == 429 else None)
        if resp.status == 429 or code == "ratelimited":
            raise self.rate_limited(resp, "ratelimited", code="ratelimited")
        if code is None:
            code = f"http_{resp.status}"
        error: type[IntegrationError] = IntegrationError
        if code in _AUTH:
            error = IntegrationAuthError
        elif code == "channel_not_found":
            error = IntegrationNotFoundError
        elif code in _FORBIDDEN:
            error = IntegrationForbiddenError
        elif code in _INVALID:
            error = IntegrationValidationError
        elif code in _UNAVAILABLE or resp.status >= 500:
            error = IntegrationUnavailableError
        raise error(self.provider, self.safe(code), status=resp.status, code=code)

    async def call(self, method: str, payload: dict[str, Any]) -> _Envelope:
        """POST a JSON body to a Web API method; raise typed unless ``ok`` is true."""
        resp = await self.send("POST", f"/{method}", json_body=payload)
        try:
            envelope = msgspec.json.decode(resp.body, type=_Envelope)
        except msgspec.DecodeError:
            envelope = _Envelope()
        if resp.status != 200 or not envelope.ok:
            self._raise(resp, envelope)
        return envelope

    async def post_message(
        self,
        channel: str,
        *,
        text: str,
        blocks: Sequence[Any] | None = None,
        thread_ts: str | None = None,
        unfurl_links: bool = False,
    ) -> SlackPostResult:
        """``chat.postMessage``; ``text`` is the notification fallback for ``blocks``."""
        payload: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": unfurl_links}
        if blocks is not None:
            payload["blocks"] = list(blocks)
        if thread_ts is not None:
            payload["thread_ts"] = thread_ts
        envelope = await self.call("chat.postMessage", payload)
        return SlackPostResult(channel=envelope.channel or channel, ts=envelope.ts or "")
