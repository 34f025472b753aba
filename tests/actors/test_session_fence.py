"""The session event log is fenced: every publish carries JetStream's
``Nats-Expected-Last-Subject-Sequence``, and each actor incarnation claims an epoch in
Postgres at start. An old (zombie) incarnation's publish after the live one wrote is
refused and it stops publishing; the live one, refused because a zombie slipped an event
in before it wrote anything, re-reads the subject's last sequence and goes on.

Two :class:`SessionCore` objects on one session are two incarnations, exactly what Ray
would run if an actor it declared dead kept running beside its restart."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from nats.js import JetStreamContext

from actors.session.core import SessionCore
from actors.session.log import EventLogFenced, read_events
from actors.session.runtime import ProviderFactory
from core.bus import Subjects
from core.settings import Settings
from schemas.session_ws import Error
from tests.actors.conftest import SessionFactory


async def _messages(js: JetStreamContext, settings: Settings, sid: str) -> list[str]:
    subjects = Subjects(settings.nats_prefix)
    return [e.message async for _, e in read_events(js, subjects, sid, 0) if isinstance(e, Error)]


async def _say(core: SessionCore, text: str) -> None:
    await core.emit([Error(message=text)])


@pytest.fixture
async def incarnations(
    settings: Settings, make_session: SessionFactory, provider_factory: ProviderFactory
) -> AsyncIterator[tuple[str, SessionCore, SessionCore]]:
    """A session and two incarnations of its actor (neither started yet)."""
    sid = str((await make_session()).id)
    old = SessionCore(sid, settings, provider_factory)
    new = SessionCore(sid, settings, provider_factory)
    try:
        yield sid, old, new
    finally:
        await old.close()
        await new.close()


async def test_an_old_incarnation_cannot_publish_beside_the_live_one(
    settings: Settings,
    js: JetStreamContext,
    incarnations: tuple[str, SessionCore, SessionCore],
) -> None:
    sid, old, new = incarnations
    await old.started()
    await _say(old, "old 1")
    await new.started()  # the restart: a new epoch
    await _say(new, "new 1")
    with pytest.raises(EventLogFenced):
        await _say(old, "zombie")
    # Once fenced it publishes nothing more, without asking the server again.
    assert old.log is not None and old.log.fenced
    with pytest.raises(EventLogFenced):
        await _say(old, "zombie again")
    await _say(new, "new 2")
    assert await _messages(js, settings, sid) == ["old 1", "new 1", "new 2"]


async def test_the_live_incarnation_rereads_its_sequence_when_refused(
    settings: Settings,
    js: JetStreamContext,
    incarnations: tuple[str, SessionCore, SessionCore],
) -> None:
    sid, old, new = incarnations
    await old.started()
    await new.started()
    # The zombie writes before the live one has: the subject moved under the live one.
    await _say(old, "slipped in")
    await _say(new, "live 1")  # refused once, re-read, published
    await _say(new, "live 2")
    with pytest.raises(EventLogFenced):
        await _say(old, "zombie")
    assert await _messages(js, settings, sid) == ["slipped in", "live 1", "live 2"]
    assert new.log is not None and old.log is not None
    assert not new.log.fenced and old.log.fenced
