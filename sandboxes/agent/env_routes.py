"""HTTP routes that apply and scrub the secret env files."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from sandboxes.agent import envfiles
from sandboxes.agent.http import json_response
from schemas.agent import EnvFilesResult

WORKSPACE = web.AppKey("env_workspace", Path)
SPEC_PATH = web.AppKey("env_spec_path", Path)
_LOCK = web.AppKey("env_lock", asyncio.Lock)


async def apply_env(request: web.Request) -> web.Response:
    """``POST /api/env/apply``: write the files of env.json; answers their paths only."""
    async with request.app[_LOCK]:
        files = await asyncio.to_thread(
            envfiles.apply, request.app[WORKSPACE], request.app[SPEC_PATH]
        )
    return json_response(EnvFilesResult(files=files))


async def scrub_env(request: web.Request) -> web.Response:
    """``POST /api/env/scrub``: delete the files of env.json; answers the paths removed."""
    async with request.app[_LOCK]:
        files = await asyncio.to_thread(
            envfiles.scrub, request.app[WORKSPACE], request.app[SPEC_PATH]
        )
    return json_response(EnvFilesResult(files=files))


def add_env_routes(app: web.Application, workspace: Path, spec_path: Path) -> None:
    """Mount env apply/scrub on ``app``."""
    app[WORKSPACE] = workspace
    app[SPEC_PATH] = spec_path
    app[_LOCK] = asyncio.Lock()
    app.router.add_post("/api/env/apply", apply_env)
    app.router.add_post("/api/env/scrub", scrub_env)
