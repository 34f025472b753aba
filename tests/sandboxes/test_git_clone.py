"""Cloning repos into a workspace with real git: paths, branches, tokens that never leak."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from sandboxes.errors import SandboxError
from sandboxes.git_clone import clone_repos, repo_dir, split_credentials
from schemas.sandbox import RepoSpec
from tests.sandboxes.local_support import git, make_repo

ENV = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LANG": "C.UTF-8"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "origin")


async def test_single_repo_lands_at_workspace_root(repo: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    await clone_repos([RepoSpec(url=str(repo))], workspace, ENV)
    assert (workspace / "README.md").read_text() == "# demo\n"
    assert (workspace / "src/app.py").is_file()
    assert git(workspace, "branch", "--show-current").strip() == "main"


async def test_file_url_and_branch_are_honoured(repo: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    await clone_repos([RepoSpec(url=f"file://{repo}", branch="feature")], workspace, ENV)
    assert git(workspace, "branch", "--show-current").strip() == "feature"
    assert (workspace / "feature.txt").read_text() == "only on feature\n"


async def test_missing_branch_falls_back_to_default_and_creates_it(
    repo: Path, tmp_path: Path
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    await clone_repos([RepoSpec(url=str(repo), branch="warren/new-work")], workspace, ENV)
    assert git(workspace, "branch", "--show-current").strip() == "warren/new-work"
    assert (workspace / "README.md").exists()
    assert not (workspace / "feature.txt").exists()


async def test_several_repos_go_to_their_workspace_paths(repo: Path, tmp_path: Path) -> None:
    other = make_repo(tmp_path / "other")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    await clone_repos(
        [
            RepoSpec(url=str(repo), workspace_path="api"),
            RepoSpec(url=str(other), workspace_path="libs/web", branch="feature"),
        ],
        workspace,
        ENV,
    )
    assert (workspace / "api/README.md").exists()
    assert (workspace / "libs/web/feature.txt").exists()


@pytest.mark.parametrize("paths", [(".", "b"), ("a", "a")], ids=["dot-with-several", "shared-path"])
async def test_conflicting_workspace_paths_are_refused(
    repo: Path, tmp_path: Path, paths: tuple[str, str]
) -> None:
    specs = [RepoSpec(url=str(repo), workspace_path=p) for p in paths]
    with pytest.raises(SandboxError):
        await clone_repos(specs, tmp_path, ENV)


@pytest.mark.parametrize("bad", ["../up", "/abs", "a/../../b", "a\\b"])
def test_workspace_path_must_stay_inside(tmp_path: Path, bad: str) -> None:
    with pytest.raises(SandboxError):
        repo_dir(tmp_path, bad)


def test_split_credentials_lifts_userinfo_out_of_the_url() -> None:
    assert split_credentials("https://x-access-token:tok%2F1@github.com/o/r.git", None) == (
        "https://github.com/o/r.git",
        "tok/1",
    )
    assert split_credentials("https://tok@host/r.git", None) == ("https://host/r.git", "tok")
    assert split_credentials("https://u:p@host/r.git", "explicit") == (
        "https://host/r.git",
        "explicit",
    )
    assert split_credentials("/local/path", "t") == ("/local/path", "t")


class DumbGitServer:
    """Serves a bare repo over git's dumb HTTP protocol behind HTTP Basic auth."""

    def __init__(self, bare: Path, token: str) -> None:
        self.bare = bare
        self.token = token
        self.authorizations: list[str] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        self.authorizations.append(header)
        expected = "Basic " + base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
        if header != expected:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="git"'})
        rel = request.match_info["path"]
        target = (self.bare / rel).resolve()
        if self.bare not in target.parents or not target.is_file():
            return web.Response(status=404)
        return web.Response(body=target.read_bytes(), content_type="application/octet-stream")


@pytest.fixture
async def dumb_server(repo: Path, tmp_path: Path) -> AsyncIterator[tuple[str, DumbGitServer]]:
    bare = tmp_path / "served.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    git(bare, "update-server-info")
    server = DumbGitServer(bare.resolve(), "ghs_" + secrets.token_hex(16))
    app = web.Application()
    app.router.add_get("/repo.git/{path:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/repo.git", server
    await runner.cleanup()


async def test_https_token_reaches_git_through_the_credential_helper_only(
    dumb_server: tuple[str, DumbGitServer], tmp_path: Path
) -> None:
    url, server = dumb_server
    workspace = tmp_path / "ws"
    workspace.mkdir()
    await clone_repos([RepoSpec(url=url, token=server.token)], workspace, ENV)
    assert (workspace / "README.md").exists()
    assert any(h.startswith("Basic ") for h in server.authorizations)
    # The token is in neither the repo's config nor anywhere else in the clone.
    assert git(workspace, "remote", "get-url", "origin").strip() == url
    for path in (workspace / ".git").rglob("*"):
        if path.is_file():
            assert server.token.encode() not in path.read_bytes(), path


async def test_token_embedded_in_url_is_lifted_out(
    dumb_server: tuple[str, DumbGitServer], tmp_path: Path
) -> None:
    url, server = dumb_server
    workspace = tmp_path / "ws"
    workspace.mkdir()
    with_token = url.replace("http://", f"http://x-access-token:{server.token}@")
    await clone_repos([RepoSpec(url=with_token)], workspace, ENV)
    assert git(workspace, "remote", "get-url", "origin").strip() == url


async def test_rejected_token_fails_without_leaking_it(
    dumb_server: tuple[str, DumbGitServer], tmp_path: Path
) -> None:
    url, _ = dumb_server
    wrong = "ghp_" + secrets.token_hex(16)
    with pytest.raises(SandboxError) as info:
        await clone_repos([RepoSpec(url=url, token=wrong)], tmp_path, ENV)
    assert "git clone" in str(info.value)
    assert wrong not in str(info.value)


async def test_unreachable_url_with_token_in_it_does_not_leak(tmp_path: Path) -> None:
    token = "ghp_" + secrets.token_hex(16)
    url = f"https://x-access-token:{token}@127.0.0.1:9/org/repo.git"
    with pytest.raises(SandboxError) as info:
        await clone_repos([RepoSpec(url=url)], tmp_path, ENV)
    message = str(info.value)
    assert token not in message
    assert "127.0.0.1:9/org/repo.git" in message
