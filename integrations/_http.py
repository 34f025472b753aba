"""The HTTP plumbing every client shares: one aiohttp session, timeouts, safe errors."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

import aiohttp
import msgspec
from multidict import CIMultiDictProxy

from integrations.errors import (
    IntegrationProtocolError,
    IntegrationRateLimitError,
    IntegrationUnavailableError,
)


class HttpResponse(msgspec.Struct, frozen=True, kw_only=True):
    """A fully read response: status, headers (case-insensitive) and body bytes."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    url: str


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def parse_link_header(value: str | None) -> dict[str, str]:
    """RFC 8288 ``Link`` header as ``{rel: url}`` (GitHub pagination)."""
    links: dict[str, str] = {}
    if not value:
        return links
    for part in value.split(","):
        segments = part.strip().split(";")
        target = segments[0].strip()
        if not (target.startswith("<") and target.endswith(">")):
            continue
        for param in segments[1:]:
            key, _, raw = param.strip().partition("=")
            if key.strip().lower() == "rel":
                for rel in raw.strip().strip('"').split():
                    links[rel] = target[1:-1]
    return links


def same_origin(url: str, base_url: str) -> bool:
    """True if ``url`` has the scheme, host and port of ``base_url``.

    Pagination links are followed only to the API's own origin, so a hostile ``Link``
    header can never make a client send its token elsewhere.
    """
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


class JsonHttpClient:
    """Base for the JSON API clients: base URL, default headers, timeout, session reuse.

    Pass ``session`` to share a connection pool; a client closes only a session it created.
    """

    provider = "http"

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        secrets: tuple[str, ...],
        timeout: float,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._secrets = secrets
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if this client created it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return urljoin(self.base_url + "/", path_or_url.lstrip("/"))

    def safe(self, text: str) -> str:
        """``text`` with this client's credentials masked."""
        return redact(text, self._secrets)

    async def send(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str] | list[tuple[str, str]] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """Send one request and read the whole answer; transport failures become typed."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        merged = dict(self._headers)
        if headers:
            merged.update(headers)
        data: bytes | None = None
        if json_body is not None:
            data = msgspec.json.encode(json_body)
            merged.setdefault("Content-Type", "application/json; charset=utf-8")
        url = self._url(path_or_url)
        try:
            async with self._session.request(
                method, url, params=params, data=data, headers=merged, timeout=self._timeout
            ) as resp:
                body = await resp.read()
                return HttpResponse(
                    status=resp.status, headers=resp.headers, body=body, url=str(resp.url)
                )
        except TimeoutError as exc:
            raise IntegrationUnavailableError(
                self.provider, f"{method} timed out after {self._timeout.total}s"
            ) from exc
        except aiohttp.ClientError as exc:
            # aiohttp messages may embed the URL, never headers; still mask to be sure.
            detail = self.safe(f"{type(exc).__name__}: {exc}")
            raise IntegrationUnavailableError(self.provider, f"{method} failed: {detail}") from exc

    def rate_limited(
        self, response: HttpResponse, message: str, *, code: str | None
    ) -> IntegrationRateLimitError:
        """A rate-limit error for ``response``, waiting as its ``Retry-After`` header says."""
        return IntegrationRateLimitError(
            self.provider,
            message,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            status=response.status,
            code=code,
        )

    def decode(self, response: HttpResponse, type_: type[Any]) -> Any:
        """Decode a JSON body into ``type_``; a malformed body is a protocol error."""
        try:
            return msgspec.json.decode(response.body, type=type_)
        except msgspec.DecodeError as exc:
            raise IntegrationProtocolError(
                self.provider,
                self.safe(f"unexpected response body (HTTP {response.status}): {exc}"),
                status=response.status,
            ) from exc
