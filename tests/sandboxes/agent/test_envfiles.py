"""Secret env files: written 0600 from env.json inside the workspace, scrubbed, never echoed."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import dotenv
import pytest

from sandboxes.agent.envfiles import quote, render
from tests.sandboxes.agent.conftest import AUTH, Agent

TRICKY = {
    "PLAIN": "s3cr3t-value",
    "SPACES": "two words # not a comment",
    "QUOTES": 'it\'s "quoted"',
    "NEWLINE": "line1\nline2\nINJECTED=yes",
    "BACKSLASH": "C:\\path\\n",
    "DOLLAR": "$HOME and $(whoami)",
    "EMPTY": "",
}


def _write_spec(agent: Agent, files: list[dict[str, Any]]) -> None:
    agent.config.env_spec_path.write_text(json.dumps({"files": files}))


async def _post(agent: Agent, verb: str) -> tuple[int, Any, str]:
    response = await agent.client.post(f"/api/env/{verb}", headers=AUTH)
    text = await response.text()
    return response.status, json.loads(text), text


async def test_apply_writes_private_dotenv_files_and_scrub_removes_them(agent: Agent) -> None:
    (agent.workspace / "apps" / "web").mkdir(parents=True)
    _write_spec(
        agent,
        [
            {"workspace_path": ".", "file_path": ".env", "values": TRICKY},
            {"workspace_path": "apps/web", "file_path": "config/.env.local", "values": {"K": "v"}},
        ],
    )
    status, body, text = await _post(agent, "apply")
    assert status == 200
    assert body == {"files": [".env", "apps/web/config/.env.local"]}
    for value in TRICKY.values():
        if value:
            assert value not in text  # values never come back

    root_env = agent.workspace / ".env"
    nested = agent.workspace / "apps" / "web" / "config" / ".env.local"
    for path in (root_env, nested):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Every value reads back exactly with a real dotenv parser, and no line was injected.
    assert dotenv.dotenv_values(root_env, interpolate=False) == TRICKY
    assert dotenv.dotenv_values(nested) == {"K": "v"}
    assert len(root_env.read_text().splitlines()) == len(TRICKY)

    status, body, _ = await _post(agent, "scrub")
    assert (status, body) == (200, {"files": [".env", "apps/web/config/.env.local"]})
    assert not root_env.exists() and not nested.exists()
    status, body, _ = await _post(agent, "scrub")
    assert (status, body) == (200, {"files": []})


async def test_apply_replaces_an_existing_file_and_fixes_its_mode(agent: Agent) -> None:
    target = agent.workspace / ".env"
    target.write_text("OLD=1\n")
    target.chmod(0o644)
    _write_spec(agent, [{"values": {"NEW": "2"}}])
    status, _, _ = await _post(agent, "apply")
    assert status == 200
    assert target.read_text() == "NEW='2'\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_simple_values_source_in_a_shell(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(render({"A": "x y", "B": "$HOME", "C": "a#b"}))
    out = subprocess.run(
        ["bash", "-c", f'set -a; . {path}; printf \'%s|%s|%s\' "$A" "$B" "$C"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == "x y|$HOME|a#b"
    assert quote("a'b") == '"a\'b"'


@pytest.mark.parametrize(
    "entry",
    [
        {"workspace_path": "..", "file_path": ".env"},
        {"workspace_path": ".", "file_path": "../.env"},
        {"workspace_path": ".", "file_path": "/tmp/evil.env"},
        {"workspace_path": "/tmp", "file_path": ".env"},
        {"workspace_path": "link", "file_path": ".env"},
        {"workspace_path": ".", "file_path": "link/.env"},
    ],
)
async def test_paths_outside_the_workspace_are_refused(
    agent: Agent, tmp_path: Path, entry: dict[str, str]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (agent.workspace / "link").symlink_to(outside)
    # A valid file listed first must not be written either: refusal happens before any write.
    _write_spec(agent, [{"values": {"A": "1"}}, {**entry, "values": {"B": "2"}}])
    status, body, _ = await _post(agent, "apply")
    assert status == 403
    assert body["error"]["code"] == "path_outside_workspace"
    assert body["error"]["field"].startswith("files[1].")
    assert not (agent.workspace / ".env").exists()
    assert list(outside.iterdir()) == []
    assert not (tmp_path / ".env").exists()


async def test_missing_spec_writes_nothing(agent: Agent) -> None:
    status, body, _ = await _post(agent, "apply")
    assert (status, body) == (200, {"files": []})


async def test_invalid_spec_never_echoes_values(agent: Agent) -> None:
    agent.config.env_spec_path.write_text(
        json.dumps({"files": [{"values": {"K": "v@lue-not-to-leak", "N": 5}}]})
    )
    status, body, text = await _post(agent, "apply")
    assert status == 400
    assert body["error"]["code"] == "invalid_env_spec"
    assert "v@lue-not-to-leak" not in text
    _write_spec(agent, [{"values": {"BAD KEY": "v@lue-not-to-leak"}}])
    status, body, text = await _post(agent, "apply")
    assert (status, body["error"]["code"]) == (400, "invalid_key")
    assert "v@lue-not-to-leak" not in text
