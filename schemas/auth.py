"""Wire shapes of sign-up/in, orgs, members, API keys and the signed tokens Warren mints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

Role = Literal["owner", "admin", "member"]
"""Org roles, strongest first: owner > admin > member."""

ROLE_RANK: dict[str, int] = {"member": 0, "admin": 1, "owner": 2}
"""Comparable strength of each :data:`Role`."""

# Deliberately loose: one @, no spaces, a dot in the domain. Deliverability is not checked.
Email = Annotated[
    str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", min_length=3, max_length=320)
]
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=1024)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


# --- requests -------------------------------------------------------------------------------


class SignUpRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/auth/sign-up``."""

    email: Email
    password: Password
    name: Name


class SignInRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/auth/sign-in``. The password length is not re-checked here (401, not 400)."""

    email: Annotated[str, msgspec.Meta(max_length=320)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]


class ActiveOrgRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/auth/active-org``: switch the browser session's active org."""

    org_id: uuid.UUID


class CreateOrgRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/orgs``."""

    name: Name


class UpdateOrgRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``PATCH /api/orgs/{id}``."""

    name: Name


class AddMemberRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/orgs/{id}/members``: add an existing user by email."""

    email: Email
    role: Role = "member"


class UpdateMemberRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``PATCH /api/orgs/{id}/members/{user_id}``."""

    role: Role


class CreateApiKeyRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/api-keys``."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


# --- responses ------------------------------------------------------------------------------


class User(msgspec.Struct, frozen=True, kw_only=True):
    """A user as the API shows it (never the password hash)."""

    id: uuid.UUID
    email: str
    name: str
    created_at: datetime


class Org(msgspec.Struct, frozen=True, kw_only=True):
    """An organization."""

    id: uuid.UUID
    name: str
    slug: str
    is_personal: bool
    created_at: datetime


class OrgMembership(msgspec.Struct, frozen=True, kw_only=True):
    """An org the caller belongs to, with the caller's role in it."""

    id: uuid.UUID
    name: str
    slug: str
    role: Role


class Member(msgspec.Struct, frozen=True, kw_only=True):
    """A member of an org."""

    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    joined_at: datetime


class SignUpResponse(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/auth/sign-up`` (201): the new user and their personal org."""

    user: User
    org: Org


class MeResponse(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/auth/me`` and ``POST /api/auth/sign-in``."""

    user: User
    active_org: Org | None
    orgs: list[OrgMembership]


class OrgList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/orgs``: the caller's orgs."""

    orgs: list[OrgMembership]


class MemberList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/orgs/{id}/members``."""

    members: list[Member]


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """An API key's metadata; never any key material beyond the visible prefix."""

    id: uuid.UUID
    name: str
    prefix: str
    created_by: uuid.UUID
    created_at: datetime
    last_used_at: datetime | None = None


class ApiKeyList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/api-keys``: the active org's unrevoked keys."""

    api_keys: list[ApiKey]


class CreatedApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/api-keys`` (201): the only time the full ``key`` is ever returned."""

    id: uuid.UUID
    name: str
    prefix: str
    key: str
    created_at: datetime


class WsToken(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/auth/ws-token``: a short-lived token for the session WebSocket."""

    token: str
    expires_at: datetime


# --- signed token claims --------------------------------------------------------------------


class JwtHeader(msgspec.Struct, frozen=True, kw_only=True):
    """The JOSE header of every token Warren mints (HS256 only)."""

    alg: str
    typ: str = "JWT"


class WsClaims(msgspec.Struct, frozen=True, kw_only=True):
    """Claims of a WebSocket token: the user, their org, and a short lifetime."""

    sub: str
    org: str
    iat: int
    exp: int
    typ: Literal["ws"] = "ws"


class ServiceClaims(msgspec.Struct, frozen=True, kw_only=True):
    """Claims of a service token minted by an operator; ``sub`` is the service name."""

    sub: str
    iat: int
    exp: int
    typ: Literal["service"] = "service"
