"""``GET /openapi.json``: request bodies, success answers, error statuses and credentials,
as the routes really use them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import aiohttp
import msgspec
import pytest

from api.openapi import json_body
from schemas.auth import SignUpRequest as RealSignUp
from schemas.session_ws import ClientMessage, ServerMessage

# Routes whose handlers decode a JSON body (method, path): each must document it.
WITH_BODY = [
    ("post", "/api/auth/sign-up"),
    ("post", "/api/auth/sign-in"),
    ("post", "/api/auth/active-org"),
    ("post", "/api/orgs"),
    ("patch", "/api/orgs/{org_id}"),
    ("post", "/api/orgs/{org_id}/members"),
    ("patch", "/api/orgs/{org_id}/members/{user_id}"),
    ("post", "/api/api-keys"),
    ("post", "/api/automations"),
    ("patch", "/api/automations/{automation_id}"),
    ("post", "/api/automations/{automation_id}/triggers"),
    ("post", "/api/automations/{automation_id}/connections"),
    ("post", "/api/triggers"),
    ("patch", "/api/triggers/{trigger_id}"),
    ("post", "/api/schedules"),
    ("patch", "/api/schedules/{schedule_id}"),
    ("post", "/api/runs/{run_id}/resolve"),
    ("post", "/api/sessions"),
    ("patch", "/api/sessions/{session_id}"),
    ("post", "/api/sessions/{session_id}/message"),
    ("post", "/api/sessions/{session_id}/tools/{tool}"),
]


def _resolve(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/components/schemas/"), ref
    name = ref.removeprefix("#/components/schemas/")
    schemas = spec["components"]["schemas"]
    assert name in schemas, (ref, sorted(schemas))
    found: dict[str, Any] = schemas[name]
    return found


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


@pytest.fixture
async def spec(http: aiohttp.ClientSession) -> dict[str, Any]:
    async with http.get("/openapi.json") as resp:
        assert resp.status == 200
        parsed: dict[str, Any] = json.loads(await resp.text())
    return parsed


async def test_lists_the_routes_and_every_ref_resolves(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.")
    for method, path in WITH_BODY:
        assert method in spec["paths"].get(path, {}), (method, path)
    assert "get" in spec["paths"]["/api/sessions/{session_id}/preview"]
    refs = _refs(spec)
    assert refs
    for ref in refs:
        _resolve(spec, ref)


async def test_sign_up_body_is_documented(spec: dict[str, Any]) -> None:
    body = spec["paths"]["/api/auth/sign-up"]["post"]["requestBody"]
    assert body["required"] is True
    schema = _resolve(spec, body["content"]["application/json"]["schema"]["$ref"])
    assert {"email", "password"} <= set(schema["properties"])
    assert {"email", "password"} <= set(schema["required"])
    assert schema["additionalProperties"] is False  # unknown fields are refused


@pytest.mark.parametrize(("method", "path"), WITH_BODY, ids=lambda v: str(v))
async def test_every_decoding_route_documents_its_body(
    spec: dict[str, Any], method: str, path: str
) -> None:
    body = spec["paths"][path][method]["requestBody"]
    schema = _resolve(spec, body["content"]["application/json"]["schema"]["$ref"])
    assert schema["type"] == "object"


async def test_bodiless_routes_document_no_body(spec: dict[str, Any]) -> None:
    assert "requestBody" not in spec["paths"]["/api/auth/sign-out"]["post"]
    assert "requestBody" not in spec["paths"]["/api/runs/{run_id}/claim"]["post"]


def test_two_structs_of_one_name_are_refused() -> None:
    first = json_body(RealSignUp)
    assert json_body(RealSignUp) == first  # registering the same Struct again is fine

    class SignUpRequest(msgspec.Struct, frozen=True, kw_only=True):
        nickname: str

    with pytest.raises(ValueError, match="SignUpRequest"):
        json_body(SignUpRequest)


async def test_security_schemes_are_declared_and_required_per_route(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["session_cookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "warren_session",
        "description": schemes["session_cookie"]["description"],
    }
    assert schemes["api_key"]["type"] == "http" and schemes["api_key"]["scheme"] == "bearer"
    paths = spec["paths"]
    assert paths["/api/auth/sign-up"]["post"]["security"] == []
    assert paths["/healthz"]["get"]["security"] == []
    assert paths["/api/orgs/{org_id}"]["get"]["security"] == [
        {"session_cookie": []},
        {"api_key": []},
    ]
    # Keys are minted from a browser session only.
    assert paths["/api/orgs"]["post"]["security"] == [{"session_cookie": []}]
    for path, operations in paths.items():
        for method, operation in operations.items():
            for requirement in operation["security"]:
                assert set(requirement) <= set(schemes), (method, path)


def _answer(spec: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    found: dict[str, Any] = spec["paths"][path][method]["responses"][str(status)]
    return found


@pytest.mark.parametrize(
    ("method", "path", "status", "schema", "fields"),
    [
        ("post", "/api/auth/sign-up", 201, "SignUpResponse", {"user", "org"}),
        ("post", "/api/auth/sign-in", 200, "MeResponse", {"user", "active_org", "orgs"}),
        ("post", "/api/orgs", 201, "Org", {"id", "name", "slug"}),
        ("get", "/api/orgs/{org_id}/members", 200, "MemberList", {"members"}),
        ("post", "/api/api-keys", 201, "CreatedApiKey", {"id", "key", "prefix"}),
        ("get", "/api/api-keys", 200, "ApiKeyList", {"api_keys"}),
    ],
)
async def test_success_answers_carry_the_struct_schema(
    spec: dict[str, Any], method: str, path: str, status: int, schema: str, fields: set[str]
) -> None:
    answer = _answer(spec, method, path, status)
    ref = answer["content"]["application/json"]["schema"]["$ref"]
    assert ref == f"#/components/schemas/{schema}"
    assert fields <= set(_resolve(spec, ref)["properties"])
    if status != 200:
        assert "200" not in spec["paths"][path][method]["responses"]


async def test_real_error_statuses_use_the_error_schema(spec: dict[str, Any]) -> None:
    responses = spec["paths"]["/api/orgs/{org_id}/members"]["post"]["responses"]
    assert set(responses) == {"201", "400", "401", "403", "404", "409", "413"}
    for status in ("400", "401", "403", "404", "409", "413"):
        ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
        assert _resolve(spec, ref)["properties"]["error"]
    assert set(spec["paths"]["/api/auth/sign-in"]["post"]["responses"]) == {
        "200",
        "400",
        "401",
        "413",
        "429",
    }
    delete = spec["paths"]["/api/api-keys/{key_id}"]["delete"]["responses"]["204"]
    assert "content" not in delete


async def test_every_error_answer_is_warrens_error_shape(spec: dict[str, Any]) -> None:
    # FastAPI's own 422 (HTTPValidationError) is gone: bad input is Warren's 400.
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                # /readyz's 503 is its status report (which check failed), by design.
                if status.startswith(("4", "5")) and path != "/readyz":
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (
                        method,
                        path,
                        status,
                    )
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def _ws_section() -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("## The session WebSocket")
    return readme[start : readme.index("\n## ", start + 1)]


_COMMON_FIELDS = {"seq", "client_id"}
"""Fields every message of a direction has: the section documents each once."""


@pytest.mark.parametrize("union", [ServerMessage, ClientMessage], ids=["server", "client"])
def test_readme_documents_every_websocket_message(union: Any) -> None:
    section = _ws_section()
    for struct in get_args(union):
        tag = struct.__struct_config__.tag
        row = next((line for line in section.splitlines() if line.startswith(f"| `{tag}` |")), None)
        assert row is not None, f"README's WebSocket section lacks `{tag}`"
        for field in msgspec.structs.fields(struct):
            if field.name in _COMMON_FIELDS:
                assert f"`{field.name}`" in section, field.name  # documented once, for all
            else:
                assert f"`{field.name}" in row, (tag, field.name)
