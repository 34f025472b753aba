"""Orgs and their members.

Who may do what: any member reads the org and its members; admins and owners rename the org,
add existing users and remove admins/members; only owners change roles, grant the owner role
or remove an owner. An org never loses its last owner: demoting or removing them is a 422
(``last_owner``), a well-formed request that breaks a rule. Callers who are not members get
404 for every route here, so org ids leak nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from api.body import body
from api.deps import Caller, parse_uuid, require_browser_user, require_org_member, require_user
from api.errors import ApiError, not_found
from api.openapi import json_body, returns
from api.responses import json_response
from api.state import AppState
from schemas.auth import (
    AddMemberRequest,
    CreateOrgRequest,
    Member,
    MemberList,
    Org,
    OrgList,
    UpdateMemberRequest,
    UpdateOrgRequest,
)
from store import orgs, users

router = APIRouter(prefix="/api/orgs", tags=["orgs"])

Reader = Annotated[Caller, Depends(require_org_member("member"))]
Admin = Annotated[Caller, Depends(require_org_member("admin"))]
Owner = Annotated[Caller, Depends(require_org_member("owner"))]


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.warren
    return state


def _last_owner() -> ApiError:
    return ApiError(422, "an org must keep at least one owner", code="last_owner")


@router.get("")
@returns(OrgList)
async def list_orgs(request: Request, caller: Annotated[Caller, Depends(require_user)]) -> Response:
    """The caller's orgs with their role in each (an API key sees only its own org)."""
    assert caller.user_id is not None
    async with _state(request).pool.acquire() as db:
        memberships = await orgs.list_user_orgs(db, caller.user_id)
    if caller.kind == "api_key":
        memberships = [m for m in memberships if m.id == caller.org_id]
    return json_response(OrgList(orgs=memberships))


@router.post("", openapi_extra=json_body(CreateOrgRequest))
@returns(Org, 201)
async def create_org(
    request: Request, caller: Annotated[Caller, Depends(require_browser_user)]
) -> Response:
    """Create an org with the caller as owner: 201 with the org. Needs a browser session."""
    req = await body(request, CreateOrgRequest)
    assert caller.user_id is not None
    async with _state(request).pool.acquire() as db:
        org = await orgs.create_org(db, name=req.name, owner_id=caller.user_id)
    return json_response(org, status=201)


@router.get("/{org_id}")
@returns(Org)
async def get_org(request: Request, caller: Reader) -> Response:
    """The org (members only)."""
    assert caller.org_id is not None
    async with _state(request).pool.acquire() as db:
        org = await orgs.get_org(db, caller.org_id)
    if org is None:
        raise not_found("org")
    return json_response(org)


@router.patch("/{org_id}", openapi_extra=json_body(UpdateOrgRequest))
@returns(Org)
async def update_org(request: Request, caller: Admin) -> Response:
    """Rename the org (admin+); the slug stays."""
    req = await body(request, UpdateOrgRequest)
    assert caller.org_id is not None
    async with _state(request).pool.acquire() as db:
        org = await orgs.rename_org(db, caller.org_id, req.name)
    if org is None:
        raise not_found("org")
    return json_response(org)


@router.get("/{org_id}/members")
@returns(MemberList)
async def list_members(request: Request, caller: Reader) -> Response:
    """Every member with their role (members only)."""
    assert caller.org_id is not None
    async with _state(request).pool.acquire() as db:
        members = await orgs.list_members(db, caller.org_id)
    return json_response(MemberList(members=members))


@router.post("/{org_id}/members", openapi_extra=json_body(AddMemberRequest))
@returns(Member, 201, errors=(409,))
async def add_member(request: Request, caller: Admin) -> Response:
    """Add an existing user by email (admin+; granting owner needs an owner): 201 member.

    404 (field email) if no user has that email, 409 if they are already a member.
    """
    req = await body(request, AddMemberRequest)
    assert caller.org_id is not None
    if req.role == "owner" and not caller.has_role("owner"):
        raise ApiError(403, "only an owner can add an owner")
    async with _state(request).pool.acquire() as db:
        user = await users.get_user_by_email(db, req.email)
        if user is None:
            raise ApiError(404, "no user has this email", field="email")
        try:
            member = await orgs.add_member(db, caller.org_id, user.id, req.role)
        except orgs.AlreadyMember:
            raise ApiError(409, "this user is already a member", field="email") from None
    return json_response(member, status=201)


@router.patch("/{org_id}/members/{user_id}", openapi_extra=json_body(UpdateMemberRequest))
@returns(Member, errors=(422,))
async def update_member(request: Request, caller: Owner, user_id: str) -> Response:
    """Change a member's role (owner only); 422 if it would demote the last owner."""
    req = await body(request, UpdateMemberRequest)
    assert caller.org_id is not None
    target = parse_uuid(user_id, "member")
    async with _state(request).pool.acquire() as db:
        try:
            member = await orgs.change_role(db, caller.org_id, target, req.role)
        except orgs.LastOwner:
            raise _last_owner() from None
    if member is None:
        raise not_found("member")
    return json_response(member)


@router.delete("/{org_id}/members/{user_id}")
@returns(None, 204, errors=(422,))
async def remove_member(request: Request, caller: Admin, user_id: str) -> Response:
    """Remove a member (admin+; an owner only by another owner): 204.

    422 if they are the last owner. Their API keys in this org stop working with them.
    """
    assert caller.org_id is not None
    target = parse_uuid(user_id, "member")
    async with _state(request).pool.acquire() as db:
        role = await orgs.get_role(db, caller.org_id, target)
        if role is None:
            raise not_found("member")
        if role == "owner" and not caller.has_role("owner"):
            raise ApiError(403, "only an owner can remove an owner")
        try:
            removed = await orgs.remove_member(db, caller.org_id, target)
        except orgs.LastOwner:
            raise _last_owner() from None
    if not removed:
        raise not_found("member")
    return Response(status_code=204)
