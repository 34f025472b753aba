"""Density: N idle session actors next to 10 streaming ones, through a real Warren.

    .venv/bin/python -m bench.density [--idle 50,100,200] [--streaming 10] [--seconds 4]

Every session actor has its runtime up (its SSE stream on a synthetic OpenCode open, as
with a live sandbox); the idle ones share one synthetic OpenCode that never answers, the
streaming ones have one each (bench/synthetic_opencode.py) and stream 20 events/s per
session. At each N (idle actors are added up to it) it prints the idle actors' RSS/USS and
idle CPU per actor, and the streaming sessions' relay p50/p99.

Bounded: a level that would not fit in the memory the machine has available (at the USS
measured so far), or that would start after ``--budget`` seconds, is skipped with a note.
Prints the load generator's own CPU share per level and overall.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from actors import session_client
from bench.harness import CpuShare, sign_up, warren_stack
from bench.relay import (
    actor_costs,
    connect,
    memory_kb,
    numbers,
    run_level,
    serve_fakes,
    start_sessions,
)
from core.settings import Settings

GB_KB = 1024 * 1024
_CREATE_AT_ONCE = 8
_SPARE_KB = 4 * GB_KB  # left to the rest of the (shared) machine


def _available_kb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return 0


async def add_idle(
    http: aiohttp.ClientSession, settings: Settings, opencode_url: str, count: int
) -> list[tuple[str, int]]:
    """``count`` more idle sessions on ``opencode_url``, created a few at a time."""
    gate = asyncio.Semaphore(_CREATE_AT_ONCE)

    async def one() -> tuple[str, int]:
        async with gate:
            made = await start_sessions(http, settings, [opencode_url], [])
        return made[0]

    return list(await asyncio.gather(*(one() for _ in range(count))))


def fits(more: int, pids: Sequence[int]) -> tuple[bool, str]:
    """Whether ``more`` actors fit in available memory at the median USS of ``pids``."""
    uss = sorted(m[1] for pid in pids if (m := memory_kb(pid)) is not None)
    per_actor = uss[len(uss) // 2] if uss else 80 * 1024
    need, have = more * per_actor, _available_kb() - _SPARE_KB
    return need <= have, f"needs ~{need / GB_KB:.1f} GB, {max(have, 0) / GB_KB:.1f} GB free"


async def main(
    idle_counts: list[int], streaming: int, seconds: float, window: float, budget: float
) -> None:
    """Start Warren, grow the idle actors level by level, print the figures."""
    generator = CpuShare()
    began = time.perf_counter()
    async with (
        warren_stack(serve_max_ongoing_requests=1000) as (url, settings),
        contextlib.AsyncExitStack() as stack,
        aiohttp.ClientSession(url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        fakes = await serve_fakes(stack, streaming + 1)
        idle_fake, fakes = fakes[0], fakes[1:]
        await sign_up(http)
        active = await start_sessions(http, settings, [f.url for f in fakes], [])
        streams = [await connect(http, url, sid) for sid, _ in active]
        idle: list[tuple[str, int]] = []
        print(
            f"density bench: {streaming} sessions streaming 20 events/s each "
            f"next to N idle session actors"
        )
        for count in idle_counts:
            more = count - len(idle)
            ok, note = fits(more, [pid for _, pid in idle + active])
            if not ok or time.perf_counter() - began > budget:
                why = note if not ok else f"past the {budget:.0f} s budget"
                print(f"  N={count}: skipped ({why})")
                break
            level_cpu = CpuShare()
            started = time.perf_counter()
            idle += await add_idle(http, settings, idle_fake.url, more)
            made_s = time.perf_counter() - started
            costs = await actor_costs([pid for _, pid in idle], window)
            level = await run_level(streams, fakes, 20.0 * streaming, seconds)
            print(f"  N={count}: {more} idle actors added in {made_s:.1f} s")
            print(f"    idle actors: {costs[0]}; {costs[1]}")
            print(f"    streaming: {level.line()}")
            print(f"    {level_cpu.line()}")
        for stream in streams:
            await stream.close()
        gate = asyncio.Semaphore(_CREATE_AT_ONCE)

        async def kill(sid: str) -> None:
            async with gate:
                await session_client.kill_session_actor(sid)

        await asyncio.gather(*(kill(sid) for sid, _ in idle + active))
    print(generator.line())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--idle", type=numbers, default=[50, 100, 200])
    parser.add_argument("--streaming", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--window", type=float, default=10.0, help="idle CPU window, seconds")
    parser.add_argument("--budget", type=float, default=900.0, help="no new level after this")
    args = parser.parse_args()
    asyncio.run(main(sorted(args.idle), args.streaming, args.seconds, args.window, args.budget))
