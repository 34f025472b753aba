"""Provider lookup by name (the name is stored on the session, so later calls match).

The caller (an actor) turns its settings into a :class:`ProviderConfig`; ``sandboxes``
itself never reads Warren's settings. One provider instance is kept per config and
process, so a local provider reaps the processes it started.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sandboxes.errors import SandboxError
from sandboxes.local import LocalSandboxProvider
from sandboxes.provider import SandboxProvider


@dataclass(frozen=True)
class ProviderConfig:
    """What building any provider may need (from ``WARREN_DATA_DIR`` and friends)."""

    data_dir: Path
    expiry_seconds: float = 3600.0
    opencode_bin: Path | None = None
    """None: the binary ``deploy/sandbox`` installs."""


def _local(config: ProviderConfig) -> SandboxProvider:
    return LocalSandboxProvider.from_data_dir(
        config.data_dir, opencode_bin=config.opencode_bin, expiry_seconds=config.expiry_seconds
    )


BUILDERS: dict[str, Callable[[ProviderConfig], SandboxProvider]] = {"local": _local}
"""Provider name → builder; other backends register themselves here."""


@functools.cache
def get_provider(name: str, config: ProviderConfig) -> SandboxProvider:
    """The process-wide provider ``name`` for ``config``; SandboxError if unknown."""
    builder = BUILDERS.get(name)
    if builder is None:
        raise SandboxError(f"sandbox provider {name!r} is not available")
    return builder(config)
