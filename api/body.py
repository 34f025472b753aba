"""Request input: bodies size-limited and decoded straight into msgspec Structs, and every
text (body, query, path) refused when it holds a NUL, with errors naming the field.

PostgreSQL text and jsonb cannot store U+0000, so a NUL that got past decoding would fail
deep in a query as a 500; it is refused here, once, for every route.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from fastapi import Request
from starlette.requests import HTTPConnection

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


def _shown(key: str) -> str:
    return key.replace("\x00", "\\u0000")


def nul_field(value: Any) -> str | None:
    """The path of the first string (or dict key) in ``value`` holding a NUL, e.g.
    ``config.tags[2]``; ``""`` when ``value`` itself is that string; None when there is none.

    Iterative, so a deeply nested document cannot exhaust the stack.
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return path
        elif isinstance(node, dict):
            for key, item in node.items():
                sub = f"{path}.{_shown(str(key))}" if path else _shown(str(key))
                if isinstance(key, str) and "\x00" in key:
                    return sub
                stack.append((sub, item))
        elif isinstance(node, list | tuple):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(node))
    return None


def _refuse_nul(field: str) -> ApiError:
    return ApiError(
        400, "text must not contain NUL (\\u0000) characters", code="invalid", field=field or None
    )


def _check_nul(data: bytes) -> None:
    # JSON can only carry a NUL as the escape \u0000; most bodies skip the second parse.
    if b"\\u0000" not in data:
        return
    field = nul_field(msgspec.json.decode(data))
    if field is not None:
        raise _refuse_nul(field)


def decode(data: bytes, type_: type[T]) -> T:
    """Decode JSON ``data`` as ``type_``; 400 on bad JSON, a wrong type or a NUL in any text,
    naming the field."""
    if not data.strip():
        raise ApiError(400, "request body must be a JSON object", code="invalid_json")
    try:
        _check_nul(data)
        return msgspec.json.decode(data, type=type_)
    except msgspec.ValidationError as exc:
        field = field_of(exc)
        raise ApiError(400, _reason(exc), code="invalid", field=field) from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        # msgspec raises UnicodeDecodeError (not DecodeError) for invalid UTF-8 in strings.
        raise ApiError(400, "request body is not valid JSON", code="invalid_json") from None


async def no_nul_params(conn: HTTPConnection) -> None:
    """App-wide dependency: 400 if a path or query parameter holds a NUL, naming it (for a
    WebSocket, the handshake is refused with that 400)."""
    named = [(n, v) for n, v in conn.path_params.items() if isinstance(v, str)]
    for name, value in named + conn.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise _refuse_nul(_shown(name))


async def body(request: Request, type_: type[T]) -> T:
    """Read, limit and decode the request body as ``type_``."""
    limit: int = request.app.state.warren.settings.max_body_bytes
    return decode(await read_body(request, limit), type_)


def convert(value: Any, type_: type[T]) -> T:
    """Convert already-parsed data (e.g. query params) into ``type_``, 400 naming the field
    (a NUL in any text included)."""
    field = nul_field(value)
    if field is not None:
        raise _refuse_nul(field)
    try:
        return msgspec.convert(value, type_, strict=False)
    except msgspec.ValidationError as exc:
        raise ApiError(400, _reason(exc), code="invalid", field=field_of(exc)) from None
