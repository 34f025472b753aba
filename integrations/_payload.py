"""Helpers the providers share for decoding webhook bodies."""

from __future__ import annotations

import hashlib
import math
from typing import Any, TypeVar

import msgspec

from integrations.errors import PayloadError

T = TypeVar("T")


def decode_payload(provider: str, body: bytes, type_: type[T]) -> T:
    """Decode a JSON webhook body into ``type_``, or raise :class:`PayloadError`."""
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.DecodeError as exc:
        raise PayloadError(provider, f"body does not match the documented payload: {exc}") from exc


def js_string(value: Any) -> str:
    """``String(value ?? "")`` as JavaScript renders it: how PostHog property filters compare.

    Booleans are ``true``/``false``, integral floats drop ``.0``, ``None`` is empty,
    arrays join with commas and objects are ``[object Object]``.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, list | tuple):
        return ",".join(js_string(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def unique(items: list[str]) -> tuple[str, ...]:
    """``items`` without duplicates, first occurrence order kept."""
    return tuple(dict.fromkeys(items))


def body_key(provider: str, body: bytes, *parts: str) -> str:
    """A dedup key for one delivery known only by its body: ``provider:[parts:]sha256``.

    A provider's retry resends the same body; a new delivery (a new head sha, a new
    ``updated_at``) differs, so it gets a new key.
    """
    return ":".join((provider, *parts, hashlib.sha256(body).hexdigest()))
