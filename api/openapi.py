"""``/openapi.json`` from what routes really do: msgspec schemas, status codes, credentials.

Handlers decode bodies and encode answers themselves (msgspec), so FastAPI sees neither.
Routes say what they exchange with two one-line declarations:

- ``openapi_extra=json_body(StructType)`` on the route decorator: the JSON request body;
- ``@returns(StructType, status)`` under it: a success answer (``None``: no body), plus any
  error statuses the route raises beyond the ones derived below.

Structs become components (from msgspec's JSON schema). :func:`install` then completes each
operation from the route itself: 400 when it takes input, 404 when it has path parameters,
413 when it takes a body, 401/403 and the ``security`` requirement from the authentication
dependency it uses (``api.deps``), every error with the one error schema; FastAPI's 422
(Warren answers bad input with 400) is removed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar

import msgspec
from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant

from schemas.errors import ErrorResponse

REF_TEMPLATE = "#/components/schemas/{name}"

_COMPONENTS: dict[str, dict[str, Any]] = {}
"""Every component a :func:`json_body` or :func:`returns` call produced, by Struct name."""

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "session_cookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "warren_session",
        "description": "A signed-in browser (set by sign-up/sign-in). May pick an org per "
        "request with the X-Org-Id header.",
    },
    "api_key": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "wk_...",
        "description": "An org's API key (POST /api/api-keys); acts as its creator in that org.",
    },
    "service_token": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An operator-minted service token.",
    },
    "sandbox_token": {
        "type": "http",
        "scheme": "bearer",
        "description": "The token a session's sandbox is given for its own session's routes.",
    },
}

# The authentication dependency a route uses (api.deps, by function name; the factories'
# closures by their factory's name) → the credentials it accepts and whether it can 403.
_AUTH: dict[str, tuple[tuple[str, ...], bool]] = {
    "require_caller": (("session_cookie", "api_key", "service_token"), False),
    "require_user": (("session_cookie", "api_key"), True),
    "require_active_org": (("session_cookie", "api_key"), True),
    "require_org_member": (("session_cookie", "api_key"), True),
    "require_browser_user": (("session_cookie",), True),
    "require_service": (("service_token",), True),
    "require_sandbox": (("sandbox_token",), False),
}

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class _Answer:
    status: int
    schema: dict[str, Any] | None
    errors: tuple[int, ...]
    media_type: str


def components() -> dict[str, dict[str, Any]]:
    """A copy of the registered component schemas."""
    return dict(_COMPONENTS)


def _register(name: str, schema: dict[str, Any]) -> None:
    known = _COMPONENTS.get(name)
    if known is not None and known != schema:
        # Two different Structs of one name would silently document the wrong shape.
        raise ValueError(f"two schemas are named {name!r}; rename one of the Structs")
    _COMPONENTS[name] = schema


def schema_of(type_: Any) -> dict[str, Any]:
    """The JSON schema of ``type_`` (a ``$ref`` for a Struct), its components registered."""
    (schema,), found = msgspec.json.schema_components((type_,), ref_template=REF_TEMPLATE)
    for name, component in found.items():
        _register(name, component)
    return schema


def json_body(type_: Any, *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON request body of ``type_`` (a msgspec Struct)."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": schema_of(type_)}},
        }
    }


def returns(
    type_: Any,
    status: int = 200,
    *,
    errors: tuple[int, ...] = (),
    media_type: str = "application/json",
) -> Callable[[F], F]:
    """Decorator: the endpoint answers ``status`` with ``type_`` as ``media_type`` (``None``:
    no body), and may also answer the error statuses ``errors``. Stack it for several answers.
    """
    answer = _Answer(status, None if type_ is None else schema_of(type_), errors, media_type)

    def mark(endpoint: F) -> F:
        answers: list[_Answer] = endpoint.__dict__.setdefault("_warren_answers", [])
        answers.insert(0, answer)  # decorators apply bottom-up; keep source order
        return endpoint

    return mark


def _dependencies(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _dependencies(sub)


def _auth(dependant: Dependant) -> tuple[tuple[str, ...], bool] | None:
    for call in _dependencies(dependant):
        found = _AUTH.get(getattr(call, "__qualname__", "").split(".")[0])
        if found is not None and call.__module__ == "api.deps":
            return found
    return None


def _error(status: int) -> dict[str, Any]:
    return {
        "description": HTTPStatus(status).phrase,
        "content": {"application/json": {"schema": schema_of(ErrorResponse)}},
    }


def _success(answer: _Answer) -> dict[str, Any]:
    doc: dict[str, Any] = {"description": HTTPStatus(answer.status).phrase}
    if answer.schema is not None:
        doc["content"] = {answer.media_type: {"schema": answer.schema}}
    return doc


def _complete(operation: dict[str, Any], route: Any) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    answers: list[_Answer] = getattr(route.endpoint, "_warren_answers", [])
    if answers:
        responses.pop("200", None)
    errors: set[int] = set()
    for answer in answers:
        responses[str(answer.status)] = _success(answer)
        errors.update(answer.errors)
    params = {p.get("in") for p in operation.get("parameters", [])}
    if params or "requestBody" in operation:
        errors.add(400)  # malformed input (wrong type, unknown field, NUL in text)
    if "path" in params:
        errors.add(404)  # ids of nothing the caller can see
    if "requestBody" in operation:
        errors.add(413)
    auth = _auth(route.dependant)
    if auth is None:
        operation["security"] = []
    else:
        schemes, can_forbid = auth
        operation["security"] = [{name: []} for name in schemes]
        errors.add(401)
        if can_forbid:
            errors.add(403)
    for status in sorted(errors):
        responses.setdefault(str(status), _error(status))


def _used_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref.rsplit("/", 1)[-1]
        for value in node.values():
            yield from _used_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _used_refs(value)


def flat_routes(app: Any) -> Iterator[Any]:
    """Every route of ``app``, included routers flattened (FastAPI ≥ 0.120 nests them;
    ``iter_route_contexts`` applies the app's prefixes and dependencies where it exists)."""
    flatten: Callable[[Any], Iterator[Any]] | None = getattr(routing, "iter_route_contexts", None)
    yield from flatten(app.routes) if flatten else app.routes


def _api_routes(app: FastAPI) -> Iterator[Any]:
    for route in flat_routes(app):
        if getattr(route, "include_in_schema", False) and hasattr(route, "dependant"):
            yield route


def install(app: FastAPI) -> None:
    """Make ``app.openapi`` document bodies, answers, errors and credentials (built once)."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    built: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if built:
            return built
        schema = generate()
        for route in _api_routes(app):
            for method in route.methods or ():
                operation = schema["paths"].get(route.path_format, {}).get(method.lower())
                if operation is not None:
                    _complete(operation, route)
        comps = schema.setdefault("components", {})
        schemas = comps.setdefault("schemas", {})
        for name, component in _COMPONENTS.items():
            schemas.setdefault(name, component)
        # FastAPI's validation-error shapes are no longer referenced once 422s are gone.
        used = set(_used_refs(schema["paths"])) | set(_used_refs(_COMPONENTS))
        for name in ("HTTPValidationError", "ValidationError"):
            if name not in used:
                schemas.pop(name, None)
        comps["securitySchemes"] = SECURITY_SCHEMES
        built.update(schema)
        return built

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
