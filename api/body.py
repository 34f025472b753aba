"""Request bodies: size-limited, decoded straight into msgspec Structs, errors naming the field."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from fastapi import Request

from api.errors import ApiError

T = TypeVar("T")

_PATH = re.compile(r"at `\$((?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*)`")
# "Object missing required field `x`" and "Object contains unknown field `x`" name the
# field inside the object the path points at.
_NAMED = re.compile(r"(?:required|unknown) field `([^`]+)`")


def field_of(error: msgspec.ValidationError) -> str | None:
    """The dotted field path a msgspec validation error points at, e.g. ``repos[0].url``."""
    text = str(error)
    path = ""
    at = _PATH.search(text)
    if at:
        path = at.group(1).lstrip(".")
    named = _NAMED.search(text)
    if named:
        path = f"{path}.{named.group(1)}" if path else named.group(1)
    return path or None


def _reason(error: msgspec.ValidationError) -> str:
    return str(error).split(" - at `", 1)[0]


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode(data: bytes, type_: type[T]) -> T:
    """Decode JSON ``data`` as ``type_``; 400 on bad JSON or a wrong type, naming the field."""
    if not data.strip():
        raise ApiError(400, "request body must be a JSON object", code="invalid_json")
    try:
        return msgspec.json.decode(data, type=type_)
    except msgspec.ValidationError as exc:
        field = field_of(exc)
        raise ApiError(400, _reason(exc), code="invalid", field=field) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        # msgspec raises UnicodeDecodeError (not DecodeError) for invalid UTF-8 in strings.
        raise ApiError(400, "request body is not valid JSON", code="invalid_json") from None


async def body(request: Request, type_: type[T]) -> T:
    """Read, limit and decode the request body as ``type_``."""
    limit: int = request.app.state.warren.settings.max_body_bytes
    return decode(await read_body(request, limit), type_)


def convert(value: Any, type_: type[T]) -> T:
    """Convert already-parsed data (e.g. query params) into ``type_``, 400 naming the field."""
    try:
        return msgspec.convert(value, type_, strict=False)
    except msgspec.ValidationError as exc:
        raise ApiError(400, _reason(exc), code="invalid", field=field_of(exc)) from None
