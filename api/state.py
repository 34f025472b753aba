"""What one API replica holds: settings and connections, opened once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from api.webhook_targets import WebhookTargets
from core.bus import Subjects, connect, declare_streams
from core.db import create_pool
from core.migrate import apply_migrations
from core.settings import Settings


@dataclass
class AppState:
    """Connections shared by every request of a replica. Holds no live session state."""

    settings: Settings
    pool: asyncpg.Pool
    nats: NATS
    js: JetStreamContext
    subjects: Subjects
    webhook_targets: WebhookTargets

    @classmethod
    async def open(cls, settings: Settings) -> AppState:
        """Connect to Postgres and NATS, apply migrations and declare streams."""
        pool = await create_pool(settings.database_url, max_size=20)
        try:
            async with pool.acquire() as conn:
                await apply_migrations(conn)
            nc = await connect(
                settings.nats_url, name="warren-api", credentials=settings.nats_credentials_ingress
            )
        except BaseException:
            await pool.close()
            raise
        js = nc.jetstream()
        subjects = Subjects(settings.nats_prefix)
        await declare_streams(js, subjects, max_bytes=settings.nats_stream_max_bytes)
        targets = WebhookTargets(pool, settings.database_url, settings.secret_key)
        return cls(
            settings=settings,
            pool=pool,
            nats=nc,
            js=js,
            subjects=subjects,
            webhook_targets=targets,
        )

    async def close(self) -> None:
        """Drain NATS and close the pool."""
        if not self.nats.is_closed:
            await self.nats.drain()
        await self.webhook_targets.close()
        await self.pool.close()
