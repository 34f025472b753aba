"""Every trigger provider, declared once: its webhook route, capabilities, signature
scheme, parser, delivery (dedup-key) rule, poller, Nango keys and seal purposes.

Adding a provider means writing its :class:`integrations.provider.TriggerProvider` and
one :class:`ProviderSpec` in :func:`_build_default`. The ingress (``api/routes``), the
trigger pool and the scheduler read everything provider-specific from here.

Dedup keys identify one *delivery*, never one item: the parser gives each context a key
derived from the body (a hash, or the provider's own event id), and when the provider
sends a delivery id header (GitHub ``X-GitHub-Delivery``, Linear ``Linear-Delivery``,
Sentry ``Request-ID``) :meth:`ProviderRegistry.parse_webhook` keys the contexts by it, so
a provider's retry of one delivery is stored once and every new delivery is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from integrations.custom import CUSTOM_DEDUP_WINDOW_SECONDS, CustomWebhookProvider
from integrations.github import GitHubProvider
from integrations.gmail import GmailProvider
from integrations.linear import LinearProvider
from integrations.posthog import PostHogProvider
from integrations.provider import TriggerProvider, decode_filters
from integrations.scheduled import ScheduledProvider
from integrations.sentry import SentryProvider
from integrations.signatures import (
    header_value,
    verify_custom,
    verify_github,
    verify_linear,
    verify_posthog,
    verify_sentry,
)
from schemas.triggers import PostHogFilters, ProviderType, TriggerContext

WEBHOOK_SECRET_PURPOSE = "webhook-secret"
"""Sealing purpose of a webhook trigger's signing secret."""
POLL_TOKEN_PURPOSE = "poll-token"
"""Sealing purpose of a polling trigger's access token."""

Verifier = Callable[[Mapping[str, str], bytes, str, Mapping[str, Any]], None]
"""Check a delivery: (headers, raw body, the trigger's secret, its config); raises
:class:`integrations.signatures.SignatureError`."""


def _verify_posthog(
    headers: Mapping[str, str], body: bytes, secret: str, config: Mapping[str, Any]
) -> None:
    # PostHog destinations sign only when the trigger asks for it.
    if decode_filters(PostHogFilters, config).require_signature_verification:
        verify_posthog(headers, body, secret)


def _verify_custom(
    headers: Mapping[str, str], body: bytes, secret: str, config: Mapping[str, Any]
) -> None:
    verify_custom(headers, body, secret)


def _hmac(check: Callable[[Mapping[str, str], bytes, str], object]) -> Verifier:
    def verify(
        headers: Mapping[str, str], body: bytes, secret: str, config: Mapping[str, Any]
    ) -> None:
        check(headers, body, secret)

    return verify


@dataclass(frozen=True)
class ProviderSpec:
    """One provider's declaration."""

    name: ProviderType
    impl: TriggerProvider[Any]
    route: str | None = None
    """Webhook route segment (``/webhooks/<route>/t_<12 hex>``); None = no webhooks."""
    verify: Verifier | None = None
    polling: bool = False
    """Fired by the scheduler on a ``polling_cron`` (a poll, or a cron firing)."""
    poll_token: bool = False
    """Polls need a ``poll_access_token`` (sealed with :data:`POLL_TOKEN_PURPOSE`)."""
    api_url_setting: str | None = None
    """The ``core.settings.Settings`` field that overrides the API base a poll calls."""
    delivery_header: str | None = None
    """Header naming one delivery; its value becomes the dedup key when sent."""
    nango_keys: tuple[str, ...] = ()
    """Substrings of a Nango ``providerConfigKey`` that name this provider."""
    dedup_window_seconds: float | None = None
    """Equal keys are duplicates only within this window (None: forever)."""
    published: bool = False
    """Other systems may publish :class:`schemas.automations.CustomTriggerMessage` for it
    on ``<prefix>.triggers.events.custom.<trigger id>``."""
    json_body: bool = True
    """Deliveries are JSON, stored as the event's ``raw_payload`` (generic webhooks may
    send anything: their context holds the decoded body instead)."""

    @property
    def webhook(self) -> bool:
        """True if the provider receives webhooks."""
        return self.route is not None

    @property
    def secret_purpose(self) -> str | None:
        """Sealing purpose of the webhook secret, if the provider has one."""
        return WEBHOOK_SECRET_PURPOSE if self.webhook else None


class UnknownProviderError(LookupError):
    """No provider is registered under that type."""

    def __init__(self, provider: str) -> None:
        super().__init__(f"unknown trigger provider: {provider!r}")
        self.provider = provider


def delivery_keyed(
    spec: ProviderSpec, contexts: list[TriggerContext], headers: Mapping[str, str]
) -> list[TriggerContext]:
    """``contexts`` keyed by the delivery id header when the provider sent one."""
    delivery = header_value(headers, spec.delivery_header) if spec.delivery_header else None
    if delivery is None:
        return contexts
    several = len(contexts) > 1
    return [
        msgspec.structs.replace(
            ctx, dedup_key=f"{ctx.provider}:{delivery}" + (f":{i}" if several else "")
        )
        for i, ctx in enumerate(contexts)
    ]


class ProviderRegistry:
    """Provider type → declaration; build one with custom providers (e.g. a fixed clock)
    for tests, or use :func:`default_registry`."""

    def __init__(self, specs: Mapping[str, ProviderSpec]) -> None:
        self._specs = dict(specs)

    def types(self) -> tuple[str, ...]:
        """Every registered provider type."""
        return tuple(self._specs)

    def spec(self, provider: str) -> ProviderSpec:
        """The declaration of ``provider``, or :class:`UnknownProviderError`."""
        try:
            return self._specs[provider]
        except KeyError:
            raise UnknownProviderError(provider) from None

    def get(self, provider: str) -> TriggerProvider[Any]:
        """The implementation for ``provider``, or :class:`UnknownProviderError`."""
        return self.spec(provider).impl

    def routes(self) -> frozenset[str]:
        """Every webhook route segment."""
        return frozenset(s.route for s in self._specs.values() if s.route is not None)

    def nango_provider(self, provider_config_key: str | None) -> ProviderSpec | None:
        """The provider a Nango integration key names (e.g. ``github``, ``linear-prod``)."""
        key = (provider_config_key or "").lower()
        return next((s for s in self._specs.values() if any(k in key for k in s.nango_keys)), None)

    def parse_webhook(
        self, provider: str, body: bytes, headers: Mapping[str, str]
    ) -> list[TriggerContext]:
        """Parse a verified delivery and key its contexts by delivery (see module doc)."""
        spec = self.spec(provider)
        return delivery_keyed(spec, spec.impl.parse_webhook(body, headers), headers)

    def matches(self, provider: str, ctx: TriggerContext, config: Mapping[str, Any] | None) -> bool:
        """Decode a trigger's ``config`` into its filters and apply them to ``ctx``.

        Raises ``msgspec.ValidationError`` if the stored config has the wrong shape.
        """
        impl = self.get(provider)
        return impl.matches(ctx, decode_filters(impl.filters_type, config))


def _build_default() -> ProviderRegistry:
    custom = CustomWebhookProvider()

    def generic(name: ProviderType) -> ProviderSpec:
        # ``webhook`` and ``custom`` are one generic provider under two names.
        return ProviderSpec(
            name=name,
            impl=custom,
            route="custom",
            verify=_verify_custom,
            dedup_window_seconds=float(CUSTOM_DEDUP_WINDOW_SECONDS),
            json_body=False,
            published=True,
        )

    specs = [
        ProviderSpec(
            name="github",
            impl=GitHubProvider(),
            route="github",
            verify=_hmac(verify_github),
            delivery_header="X-GitHub-Delivery",
            nango_keys=("github",),
        ),
        ProviderSpec(
            name="linear",
            impl=LinearProvider(),
            route="linear",
            verify=_hmac(verify_linear),
            polling=True,
            poll_token=True,
            api_url_setting="linear_api_url",
            delivery_header="Linear-Delivery",
            nango_keys=("linear",),
        ),
        ProviderSpec(
            name="sentry",
            impl=SentryProvider(),
            route="sentry",
            verify=_hmac(verify_sentry),
            delivery_header="Request-ID",
            nango_keys=("sentry",),
        ),
        ProviderSpec(
            name="posthog", impl=PostHogProvider(), route="posthog", verify=_verify_posthog
        ),
        ProviderSpec(
            name="gmail",
            impl=GmailProvider(),
            polling=True,
            poll_token=True,
            api_url_setting="gmail_api_url",
        ),
        generic("webhook"),
        generic("custom"),
        ProviderSpec(name="scheduled", impl=ScheduledProvider(), polling=True),
    ]
    return ProviderRegistry({s.name: s for s in specs})


_DEFAULT = _build_default()


def default_registry() -> ProviderRegistry:
    """The process-wide registry with every provider Warren ships."""
    return _DEFAULT


def get_provider(provider: str) -> TriggerProvider[Any]:
    """Shorthand for ``default_registry().get(provider)``."""
    return _DEFAULT.get(provider)
