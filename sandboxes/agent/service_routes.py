"""HTTP routes of the service manager, its logs and the exposed preview port."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
from aiohttp import web

from sandboxes.agent.http import ApiError, json_response, read_json
from sandboxes.agent.logs import stream_log
from sandboxes.agent.services import ServiceManager, validate_name
from schemas.agent import ExposeRequest, ExposeState, ServiceList, StartServiceRequest

SERVICES = web.AppKey("services", ServiceManager)
EXPOSE_FILE = web.AppKey("expose_file", Path)


async def list_services(request: web.Request) -> web.Response:
    """``GET /api/services``."""
    return json_response(ServiceList(services=request.app[SERVICES].list_all()))


async def start_service(request: web.Request) -> web.Response:
    """``POST /api/services`` {name, command, cwd?}: 201 with the new service."""
    body = await read_json(request, StartServiceRequest)
    return json_response(await request.app[SERVICES].start(body), status=201)


async def stop_service(request: web.Request) -> web.Response:
    """``DELETE /api/services/{name}``."""
    return json_response(await request.app[SERVICES].stop(request.match_info["name"]))


async def service_logs(request: web.Request) -> web.StreamResponse:
    """``GET /api/logs/{name}[?follow=0]``: the log as SSE, following unless ``follow=0``."""
    manager = request.app[SERVICES]
    name = validate_name(request.match_info["name"])
    path = manager.log_path(name)
    if not manager.known(name) and not path.exists():
        raise ApiError(404, "service_not_found", f"no service named {name!r}", "name")
    follow = request.query.get("follow", "1").lower() not in ("0", "false", "no")
    return await stream_log(request, path, lambda: manager.is_running(name), follow=follow)


async def set_expose(request: web.Request) -> web.Response:
    """``POST /api/expose`` {port}: record the preview port in the state dir."""
    body = await read_json(request, ExposeRequest)
    target = request.app[EXPOSE_FILE]
    state = ExposeState(port=body.port)
    temporary = target.with_suffix(".tmp")
    temporary.write_bytes(msgspec.json.encode(state))
    os.replace(temporary, target)  # atomic: a reader never sees half a file
    return json_response(state)


async def get_expose(request: web.Request) -> web.Response:
    """``GET /api/expose``: the recorded preview port, or null."""
    try:
        raw = request.app[EXPOSE_FILE].read_bytes()
    except FileNotFoundError:
        return json_response(ExposeState())
    try:
        return json_response(msgspec.json.decode(raw, type=ExposeState))
    except msgspec.DecodeError:
        return json_response(ExposeState())


def add_service_routes(app: web.Application, manager: ServiceManager, state_dir: Path) -> None:
    """Mount services, logs and expose on ``app``."""
    app[SERVICES] = manager
    app[EXPOSE_FILE] = state_dir / "expose.json"
    app.router.add_get("/api/services", list_services)
    app.router.add_post("/api/services", start_service)
    app.router.add_delete("/api/services/{name}", stop_service)
    app.router.add_get("/api/logs/{name}", service_logs)
    app.router.add_post("/api/expose", set_expose)
    app.router.add_get("/api/expose", get_expose)
