"""Shared helpers for the integrations tests: fixture payloads on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PAYLOADS = Path(__file__).parent / "payloads"


def payload_bytes(name: str) -> bytes:
    """The raw bytes of ``payloads/<name>.json``."""
    return (PAYLOADS / f"{name}.json").read_bytes()


def payload(name: str) -> dict[str, Any]:
    """``payloads/<name>.json`` decoded."""
    data: dict[str, Any] = json.loads(payload_bytes(name))
    return data
