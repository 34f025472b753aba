"""store.api_keys against real Postgres: org scoping, revocation, authentication."""

from __future__ import annotations

import uuid

import asyncpg

from security import tokens
from store import api_keys, orgs
from tests.store.conftest import UserFactory


async def test_keys_are_scoped_to_their_org(pool: asyncpg.Pool, make_user: UserFactory) -> None:
    alice, bob = await make_user(), await make_user()
    new = tokens.generate_api_key()
    async with pool.acquire() as conn:
        org_a = await orgs.create_org(conn, name="A", owner_id=alice.id)
        org_b = await orgs.create_org(conn, name="B", owner_id=bob.id)
        key = await api_keys.create_key(
            conn,
            org_id=org_a.id,
            created_by=alice.id,
            name="ci",
            prefix=new.prefix,
            key_hash=new.key_hash,
        )
        assert [k.id for k in await api_keys.list_keys(conn, org_a.id)] == [key.id]
        assert await api_keys.list_keys(conn, org_b.id) == []
        assert await api_keys.get_key(conn, org_a.id, key.id) == key
        assert await api_keys.get_key(conn, org_b.id, key.id) is None
        assert await api_keys.revoke_key(conn, org_b.id, key.id) is False
        assert await api_keys.authenticate(conn, new.key_hash) is not None


async def test_authenticate_acts_as_creator_with_current_role(
    pool: asyncpg.Pool, make_user: UserFactory
) -> None:
    owner, member = await make_user(), await make_user()
    new = tokens.generate_api_key()
    async with pool.acquire() as conn:
        org = await orgs.create_org(conn, name="K", owner_id=owner.id)
        await orgs.add_member(conn, org.id, member.id, "member")
        key = await api_keys.create_key(
            conn,
            org_id=org.id,
            created_by=member.id,
            name="m",
            prefix=new.prefix,
            key_hash=new.key_hash,
        )
        found = await api_keys.authenticate(conn, new.key_hash)
        assert found == api_keys.KeyOwner(
            key_id=key.id, org_id=org.id, user_id=member.id, role="member"
        )
        used = await api_keys.get_key(conn, org.id, key.id)
        assert used is not None and used.last_used_at is not None
        await orgs.change_role(conn, org.id, member.id, "admin")
        found = await api_keys.authenticate(conn, new.key_hash)
        assert found is not None and found.role == "admin"
        # A creator who left the org takes the key's power with them.
        await orgs.remove_member(conn, org.id, member.id)
        assert await api_keys.authenticate(conn, new.key_hash) is None


async def test_revoked_key_no_longer_authenticates(
    pool: asyncpg.Pool, make_user: UserFactory
) -> None:
    user = await make_user()
    new = tokens.generate_api_key()
    async with pool.acquire() as conn:
        org = await orgs.create_org(conn, name="R", owner_id=user.id)
        key = await api_keys.create_key(
            conn,
            org_id=org.id,
            created_by=user.id,
            name="r",
            prefix=new.prefix,
            key_hash=new.key_hash,
        )
        assert await api_keys.revoke_key(conn, org.id, key.id) is True
        assert await api_keys.revoke_key(conn, org.id, key.id) is False
        assert await api_keys.authenticate(conn, new.key_hash) is None
        assert await api_keys.list_keys(conn, org.id) == []
        assert await api_keys.get_key(conn, org.id, key.id) is None
        assert (
            await api_keys.authenticate(conn, tokens.hash_api_key("wk_" + uuid.uuid4().hex)) is None
        )
