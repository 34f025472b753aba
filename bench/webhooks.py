"""Webhook ingestion throughput: signed GitHub deliveries verified, deduplicated and durably
stored (JetStream ack) per second, against a no-op route of the same Serve app, in one run.

    .venv/bin/python -m bench.webhooks [--seconds 10] [--concurrency 32] [--duplicates 0.1]

A share of the requests re-send an earlier delivery (GitHub retries): they must be answered
202 and stored once. The automation is disabled, so the trigger pool records each event
(skipped) without starting runs: the figure is ingestion, not the run pipeline. Afterwards
the bench checks that every accepted unique delivery is one message in JetStream and, once
the pool has drained, one trigger event.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import time
import uuid
from dataclasses import dataclass

import aiohttp
import asyncpg
import msgspec

from bench.harness import healthz, run_load, sign_up, warren_stack
from core.bus import Subjects, connect
from core.settings import Settings
from core.stream_cleanup import delete_streams
from integrations.signatures import hmac_sha256_hex


async def _setup(http: aiohttp.ClientSession) -> tuple[str, str, str]:
    """Sign up; an automation (disabled) with a GitHub trigger: (trigger id, path, secret)."""
    await sign_up(http)
    async with http.post("/api/automations", json={"name": "bench", "enabled": False}) as r:
        auto = await r.json()
    async with http.post(
        "/api/triggers", json={"provider": "github", "automation_id": auto["id"]}
    ) as r:
        made = await r.json()
    return made["trigger"]["id"], made["trigger"]["webhook_path"], made["webhook_secret"]


@dataclass(frozen=True)
class Delivery:
    """A webhook request as GitHub sends it: JSON body and headers."""

    body: bytes
    headers: dict[str, str]


def _delivery(secret: str, n: int) -> Delivery:
    payload = {
        "action": "opened",
        "issue": {
            "id": 10_000_000 + n,
            "number": n,
            "title": f"Bench issue {n}",
            "body": "x" * 400,
            "labels": [{"name": "bug"}],
            "html_url": f"https://github.com/acme/bench/issues/{n}",
        },
        "repository": {"full_name": "acme/bench", "html_url": "https://github.com/acme/bench"},
        "sender": {"login": "bench"},
    }
    body = msgspec.json.encode(payload)
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": str(uuid.UUID(int=n)),
        "X-Hub-Signature-256": "sha256=" + hmac_sha256_hex(secret, body),
    }
    return Delivery(body, headers)


async def _stored(settings: Settings) -> int:
    nc = await connect(settings.nats_url, name="bench-reader")
    try:
        subjects = Subjects(settings.nats_prefix)
        info = await nc.jetstream().stream_info(
            subjects.stream("TRIGGER_EVENTS"), subjects_filter=subjects.trigger_events("github")
        )
        return int(info.state.messages)
    finally:
        await nc.close()


async def _recorded(settings: Settings, trigger_id: str) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM trigger_events WHERE trigger_id = $1", uuid.UUID(trigger_id)
        )
        return count
    finally:
        await conn.close()


async def main(seconds: float, concurrency: int, duplicates: float) -> None:
    """Start Warren, measure both routes, check durability and dedup, print the figures."""
    async with warren_stack() as (url, settings):
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(
            url, connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as http:
            trigger_id, path, secret = await _setup(http)
            # Enough distinct deliveries for a generous 3,000 requests/s.
            pool = [_delivery(secret, n) for n in range(int(3000 * (seconds + 2)))]
            sent: list[int] = []
            accepted: set[int] = set()
            rng = random.Random(7)

            async def webhook() -> bool:
                if sent and rng.random() < duplicates:
                    n = rng.choice(sent)
                else:
                    n = len(sent)
                    sent.append(n)
                delivery = pool[n % len(pool)]
                async with http.post(path, data=delivery.body, headers=delivery.headers) as r:
                    await r.read()
                    if r.status == 202:
                        accepted.add(n % len(pool))
                    return r.status == 202

            noop = functools.partial(healthz, http)
            sample = pool[0]

            async def unknown() -> bool:
                # Same body through the same route, refused after the trigger lookup.
                async with http.post(
                    "/webhooks/github/t_000000000000", data=sample.body, headers=sample.headers
                ) as r:
                    await r.read()
                    return r.status == 404

            await run_load("warm-up", noop, concurrency=concurrency, duration_s=1)
            base = await run_load(
                "GET /healthz (no-op)", noop, concurrency=concurrency, duration_s=seconds
            )
            lookup = await run_load(
                "POST unknown path (404)", unknown, concurrency=concurrency, duration_s=seconds
            )
            hooks = await run_load(
                "POST /webhooks/github/…", webhook, concurrency=concurrency, duration_s=seconds
            )
        try:
            stored = await _stored(settings)
            deadline = time.monotonic() + 120
            recorded = await _recorded(settings, trigger_id)
            while recorded < len(accepted) and time.monotonic() < deadline:
                await asyncio.sleep(1)
                recorded = await _recorded(settings, trigger_id)
        finally:
            await delete_streams(settings.nats_url, settings.nats_prefix)
    print(
        f"concurrency {concurrency}, {seconds:.0f} s each, one Serve replica, 2 cores shared, "
        f"{duplicates:.0%} re-sent deliveries"
    )
    print(base.line())
    print(lookup.line())
    print(hooks.line())
    if base.rps:
        print(f"ratio webhooks/no-op: {hooks.rps / base.rps:.2f}")
    print(
        f"accepted unique deliveries {len(accepted)}; JetStream messages {stored}; "
        f"trigger events recorded {recorded}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duplicates", type=float, default=0.1)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.concurrency, args.duplicates))
