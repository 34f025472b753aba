"""Serve an aiohttp application for as long as a context lasts (in-process servers: the
scripted model, the benchmarks' synthetic services)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web


@asynccontextmanager
async def serving(
    app: web.Application, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` (0: a free port); yields ``http://host:port``.

    On exit the app's ``on_shutdown`` handlers run first (end long-lived responses there:
    aiohttp waits for open handlers), then the server stops.
    """
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        yield f"http://{host}:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
