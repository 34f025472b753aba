"""Builds the configured artifact store from :class:`core.settings.Settings`."""

from __future__ import annotations

from pathlib import Path

from artifacts.local import LocalArtifactStore
from artifacts.s3 import S3ArtifactStore
from artifacts.store import ArtifactStore
from core.settings import Settings


def artifact_store_from_settings(settings: Settings) -> ArtifactStore:
    """``WARREN_ARTIFACT_STORE``: ``local`` (``<data_dir>/artifacts``) or ``s3`` (``s3_*``)."""
    if settings.artifact_store == "s3":
        return S3ArtifactStore(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url or None,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id or None,
            secret_access_key=settings.s3_secret_access_key or None,
        )
    return LocalArtifactStore(Path(settings.data_dir) / "artifacts")
