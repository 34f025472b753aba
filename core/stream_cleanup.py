"""Delete a deployment's JetStream streams: the end of a test run or benchmark on a shared NATS.

JetStream reserves each stream's byte cap on the server's disk, so a run that declared
Warren's streams under its own prefix removes them when it is done.
"""

from __future__ import annotations

from nats.js.errors import NotFoundError

from core.bus import Subjects, connect, stream_configs


async def delete_streams(nats_url: str, prefix: str) -> list[str]:
    """Delete every Warren stream under ``prefix``; the names of those that existed."""
    nc = await connect(nats_url, name="warren-stream-cleanup")
    deleted: list[str] = []
    try:
        js = nc.jetstream()
        for config in stream_configs(Subjects(prefix)):
            name = str(config.name)
            try:
                await js.delete_stream(name)
            except NotFoundError:  # a stream this run never declared
                continue
            deleted.append(name)
    finally:
        await nc.close()
    return deleted
