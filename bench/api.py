"""API throughput: ``/healthz`` against an authenticated, org-scoped read, in one run.

    .venv/bin/python -m bench.api [--seconds 5] [--concurrency 32]

Prints requests/s and p50/p99 for each, and the ratio (authenticated / health).
"""

from __future__ import annotations

import argparse
import asyncio
import functools

import aiohttp

from bench.harness import healthz, run_load, sign_up, warren_stack


async def _api_key(http: aiohttp.ClientSession) -> str:
    await sign_up(http)
    async with http.post("/api/api-keys", json={"name": "bench"}) as r:
        assert r.status == 201, await r.text()
        key: str = (await r.json())["key"]
    return key


async def main(seconds: float, concurrency: int) -> None:
    """Start Warren, measure both routes, print the figures."""
    async with warren_stack() as (url, _settings):
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(
            url, connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as http:
            key = await _api_key(http)
            auth = {"Authorization": f"Bearer {key}"}

            async def org_read() -> bool:
                async with http.get("/api/orgs", headers=auth) as r:
                    await r.read()
                    return r.status == 200

            await run_load("warm-up", org_read, concurrency=concurrency, duration_s=1)
            base = await run_load(
                "GET /healthz",
                functools.partial(healthz, http),
                concurrency=concurrency,
                duration_s=seconds,
            )
            scoped = await run_load(
                "GET /api/orgs (API key)", org_read, concurrency=concurrency, duration_s=seconds
            )
    print(f"concurrency {concurrency}, {seconds:.0f} s each, one Serve replica, 2 cores shared")
    print(base.line())
    print(scoped.line())
    if base.rps:
        print(f"ratio authenticated/health: {scoped.rps / base.rps:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.concurrency))
