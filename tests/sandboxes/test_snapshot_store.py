"""Snapshot archives: exact round trip (modes, links, empty dirs), excludes, ids, both formats."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from sandboxes.errors import SandboxError
from sandboxes.snapshot_store import Compression, LocalSnapshotStore, valid_snapshot_id
from tests.sandboxes.local_support import tree_digest


def _populate(root: Path) -> None:
    ws = root / "workspace"
    (ws / "src" / "deep").mkdir(parents=True)
    (ws / "empty").mkdir()
    (ws / "src" / "a.py").write_text("print(1)\n")
    (ws / "bin.dat").write_bytes(os.urandom(300_000))
    script = ws / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    (ws / "link-rel").symlink_to("src/a.py")
    (ws / "link-abs").symlink_to("/etc/hostname")
    (ws / "link-dir").symlink_to("src")
    (ws / ".env").write_text("SECRET=1\n")
    home = root / "home"
    (home / ".local/share/opencode").mkdir(parents=True)
    (home / ".local/share/opencode/opencode.db").write_bytes(b"sqlite")
    (home / ".cache/opencode").mkdir(parents=True)
    (home / ".cache/opencode/big").write_bytes(b"cache")
    (root / "state").mkdir()
    (root / "state" / "sandbox.json").write_text("{}")


@pytest.mark.parametrize("compression", ["none", "gzip"])
async def test_round_trip_is_exact_and_honours_excludes(
    tmp_path: Path, compression: Compression
) -> None:
    source = tmp_path / "src"
    _populate(source)
    store = LocalSnapshotStore(tmp_path / "snaps", compression=compression)

    def exclude(rel: str) -> bool:
        return rel in ("workspace/.env", "home/.cache")

    result = await store.save(source, ["workspace", "home"], exclude)
    assert valid_snapshot_id(result.snapshot_id)
    path = store.path_for(result.snapshot_id)
    assert path is not None and result.size_bytes == path.stat().st_size
    assert path.name.endswith(".tar.gz" if compression == "gzip" else ".tar")

    dest = tmp_path / "dest"
    await store.restore(result.snapshot_id, dest)
    expected = tree_digest(source / "workspace")
    del expected[".env"]
    assert tree_digest(dest / "workspace") == expected
    assert (dest / "home/.local/share/opencode/opencode.db").read_bytes() == b"sqlite"
    assert not (dest / "home/.cache").exists()
    assert not (dest / "state").exists()  # only the members asked for


async def test_unknown_and_malformed_ids(tmp_path: Path) -> None:
    store = LocalSnapshotStore(tmp_path)
    for bad in ("snap_" + "0" * 24, "../../etc/passwd", "snap_x"):
        assert store.path_for(bad) is None
        with pytest.raises(SandboxError):
            await store.restore(bad, tmp_path / "d")
        await store.delete(bad)  # not an error


async def test_delete_removes_the_archive(tmp_path: Path) -> None:
    source = tmp_path / "src"
    _populate(source)
    store = LocalSnapshotStore(tmp_path / "snaps")
    result = await store.save(source, ["workspace"], lambda rel: False)
    await store.delete(result.snapshot_id)
    assert store.path_for(result.snapshot_id) is None
    assert list((tmp_path / "snaps").iterdir()) == []


async def test_restore_refuses_members_escaping_the_destination(tmp_path: Path) -> None:
    store = LocalSnapshotStore(tmp_path / "snaps")
    (tmp_path / "snaps").mkdir()
    evil = tmp_path / "snaps" / ("snap_" + "a" * 24 + ".tar")
    payload = tmp_path / "payload"
    payload.write_text("pwned")
    with tarfile.open(evil, "w") as archive:
        archive.add(payload, arcname="../outside.txt")
    with pytest.raises(SandboxError):
        await store.restore("snap_" + "a" * 24, tmp_path / "dest")
    assert not (tmp_path / "outside.txt").exists()
