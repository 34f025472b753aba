"""Provider type → implementation, plus the per-provider signature check.

Every provider type of a trigger resolves here, Gmail included (the reference left Gmail
out of its registry). ``webhook`` and ``custom`` are the same generic provider.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from integrations.custom import CustomWebhookProvider
from integrations.github import GitHubProvider
from integrations.gmail import GmailProvider
from integrations.linear import LinearProvider
from integrations.posthog import PostHogProvider
from integrations.provider import TriggerProvider, decode_filters
from integrations.scheduled import ScheduledProvider
from integrations.sentry import SentryProvider
from integrations.signatures import (
    VerifiedSignature,
    verify_custom,
    verify_github,
    verify_linear,
    verify_posthog,
    verify_sentry,
)
from schemas.triggers import TriggerContext

Verifier = Callable[[Mapping[str, str], bytes, str], VerifiedSignature]

_VERIFIERS: dict[str, Verifier] = {
    "github": verify_github,
    "linear": verify_linear,
    "sentry": verify_sentry,
    "posthog": verify_posthog,
    "webhook": verify_custom,
    "custom": verify_custom,
}


class UnknownProviderError(LookupError):
    """No provider is registered under that type."""

    def __init__(self, provider: str) -> None:
        super().__init__(f"unknown trigger provider: {provider!r}")
        self.provider = provider


class ProviderRegistry:
    """A mapping of provider type to implementation; build one with custom providers
    (e.g. a fixed clock) for tests, or use :func:`default_registry`."""

    def __init__(self, providers: Mapping[str, TriggerProvider[Any]]) -> None:
        self._providers = dict(providers)

    def types(self) -> tuple[str, ...]:
        """Every registered provider type."""
        return tuple(self._providers)

    def get(self, provider: str) -> TriggerProvider[Any]:
        """The implementation for ``provider``, or :class:`UnknownProviderError`."""
        try:
            return self._providers[provider]
        except KeyError:
            raise UnknownProviderError(provider) from None

    def verifier(self, provider: str) -> Verifier:
        """The signature check for a webhook provider (raises for non-webhook ones)."""
        self.get(provider)
        try:
            return _VERIFIERS[provider]
        except KeyError:
            raise UnknownProviderError(provider) from None

    def parse_webhook(
        self, provider: str, body: bytes, headers: Mapping[str, str]
    ) -> list[TriggerContext]:
        """Parse a verified delivery with ``provider``'s implementation."""
        return self.get(provider).parse_webhook(body, headers)

    def matches(self, provider: str, ctx: TriggerContext, config: Mapping[str, Any] | None) -> bool:
        """Decode a trigger's ``config`` into its filters and apply them to ``ctx``.

        Raises ``msgspec.ValidationError`` if the stored config has the wrong shape.
        """
        impl = self.get(provider)
        return impl.matches(ctx, decode_filters(impl.filters_type, config))


def _build_default() -> ProviderRegistry:
    custom = CustomWebhookProvider()
    providers: dict[str, TriggerProvider[Any]] = {
        "github": GitHubProvider(),
        "linear": LinearProvider(),
        "sentry": SentryProvider(),
        "posthog": PostHogProvider(),
        "gmail": GmailProvider(),
        "webhook": custom,
        "custom": custom,
        "scheduled": ScheduledProvider(),
    }
    return ProviderRegistry(providers)


_DEFAULT = _build_default()


def default_registry() -> ProviderRegistry:
    """The process-wide registry with every provider Warren ships."""
    return _DEFAULT


def get_provider(provider: str) -> TriggerProvider[Any]:
    """Shorthand for ``default_registry().get(provider)``."""
    return _DEFAULT.get(provider)
