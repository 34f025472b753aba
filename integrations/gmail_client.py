"""Gmail API client: ``users.getProfile``, ``users.history.list`` and ``users.messages.get``.

Paths are ``/gmail/v1/users/{userId}/...`` under ``https://gmail.googleapis.com``;
``Authorization: Bearer <access token>``. Google errors are
``{"error": {"code", "message", "status", "errors": [{"reason"}]}}`` and map to typed
errors; a 404 from ``history.list`` means the ``startHistoryId`` is too old
(:class:`GmailHistoryExpiredError`) and the caller must restart from the profile's
current ``historyId``.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

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

GMAIL_API_URL = "https://gmail.googleapis.com"
_RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})


class GmailHistoryExpiredError(IntegrationNotFoundError):
    """``startHistoryId`` is older than Gmail keeps history for: do a fresh baseline."""


class GmailProfile(msgspec.Struct, frozen=True):
    """``users.getProfile``: the mailbox and its current history id."""

    historyId: str
    emailAddress: str | None = None
    messagesTotal: int | None = None
    threadsTotal: int | None = None


class GmailHeader(msgspec.Struct, frozen=True):
    """One RFC 822 header of a message."""

    name: str
    value: str = ""


class GmailMessagePart(msgspec.Struct, frozen=True):
    """The message payload (metadata format: headers only)."""

    headers: list[GmailHeader] = []
    mimeType: str | None = None


class GmailMessage(msgspec.Struct, frozen=True):
    """``users.messages.get`` (``format=metadata``)."""

    id: str
    threadId: str | None = None
    labelIds: list[str] = []
    snippet: str | None = None
    historyId: str | None = None
    internalDate: str | None = None
    payload: GmailMessagePart | None = None

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive)."""
        wanted = name.lower()
        for h in self.payload.headers if self.payload else []:
            if h.name.lower() == wanted:
                return h.value
        return None


class GmailMessageRef(msgspec.Struct, frozen=True):
    """A message as history records reference it."""

    id: str
    threadId: str | None = None
    labelIds: list[str] = []


class GmailMessageAdded(msgspec.Struct, frozen=True):
    """``messagesAdded[]`` of a history record."""

    message: GmailMessageRef


class GmailHistoryRecord(msgspec.Struct, frozen=True):
    """One ``history[]`` record (only additions are read)."""

    id: str
    messagesAdded: list[GmailMessageAdded] = []


class GmailHistory(msgspec.Struct, frozen=True, kw_only=True):
    """All pages of a ``history.list`` walk and the mailbox's latest history id."""

    records: list[GmailHistoryRecord]
    history_id: str | None
    """The mailbox's latest history id (only a safe cursor when ``complete``)."""
    complete: bool
    """False when ``max_pages`` stopped the walk with pages left."""


class _HistoryPage(msgspec.Struct):
    history: list[GmailHistoryRecord] = []
    nextPageToken: str | None = None
    historyId: str | None = None


class _ErrorItem(msgspec.Struct):
    reason: str | None = None


class _ErrorBody(msgspec.Struct):
    code: int | None = None
    message: str = ""
    status: str | None = None
    errors: list[_ErrorItem] = []


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorBody | None = None


class GmailClient(JsonHttpClient):
    """Async Gmail API client for one mailbox (``user_id``, default ``me``)."""

    provider = "gmail"

    def __init__(
        self,
        token: str,
        *,
        base_url: str = GMAIL_API_URL,
        user_id: str = "me",
        timeout: float = 30.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            secrets=(token,),
            timeout=timeout,
            session=session,
        )
        self._user = quote(user_id, safe="")

    def _path(self, suffix: str) -> str:
        return f"/gmail/v1/users/{self._user}/{suffix}"

    def _raise_for_status(self, resp: HttpResponse, *, history: bool = False) -> None:
        if resp.status < 400:
            return
        try:
            body = msgspec.json.decode(resp.body, type=_ErrorEnvelope).error or _ErrorBody()
        except msgspec.DecodeError:
            body = _ErrorBody()
        reasons = {e.reason for e in body.errors if e.reason}
        code = next(iter(sorted(reasons)), None) or body.status
        message = self.safe(body.message or f"HTTP {resp.status}")
        status = resp.status
        if status == 429 or (status == 403 and reasons & _RATE_REASONS):
            raise self.rate_limited(resp, message, code=code)
        error: type[IntegrationError] = IntegrationError
        if status == 401:
            error = IntegrationAuthError
        elif status == 403:
            error = IntegrationForbiddenError
        elif status == 404:
            error = GmailHistoryExpiredError if history else IntegrationNotFoundError
        elif status in (400, 422):
            error = IntegrationValidationError
        elif status >= 500:
            error = IntegrationUnavailableError
        raise error(self.provider, message, status=status, code=code)

    async def get_profile(self) -> GmailProfile:
        """The mailbox's profile, including the current ``historyId``."""
        resp = await self.send("GET", self._path("profile"))
        self._raise_for_status(resp)
        profile: GmailProfile = self.decode(resp, GmailProfile)
        return profile

    async def list_history(
        self,
        start_history_id: str,
        *,
        label_id: str | None = None,
        history_types: Sequence[str] = ("messageAdded",),
        page_size: int = 100,
        max_pages: int = 20,
    ) -> GmailHistory:
        """History records after ``start_history_id``, following ``nextPageToken``."""
        records: list[GmailHistoryRecord] = []
        token: str | None = None
        history_id: str | None = None
        for _ in range(max_pages):
            params = [("startHistoryId", start_history_id), ("maxResults", str(page_size))]
            params += [("historyTypes", t) for t in history_types]
            if label_id:
                params.append(("labelId", label_id))
            if token:
                params.append(("pageToken", token))
            resp = await self.send("GET", self._path("history"), params=params)
            self._raise_for_status(resp, history=True)
            page: _HistoryPage = self.decode(resp, _HistoryPage)
            records.extend(page.history)
            history_id = page.historyId or history_id
            token = page.nextPageToken
            if not token:
                break
        return GmailHistory(records=records, history_id=history_id, complete=token is None)

    async def get_message(
        self,
        message_id: str,
        *,
        metadata_headers: Sequence[str] = ("Subject", "From", "To", "Date"),
    ) -> GmailMessage:
        """One message in ``metadata`` format with the given headers."""
        params = [("format", "metadata")] + [("metadataHeaders", h) for h in metadata_headers]
        path = self._path(f"messages/{quote(message_id, safe='')}")
        resp = await self.send("GET", path, params=params)
        self._raise_for_status(resp)
        message: GmailMessage = self.decode(resp, GmailMessage)
        return message
