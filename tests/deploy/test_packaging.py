"""A non-editable install (the KubeRay image's ``pip install .``) ships the SQL migrations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.migrate import discover

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(400)
def test_migrations_are_found_from_a_non_editable_install(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(ROOT), "-w", str(wheels)],
        check=True,
        timeout=300,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("warren-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), wheel],
        check=True,
        timeout=120,
        cwd=tmp_path,
    )
    probe = "import core.migrate as m; print(m.__file__); print(*[x.version for x in m.discover()])"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,  # not the checkout: only the installed copy can answer
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    where, versions = result.stdout.splitlines()
    assert Path(where).is_relative_to(site)
    assert versions.split() == [str(m.version) for m in discover()]
