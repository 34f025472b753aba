"""Benchmark of the local sandbox provider: boot phases, snapshot/restore, memory.

Run from the repo root: ``.venv/bin/python -m bench.sandbox [--boots 10]``. It boots real
sandboxes (real git, the real OpenCode binary, the in-sandbox agent) in a temporary folder,
prints the figures and removes everything it made.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from sandboxes.local import LocalSandboxProvider
from sandboxes.local_layout import SandboxLayout
from sandboxes.proctree import rss_bytes, sandbox_processes
from sandboxes.snapshot_store import Compression, LocalSnapshotStore
from schemas.sandbox import CreateSandboxOptions, RepoSpec

MB = 1_000_000


def _percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (for 10 samples p95 is the maximum)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def _make_repo(path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(path), "GIT_CONFIG_NOSYSTEM": "1"}
    path.mkdir(parents=True)
    for i in range(50):
        (path / f"module_{i}.py").write_text(f"def f{i}():\n    return {i}\n" * 20)
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    for args in (["init", "-q"], ["add", "."], [*ident, "commit", "-qm", "init"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True)


def _fill(workspace: Path, size: int) -> None:
    """Half compressible source-like text, half random bytes (git objects, binaries)."""
    rng = random.Random(7)
    words = [f"name_{i}" for i in range(2000)]
    text_dir = workspace / "bench_text"
    text_dir.mkdir()
    written = 0
    index = 0
    while written < size // 2:
        chunk = " ".join(rng.choice(words) for _ in range(12_000)).encode()[:100_000]
        (text_dir / f"f{index}.py").write_bytes(chunk)
        written += len(chunk)
        index += 1
    blob_dir = workspace / "bench_blobs"
    blob_dir.mkdir()
    for i in range(max(1, (size - written) // MB)):
        (blob_dir / f"b{i}.bin").write_bytes(os.urandom(MB))


def _opts(repo: Path, snapshot_id: str | None = None) -> CreateSandboxOptions:
    return CreateSandboxOptions(
        session_id="bench",
        repos=(RepoSpec(url=str(repo)),),
        sandbox_token="bench-token-0123456789",
        snapshot_id=snapshot_id,
    )


async def bench_boots(provider: LocalSandboxProvider, repo: Path, boots: int) -> None:
    """Boot phases over ``boots`` sequential boots, plus terminate time and idle RSS."""
    phases: dict[str, list[float]] = {}
    terminate: list[float] = []
    rss: list[float] = []
    for _ in range(boots):
        handle = await provider.create_sandbox(_opts(repo))
        for name, seconds in handle.boot_phases.items():
            phases.setdefault(name, []).append(seconds)
        layout = SandboxLayout(provider.root / handle.sandbox_id)
        meta = layout.read_meta()
        groups = [p.pgid for p in meta.processes] if meta else []
        await asyncio.sleep(1.0)  # let start-up allocations settle
        rss.append(rss_bytes(sandbox_processes(layout.root, groups)))
        started = time.monotonic()
        await provider.terminate(handle.sandbox_id)
        terminate.append(time.monotonic() - started)
    print(f"boot phases over {boots} boots (seconds)      p50      p95")
    for name in ("created", "repos_cloned", "agent_ready", "total"):
        values = phases.get(name, [])
        if values:
            print(f"  {name:<38} {_percentile(values, 50):7.3f}  {_percentile(values, 95):7.3f}")
    print(
        f"  {'terminate':<38} {_percentile(terminate, 50):7.3f}  {_percentile(terminate, 95):7.3f}"
    )
    print(
        f"idle RSS of a booted sandbox (process tree): p50 {_percentile(rss, 50) / MB:.0f} MB, "
        f"max {max(rss) / MB:.0f} MB"
    )


async def bench_snapshots(root: Path, repo: Path, size: int, compression: Compression) -> None:
    """Snapshot and restore a workspace grown to ``size`` bytes."""
    provider = LocalSandboxProvider(
        root / f"sb-{compression}-{size}",
        LocalSnapshotStore(root / f"snaps-{compression}-{size}", compression=compression),
    )
    handle = await provider.create_sandbox(_opts(repo))
    await asyncio.to_thread(_fill, provider.root / handle.sandbox_id / "workspace", size)
    started = time.monotonic()
    snap = await provider.snapshot(handle.sandbox_id)
    snapshot_s = time.monotonic() - started
    await provider.terminate(handle.sandbox_id)
    started = time.monotonic()
    restored = await provider.ensure_sandbox(_opts(repo, snapshot_id=snap.snapshot_id))
    restore_boot_s = time.monotonic() - started
    extract_s = restored.boot_phases.get("snapshot_restored", 0.0)
    await provider.terminate(restored.sandbox_id)
    await provider.delete_snapshot(snap.snapshot_id)
    print(
        f"  {size // MB:>4} MB {compression:<5} snapshot {snapshot_s:6.2f} s  "
        f"archive {snap.size_bytes / MB:6.1f} MB  extract {extract_s:6.2f} s  "
        f"restore+boot {restore_boot_s:6.2f} s"
    )


async def main(boots: int) -> None:
    """Run every benchmark in a temporary folder."""
    root = Path(tempfile.mkdtemp(prefix="warren-bench-"))
    try:
        repo = root / "repo"
        _make_repo(repo)
        provider = LocalSandboxProvider(root / "sandboxes", LocalSnapshotStore(root / "snaps"))
        await bench_boots(provider, repo, boots)
        print("snapshot / restore")
        compressions: tuple[Compression, ...] = ("none", "gzip")
        for size in (10 * MB, 100 * MB):
            for compression in compressions:
                await bench_snapshots(root, repo, size, compression)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--boots", type=int, default=10)
    asyncio.run(main(parser.parse_args().boots))
