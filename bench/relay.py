"""Session relay: OpenCode event → WebSocket frame, through a real Warren.

    .venv/bin/python -m bench.relay [--seconds 4] [--sessions 1,10,50] [--rates 250,500,...]

The agent is a synthetic OpenCode (bench/synthetic_opencode.py), one server per session like
one OpenCode per sandbox, streaming text deltas whose text starts with the send time
(monotonic ns), so this measures Warren alone: SSE read in
the session actor, event processing, JetStream publish/ack, the ordered consumer in the
Serve replica, the WebSocket through Serve's proxy. Everything runs on this machine (the
source, the clients and Warren share its cores).

Prints:
- relay latency p50/p99 with 1, 10 and 50 sessions streaming at once (20 events/s each);
- the aggregate events/s (at the largest session count) before p99 passes 50 ms;
- session actor creation time (one at a time), RSS/USS and idle CPU per actor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from actors import session_client
from bench.harness import percentile, sign_up, warren_stack
from bench.synthetic_opencode import SyntheticOpenCode, SyntheticSandboxes
from core.http_server import serving
from core.settings import Settings

LATENCY_BUDGET_MS = 50.0
_STAMP = re.compile(r"(\d+);x")
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Stream:
    """One session with one WebSocket client, read continuously (so pings are answered)."""

    session_id: str
    ws: aiohttp.ClientWebSocketResponse
    pid: int
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

    def line(self) -> str:
        """One printable line."""
        return (
            f"{self.sessions:3d} sessions  {self.rate:7.0f} ev/s offered  "
            f"{self.delivered / self.seconds:7.0f} ev/s relayed "
            f"({self.frames / self.seconds:6.0f} frames/s)  "
            f"p50 {self.p50_ms:6.2f} ms  p99 {self.p99_ms:7.2f} ms"
        )


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, USS) of a process in kB, from /proc."""
    rss = uss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        value = int(rest.split()[0]) if rest.strip() and rest.split()[0].isdigit() else 0
        if key == "Rss":
            rss = value
        elif key in ("Private_Clean", "Private_Dirty"):
            uss += value
    return rss, uss


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


async def _ws_token(http: aiohttp.ClientSession) -> str:
    async with http.post("/api/auth/ws-token") as r:
        token: str = (await r.json())["token"]
    return token


async def start_sessions(
    http: aiohttp.ClientSession,
    settings: Settings,
    agent_urls: Sequence[str],
    creation_ms: list[float],
) -> list[tuple[str, int]]:
    """A session per synthetic OpenCode, with its actor (created one at a time, timed) and
    runtime.

    Returns (session id, actor pid) pairs.
    """
    made: list[tuple[str, int]] = []
    for agent_url in agent_urls:
        factory = SyntheticSandboxes.factory(agent_url)
        async with http.post("/api/sessions", json={"title": "relay"}) as r:
            sid = (await r.json())["session_id"]
        started = time.perf_counter()
        handle = session_client.session_actor(sid, settings, factory)
        pid = await handle.ping.remote()
        creation_ms.append((time.perf_counter() - started) * 1000)
        await handle.ensure_runtime_ready.remote()
        made.append((sid, pid))
    return made


async def connect(http: aiohttp.ClientSession, url: str, sid: str, pid: int) -> Stream:
    """One WebSocket client on the session, past its ``init``."""
    ws = await http.ws_connect(
        f"{url}/api/sessions/{sid}/ws?token={await _ws_token(http)}", max_msg_size=0
    )
    stream = Stream(sid, ws, pid, asyncio.Queue())
    stream.start()
    _, first = await stream.frames.get()
    assert first["type"] == "init", first
    return stream


async def _collect(stream: Stream, latencies: list[float], tokens: int) -> tuple[int, int]:
    """Read one answer: (source events received, token frames that carried them)."""
    got = frames = 0
    last: list[str] = []
    try:
        async with asyncio.timeout(120):
            while True:
                now, frame = await stream.frames.get()
                kind = frame["type"]
                last = [*last[-4:], kind if kind != "error" else f"error:{frame['message']}"]
                if kind == "token":
                    frames += 1
                    # Under load the actor merges deltas that arrived together: every stamp
                    # in the token is one source event, relayed in this frame.
                    for stamp in _STAMP.findall(frame["token"]):
                        latencies.append((now - int(stamp)) / 1e6)
                        got += 1
                elif kind == "message_complete" and got >= tokens:
                    return got, frames
    except TimeoutError:
        raise RuntimeError(
            f"session {stream.session_id}: {got}/{tokens} events, last frames {last}"
        ) from None


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
    for stream in streams:
        await stream.ws.send_json({"type": "prompt", "content": "go"})
    counts = await asyncio.gather(*collectors)
    delivered = sum(c[0] for c in counts)
    frames = sum(c[1] for c in counts)
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
    )


async def main(seconds: float, session_counts: list[int], rates: list[float]) -> None:
    """Start Warren and the synthetic agent, run every level, print the figures."""
    async with (
        warren_stack(serve_max_ongoing_requests=1000) as (url, settings),
        contextlib.AsyncExitStack() as stack,
        aiohttp.ClientSession(url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        fakes = [SyntheticOpenCode() for _ in range(max(session_counts))]
        urls = [await stack.enter_async_context(serving(fake.app)) for fake in fakes]
        await sign_up(http)
        creation_ms: list[float] = []
        sessions = await start_sessions(http, settings, urls, creation_ms)
        streams: list[Stream] = []
        print(f"relay bench: {os.cpu_count()} cores shared by source, clients and Warren")
        print("latency by concurrent sessions (20 events/s per session):")
        for count in session_counts:
            for sid, pid in sessions[len(streams) : count]:
                streams.append(await connect(http, url, sid, pid))
            level = await run_level(streams, fakes[:count], 20.0 * count, seconds)
            print("  " + level.line())
        print(f"ramp with {len(streams)} sessions until p99 > {LATENCY_BUDGET_MS:.0f} ms:")
        best: Level | None = None
        for rate in rates:
            level = await run_level(streams, fakes, rate, seconds)
            print("  " + level.line())
            if level.p99_ms > LATENCY_BUDGET_MS:
                break
            best = level
        if best is not None:
            print(
                f"  sustained: {best.delivered / best.seconds:.0f} events/s relayed "
                f"with p99 {best.p99_ms:.1f} ms"
            )
        await asyncio.sleep(5)  # settle before measuring idle cost
        pids = [pid for _, pid in sessions]
        before = {pid: _cpu_seconds(pid) for pid in pids}
        window = 10.0
        await asyncio.sleep(window)
        cpu = [(_cpu_seconds(pid) - before[pid]) / window * 100 for pid in pids]
        memory = [_memory_kb(pid) for pid in pids]
        print(f"session actors ({len(pids)}):")
        print(
            f"  creation (one at a time): p50 {statistics.median(creation_ms):.0f} ms, "
            f"max {max(creation_ms):.0f} ms"
        )
        print(
            f"  RSS median {statistics.median(m[0] for m in memory) / 1024:.1f} MB, "
            f"USS median {statistics.median(m[1] for m in memory) / 1024:.1f} MB"
        )
        print(f"  idle CPU median {statistics.median(cpu):.2f} % of a core, max {max(cpu):.2f} %")
        for stream in streams:
            if stream.reader is not None:
                stream.reader.cancel()
            await stream.ws.close()
        for sid, _ in sessions:
            await session_client.kill_session_actor(sid)


def _numbers(text: str) -> list[Any]:
    return [float(x) if "." in x else int(x) for x in text.split(",") if x]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--sessions", type=_numbers, default=[1, 10, 50])
    parser.add_argument("--rates", type=_numbers, default=[250, 500, 1000, 2000, 3000, 4000])
    args = parser.parse_args()
    asyncio.run(main(args.seconds, sorted(args.sessions), [float(r) for r in args.rates]))
