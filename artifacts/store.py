"""The artifact store interface: keyed blobs in a local folder or an S3 bucket.

Keys are ``/``-separated relative paths such as ``runs/<id>/completion.json`` or
``sessions/<id>/verification/<ts>/shot.png``. Every backend refuses the same keys.
"""

from __future__ import annotations

import abc

from schemas.artifacts import ArtifactObject

MAX_KEY_LENGTH = 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"


class ArtifactError(Exception):
    """An artifact operation failed (bad key, backend error). Never holds credentials."""


class ArtifactNotFound(ArtifactError):
    """No artifact has that key."""


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise ArtifactError.

    Refused: empty keys, absolute keys, ``.``/``..``/empty segments, backslashes and
    control characters, and keys longer than :data:`MAX_KEY_LENGTH`.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ArtifactError("artifact key must be 1-1024 characters")
    if key.startswith("/") or "\\" in key or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise ArtifactError(f"artifact key {key!r} is not a relative path")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ArtifactError(f"artifact key {key!r} has an empty, '.' or '..' segment")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if listing by it is safe (empty lists everything)."""
    if prefix:
        head, _, last = prefix.rpartition("/")
        if head:
            validate_key(head)
        if last in (".", "..") or "\\" in last or prefix.startswith("/"):
            raise ArtifactError(f"artifact prefix {prefix!r} is not a relative path")
    return prefix


class ArtifactStore(abc.ABC):
    """Keyed blob storage shared by every Warren process."""

    name: str

    @abc.abstractmethod
    async def put(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> None:
        """Store ``data`` under ``key``, replacing what was there."""

    @abc.abstractmethod
    async def get(self, key: str) -> ArtifactObject:
        """The artifact at ``key``; raises ArtifactNotFound."""

    @abc.abstractmethod
    async def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix`` (a plain string prefix, as in S3), sorted."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""

    async def presigned_url(self, key: str, expires_in: int = 3600) -> str | None:
        """A time-limited GET URL for ``key``, or None when the backend has none."""
        validate_key(key)
        return None

    async def close(self) -> None:
        """Release connections; the store must not be used afterwards."""
        return None  # nothing to release by default
