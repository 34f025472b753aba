"""The agent's aiohttp application: routes, auth, error shape and shutdown of what it started."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest

from sandboxes.agent.auth import auth_middleware
from sandboxes.agent.config import SandboxAgentConfig
from sandboxes.agent.env_routes import add_env_routes
from sandboxes.agent.git_routes import add_git_routes
from sandboxes.agent.http import error_middleware, json_response
from sandboxes.agent.service_routes import SERVICES, add_service_routes
from sandboxes.agent.services import ServiceManager
from sandboxes.agent.terminal import add_terminal_route
from schemas.agent import Health

CONFIG = web.AppKey("config", SandboxAgentConfig)


async def health(request: web.Request) -> web.Response:
    """``GET /api/health``: open, no auth."""
    return json_response(Health())


async def auth_check(request: web.Request) -> web.Response:
    """``GET /api/auth/check``: 200 when the token is good (forward-auth for a proxy)."""
    return json_response({"ok": True})


async def _stop_services(app: web.Application) -> None:
    await app[SERVICES].stop_all()


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Access log without the query string, where a ``?token=`` may sit."""

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        """One line per request: method, path, status, duration."""
        self.logger.info(
            "%s %s %s %.1fms", request.method, request.path, response.status, time * 1000
        )


def create_app(config: SandboxAgentConfig) -> web.Application:
    """Build the agent for ``config``; services it starts are stopped on shutdown."""
    app = web.Application(middlewares=[error_middleware, auth_middleware(config.token)])
    app[CONFIG] = config
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/auth/check", auth_check)
    manager = ServiceManager(config.workspace, config.state_dir, config.stop_grace_seconds)
    add_service_routes(app, manager, config.state_dir)
    add_git_routes(app, config.workspace)
    add_terminal_route(app, config.workspace)
    add_env_routes(app, config.workspace, config.env_spec_path)
    app.on_shutdown.append(_stop_services)
    return app


def access_logger() -> logging.Logger:
    """The logger the access log writes to."""
    return logging.getLogger("sandboxes.agent.access")
