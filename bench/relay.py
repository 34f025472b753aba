"""Session relay: OpenCode event → WebSocket frame, through a real Warren and a baseline.

    .venv/bin/python -m bench.relay [--seconds 4] [--sessions 1,10,50] [--rates 250,500,...]

The agent is a synthetic OpenCode (bench/synthetic_opencode.py), one server per session like
one OpenCode per sandbox, streaming text deltas whose text starts with the send time
(monotonic ns), so this measures Warren alone: SSE read in
the session actor, event processing, JetStream publish/ack, the ordered consumer in the
Serve replica, the WebSocket through Serve's proxy. Everything runs on this machine (the
source, the clients and Warren share its cores).

The same sources and clients also drive a baseline, a minimal single-process relay
(bench/baseline_relay.py: aiohttp SSE in, WebSocket out, in its own process), level by
level in the same run, so the ratios compare the two under the same load.

Prints, for Warren and the baseline side by side with their ratio:
- relay latency p50/p99 with 1, 10 and 50 sessions streaming at once (20 events/s each);
- a ramp at the largest session count and a ``sustained:`` line: the highest offered
  events/s whose p99 stays under 50 ms;
- session actor creation time (one at a time), RSS/USS and idle CPU per actor;
- the load generator's own CPU share per level and overall (this process runs the
  sources, the clients and Ray's driver).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from actors import session_client
from bench.harness import CpuShare, percentile, sign_up, warren_stack
from bench.synthetic_opencode import SyntheticOpenCode, SyntheticSandboxes
from core.http_server import serving
from core.settings import Settings
from deploy.net import free_port

LATENCY_BUDGET_MS = 50.0
_STAMP = re.compile(r"(\d+);x")
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Stream:
    """One session with one WebSocket client, read continuously (so pings are answered)."""

    session_id: str
    ws: aiohttp.ClientWebSocketResponse
    frames: asyncio.Queue[tuple[int, dict[str, Any]]]
    reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Read frames into the queue, stamped with their arrival time."""
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            msg = await self.ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                return
            self.frames.put_nowait((time.monotonic_ns(), msgspec.json.decode(msg.data)))

    async def close(self) -> None:
        """Stop reading and close the WebSocket."""
        if self.reader is not None:
            self.reader.cancel()
        await self.ws.close()


@dataclass
class Target:
    """A relay under measurement: its clients and the sources behind them (one per client)."""

    name: str
    streams: list[Stream] = field(default_factory=list)
    fakes: list[SyntheticOpenCode] = field(default_factory=list)


@dataclass(frozen=True)
class Level:
    """The outcome of one load level."""

    sessions: int
    rate: float
    """Aggregate events/s the source produced."""
    delivered: int
    """Source events that reached their client."""
    frames: int
    """WebSocket frames that carried them (merged deltas make fewer frames)."""
    p50_ms: float
    p99_ms: float
    seconds: float
    generator_cpu: float
    """The load generator's CPU time over the level's wall time (1.0 = one core)."""
    failures: tuple[str, ...] = ()
    """Why some sessions' answers did not complete; such a level is not sustained."""

    @property
    def within_budget(self) -> bool:
        """Every answer completed and p99 stayed under the budget."""
        return not self.failures and self.p99_ms <= LATENCY_BUDGET_MS

    @property
    def relayed(self) -> float:
        """Source events relayed per second."""
        return self.delivered / self.seconds

    def line(self) -> str:
        """One printable line."""
        return (
            f"{self.sessions:3d} sessions  {self.rate:7.0f} ev/s offered  "
            f"{self.relayed:7.0f} ev/s relayed "
            f"({self.frames / self.seconds:6.0f} frames/s)  "
            f"p50 {self.p50_ms:7.2f} ms  p99 {self.p99_ms:8.2f} ms  "
            f"generator {self.generator_cpu * 100:3.0f} % CPU"
            + (
                f"  FAILED {len(self.failures)} sessions: {sorted(set(self.failures))}"
                if self.failures
                else ""
            )
        )


def compare(warren: Level, baseline: Level) -> str:
    """Warren's p99 and throughput next to the baseline's, as ratios."""
    p99 = warren.p99_ms / baseline.p99_ms if baseline.p99_ms else 0.0
    rate = warren.relayed / baseline.relayed if baseline.relayed else 0.0
    return f"warren/baseline: p99 {p99:.2f}x, relayed ev/s {rate:.2f}x"


def _proc(pid: int, name: str) -> str | None:
    """``/proc/<pid>/<name>``, or None once the process is gone (a restarted actor)."""
    try:
        return Path(f"/proc/{pid}/{name}").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None


def memory_kb(pid: int) -> tuple[int, int] | None:
    """(RSS, USS) of a process in kB, from /proc; None when it is gone."""
    text = _proc(pid, "smaps_rollup")
    if text is None:
        return None
    rss = uss = 0
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        value = int(rest.split()[0]) if rest.strip() and rest.split()[0].isdigit() else 0
        if key == "Rss":
            rss = value
        elif key in ("Private_Clean", "Private_Dirty"):
            uss += value
    return rss, uss


def _cpu_seconds(pid: int) -> float | None:
    text = _proc(pid, "stat")
    if text is None:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


async def actor_costs(pids: Sequence[int], window: float) -> list[str]:
    """Printable RSS/USS and idle CPU of the actor processes ``pids`` over ``window`` s
    (a process that ends meanwhile, a restarted actor, is counted apart)."""
    before = {pid: t for pid in pids if (t := _cpu_seconds(pid)) is not None}
    await asyncio.sleep(window)
    cpu: list[float] = []
    memory: list[tuple[int, int]] = []
    for pid, start in before.items():
        end, used = _cpu_seconds(pid), memory_kb(pid)
        if end is not None and used is not None:
            cpu.append((end - start) / window * 100)
            memory.append(used)
    if not cpu:
        return [f"all {len(pids)} actor processes ended"]
    return [
        f"RSS median {statistics.median(m[0] for m in memory) / 1024:.1f} MB, "
        f"USS median {statistics.median(m[1] for m in memory) / 1024:.1f} MB",
        f"idle CPU median {statistics.median(cpu):.2f} % of a core, max {max(cpu):.2f} %"
        f" ({len(cpu)} of {len(pids)} processes alive throughout)",
    ]


async def _ws_token(http: aiohttp.ClientSession) -> str:
    async with http.post("/api/auth/ws-token") as r:
        token: str = (await r.json())["token"]
    return token


async def start_sessions(
    http: aiohttp.ClientSession,
    settings: Settings,
    opencode_urls: Sequence[str],
    creation_ms: list[float],
) -> list[tuple[str, int]]:
    """A session per synthetic OpenCode, with its actor (created one at a time, timed) and
    runtime.

    Returns (session id, actor pid) pairs.
    """
    made: list[tuple[str, int]] = []
    for opencode_url in opencode_urls:
        factory = SyntheticSandboxes.factory(opencode_url)
        async with http.post("/api/sessions", json={"title": "relay"}) as r:
            sid = (await r.json())["session_id"]
        started = time.perf_counter()
        handle = session_client.session_actor(sid, settings, factory)
        pid = await handle.ping.remote()
        creation_ms.append((time.perf_counter() - started) * 1000)
        await handle.ensure_runtime_ready.remote()
        made.append((sid, pid))
    return made


async def _open_stream(session_id: str, ws: aiohttp.ClientWebSocketResponse) -> Stream:
    stream = Stream(session_id, ws, asyncio.Queue())
    stream.start()
    _, first = await stream.frames.get()
    assert first["type"] == "init", first
    return stream


async def connect(http: aiohttp.ClientSession, url: str, sid: str) -> Stream:
    """One WebSocket client on a Warren session, past its ``init``."""
    ws = await http.ws_connect(
        f"{url}/api/sessions/{sid}/ws?token={await _ws_token(http)}", max_msg_size=0
    )
    return await _open_stream(sid, ws)


@contextlib.asynccontextmanager
async def baseline_relay() -> AsyncIterator[str]:
    """Run bench.baseline_relay in its own process; yields its URL."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.baseline_relay", "--port", str(port)
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(60):
                while True:
                    with contextlib.suppress(aiohttp.ClientConnectionError):
                        async with http.get(f"{url}/healthz") as r:
                            if r.status == 200:
                                break
                    if proc.returncode is not None:
                        raise RuntimeError("the baseline relay exited")
                    await asyncio.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        await proc.wait()


async def connect_baseline(http: aiohttp.ClientSession, url: str, opencode_url: str) -> Stream:
    """A baseline session on the synthetic OpenCode at ``opencode_url`` and one client on it."""
    async with http.post(f"{url}/sessions", json={"opencode_url": opencode_url}) as r:
        sid = (await r.json())["session_id"]
    ws = await http.ws_connect(f"{url}/sessions/{sid}/ws", max_msg_size=0)
    return await _open_stream(sid, ws)


@dataclass
class Answer:
    """What one client received of one answer."""

    events: int = 0
    """Source events received."""
    frames: int = 0
    """Token frames that carried them."""
    failure: str = ""
    """Why the answer did not complete (an ``error`` frame or a timeout), else empty."""


async def _collect(stream: Stream, latencies: list[float], tokens: int) -> Answer:
    """Read one answer until ``message_complete``, an ``error`` frame or two minutes."""
    answer = Answer()
    try:
        async with asyncio.timeout(120):
            while True:
                now, frame = await stream.frames.get()
                kind = frame["type"]
                if kind == "token":
                    answer.frames += 1
                    # Under load the actor merges deltas that arrived together: every stamp
                    # in the token is one source event, relayed in this frame.
                    for stamp in _STAMP.findall(frame["token"]):
                        latencies.append((now - int(stamp)) / 1e6)
                        answer.events += 1
                elif kind == "error":
                    answer.failure = str(frame.get("message"))
                    return answer
                elif kind == "message_complete" and answer.events >= tokens:
                    return answer
    except TimeoutError:
        answer.failure = f"timed out with {answer.events}/{tokens} events"
    return answer


async def run_level(
    streams: Sequence[Stream], fakes: Sequence[SyntheticOpenCode], rate: float, seconds: float
) -> Level:
    """All ``streams`` answer one prompt at once, at ``rate`` events/s in total."""
    per_session = rate / len(streams)
    tokens = max(10, int(per_session * seconds))
    for fake in fakes:
        fake.tokens, fake.interval = tokens, 1.0 / per_session
    latencies: list[float] = []
    collectors = [asyncio.create_task(_collect(s, latencies, tokens)) for s in streams]
    began = time.perf_counter()
    cpu_began = time.process_time()
    for stream in streams:
        await stream.ws.send_json({"type": "prompt", "content": "go"})
    answers = await asyncio.gather(*collectors)
    failures = [a.failure for a in answers if a.failure]
    delivered = sum(a.events for a in answers)
    frames = sum(a.frames for a in answers)
    elapsed = time.perf_counter() - began
    # The first events of a level include the prompt round trip: keep steady state only.
    steady = latencies[len(latencies) // 10 :]
    return Level(
        len(streams),
        rate,
        delivered,
        frames,
        percentile(steady, 50),
        percentile(steady, 99),
        elapsed,
        (time.process_time() - cpu_began) / elapsed,
        tuple(failures),
    )


async def serve_fakes(stack: contextlib.AsyncExitStack, count: int) -> list[SyntheticOpenCode]:
    """``count`` synthetic OpenCode servers, served until ``stack`` closes."""
    fakes = [SyntheticOpenCode() for _ in range(count)]
    for fake in fakes:
        fake.url = await stack.enter_async_context(serving(fake.app))
    return fakes


async def ramp(
    targets: Sequence[Target], rates: Sequence[float], seconds: float
) -> dict[str, Level | None]:
    """Raise the offered rate until each target fails an answer or passes the p99 budget;
    each target's best level."""
    best: dict[str, Level | None] = {t.name: None for t in targets}
    live = list(targets)
    for rate in rates:
        levels = {}
        for target in live:
            levels[target.name] = level = await run_level(
                target.streams, target.fakes, rate, seconds
            )
            print(f"  {target.name:<9}" + level.line())
            if level.within_budget:
                best[target.name] = level
        if len(levels) == 2:
            print("  " + compare(*levels.values()))
        live = [t for t in live if levels[t.name].within_budget]
        if not live:
            break
    return best


def sustained(best: Mapping[str, Level | None], rates: Sequence[float]) -> str:
    """The ``sustained:`` line: each target's highest offered rate under the budget (``>=``
    when that was the ramp's last step, so the real limit is higher)."""
    parts = []
    for name, level in best.items():
        if level is None:
            parts.append(f"{name} below {rates[0]:.0f} ev/s")
        else:
            at_least = ">=" if level.rate >= rates[-1] else ""
            parts.append(
                f"{name} {at_least}{level.rate:.0f} ev/s offered ({level.relayed:.0f} "
                f"relayed, p99 {level.p99_ms:.1f} ms)"
            )
    warren, baseline = best.get("warren"), best.get("baseline")
    if warren is not None and baseline is not None:
        parts.append(f"ratio {warren.rate / baseline.rate:.2f}")
    elif baseline is not None:
        parts.append(f"ratio < {rates[0] / baseline.rate:.2f}")
    return f"sustained (p99 < {LATENCY_BUDGET_MS:.0f} ms): " + "; ".join(parts)


async def main(seconds: float, session_counts: list[int], rates: list[float]) -> None:
    """Start Warren, the baseline and the synthetic agents, run every level, print."""
    generator = CpuShare()
    async with (
        warren_stack(serve_max_ongoing_requests=1000) as (url, settings),
        baseline_relay() as baseline_url,
        contextlib.AsyncExitStack() as stack,
        aiohttp.ClientSession(url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
        aiohttp.ClientSession() as plain,
    ):
        most = max(session_counts)
        warren = Target("warren", fakes=await serve_fakes(stack, most))
        baseline = Target("baseline", fakes=await serve_fakes(stack, most))
        await sign_up(http)
        creation_ms: list[float] = []
        sessions = await start_sessions(http, settings, [f.url for f in warren.fakes], creation_ms)
        print(f"relay bench: {os.cpu_count()} cores shared by source, clients and Warren")
        print("latency by concurrent sessions (20 events/s per session):")
        for count in session_counts:
            for sid, _ in sessions[len(warren.streams) : count]:
                warren.streams.append(await connect(http, url, sid))
            for fake in baseline.fakes[len(baseline.streams) : count]:
                baseline.streams.append(await connect_baseline(plain, baseline_url, fake.url))
            levels = []
            for target in (warren, baseline):
                levels.append(
                    await run_level(target.streams, target.fakes[:count], 20.0 * count, seconds)
                )
                print(f"  {target.name:<9}" + levels[-1].line())
            print("  " + compare(*levels))
        print(f"ramp with {most} sessions until p99 > {LATENCY_BUDGET_MS:.0f} ms:")
        best = await ramp((warren, baseline), rates, seconds)
        print("  " + sustained(best, rates))
        await asyncio.sleep(5)  # settle before measuring idle cost
        print(f"session actors ({len(sessions)}):")
        print(
            f"  creation (one at a time): p50 {statistics.median(creation_ms):.0f} ms, "
            f"max {max(creation_ms):.0f} ms"
        )
        for line in await actor_costs([pid for _, pid in sessions], 10.0):
            print("  " + line)
        for stream in warren.streams + baseline.streams:
            await stream.close()
        for sid, _ in sessions:
            await session_client.kill_session_actor(sid)
    print(generator.line())


def numbers(text: str) -> list[Any]:
    """A comma-separated list of ints/floats (an argparse type)."""
    return [float(x) if "." in x else int(x) for x in text.split(",") if x]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--sessions", type=numbers, default=[1, 10, 50])
    parser.add_argument("--rates", type=numbers, default=[250, 500, 1000, 2000, 3000, 4000])
    args = parser.parse_args()
    asyncio.run(main(args.seconds, sorted(args.sessions), [float(r) for r in args.rates]))
