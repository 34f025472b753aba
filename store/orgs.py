"""Orgs and their members: raw SQL over ``orgs`` and ``org_members``.

Every query about an org's members takes the ``org_id``. Changes that could leave an org
without an owner lock the org row first, so two concurrent demotions cannot both pass the
"another owner remains" check.
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import cast

import asyncpg

from schemas.auth import Member, Org, OrgMembership, Role

_ORG_COLUMNS = "id, name, slug, is_personal, created_at"
_NON_SLUG = re.compile(r"[^a-z0-9]+")
_SLUG_ATTEMPTS = 5


class AlreadyMember(Exception):
    """The user is already a member of the org."""


class LastOwner(Exception):
    """The change would leave the org without an owner."""


def slugify(name: str) -> str:
    """A URL-safe slug stem for ``name``: lower-case ASCII words joined by dashes."""
    stem = _NON_SLUG.sub("-", name.lower()).strip("-")[:40].strip("-")
    return stem or "org"


def _org(row: asyncpg.Record) -> Org:
    return Org(
        id=row["id"],
        name=row["name"],
        slug=row["slug"],
        is_personal=row["is_personal"],
        created_at=row["created_at"],
    )


def _member(row: asyncpg.Record) -> Member:
    return Member(
        user_id=row["user_id"],
        email=row["email"],
        name=row["name"],
        role=cast(Role, row["role"]),
        joined_at=row["joined_at"],
    )


async def create_org(
    conn: asyncpg.Connection,
    *,
    name: str,
    owner_id: uuid.UUID,
    slug_stem: str | None = None,
    slug_suffix: str | None = None,
    is_personal: bool = False,
) -> Org:
    """Create an org with ``owner_id`` as its owner, in one transaction.

    The slug is ``{slugify(slug_stem or name)}-{slug_suffix}``; if taken (or no suffix is
    given) a random suffix is used instead.
    """
    async with conn.transaction():
        suffix = slug_suffix or secrets.token_hex(4)
        for _ in range(_SLUG_ATTEMPTS):
            row = await conn.fetchrow(
                f"INSERT INTO orgs (name, slug, is_personal) VALUES ($1, $2, $3)"
                f" ON CONFLICT (slug) DO NOTHING RETURNING {_ORG_COLUMNS}",
                name,
                f"{slugify(slug_stem or name)}-{suffix}",
                is_personal,
            )
            if row is not None:
                break
            suffix = secrets.token_hex(4)
        else:
            raise RuntimeError("could not find a free org slug")
        org = _org(row)
        await conn.execute(
            "INSERT INTO org_members (org_id, user_id, role) VALUES ($1, $2, 'owner')",
            org.id,
            owner_id,
        )
    return org


async def get_org(conn: asyncpg.Connection, org_id: uuid.UUID) -> Org | None:
    """The org with ``org_id``, or None."""
    row = await conn.fetchrow(f"SELECT {_ORG_COLUMNS} FROM orgs WHERE id = $1", org_id)
    return None if row is None else _org(row)


async def rename_org(conn: asyncpg.Connection, org_id: uuid.UUID, name: str) -> Org | None:
    """Set the org's display name (the slug stays); None if there is no such org."""
    row = await conn.fetchrow(
        f"UPDATE orgs SET name = $2 WHERE id = $1 RETURNING {_ORG_COLUMNS}", org_id, name
    )
    return None if row is None else _org(row)


async def list_user_orgs(conn: asyncpg.Connection, user_id: uuid.UUID) -> list[OrgMembership]:
    """The orgs ``user_id`` belongs to with their role, oldest membership first."""
    rows = await conn.fetch(
        """SELECT o.id, o.name, o.slug, m.role
           FROM org_members m JOIN orgs o ON o.id = m.org_id
           WHERE m.user_id = $1
           ORDER BY m.created_at, o.created_at, o.id""",
        user_id,
    )
    return [
        OrgMembership(id=r["id"], name=r["name"], slug=r["slug"], role=cast(Role, r["role"]))
        for r in rows
    ]


async def get_role(conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> Role | None:
    """``user_id``'s role in ``org_id``, or None if not a member."""
    role = await conn.fetchval(
        "SELECT role FROM org_members WHERE org_id = $1 AND user_id = $2", org_id, user_id
    )
    return cast(Role | None, role)


async def first_org_id(conn: asyncpg.Connection, user_id: uuid.UUID) -> uuid.UUID | None:
    """The org of ``user_id``'s oldest membership, or None if they belong to none."""
    org_id = await conn.fetchval(
        "SELECT org_id FROM org_members WHERE user_id = $1 ORDER BY created_at, org_id LIMIT 1",
        user_id,
    )
    return cast(uuid.UUID | None, org_id)


_MEMBER_SELECT = """SELECT m.user_id, u.email, u.name, m.role, m.created_at AS joined_at
                    FROM org_members m JOIN users u ON u.id = m.user_id"""


async def list_members(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[Member]:
    """Every member of ``org_id``, oldest first."""
    rows = await conn.fetch(
        f"{_MEMBER_SELECT} WHERE m.org_id = $1 ORDER BY m.created_at, m.user_id", org_id
    )
    return [_member(r) for r in rows]


async def get_member(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID
) -> Member | None:
    """``user_id`` as a member of ``org_id``, or None."""
    row = await conn.fetchrow(
        f"{_MEMBER_SELECT} WHERE m.org_id = $1 AND m.user_id = $2", org_id, user_id
    )
    return None if row is None else _member(row)


async def add_member(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID, role: Role
) -> Member:
    """Make ``user_id`` a member of ``org_id``; :class:`AlreadyMember` if they are one."""
    inserted = await conn.fetchval(
        """INSERT INTO org_members (org_id, user_id, role) VALUES ($1, $2, $3)
           ON CONFLICT (org_id, user_id) DO NOTHING RETURNING user_id""",
        org_id,
        user_id,
        role,
    )
    if inserted is None:
        raise AlreadyMember(str(user_id))
    member = await get_member(conn, org_id, user_id)
    assert member is not None  # just inserted, and members are only removed explicitly
    return member


async def _lock_org(conn: asyncpg.Connection, org_id: uuid.UUID) -> None:
    # Serialise every membership change of this org that checks the owner count.
    await conn.execute("SELECT 1 FROM orgs WHERE id = $1 FOR UPDATE", org_id)


async def _other_owner_exists(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID
) -> bool:
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM org_members
                              WHERE org_id = $1 AND user_id <> $2 AND role = 'owner')""",
            org_id,
            user_id,
        )
    )


async def change_role(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID, role: Role
) -> Member | None:
    """Set a member's role; None if not a member; :class:`LastOwner` if it demotes the last."""
    async with conn.transaction():
        await _lock_org(conn, org_id)
        current = await get_role(conn, org_id, user_id)
        if current is None:
            return None
        if current == "owner" and role != "owner":
            if not await _other_owner_exists(conn, org_id, user_id):
                raise LastOwner(str(org_id))
        await conn.execute(
            "UPDATE org_members SET role = $3 WHERE org_id = $1 AND user_id = $2",
            org_id,
            user_id,
            role,
        )
        return await get_member(conn, org_id, user_id)


async def remove_member(conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Remove a member; False if not a member; :class:`LastOwner` if it is the last owner."""
    async with conn.transaction():
        await _lock_org(conn, org_id)
        current = await get_role(conn, org_id, user_id)
        if current is None:
            return False
        if current == "owner" and not await _other_owner_exists(conn, org_id, user_id):
            raise LastOwner(str(org_id))
        await conn.execute(
            "DELETE FROM org_members WHERE org_id = $1 AND user_id = $2", org_id, user_id
        )
        return True
