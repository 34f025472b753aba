"""API keys of the caller's active org.

Policy: any member may create keys, from a signed-in browser session only (a leaked key
cannot mint more keys). A key acts as its creator with the creator's current role in the
key's org, so a member's key never exceeds what that member may do. Every member sees the
org's keys (metadata only: name, visible prefix, creator, dates). A member may revoke their
own keys; admins and owners may revoke any key of the org. Revoked keys answer 401. Keys of
another org are 404. The full key appears exactly once, in the creation response.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from api.body import body
from api.deps import Caller, parse_uuid, require_active_org
from api.errors import ApiError, not_found
from api.openapi import json_body, returns
from api.responses import json_response
from api.state import AppState
from schemas.auth import ApiKeyList, CreateApiKeyRequest, CreatedApiKey
from security import tokens
from store import api_keys

router = APIRouter(prefix="/api/api-keys", tags=["api-keys"])

OrgMember = Annotated[Caller, Depends(require_active_org("member"))]


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.warren
    return state


@router.post("", openapi_extra=json_body(CreateApiKeyRequest))
@returns(CreatedApiKey, 201)
async def create_api_key(request: Request, caller: OrgMember) -> Response:
    """Create a key for the active org: 201 with the full key, shown only this once."""
    if caller.auth_session_id is None:
        raise ApiError(403, "API keys can only be created from a signed-in browser session")
    req = await body(request, CreateApiKeyRequest)
    assert caller.org_id is not None and caller.user_id is not None
    new = tokens.generate_api_key()
    async with _state(request).pool.acquire() as db:
        key = await api_keys.create_key(
            db,
            org_id=caller.org_id,
            created_by=caller.user_id,
            name=req.name,
            prefix=new.prefix,
            key_hash=new.key_hash,
        )
    created = CreatedApiKey(
        id=key.id, name=key.name, prefix=key.prefix, key=new.key, created_at=key.created_at
    )
    return json_response(created, status=201)


@router.get("")
@returns(ApiKeyList)
async def list_api_keys(request: Request, caller: OrgMember) -> Response:
    """The active org's unrevoked keys, without key material."""
    assert caller.org_id is not None
    async with _state(request).pool.acquire() as db:
        keys = await api_keys.list_keys(db, caller.org_id)
    return json_response(ApiKeyList(api_keys=keys))


@router.delete("/{key_id}")
@returns(None, 204)
async def revoke_api_key(request: Request, caller: OrgMember, key_id: str) -> Response:
    """Revoke a key of the active org (own keys, or any as admin+): 204."""
    assert caller.org_id is not None
    target = parse_uuid(key_id, "API key")
    async with _state(request).pool.acquire() as db:
        key = await api_keys.get_key(db, caller.org_id, target)
        if key is None:
            raise not_found("API key")
        if key.created_by != caller.user_id and not caller.has_role("admin"):
            raise ApiError(403, "only admins can revoke other members' keys")
        if not await api_keys.revoke_key(db, caller.org_id, target):
            raise not_found("API key")
    return Response(status_code=204)
