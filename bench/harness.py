"""A real Warren for benchmarks: Postgres, NATS, Ray and the Serve app, plus a load loop.

Uses the same service discovery as the tests (the machine's Postgres/NATS when
reachable, else embedded ones), a fresh database and NATS prefix per run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from tests.fixtures.net import free_port
from tests.fixtures.ray import start_local_ray
from tests.fixtures.services import create_database, drop_database, nats_server, postgres_server


@asynccontextmanager
async def warren_stack(**overrides: object) -> AsyncIterator[tuple[str, Settings]]:
    """Start Warren on loopback; yields (api base URL, settings) and tears it all down."""
    import ray
    from ray import serve

    from serve_app import build_app, secret_env

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
        os.environ.update(secret_env(settings))  # replicas read secrets from their node's env
        start_local_ray()
        try:
            serve.start(http_options={"host": "127.0.0.1", "port": settings.http_port})
            serve.run(build_app(settings), name="warren", route_prefix="/")
            yield f"http://127.0.0.1:{settings.http_port}", settings
        finally:
            serve.shutdown()  # type: ignore[no-untyped-call]
            ray.shutdown()
            await drop_database(admin_dsn, dsn)
            await delete_streams(settings)


async def delete_streams(settings: Settings) -> None:
    """Remove a run's JetStream streams, which reserve disk on a shared NATS."""
    from core.bus import Subjects, connect, stream_configs

    nc = await connect(settings.nats_url, name="warren-bench-cleanup")
    js = nc.jetstream()
    for config in stream_configs(Subjects(settings.nats_prefix)):
        try:
            await js.delete_stream(str(config.name))
        except Exception:  # a stream this run never created
            pass
    await nc.close()


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
