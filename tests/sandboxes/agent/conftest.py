"""The in-sandbox agent under test: a real aiohttp server on a free loopback port, in-process."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from sandboxes.agent.app import create_app
from sandboxes.agent.config import SandboxAgentConfig

TOKEN = "test-sandbox-token-5f2c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Agent:
    """A running agent and the client that talks to it."""

    client: TestClient[web.Request, web.Application]
    config: SandboxAgentConfig

    @property
    def workspace(self) -> Path:
        """The agent's (resolved) workspace."""
        return self.config.workspace


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A fresh workspace and state dir, resolved."""
    workspace = tmp_path / "workspace"
    state = tmp_path / "state"
    workspace.mkdir()
    state.mkdir()
    return workspace.resolve(), state.resolve()


@pytest.fixture
async def agent(dirs: tuple[Path, Path]) -> AsyncIterator[Agent]:
    """The agent app served on a free port; stopped (with its services) after the test."""
    workspace, state = dirs
    config = SandboxAgentConfig(
        token=TOKEN, workspace=workspace, state_dir=state, port=1, stop_grace_seconds=1.0
    )
    client = TestClient(TestServer(create_app(config), host="127.0.0.1"))
    await client.start_server()
    try:
        yield Agent(client, config)
    finally:
        await client.close()


def git_env(home: Path) -> dict[str, str]:
    """An environment where git ignores the machine's config and has an identity."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }


@pytest.fixture
def git(tmp_path: Path) -> Callable[..., str]:
    """Run git in a directory: ``git(cwd, "commit", "-m", "x")`` → stdout."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = git_env(home)

    def run(cwd: Path, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
        )
        return done.stdout

    return run


async def wait_for(predicate: Callable[[], bool]) -> None:
    """Poll ``predicate`` (it watches other processes) until true; fail after about 10 s."""
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")
