"""The local-folder artifact store: the embedded default when no S3 is configured.

``<root>/objects/<key>`` holds the bytes and ``<root>/types/<key>`` the content type.
Writes go through ``<root>/tmp`` and an atomic rename, so readers never see half a file.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

from artifacts.store import (
    DEFAULT_CONTENT_TYPE,
    ArtifactError,
    ArtifactNotFound,
    ArtifactStore,
    validate_key,
    validate_prefix,
)
from schemas.artifacts import ArtifactObject


class LocalArtifactStore(ArtifactStore):
    """Artifacts as files under ``root``."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._objects = root / "objects"
        self._types = root / "types"
        self._tmp = root / "tmp"

    def _paths(self, key: str) -> tuple[Path, Path]:
        parts = validate_key(key).split("/")
        return self._objects.joinpath(*parts), self._types.joinpath(*parts)

    async def put(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> None:
        """Write ``data`` (and its content type) atomically."""
        obj, typ = self._paths(key)
        try:
            await asyncio.to_thread(self._put, obj, typ, data, content_type)
        except (NotADirectoryError, FileExistsError, IsADirectoryError):
            raise ArtifactError(f"artifact key {key!r} clashes with an existing key") from None

    def _put(self, obj: Path, typ: Path, data: bytes, content_type: str) -> None:
        self._tmp.mkdir(parents=True, exist_ok=True)
        for path, payload in ((typ, content_type.encode()), (obj, data)):
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = self._tmp / secrets.token_hex(8)
            partial.write_bytes(payload)
            os.replace(partial, path)

    async def get(self, key: str) -> ArtifactObject:
        """Read ``key``; raises ArtifactNotFound."""
        obj, typ = self._paths(key)
        try:
            data = await asyncio.to_thread(obj.read_bytes)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ArtifactNotFound(f"artifact {key!r} not found") from None
        try:
            content_type = typ.read_text() or DEFAULT_CONTENT_TYPE
        except (FileNotFoundError, NotADirectoryError):
            content_type = DEFAULT_CONTENT_TYPE
        return ArtifactObject(key=key, data=data, content_type=content_type)

    async def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted."""
        validate_prefix(prefix)
        return await asyncio.to_thread(_list_keys, self._objects, prefix)

    async def delete(self, key: str) -> None:
        """Remove ``key`` and prune folders it leaves empty."""
        obj, typ = self._paths(key)
        await asyncio.to_thread(self._delete, obj, typ)

    def _delete(self, obj: Path, typ: Path) -> None:
        for path, top in ((obj, self._objects), (typ, self._types)):
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue
            parent = path.parent
            while parent != top:
                try:
                    parent.rmdir()
                except OSError:  # not empty (or already gone): stop pruning
                    break
                parent = parent.parent


def _list_keys(objects: Path, prefix: str) -> list[str]:
    # Walk only the deepest folder the prefix names, not the whole store.
    folder = prefix.rpartition("/")[0]
    start = objects.joinpath(*folder.split("/")) if folder else objects
    if not start.is_dir():
        return []
    return sorted(
        key
        for dirpath, _, filenames in os.walk(start)
        for rel in (Path(dirpath).relative_to(objects).as_posix(),)
        for key in (name if rel == "." else f"{rel}/{name}" for name in filenames)
        if key.startswith(prefix)
    )
