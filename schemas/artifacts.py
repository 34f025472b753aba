"""Wire shapes of the artifact store: an object as stored, with its content type."""

from __future__ import annotations

import msgspec


class ArtifactObject(msgspec.Struct, frozen=True, kw_only=True):
    """One stored artifact (verification media, run completion or enrichment JSON)."""

    key: str
    data: bytes
    content_type: str = "application/octet-stream"
