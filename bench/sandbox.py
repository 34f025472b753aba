"""Benchmark of the local sandbox provider: boot phases, start vs bare OpenCode, snapshots.

Run from the repo root: ``.venv/bin/python -m bench.sandbox [--boots 10] [--sizes 10,100]``.
It boots real sandboxes (real git, the real OpenCode binary, the in-sandbox agent) in a
temporary folder, prints the figures and removes everything it made.

Before each sandbox boot it starts bare OpenCode: the same binary, the same offline
environment and config files in a fresh HOME and an empty workspace, started directly and
timed from start to the first 200 on ``/global/health``. Warren's session start is the
provider's ``create_sandbox`` (folders, clone, OpenCode and the in-sandbox agent ready),
timed the same way; the two alternate in one run and the ratio of their medians is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from bench.harness import CpuShare
from deploy.net import free_port
from sandboxes import opencode
from sandboxes.local import LocalSandboxProvider
from sandboxes.local_env import SYSTEM_PATH
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


async def bare_opencode_start(binary: Path, root: Path, repo: Path) -> float:
    """Seconds from starting OpenCode directly to its first 200 on the health route."""
    home, workspace = root / "home", root / "workspace"
    workspace.mkdir(parents=True)
    opts = _opts(repo)
    opencode.write_opencode_files(opts, home=home, workspace=workspace)
    env = {"LANG": "C.UTF-8", "PATH": SYSTEM_PATH, **opencode.opencode_env(opts, home=home)}
    port = free_port()
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *opencode.opencode_command(str(binary), port),
        cwd=workspace,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        await opencode.wait_ready(f"http://127.0.0.1:{port}", timeout=120)
        return time.monotonic() - started
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        await proc.wait()


async def bench_boots(provider: LocalSandboxProvider, repo: Path, boots: int) -> None:
    """Boot phases over ``boots`` sequential boots, each after a bare OpenCode start, plus
    terminate time and idle RSS."""
    phases: dict[str, list[float]] = {}
    terminate: list[float] = []
    rss: list[float] = []
    bare: list[float] = []
    warren: list[float] = []
    for boot in range(boots):
        bare_root = provider.root.parent / f"bare-{boot}"
        bare.append(await bare_opencode_start(provider.opencode_bin, bare_root, repo))
        shutil.rmtree(bare_root, ignore_errors=True)
        started = time.monotonic()
        handle = await provider.create_sandbox(_opts(repo))
        warren.append(time.monotonic() - started)
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
    print(f"start to ready over {boots} pairs (seconds)  p50      p95")
    for name, values in (("bare OpenCode", bare), ("Warren session (sandbox + OpenCode)", warren)):
        print(f"  {name:<38} {_percentile(values, 50):7.3f}  {_percentile(values, 95):7.3f}")
    print(f"  ratio Warren/bare (p50): {_percentile(warren, 50) / _percentile(bare, 50):.2f}")


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


async def main(boots: int, sizes: list[int]) -> None:
    """Run every benchmark in a temporary folder."""
    generator = CpuShare()
    root = Path(tempfile.mkdtemp(prefix="warren-bench-"))
    try:
        repo = root / "repo"
        _make_repo(repo)
        provider = LocalSandboxProvider(root / "sandboxes", LocalSnapshotStore(root / "snaps"))
        await bench_boots(provider, repo, boots)
        print("snapshot / restore")
        compressions: tuple[Compression, ...] = ("none", "gzip")
        for size in sizes:
            for compression in compressions:
                await bench_snapshots(root, repo, size * MB, compression)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(generator.line())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--boots", type=int, default=10)
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(x) for x in text.split(",") if x],
        default=[10, 100],
        help="snapshot workspace sizes in MB (empty: none)",
    )
    args = parser.parse_args()
    asyncio.run(main(args.boots, args.sizes))
