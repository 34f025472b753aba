"""HTTP routes of the git views."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from sandboxes.agent.git import list_repos, repo_diff, repo_status, resolve_repo
from sandboxes.agent.http import json_response
from schemas.agent import GitRepoList

WORKSPACE = web.AppKey("git_workspace", Path)


async def get_repos(request: web.Request) -> web.Response:
    """``GET /api/git/repos``."""
    return json_response(GitRepoList(repos=await list_repos(request.app[WORKSPACE])))


async def get_status(request: web.Request) -> web.Response:
    """``GET /api/git/status?repo=<id>``."""
    repo_id = request.query.get("repo", "")
    repo = resolve_repo(request.app[WORKSPACE], repo_id)
    return json_response(await repo_status(repo, repo_id))


async def get_diff(request: web.Request) -> web.Response:
    """``GET /api/git/diff?repo=<id>``: capped at 64 KB, ``truncated`` says when it was cut."""
    repo_id = request.query.get("repo", "")
    repo = resolve_repo(request.app[WORKSPACE], repo_id)
    return json_response(await repo_diff(repo, repo_id))


def add_git_routes(app: web.Application, workspace: Path) -> None:
    """Mount the git views on ``app``."""
    app[WORKSPACE] = workspace
    app.router.add_get("/api/git/repos", get_repos)
    app.router.add_get("/api/git/status", get_status)
    app.router.add_get("/api/git/diff", get_diff)
