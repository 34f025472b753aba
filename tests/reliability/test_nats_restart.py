"""NATS restarted under a bounded webhook load: every delivery answered 2xx is stored once.

A nats-server of the test's own (its port and store folder, never the machine's), and a
Warren ingress pointing at it: the same FastAPI app the Serve deployment runs, served by
uvicorn in a process of its own (no Ray there, so no background actor consumes the
stream: what is stored stays to be counted). Signed GitHub deliveries are sent by a few
concurrent senders while the server is stopped and started again; a sender retries a
delivery that got 503 or no answer, with the same body and headers, as GitHub redelivers.
Every delivery must end accepted, and the TRIGGER_EVENTS stream must hold each exactly
once (a publish acked after its 503 is deduplicated by its ``Nats-Msg-Id``).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import msgspec
import pytest

from core.bus import Subjects, connect
from core.settings import Settings
from deploy.nats import EmbeddedNats
from deploy.net import free_port
from schemas.automations import TriggerEnvelope
from serve_app import settings_env
from tests.api.accounts import call, sign_up
from tests.fakes.signing import SignedDelivery, sign_github

DELIVERIES = 60
SENDERS = 6
RETRY_SECONDS = 0.2


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A nats-server of this test only, with the stack's users and permissions for its own
    prefix (the ingress connects as the ingress role, as in `./warren up`)."""
    server = EmbeddedNats(tmp_path / "nats", prefix=f"wn{secrets.token_hex(4)}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Ingress:
    """A running ingress: its base URL and its settings."""

    url: str
    settings: Settings


@pytest.fixture
async def ingress(
    settings: Settings, database_url: str, nats: EmbeddedNats, tmp_path: Path
) -> AsyncIterator[Ingress]:
    """Warren's API on its own port, on the test's NATS."""
    mine = msgspec.structs.replace(
        settings,
        database_url=database_url,
        nats_url=nats.url,
        nats_prefix=nats.subjects.prefix,
        nats_credentials_ingress=nats.credentials("ingress"),
        http_port=free_port(),
        data_dir=str(tmp_path / "data"),
    )
    env = {**os.environ, **settings_env(mine)}
    argv = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory"]
    argv += ["--host", "127.0.0.1", "--port", str(mine.http_port), "--log-level", "warning"]
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdin=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://127.0.0.1:{mine.http_port}"
    try:
        async with aiohttp.ClientSession() as client, asyncio.timeout(60):
            while True:
                assert process.returncode is None, "the ingress exited at start"
                try:
                    async with client.get(url + "/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        yield Ingress(url, mine)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


@dataclass
class Outcomes:
    """What the senders saw."""

    accepted: set[int] = field(default_factory=set)
    refused: collections.Counter[int] = field(default_factory=collections.Counter)
    """503s and dropped answers, per delivery."""
    first_refusal: asyncio.Event = field(default_factory=asyncio.Event)
    enough: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once :attr:`threshold` deliveries are accepted."""
    threshold: int = DELIVERIES // 3


def _issue(number: int) -> dict[str, object]:
    return {
        "action": "opened",
        "issue": {
            "id": 900000 + number,
            "number": number,
            "title": f"Issue {number}",
            "body": "",
            "html_url": f"https://github.com/acme/shop/issues/{number}",
            "labels": [],
        },
        "repository": {"full_name": "acme/shop", "html_url": "https://github.com/acme/shop"},
        "sender": {"login": "octocat"},
    }


async def _deliver(
    client: aiohttp.ClientSession, url: str, number: int, signed: SignedDelivery, seen: Outcomes
) -> None:
    """Send until accepted, redelivering the same request after a 503 or a lost answer."""
    async with asyncio.timeout(120):
        while True:
            try:
                async with client.post(url, data=signed.body, headers=signed.headers) as resp:
                    if resp.status == 202:
                        seen.accepted.add(number)
                        if len(seen.accepted) >= seen.threshold:
                            seen.enough.set()
                        return
                    assert resp.status == 503, (resp.status, await resp.text())
            except (aiohttp.ClientError, TimeoutError):
                pass
            seen.refused[number] += 1
            seen.first_refusal.set()
            await asyncio.sleep(RETRY_SECONDS)


async def _stored_issues(nats_url: str, prefix: str) -> collections.Counter[int]:
    """How often each issue's delivery is stored in the TRIGGER_EVENTS stream."""
    nc = await connect(nats_url, name="warren-test-nats-restart")
    try:
        js = nc.jetstream()
        stream = Subjects(prefix).stream("TRIGGER_EVENTS")
        state = (await js.stream_info(stream)).state
        stored: collections.Counter[int] = collections.Counter()
        for seq in range(state.first_seq, state.last_seq + 1):
            raw = (await js.get_msg(stream, seq)).data
            assert raw is not None
            envelope = msgspec.json.decode(raw, type=TriggerEnvelope)
            stored[json.loads(bytes(envelope.raw_payload))["issue"]["number"]] += 1
        return stored
    finally:
        await nc.close()


async def test_acked_webhooks_survive_a_nats_restart(ingress: Ingress, nats: EmbeddedNats) -> None:
    async with aiohttp.ClientSession(ingress.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as me:
        await sign_up(me, "Hook Sender")
        _, auto = await call(me, "POST", "/api/automations", json={"name": "Triage"})
        status, made = await call(
            me, "POST", "/api/triggers", json={"provider": "github", "automation_id": auto["id"]}
        )
        assert status == 201, made
    path, secret = made["trigger"]["webhook_path"], made["webhook_secret"]
    deliveries = {n: sign_github(_issue(n), secret, event="issues") for n in range(DELIVERIES)}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in deliveries:
        queue.put_nowait(number)
    seen = Outcomes()

    async def sender(client: aiohttp.ClientSession) -> None:
        while not queue.empty():
            number = queue.get_nowait()
            await _deliver(client, ingress.url + path, number, deliveries[number], seen)

    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as client:
        senders = [asyncio.create_task(sender(client)) for _ in range(SENDERS)]
        try:
            # A third of the load gets through, then the server goes away until a sender
            # has been refused (the outage reached the webhook route), then comes back.
            await asyncio.wait_for(seen.enough.wait(), 60)
            accepted_before = len(seen.accepted)
            await asyncio.to_thread(nats.stop)
            await asyncio.wait_for(seen.first_refusal.wait(), 60)
            await asyncio.to_thread(nats.start)
            await asyncio.gather(*senders)
        finally:
            for task in senders:
                task.cancel()

    assert seen.accepted == set(deliveries)
    assert accepted_before < DELIVERIES, "the restart happened after the load"
    assert sum(seen.refused.values()) > 0
    # Stored exactly once each: none lost, none doubled by a redelivery.
    stored = await _stored_issues(nats.admin_url, ingress.settings.nats_prefix)
    print(
        f"{DELIVERIES} deliveries, {accepted_before} accepted before the stop, "
        f"{sum(seen.refused.values())} refusals over {len(seen.refused)} deliveries, "
        f"{sum(stored.values())} stored"
    )
    assert stored == collections.Counter(set(deliveries)), {
        n: c for n, c in stored.items() if c != 1
    }
