"""Deleting a prefix's streams on a real NATS: every declared one goes, others stay."""

from __future__ import annotations

import secrets

from core.bus import Subjects, connect, declare_streams
from core.stream_cleanup import delete_streams


async def test_delete_streams_removes_only_that_prefix(nats_url: str) -> None:
    mine, other = f"wc{secrets.token_hex(4)}", f"wc{secrets.token_hex(4)}"
    nc = await connect(nats_url, name="warren-test")
    js = nc.jetstream()
    try:
        declared = await declare_streams(js, Subjects(mine), max_bytes=1024**2)
        kept = await declare_streams(js, Subjects(other), max_bytes=1024**2)
        assert sorted(await delete_streams(nats_url, mine)) == sorted(declared)
        assert await delete_streams(nats_url, mine) == []  # nothing left: not an error
        names = [info.config.name for info in await js.streams_info()]
        assert not set(declared) & set(names) and set(kept) <= set(names)
    finally:
        await delete_streams(nats_url, other)
        await nc.close()
