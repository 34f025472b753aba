"""The agent as a process (``python -m sandboxes.agent``) and the ``warren`` CLI against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.net import free_port
from sandboxes.agent.procs import is_alive
from tests.sandboxes.agent.conftest import TOKEN

REPO_ROOT = Path(__file__).resolve().parents[3]


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARREN_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(values)
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandboxes.agent.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def agent_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A real agent process on a free port; its environment is what the CLI sees too."""
    workspace, state = tmp_path / "workspace", tmp_path / "state"
    workspace.mkdir()
    port = free_port()
    env = _env(
        WARREN_SANDBOX_TOKEN=TOKEN,
        WARREN_WORKSPACE=str(workspace),
        WARREN_STATE_DIR=str(state),
        WARREN_AGENT_PORT=str(port),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "sandboxes.agent"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1):
                    break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "agent did not come up"
                time.sleep(0.05)
        yield env
    finally:
        process.terminate()
        process.wait(timeout=15)
        if process.stderr:
            process.stderr.close()


def test_actions_are_not_available_yet() -> None:
    for verb in ("list", "guide", "run"):
        done = _cli(_env(), "actions", verb, "linear", "create_issue")
        assert done.returncode == 2
        assert "actions are not available yet in this Warren build" in done.stderr


def test_services_through_the_cli(agent_env: dict[str, str]) -> None:
    done = _cli(agent_env, "services", "list")
    assert (done.returncode, done.stdout.strip()) == (0, "no services")

    done = _cli(agent_env, "services", "start", "web", "--", "sleep", "300")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("web: running (pid ")

    done = _cli(agent_env, "services", "list")
    assert done.returncode == 0
    header, row = done.stdout.splitlines()
    assert header.split() == ["NAME", "STATUS", "PID", "EXIT", "CWD", "COMMAND"]
    assert row.split()[:2] == ["web", "running"] and row.endswith("sleep 300")

    done = _cli(agent_env, "--json", "services", "list")
    [service] = json.loads(done.stdout)["services"]
    assert service["status"] == "running" and is_alive(service["pid"])

    done = _cli(agent_env, "services", "stop", "web")
    assert done.returncode == 0 and done.stdout.startswith("web: stopped")
    assert not is_alive(service["pid"])


def test_logs_and_errors_through_the_cli(agent_env: dict[str, str]) -> None:
    done = _cli(agent_env, "services", "start", "hello", "--", "echo hello; echo world")
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 10
    while "world" not in (out := _cli(agent_env, "services", "logs", "hello").stdout):
        assert time.monotonic() < deadline, out
        time.sleep(0.1)
    assert out == "hello\nworld\n"

    done = _cli(agent_env, "services", "stop", "ghost")
    assert done.returncode == 1
    assert "no service named 'ghost'" in done.stderr and "404" in done.stderr


def test_env_through_the_cli(agent_env: dict[str, str]) -> None:
    spec = {"files": [{"workspace_path": ".", "file_path": ".env", "values": {"K": "V"}}]}
    Path(agent_env["WARREN_STATE_DIR"], "env.json").write_text(json.dumps(spec))
    done = _cli(agent_env, "env", "apply")
    assert (done.returncode, done.stdout) == (0, "wrote .env\n")
    assert Path(agent_env["WARREN_WORKSPACE"], ".env").exists()
    done = _cli(agent_env, "env", "scrub")
    assert (done.returncode, done.stdout) == (0, "removed .env\n")


def test_cli_reports_missing_configuration_and_unreachable_agent() -> None:
    done = _cli(_env(WARREN_SANDBOX_TOKEN=TOKEN), "services", "list")
    assert done.returncode == 2 and "WARREN_AGENT_PORT" in done.stderr
    done = _cli(_env(WARREN_AGENT_PORT=str(free_port())), "services", "list")
    assert done.returncode == 2 and "WARREN_SANDBOX_TOKEN" in done.stderr
    done = _cli(
        _env(WARREN_AGENT_PORT=str(free_port()), WARREN_SANDBOX_TOKEN=TOKEN), "services", "list"
    )
    assert done.returncode == 1 and "cannot reach the sandbox agent" in done.stderr


@pytest.mark.parametrize(
    ("missing_or_bad", "variable"),
    [
        ({"WARREN_WORKSPACE": ""}, "WARREN_WORKSPACE"),
        ({"WARREN_WORKSPACE": "relative/dir"}, "WARREN_WORKSPACE"),
        ({"WARREN_STATE_DIR": ""}, "WARREN_STATE_DIR"),
        ({"WARREN_AGENT_PORT": "http"}, "WARREN_AGENT_PORT"),
        ({"WARREN_AGENT_PORT": "70000"}, "WARREN_AGENT_PORT"),
    ],
)
def test_agent_exits_naming_the_bad_variable(
    tmp_path: Path, missing_or_bad: dict[str, str], variable: str
) -> None:
    values = {
        "WARREN_SANDBOX_TOKEN": TOKEN,
        "WARREN_WORKSPACE": str(tmp_path),
        "WARREN_STATE_DIR": str(tmp_path / "state"),
        "WARREN_AGENT_PORT": str(free_port()),
        **missing_or_bad,
    }
    done = subprocess.run(
        [sys.executable, "-m", "sandboxes.agent"],
        env=_env(**{k: v for k, v in values.items() if v}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert variable in done.stderr and "configuration error" in done.stderr
