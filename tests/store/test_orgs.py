"""store.orgs against real Postgres: creation, slugs, membership and the last-owner rule."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from store import orgs
from tests.store.conftest import UserFactory


def test_slugify() -> None:
    assert orgs.slugify("Ann's Workspace") == "ann-s-workspace"
    assert orgs.slugify("  --  ") == "org"
    assert orgs.slugify("Ünïcode Ørg") == "n-code-rg"
    assert len(orgs.slugify("x" * 100)) == 40


async def test_create_org_makes_the_creator_owner(
    pool: asyncpg.Pool, make_user: UserFactory
) -> None:
    user = await make_user()
    async with pool.acquire() as conn:
        org = await orgs.create_org(conn, name="Acme", owner_id=user.id)
        assert org.slug.startswith("acme-") and not org.is_personal
        assert await orgs.get_role(conn, org.id, user.id) == "owner"
        assert await orgs.get_org(conn, org.id) == org
        listed = await orgs.list_user_orgs(conn, user.id)
        assert [(m.id, m.role) for m in listed] == [(org.id, "owner")]
        assert await orgs.first_org_id(conn, user.id) == org.id


async def test_taken_slug_falls_back_to_a_random_suffix(
    pool: asyncpg.Pool, make_user: UserFactory
) -> None:
    user = await make_user()
    suffix = uuid.uuid4().hex[:8]
    async with pool.acquire() as conn:
        first = await orgs.create_org(conn, name="Same", slug_suffix=suffix, owner_id=user.id)
        second = await orgs.create_org(conn, name="Same", slug_suffix=suffix, owner_id=user.id)
    assert first.slug == f"same-{suffix}"
    assert second.slug != first.slug and second.slug.startswith("same-")


async def test_members_add_list_and_duplicate(pool: asyncpg.Pool, make_user: UserFactory) -> None:
    owner, other = await make_user("Owner"), await make_user("Other")
    async with pool.acquire() as conn:
        org = await orgs.create_org(conn, name="Team", owner_id=owner.id)
        member = await orgs.add_member(conn, org.id, other.id, "member")
        assert (member.user_id, member.email, member.role) == (other.id, other.email, "member")
        with pytest.raises(orgs.AlreadyMember):
            await orgs.add_member(conn, org.id, other.id, "admin")
        listed = await orgs.list_members(conn, org.id)
        assert [(m.user_id, m.role) for m in listed] == [(owner.id, "owner"), (other.id, "member")]
        assert await orgs.get_member(conn, org.id, uuid.uuid4()) is None


async def test_last_owner_cannot_be_demoted_or_removed(
    pool: asyncpg.Pool, make_user: UserFactory
) -> None:
    owner, admin = await make_user(), await make_user()
    async with pool.acquire() as conn:
        org = await orgs.create_org(conn, name="Solo", owner_id=owner.id)
        await orgs.add_member(conn, org.id, admin.id, "admin")
        with pytest.raises(orgs.LastOwner):
            await orgs.change_role(conn, org.id, owner.id, "admin")
        with pytest.raises(orgs.LastOwner):
            await orgs.remove_member(conn, org.id, owner.id)
        assert await orgs.get_role(conn, org.id, owner.id) == "owner"
        # With a second owner the first may step down.
        promoted = await orgs.change_role(conn, org.id, admin.id, "owner")
        assert promoted is not None and promoted.role == "owner"
        demoted = await orgs.change_role(conn, org.id, owner.id, "member")
        assert demoted is not None and demoted.role == "member"
        assert await orgs.remove_member(conn, org.id, owner.id) is True
        assert await orgs.remove_member(conn, org.id, owner.id) is False
        assert await orgs.change_role(conn, org.id, owner.id, "admin") is None


async def test_two_owners_demoting_each_other_at_once_keep_one(
    pool: asyncpg.Pool, make_user: UserFactory
) -> None:
    a, b = await make_user(), await make_user()
    async with pool.acquire() as conn:
        org = await orgs.create_org(conn, name="Pair", owner_id=a.id)
        await orgs.add_member(conn, org.id, b.id, "owner")

    async def demote(user_id: uuid.UUID) -> str:
        async with pool.acquire() as conn:
            try:
                await orgs.change_role(conn, org.id, user_id, "member")
            except orgs.LastOwner:
                return "refused"
            return "demoted"

    results = await asyncio.gather(demote(a.id), demote(b.id))
    assert sorted(results) == ["demoted", "refused"]
    async with pool.acquire() as conn:
        members = await orgs.list_members(conn, org.id)
    assert [m.role for m in members].count("owner") == 1


async def test_rename_keeps_the_slug(pool: asyncpg.Pool, make_user: UserFactory) -> None:
    user = await make_user()
    async with pool.acquire() as conn:
        org = await orgs.create_org(conn, name="Old", owner_id=user.id)
        renamed = await orgs.rename_org(conn, org.id, "New Name")
        assert renamed is not None and renamed.name == "New Name" and renamed.slug == org.slug
        assert await orgs.rename_org(conn, uuid.uuid4(), "x") is None
