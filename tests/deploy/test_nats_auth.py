"""Scoped NATS credentials: a real nats-server running the configuration the stack writes.

Each role does its work through Warren's own code (streams declared as the ingress does,
the trigger pool's consumer, a session's event log, the ingress replaying it) and is refused
what it must not do; an external publisher minted by ``python -m deploy nats-user`` may only
publish custom trigger events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NatsClientError

from actors.pool import ACK, DeadLetters, Outcome, PullLoop
from actors.session.log import EventLog, read_events
from actors.triggers import consumer_spec
from core.bus import NatsRole, Subjects, connect, declare_streams, inbox_prefix
from deploy import cli
from deploy import state as files
from deploy.nats import EmbeddedNats
from deploy.net import free_port
from schemas.session_ws import Error

PREFIX = "authtest"
MAX_BYTES = 8 * 1024**2


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """The stack's embedded NATS, with the users and permissions it writes for ``PREFIX``."""
    paths = files.Paths(tmp_path)
    running = EmbeddedNats(paths.nats, free_port(), prefix=PREFIX)
    running.start()
    yield running
    running.stop()


class Client:
    """A NATS connection that records the server's permission errors."""

    def __init__(self) -> None:
        self.errors: asyncio.Queue[str] = asyncio.Queue()
        self.nc: NATS | None = None

    async def error(self, exc: Exception) -> None:
        await self.errors.put(str(exc))

    async def violation(self) -> str:
        """The next error the server sent (permission violations come asynchronously)."""
        return await asyncio.wait_for(self.errors.get(), timeout=30)


@pytest.fixture
async def clients() -> AsyncIterator[list[NATS]]:
    """Connections opened by a test, closed after it."""
    opened: list[NATS] = []
    yield opened
    for nc in opened:
        await nc.close()


async def as_role(server: EmbeddedNats, role: NatsRole, opened: list[NATS]) -> NATS:
    """A connection as ``role`` through Warren's connection helper."""
    nc = await connect(server.url, name=f"test-{role}", credentials=server.credentials(role))
    opened.append(nc)
    return nc


async def as_user(server: EmbeddedNats, user: str, password: str, opened: list[NATS]) -> Client:
    """A plain nats-py client, as an outside system would connect (with its inbox prefix)."""
    client = Client()
    client.nc = await nats.connect(
        server.url,
        user=user,
        password=password,
        inbox_prefix=inbox_prefix(user),
        error_cb=client.error,
        allow_reconnect=False,
    )
    opened.append(client.nc)
    return client


async def wake_until_heard(ingress: NATS, subjects: Subjects, woke: asyncio.Queue[Msg]) -> bytes:
    """Publish the outbox wake until the pool hears one.

    A wake is a core-NATS nudge, at most once by design (the dispatcher also polls); the
    server may route the first one before it has the pool's fresh subscription in place
    (seen about once in 20 runs), so the test repeats it rather than count on one.
    """
    while True:
        await ingress.publish(subjects.outbox_wake, b"wake")
        try:
            return (await asyncio.wait_for(woke.get(), timeout=0.5)).data
        except TimeoutError:
            continue


async def test_each_role_does_its_work_through_warrens_code(
    server: EmbeddedNats, clients: list[NATS]
) -> None:
    subjects = Subjects(PREFIX)
    ingress = await as_role(server, "ingress", clients)
    ingress_js = ingress.jetstream()
    # The ingress declares the streams at start-up (api/state.py) and publishes webhooks.
    await declare_streams(ingress_js, subjects, max_bytes=MAX_BYTES)
    ack = await ingress_js.publish(subjects.trigger_events("github"), b'{"webhook":1}')
    assert ack.stream == subjects.stream("TRIGGER_EVENTS")
    await ingress.publish(subjects.outbox_wake, b"")

    # The trigger pool consumes it with its durable consumer and acks it.
    pool = await as_role(server, "pool", clients)
    pool_js = pool.jetstream()
    received: asyncio.Queue[Msg] = asyncio.Queue()

    async def handle(msg: Msg) -> Outcome:
        await received.put(msg)
        return ACK

    spec = consumer_spec(subjects)
    # The handler acks everything, so nothing is parked: no database behind the dead letters
    # (their NATS notice is published by the pool role below).
    parking = DeadLetters(None, pool_js, subjects, spec)  # type: ignore[arg-type]
    loop = asyncio.create_task(PullLoop(pool_js, spec, handle, parking).run())
    try:
        msg = await asyncio.wait_for(received.get(), timeout=30)
        assert msg.data == b'{"webhook":1}'
    finally:
        loop.cancel()
    await pool_js.publish(subjects.trigger_dead_letter("malformed"), b"{}")
    await pool_js.publish(subjects.runs("enrich"), b"{}", headers={"Nats-Msg-Id": "r1"})
    woke: asyncio.Queue[Msg] = asyncio.Queue()
    await pool.subscribe(subjects.outbox_wake, cb=woke.put)
    await pool.flush()
    assert (await asyncio.wait_for(wake_until_heard(ingress, subjects, woke), 30)) == b"wake"

    # A session actor writes its event log; the ingress replays it for a WebSocket.
    session = await as_role(server, "session", clients)

    async def live() -> bool:
        return True

    log = EventLog(session, subjects, "s1", stream_max_bytes=MAX_BYTES, is_current=live)
    await log.open()
    seq = await log.publish(Error(message="hello", code="test"))
    replayed = [event async for event in read_events(ingress_js, subjects, "s1", 0)]
    assert [(s, e.message) for s, e in replayed] == [(seq, "hello")]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("role", "subject"),
    [
        ("ingress", "authtest.sessions.s1.events"),  # the ingress cannot forge session events
        ("session", "authtest.triggers.events.github"),  # nor a session forge a webhook
        ("session", "other.sessions.s1.events"),  # nor anyone touch another prefix
    ],
)
async def test_internal_roles_are_refused_other_subjects(
    server: EmbeddedNats, clients: list[NATS], role: NatsRole, subject: str
) -> None:
    user, password = server.credentials(role).split(":", 1)
    client = await as_user(server, user, password, clients)
    assert client.nc is not None
    await client.nc.publish(subject, b"forged")
    assert await client.violation() == f'nats: permissions violation for publish to "{subject}"'


async def test_an_external_publisher_may_only_publish_custom_trigger_events(
    server: EmbeddedNats,
    clients: list[NATS],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    subjects = Subjects(PREFIX)
    ingress = await as_role(server, "ingress", clients)
    await declare_streams(ingress.jetstream(), subjects, max_bytes=MAX_BYTES)
    # Minted by the command the README documents, while the server runs.
    assert cli.main(["nats-user", "ci", "--root", str(tmp_path)]) == 0
    printed = dict(
        line.split(None, 1) for line in capsys.readouterr().out.splitlines() if "  " in line
    )
    user, password = printed["user"].strip(), printed["password"].strip()
    assert printed["publish"].split()[-1] == "authtest.triggers.events.custom.>"
    publisher = await as_user(server, user, password, clients)
    assert publisher.nc is not None
    js = publisher.nc.jetstream()
    ack = await js.publish("authtest.triggers.events.custom.t_0123456789ab", b'{"title":"x"}')
    assert ack.stream == subjects.stream("TRIGGER_EVENTS")

    for forged in ("authtest.sessions.s1.events", "authtest.triggers.events.github"):
        await publisher.nc.publish(forged, b"forged")
        assert await publisher.violation() == (
            f'nats: permissions violation for publish to "{forged}"'
        )
    # It cannot read what JetStream delivers to the inboxes of Warren's own users.
    await publisher.nc.subscribe("_INBOX_warren_ingress.>")
    assert "permissions violation for subscription" in await publisher.violation()
    # Nothing forged was stored: only the custom event is in the trigger stream.
    info = await ingress.jetstream().stream_info(subjects.stream("TRIGGER_EVENTS"))
    assert info.state.messages == 1
    assert password not in server.log_path.read_text()


async def test_clients_without_a_login_are_refused(server: EmbeddedNats) -> None:
    with pytest.raises(NatsClientError):
        await nats.connect(
            server.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2
        )


async def test_only_the_admin_login_deletes_streams(
    server: EmbeddedNats, clients: list[NATS]
) -> None:
    subjects = Subjects(PREFIX)
    ingress = await as_role(server, "ingress", clients)
    await declare_streams(ingress.jetstream(), subjects, max_bytes=MAX_BYTES)
    stream = subjects.stream("RUNS")
    user, password = server.credentials("pool").split(":", 1)
    pool = await as_user(server, user, password, clients)
    assert pool.nc is not None
    await pool.nc.publish(f"$JS.API.STREAM.DELETE.{stream}", b"")
    # nats-py lower-cases the server's error text.
    assert await pool.violation() == (
        f'nats: permissions violation for publish to "$js.api.stream.delete.{stream.lower()}"'
    )
    admin = await connect(server.admin_url, name="test-admin")  # test tooling, operators
    clients.append(admin)
    assert await admin.jetstream().delete_stream(stream)
