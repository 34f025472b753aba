"""Snapshots of local sandboxes: tar archives in one folder, addressed by snapshot id.

Uncompressed tar is the default: on a 100 MB mixed workspace it took 0.15 s to write
against 1.6 s for gzip level 1 (which only saved 30 %, since git objects are already
compressed). ``compression="gzip"`` trades that time for disk.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Literal

from sandboxes.errors import SandboxError
from schemas.sandbox import SnapshotResult

Compression = Literal["none", "gzip"]

_SNAPSHOT_ID = re.compile(r"^snap_[0-9a-f]{24}$")
_SUFFIXES: dict[Compression, str] = {"none": ".tar", "gzip": ".tar.gz"}


def new_snapshot_id() -> str:
    """A fresh, unguessable snapshot id."""
    return "snap_" + secrets.token_hex(12)


def valid_snapshot_id(snapshot_id: str) -> bool:
    """True if ``snapshot_id`` has the shape this store hands out (safe as a file name)."""
    return bool(_SNAPSHOT_ID.match(snapshot_id))


class _FixedSize:
    """Reads exactly ``size`` bytes from a file that may change while it is archived."""

    def __init__(self, handle: IO[bytes], size: int) -> None:
        self._handle = handle
        self._left = size

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        n = self._left if n < 0 else min(n, self._left)
        data = self._handle.read(n)
        if len(data) < n:  # the file shrank: pad, the header already promised the size
            data += b"\0" * (n - len(data))
        self._left -= len(data)
        return data


class LocalSnapshotStore:
    """Saves folders of a sandbox into ``<root>/<snapshot_id>.tar[.gz]`` and restores them."""

    def __init__(self, root: Path, *, compression: Compression = "none") -> None:
        self.root = root
        self.compression = compression

    def path_for(self, snapshot_id: str) -> Path | None:
        """The archive of ``snapshot_id``, or None if there is none."""
        if not valid_snapshot_id(snapshot_id):
            return None
        for suffix in _SUFFIXES.values():
            path = self.root / f"{snapshot_id}{suffix}"
            if path.is_file():
                return path
        return None

    async def save(
        self, source: Path, members: Sequence[str], exclude: Callable[[str], bool]
    ) -> SnapshotResult:
        """Archive the ``members`` folders of ``source``, skipping paths ``exclude`` accepts.

        ``exclude`` gets paths relative to ``source`` with ``/`` separators.
        """
        snapshot_id = new_snapshot_id()
        final = self.root / f"{snapshot_id}{_SUFFIXES[self.compression]}"
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.root / f".partial-{snapshot_id}"
        try:
            await asyncio.to_thread(self._write, partial, source, members, exclude)
            os.replace(partial, final)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise SandboxError(f"snapshot failed: {exc.strerror or exc}") from None
        return SnapshotResult(snapshot_id=snapshot_id, size_bytes=final.stat().st_size)

    async def restore(self, snapshot_id: str, dest: Path) -> None:
        """Extract ``snapshot_id`` into ``dest``; raises SandboxError if it does not exist."""
        path = self.path_for(snapshot_id)
        if path is None:
            raise SandboxError(f"snapshot {snapshot_id!r} not found")
        try:
            await asyncio.to_thread(_extract, path, dest)
        except (OSError, tarfile.TarError) as exc:
            raise SandboxError(f"restoring snapshot {snapshot_id} failed: {exc}") from None

    async def delete(self, snapshot_id: str) -> None:
        """Remove ``snapshot_id``; unknown ids are ignored."""
        path = self.path_for(snapshot_id)
        if path is not None:
            path.unlink(missing_ok=True)

    def _write(
        self, target: Path, source: Path, members: Sequence[str], exclude: Callable[[str], bool]
    ) -> None:
        if self.compression == "gzip":
            archive = tarfile.open(target, "w:gz", compresslevel=1, format=tarfile.PAX_FORMAT)
        else:
            archive = tarfile.open(target, "w", format=tarfile.PAX_FORMAT)
        with archive:
            for member in members:
                top = source / member
                if top.is_dir():
                    _add_tree(archive, source, top, exclude)


def _add_tree(
    archive: tarfile.TarFile, source: Path, top: Path, exclude: Callable[[str], bool]
) -> None:
    for dirpath, dirnames, filenames in os.walk(top):
        rel_dir = Path(dirpath).relative_to(source).as_posix()
        _add_entry(archive, Path(dirpath), rel_dir)
        dirnames[:] = [d for d in sorted(dirnames) if not exclude(f"{rel_dir}/{d}")]
        # os.walk lists symlinks to folders among dirnames but does not descend: add them.
        for name in list(dirnames):
            if os.path.islink(os.path.join(dirpath, name)):
                dirnames.remove(name)
                _add_entry(archive, Path(dirpath, name), f"{rel_dir}/{name}")
        for name in sorted(filenames):
            rel = f"{rel_dir}/{name}"
            if not exclude(rel):
                _add_entry(archive, Path(dirpath, name), rel)


def _add_entry(archive: tarfile.TarFile, path: Path, arcname: str) -> None:
    try:
        info = archive.gettarinfo(str(path), arcname)
    except FileNotFoundError:  # vanished while we walked: a live sandbox keeps writing
        return
    if info is None:  # sockets cannot be archived
        return
    if not info.isreg():
        archive.addfile(info)
        return
    try:
        with open(path, "rb") as handle:
            archive.addfile(info, _FixedSize(handle, info.size))
    except FileNotFoundError:
        return


def _extract(path: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "r:*") as archive:
        # "tar" keeps absolute symlinks (a workspace may hold some) but refuses members
        # that would land outside ``dest``.
        archive.extractall(dest, filter="tar")
