"""Provider lookup by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandboxes.errors import SandboxError
from sandboxes.factory import ProviderConfig, get_provider
from sandboxes.local import LocalSandboxProvider


def test_local_provider_is_built_once_per_config(tmp_path: Path) -> None:
    config = ProviderConfig(data_dir=tmp_path, expiry_seconds=60)
    provider = get_provider("local", config)
    assert isinstance(provider, LocalSandboxProvider)
    assert provider.root == tmp_path / "sandboxes"
    assert provider.snapshots.root == tmp_path / "snapshots"
    assert provider.expiry_seconds == 60
    assert get_provider("local", ProviderConfig(data_dir=tmp_path, expiry_seconds=60)) is provider


def test_unknown_provider_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="not available"):
        get_provider("nope", ProviderConfig(data_dir=tmp_path))
