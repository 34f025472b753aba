"""JSON log lines: the formatter, and a real Ray actor process writing them."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
import ray

from actors.base import BackgroundActor
from core.logs import JsonFormatter, request_id_var
from core.settings import Settings

log = logging.getLogger("warren.test.probe")


def test_formatter_writes_one_json_object_with_extras_and_fields() -> None:
    formatter = JsonFormatter({"actor": "pool:x"})
    record = logging.makeLogRecord(
        {"name": "warren.t", "levelname": "INFO", "msg": "hi %s", "args": ("there",), "n": 3}
    )
    token = request_id_var.set("rid-123")
    try:
        line = formatter.format(record)
    finally:
        request_id_var.reset(token)
    assert "\n" not in line
    out = msgspec.json.decode(line)
    assert out["msg"] == "hi there" and out["n"] == 3
    assert out["actor"] == "pool:x" and out["request_id"] == "rid-123"


class _Probe(BackgroundActor):
    """A background actor like the pools: it logs once its main loop runs."""

    async def main(self) -> None:
        log.warning("probe main running", extra={"probe": True})
        await asyncio.Event().wait()

    def stderr_path(self) -> str:
        """Where this worker process's stderr goes (Ray redirects it to a log file)."""
        return str(Path("/proc/self/fd/2").readlink())


@pytest.fixture
async def probe(ray_cluster: None, settings: Settings) -> Any:
    name = f"probe-{uuid.uuid4().hex[:8]}"
    actor: Any = ray.remote(num_cpus=0)(_Probe).remote(
        msgspec.structs.replace(settings, log_level="INFO"), name
    )
    yield actor, name
    ray.kill(actor)


async def test_a_background_actor_logs_json_lines_tagged_with_its_name(probe: Any) -> None:
    actor, name = probe
    assert await actor.ready.remote()
    path = Path(await actor.stderr_path.remote())
    deadline = time.monotonic() + 30
    mine: list[dict[str, Any]] = []
    while time.monotonic() < deadline:  # the line is written by the actor's own loop
        text = await asyncio.to_thread(path.read_text)
        lines = [line for line in text.splitlines() if name in line]
        mine = [msgspec.json.decode(line) for line in lines]
        if any(entry["msg"] == "probe main running" for entry in mine):
            break
        await asyncio.sleep(0.1)
    assert any(entry["msg"] == "probe main running" and entry["probe"] for entry in mine), mine
    assert any(entry["msg"] == f"{name}: connected" for entry in mine), mine
    assert all(entry["actor"] == name and "ts" in entry for entry in mine)
