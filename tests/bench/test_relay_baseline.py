"""bench.relay's baseline and level runner, end to end on loopback (no Warren: fast)."""

from __future__ import annotations

import contextlib

import aiohttp

from bench.relay import (
    Level,
    baseline_relay,
    compare,
    connect_baseline,
    run_level,
    serve_fakes,
    sustained,
)


async def test_the_baseline_relays_every_source_event_to_its_client() -> None:
    async with (
        contextlib.AsyncExitStack() as stack,
        baseline_relay() as url,
        aiohttp.ClientSession() as http,
    ):
        fakes = await serve_fakes(stack, 2)
        streams = [await connect_baseline(http, url, fake.url) for fake in fakes]
        level = await run_level(streams, fakes, 40.0, 0.5)
        for stream in streams:
            await stream.close()
    assert level.sessions == 2
    assert level.delivered == 2 * 10  # at least 10 deltas per session
    assert level.frames == level.delivered  # the baseline sends one frame per delta
    assert 0 < level.p50_ms <= level.p99_ms
    assert level.generator_cpu > 0


def _level(rate: float, p99_ms: float) -> Level:
    return Level(50, rate, int(rate), int(rate), 1.0, p99_ms, 1.0, 0.2)


def test_sustained_names_each_relays_best_rate_and_their_ratio() -> None:
    best = {"warren": _level(500, 40.0), "baseline": _level(4000, 12.0)}
    line = sustained(best, [250, 500, 1000, 4000])
    assert line.startswith("sustained (p99 < 50 ms): ")
    assert "warren 500 ev/s offered" in line
    assert "baseline >=4000 ev/s offered" in line  # the ramp's top: the limit is higher
    assert line.endswith("ratio 0.12")
    below = sustained({"warren": None, "baseline": _level(1000, 8.0)}, [250, 500, 1000])
    assert "warren below 250 ev/s" in below
    assert below.endswith("ratio < 0.25")


def test_compare_is_warren_over_baseline() -> None:
    assert compare(_level(1000, 30.0), _level(2000, 10.0)) == (
        "warren/baseline: p99 3.00x, relayed ev/s 0.50x"
    )
