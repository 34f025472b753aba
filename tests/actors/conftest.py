"""Fixtures for session-actor tests: a migrated database, JetStream streams, session rows,
and a synthetic OpenCode server with a provider pointing at it."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from nats.js import JetStreamContext

from actors.session.runtime import ProviderFactory
from core.bus import Subjects, connect, declare_streams
from core.migrate import apply_migrations
from core.settings import Settings
from schemas.sessions import NewSession, SessionRecord
from store import orgs, sessions, users
from tests.fakes.opencode import FakeOpenCode, fake_provider


@pytest.fixture(scope="session")
async def pool(db: asyncpg.Pool) -> asyncpg.Pool:
    """The test database with every migration applied."""
    async with db.acquire() as conn:
        await apply_migrations(conn)
    return db


@pytest.fixture(scope="session")
async def js(settings: Settings) -> AsyncIterator[JetStreamContext]:
    """JetStream with Warren's streams declared under the test prefix."""
    nc = await connect(settings.nats_url, name="warren-test-actors")
    context = nc.jetstream()
    await declare_streams(
        context, Subjects(settings.nats_prefix), max_bytes=settings.nats_stream_max_bytes
    )
    yield context
    await nc.close()


SessionFactory = Callable[..., Awaitable[SessionRecord]]


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    """Poll ``check`` until it holds (state in other processes can't signal an Event)."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


@pytest.fixture
def make_session(pool: asyncpg.Pool) -> SessionFactory:
    """Create a user, their org and a session row (fields of NewSession as keywords)."""

    async def factory(**fields: object) -> SessionRecord:
        async with pool.acquire() as conn:
            user = await users.create_user(
                conn,
                email=f"{uuid.uuid4().hex[:12]}@example.test",
                name="Actor Test",
                password_hash="scrypt$not-a-real-hash",
            )
            org = await orgs.create_org(conn, name="Actors", owner_id=user.id)
        new = NewSession(org_id=org.id, created_by=user.id, sandbox_provider="fake", **fields)  # type: ignore[arg-type]
        record, _ = await sessions.insert_session(pool, new)
        return record

    return factory


@pytest.fixture
async def fake_opencode() -> AsyncIterator[FakeOpenCode]:
    """A synthetic OpenCode server for one test."""
    async with FakeOpenCode(heartbeat_interval=1.0) as server:
        yield server


@pytest.fixture
def provider_factory(fake_opencode: FakeOpenCode, tmp_path: Path) -> ProviderFactory:
    """A picklable provider factory whose sandboxes are ``fake_opencode``."""
    return functools.partial(fake_provider, fake_opencode.url, str(tmp_path / "sandbox"))
