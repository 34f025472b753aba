"""The one error shape every HTTP error answers with."""

from __future__ import annotations

import msgspec


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What went wrong: a stable code, a human message and, for bad input, the field."""

    code: str
    message: str
    field: str | None = None


class ErrorResponse(msgspec.Struct, frozen=True, kw_only=True):
    """``{"error": {...}}``: the body of every 4xx/5xx answer."""

    error: ErrorBody
