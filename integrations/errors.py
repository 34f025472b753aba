"""Typed errors shared by every integration client; messages never carry credentials."""

from __future__ import annotations


class IntegrationError(Exception):
    """A call to an external service failed.

    ``status`` is the HTTP status when there was one; ``code`` is the provider's own error
    code (``channel_not_found``, ``AUTHENTICATION_ERROR``...) when it gave one.
    """

    def __init__(
        self, provider: str, message: str, *, status: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.message = message
        self.status = status
        self.code = code


class IntegrationAuthError(IntegrationError):
    """The credential was missing, invalid, expired or revoked (401 and kin)."""


class IntegrationForbiddenError(IntegrationError):
    """The credential is valid but lacks access to the resource (403)."""


class IntegrationNotFoundError(IntegrationError):
    """The resource does not exist or is hidden from this credential (404)."""


class IntegrationValidationError(IntegrationError):
    """The service refused the request's content (422 and kin)."""


class IntegrationRateLimitError(IntegrationError):
    """The service is rate limiting; retry after ``retry_after`` seconds when known."""

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(provider, message, status=status, code=code)
        self.retry_after = retry_after


class IntegrationUnavailableError(IntegrationError):
    """The service could not be reached, timed out or answered 5xx: retryable."""


class IntegrationProtocolError(IntegrationError):
    """The service answered something that is not its documented format."""


class PollingNotSupportedError(Exception):
    """The provider only delivers events by webhook; polling it is a configuration error."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(message)
        self.provider = provider


class PayloadError(ValueError):
    """A webhook body is not the JSON shape its provider documents."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
