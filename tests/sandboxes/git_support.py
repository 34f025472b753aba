"""Real repos for the git tests: a bare ``origin`` over file://, a clone in a workspace,
and the simplest exec (a subprocess with a clean git environment).

Use the fixture with ``from tests.sandboxes.git_support import repo  # noqa: F401``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandboxes.git_repo import RepoDir, resolve_repo_dir
from schemas.sandbox import ExecResult
from tests.sandboxes.local_support import GIT_ENV, git


async def local_exec(argv: Sequence[str], cwd: str | None) -> ExecResult:
    """The simplest Exec: a subprocess with a clean git environment."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=GIT_ENV,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return ExecResult(
        exit_code=proc.returncode or 0, stdout=out.decode(), stderr=err.decode(errors="replace")
    )


@dataclass
class Repo:
    """A clone at ``<workspace>/app`` of the bare ``origin``."""

    workspace: Path
    path: Path
    origin: Path
    dir: RepoDir

    def git(self, *args: str) -> str:
        """Run git in the clone; its stdout."""
        return git(self.path, *args)

    def write(self, name: str, text: str) -> None:
        """Write a file of the clone."""
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def bare_with_history(root: Path, name: str = "origin.git", commits: int = 2) -> Path:
    """A bare repo with ``commits`` commits on ``main``."""
    bare = root / name
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = root / f"seed-{name}"
    git(root, "init", "-q", "-b", "main", str(seed))
    for i in range(commits):
        (seed / "README.md").write_text(f"# demo {i}\n")
        (seed / f"file{i}.txt").write_text(f"{i}\n")
        git(seed, "add", ".")
        git(seed, "commit", "-qm", f"commit {i}")
    git(seed, "push", "-q", bare.as_uri(), "main")
    return bare


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """A clone of a two-commit ``origin``, at ``<tmp>/ws/app``."""
    origin = bare_with_history(tmp_path)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    git(workspace, "clone", "-q", origin.as_uri(), "app")
    return Repo(workspace, workspace / "app", origin, resolve_repo_dir(str(workspace), "app"))
