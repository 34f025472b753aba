"""The interface every trigger provider implements, and the webhook-only default for polling.

The flow for a webhook: verify the signature (:mod:`integrations.signatures`), then
``parse_webhook`` → ``matches(ctx, filters)`` per trigger → dedup on ``ctx.dedup_key``.
For a polling trigger: ``poll(connection, filters, cursor)`` → the same filter and dedup
steps, then store the returned cursor for the next poll.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, TypeVar

import msgspec

from integrations.errors import PollingNotSupportedError
from schemas.triggers import PollConnection, PollResult, ProviderType, TriggerContext

F = TypeVar("F", bound=msgspec.Struct)
F_contra = TypeVar("F_contra", bound=msgspec.Struct, contravariant=True)


class TriggerProvider(Protocol[F_contra]):
    """A source of trigger events: parses deliveries, filters them, optionally polls."""

    name: ClassVar[ProviderType]
    filters_type: ClassVar[type[msgspec.Struct]]
    """The msgspec struct a trigger's ``config`` decodes into."""

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[TriggerContext]:
        """Turn one verified delivery into zero or more contexts (unsupported events → [])."""
        ...

    def matches(self, ctx: TriggerContext, filters: F_contra) -> bool:
        """True if ``ctx`` passes every configured filter (empty filters pass everything)."""
        ...

    async def poll(
        self, connection: PollConnection, filters: F_contra, cursor: str | None
    ) -> PollResult:
        """Fetch events newer than ``cursor`` (None = first poll) and the next cursor."""
        ...


def decode_filters(type_: type[F], config: Mapping[str, Any] | None) -> F:
    """Decode a trigger's stored ``config`` into its filters struct (unknown keys ignored)."""
    return msgspec.convert(dict(config or {}), type=type_)


class WebhookOnly:
    """Mixin for providers that cannot be polled: ``poll`` raises a clear error."""

    name: ClassVar[ProviderType]
    poll_error: ClassVar[str] = "only supports webhooks, not polling"

    async def poll(
        self, connection: PollConnection, filters: Any, cursor: str | None
    ) -> PollResult:
        """Always raises :class:`PollingNotSupportedError`."""
        raise PollingNotSupportedError(self.name, f"{self.name} {self.poll_error}")
