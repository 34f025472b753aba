"""Git views over HTTP against real repositories, and refusal of paths outside the workspace."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandboxes.agent.git import DIFF_LIMIT_BYTES, decode_repo_id, encode_repo_id
from tests.sandboxes.agent.conftest import AUTH, Agent

Git = Callable[..., str]


def _repo(git: Git, path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("hello\n")
    git(path, "add", "README.md")
    git(path, "commit", "-q", "-m", "init")
    return path


async def _get(agent: Agent, path: str, status: int = 200) -> Any:
    response = await agent.client.get(path, headers=AUTH)
    assert response.status == status, await response.text()
    return await response.json()


def test_repo_id_round_trip() -> None:
    for path in (".", "app", "lib/sub", "naïve dir"):
        repo_id = encode_repo_id(path)
        assert "=" not in repo_id and "/" not in repo_id and "+" not in repo_id
        assert decode_repo_id(repo_id) == path
    padded = base64.urlsafe_b64encode(b"app").decode()
    assert decode_repo_id(padded) == "app"


async def test_repos_lists_every_repo_with_branch(agent: Agent, git: Git) -> None:
    ws = agent.workspace
    _repo(git, ws / "app")
    lib = _repo(git, ws / "libs" / "core")
    git(lib, "checkout", "-q", "-b", "feature/x")
    detached = _repo(git, ws / "detached")
    git(detached, "checkout", "-q", "--detach")
    (ws / "plain").mkdir()
    body = await _get(agent, "/api/git/repos")
    assert body["repos"] == [
        {"id": encode_repo_id("app"), "path": "app", "branch": "main"},
        {"id": encode_repo_id("detached"), "path": "detached", "branch": None},
        {"id": encode_repo_id("libs/core"), "path": "libs/core", "branch": "feature/x"},
    ]


async def test_workspace_itself_as_repo(agent: Agent, git: Git) -> None:
    _repo(git, agent.workspace)
    body = await _get(agent, "/api/git/repos")
    assert body["repos"] == [{"id": encode_repo_id("."), "path": ".", "branch": "main"}]
    status = await _get(agent, f"/api/git/status?repo={encode_repo_id('.')}")
    assert status["branch"] == "main"


async def test_status_reports_staged_unstaged_untracked(agent: Agent, git: Git) -> None:
    repo = _repo(git, agent.workspace / "app")
    (repo / "old.txt").write_text("rename me\n")
    git(repo, "add", "old.txt")
    git(repo, "commit", "-q", "-m", "two")
    (repo / "README.md").write_text("hello\nchanged\n")  # unstaged modification
    (repo / "added.txt").write_text("new\n")
    git(repo, "add", "added.txt")  # staged addition
    git(repo, "mv", "old.txt", "new name.txt")  # staged rename, with a space
    (repo / "scratch.txt").write_text("?\n")  # untracked
    head = git(repo, "rev-parse", "HEAD").strip()

    repo_id = encode_repo_id("app")
    status = await _get(agent, f"/api/git/status?repo={repo_id}")
    assert status["repo"] == repo_id
    assert status["branch"] == "main" and status["detached"] is False
    assert status["head"] == head
    assert sorted(status["staged"], key=lambda c: c["path"]) == [
        {"path": "added.txt", "status": "A"},
        {"path": "new name.txt", "status": "R", "orig_path": "old.txt"},
    ]
    assert status["unstaged"] == [{"path": "README.md", "status": "M"}]
    assert status["untracked"] == ["scratch.txt"]
    assert status["conflicted"] == []


async def test_status_ahead_of_upstream(agent: Agent, git: Git, tmp_path: Path) -> None:
    origin = _repo(git, tmp_path / "origin")
    git(agent.workspace, "clone", "-q", str(origin), "clone")
    clone = agent.workspace / "clone"
    (clone / "more.txt").write_text("more\n")
    git(clone, "add", "more.txt")
    git(clone, "commit", "-q", "-m", "ahead")
    status = await _get(agent, f"/api/git/status?repo={encode_repo_id('clone')}")
    assert status["upstream"] == "origin/main"
    assert (status["ahead"], status["behind"]) == (1, 0)


async def test_diff_shows_changes(agent: Agent, git: Git) -> None:
    repo = _repo(git, agent.workspace / "app")
    (repo / "README.md").write_text("hello\nworld\n")
    (repo / "staged.txt").write_text("staged line\n")
    git(repo, "add", "staged.txt")
    body = await _get(agent, f"/api/git/diff?repo={encode_repo_id('app')}")
    assert body["truncated"] is False
    assert body["limit_bytes"] == DIFF_LIMIT_BYTES
    assert "+world" in body["diff"]
    assert "+staged line" in body["diff"]


async def test_diff_before_first_commit(agent: Agent, git: Git) -> None:
    repo = agent.workspace / "fresh"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a.txt").write_text("first\n")
    git(repo, "add", "a.txt")
    repo_id = encode_repo_id("fresh")
    body = await _get(agent, f"/api/git/diff?repo={repo_id}")
    assert "+first" in body["diff"]
    status = await _get(agent, f"/api/git/status?repo={repo_id}")
    assert status["head"] is None
    assert status["staged"] == [{"path": "a.txt", "status": "A"}]
    repos = await _get(agent, "/api/git/repos")
    assert repos["repos"][0]["branch"] == "main"


async def test_diff_is_capped_at_64_kb(agent: Agent, git: Git) -> None:
    repo = _repo(git, agent.workspace / "big")
    (repo / "big.txt").write_text("".join(f"line {i:06d} of a large change\n" for i in range(8000)))
    git(repo, "add", "big.txt")
    body = await _get(agent, f"/api/git/diff?repo={encode_repo_id('big')}")
    assert body["truncated"] is True
    assert len(body["diff"].encode()) == DIFF_LIMIT_BYTES
    assert body["diff"].startswith("diff --git a/big.txt b/big.txt")


async def test_repo_ids_outside_workspace_are_refused(
    agent: Agent, git: Git, tmp_path: Path
) -> None:
    outside = _repo(git, tmp_path / "outside")
    (agent.workspace / "escape").symlink_to(outside)
    for raw in ("..", "../outside", str(outside), "/etc", "escape", "app/../.."):
        for route in ("status", "diff"):
            body = await _get(agent, f"/api/git/{route}?repo={encode_repo_id(raw)}", 403)
            assert body["error"]["code"] == "path_outside_workspace", raw
            assert body["error"]["field"] == "repo"
    # The symlinked repo is not listed either: discovery never follows symlinks.
    assert (await _get(agent, "/api/git/repos"))["repos"] == []


async def test_bad_repo_ids(agent: Agent) -> None:
    (agent.workspace / "plain").mkdir()
    body = await _get(agent, "/api/git/status?repo=%21%21%21", 400)
    assert body["error"]["code"] == "invalid_repo_id"
    body = await _get(agent, "/api/git/status", 400)
    assert body["error"]["code"] == "missing_repo"
    body = await _get(agent, f"/api/git/diff?repo={encode_repo_id('plain')}", 404)
    assert body["error"]["code"] == "repo_not_found"
