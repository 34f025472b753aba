"""Workspace confinement of client-named paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandboxes.agent.http import ApiError
from sandboxes.agent.paths import relative_to_workspace, resolve_in_workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "app" / "src").mkdir(parents=True)
    (ws / "inner").symlink_to(ws / "app")
    (ws / "out").symlink_to(tmp_path)
    return ws.resolve()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(".", "."), ("app", "app"), ("app/src/", "app/src"), ("inner/src", "app/src"), ("new", "new")],
)
def test_paths_inside_resolve(workspace: Path, raw: str, expected: str) -> None:
    resolved = resolve_in_workspace(workspace, raw, field="cwd")
    assert relative_to_workspace(workspace, resolved) == expected


@pytest.mark.parametrize(
    "raw", ["..", "../ws", "app/../..", "app/..", "/etc", "/", "out", "out/x", "inner/../../x"]
)
def test_paths_outside_are_403(workspace: Path, raw: str) -> None:
    with pytest.raises(ApiError) as refused:
        resolve_in_workspace(workspace, raw, field="cwd")
    assert refused.value.status == 403
    assert refused.value.detail.code == "path_outside_workspace"
    assert refused.value.detail.field == "cwd"


@pytest.mark.parametrize("raw", ["", "a\x00b"])
def test_malformed_paths_are_400(workspace: Path, raw: str) -> None:
    with pytest.raises(ApiError) as refused:
        resolve_in_workspace(workspace, raw, field="path")
    assert refused.value.status == 400
