"""The Ray side of the session actor: one named actor per session, and recovery on restart."""

from __future__ import annotations

import asyncio

import ray

from actors import session_client
from actors.session.runtime import ProviderFactory
from core.settings import Settings
from schemas.sessions import ClientInfo
from tests.actors.conftest import SessionFactory, eventually
from tests.fakes.opencode import FakeOpenCode


async def test_one_named_actor_per_session(
    ray_cluster: None,
    settings: Settings,
    make_session: SessionFactory,
    provider_factory: ProviderFactory,
) -> None:
    sid = str((await make_session()).id)
    assert await session_client.existing_session_actor(sid) is None
    first = session_client.session_actor(sid, settings, provider_factory)
    session_client.forget_actor(sid)  # a second replica, without the cached handle
    second = session_client.session_actor(sid, settings, provider_factory)
    assert await first.ping.remote() == await second.ping.remote()
    assert await session_client.existing_session_actor(sid) is not None
    await session_client.kill_session_actor(sid)
    await asyncio.sleep(0.5)
    assert await session_client.existing_session_actor(sid) is None


async def test_restarted_actor_reconnects_on_its_own(
    ray_cluster: None,
    settings: Settings,
    make_session: SessionFactory,
    fake_opencode: FakeOpenCode,
    provider_factory: ProviderFactory,
) -> None:
    sid = str((await make_session()).id)
    handle = session_client.session_actor(sid, settings, provider_factory)
    try:
        info: ClientInfo = await handle.ensure_runtime_ready.remote()
        assert info.runtime_ready and info.status == "running"
        pid = await handle.ping.remote()
        opened = len(fake_opencode.requests_to("/event"))
        ray.kill(handle, no_restart=False)
        # No call is made: the restarted actor finds its sandbox and reopens the stream.
        await eventually(lambda: len(fake_opencode.requests_to("/event")) > opened, 30)
        assert await handle.ping.remote() != pid
        info = await handle.get_status.remote()
        assert info.runtime_ready
        # It reused the sandbox and the OpenCode session instead of making new ones.
        assert len(fake_opencode.sessions) == 1
    finally:
        await session_client.kill_session_actor(sid)
