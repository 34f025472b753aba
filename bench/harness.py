"""A real Warren for benchmarks: Postgres, NATS, Ray and the Serve app, plus a load loop.

Uses the same scratch services as the tests (:mod:`deploy.scratch`: the machine's
Postgres/NATS when reachable, else embedded ones), a fresh database and NATS prefix per run.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from core.ray_env import start_local_ray
from core.settings import Settings
from core.stream_cleanup import delete_streams
from deploy.net import free_port
from deploy.scratch import create_database, drop_database, nats_server, postgres_server


@asynccontextmanager
async def warren_stack(**overrides: object) -> AsyncIterator[tuple[str, Settings]]:
    """Start Warren on loopback; yields (api base URL, settings) and tears it all down."""
    import ray
    from ray import serve

    from deploy.serve import run_warren

    work = Path(tempfile.mkdtemp(prefix="warren-bench-"))
    with postgres_server(work) as admin_dsn, nats_server(work) as nats_url:
        dsn = await create_database(admin_dsn)
        settings = Settings(
            secret_key=secrets.token_hex(32),
            database_url=dsn,
            nats_url=nats_url,
            nats_prefix=f"wb{secrets.token_hex(4)}",
            http_port=free_port(),
            data_dir=str(work / "data"),
            log_level="WARNING",
            nats_stream_max_bytes=256 * 1024**2,
            **overrides,  # type: ignore[arg-type]
        )
        start_local_ray()
        try:
            run_warren(settings)
            yield f"http://127.0.0.1:{settings.http_port}", settings
        finally:
            serve.shutdown()  # type: ignore[no-untyped-call]
            ray.shutdown()
            await drop_database(admin_dsn, dsn)
            await delete_streams(settings.nats_url, settings.nats_prefix)


async def sign_up(http: aiohttp.ClientSession) -> None:
    """A new user and org, signed in on ``http`` (its cookie jar keeps the session)."""
    email = f"bench-{secrets.token_hex(4)}@example.com"
    account = {"email": email, "password": "bench-password", "name": "Bench"}
    async with http.post("/api/auth/sign-up", json=account) as r:
        assert r.status == 201, await r.text()


async def healthz(http: aiohttp.ClientSession) -> bool:
    """One ``GET /healthz`` (the no-op baseline of a load run); True when it answered 200."""
    async with http.get("/healthz") as r:
        await r.read()
        return r.status == 200


@dataclass(frozen=True)
class LoadResult:
    """Throughput and latency of one load run."""

    name: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        """One printable line."""
        return (
            f"{self.name:<28} {self.rps:9.1f} req/s   p50 {self.p50_ms:7.2f} ms   "
            f"p99 {self.p99_ms:7.2f} ms   errors {self.errors}"
        )


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values``; 0 when empty."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, int(q) - 1))]


async def run_load(
    name: str,
    one_request: Callable[[], Awaitable[bool]],
    *,
    concurrency: int = 32,
    duration_s: float = 5.0,
) -> LoadResult:
    """Run ``one_request`` from ``concurrency`` loops for ``duration_s``; True means success."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration_s

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            ok = await one_request()
            latencies.append((time.perf_counter() - start) * 1000)
            errors += 0 if ok else 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    return LoadResult(
        name, len(latencies), errors, elapsed, percentile(latencies, 50), percentile(latencies, 99)
    )
