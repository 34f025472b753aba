"""Request-body schemas for ``/openapi.json``.

Handlers decode bodies themselves (``api.body.body(request, StructType)``), so FastAPI sees
no body parameter and documents none. A route declares its body with
``openapi_extra=json_body(StructType)``; the Struct's JSON schema (from msgspec) goes into a
module-level registry of components, which :func:`install` merges into the app's schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from fastapi import FastAPI

REF_TEMPLATE = "#/components/schemas/{name}"

_COMPONENTS: dict[str, dict[str, Any]] = {}
"""Every component a :func:`json_body` call produced, by name (Struct class name)."""


def components() -> dict[str, dict[str, Any]]:
    """A copy of the registered component schemas."""
    return dict(_COMPONENTS)


def _register(name: str, schema: dict[str, Any]) -> None:
    known = _COMPONENTS.get(name)
    if known is not None and known != schema:
        # Two different Structs of one name would silently document the wrong shape.
        raise ValueError(f"two request schemas are named {name!r}; rename one of the Structs")
    _COMPONENTS[name] = schema


def json_body(type_: Any, *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON request body of ``type_`` (a msgspec Struct)."""
    (schema,), found = msgspec.json.schema_components((type_,), ref_template=REF_TEMPLATE)
    for name, component in found.items():
        _register(name, component)
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": schema}},
        }
    }


def install(app: FastAPI) -> None:
    """Make ``app.openapi`` include the registered components (schema built once, cached)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, component in _COMPONENTS.items():
            schemas.setdefault(name, component)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
