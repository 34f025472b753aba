"""The FastAPI application: middleware, error handlers and every router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.middleware.cors import CORSMiddleware

from actors.bootstrap import start_background_actors
from api.body import no_nul_params
from api.cookies import SessionCookieRefresh
from api.errors import install_error_handlers
from api.middleware import RequestContextMiddleware
from api.openapi import install as install_openapi
from api.proxy_http import close_upstream_client
from api.routes import (
    api_keys,
    auth,
    automations,
    dead_letters,
    health,
    orgs,
    proxy,
    runs,
    schedules,
    session_pause,
    session_tools,
    session_ws,
    sessions,
    shares,
    triggers,
    webhooks,
)
from api.routes import web as web_page
from api.state import AppState
from core.logs import configure_logging
from core.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API (settings from ``WARREN_*`` by default); connections open on start."""
    resolved = settings or load_settings()
    configure_logging(resolved.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.warren = await AppState.open(resolved)
        # Pools, scheduler and lifecycle consumer: named, detached, once per cluster.
        await start_background_actors(resolved)
        try:
            yield
        finally:
            await close_upstream_client(app.state)
            await app.state.warren.close()

    app = FastAPI(
        title="Warren",
        version="0.1.0",
        lifespan=lifespan,
        # Path and query text reaches SQL in many routes: one check refuses NULs for all.
        dependencies=[Depends(no_nul_params)],
    )
    install_error_handlers(app)
    if resolved.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(resolved.cors_origins),
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            max_age=86400,
        )
    app.add_middleware(SessionCookieRefresh)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health.router)
    # Matched second: providers' deliveries are the busiest route (matching walks routers).
    app.include_router(webhooks.router)
    app.include_router(auth.router)
    app.include_router(orgs.router)
    app.include_router(api_keys.router)
    app.include_router(automations.router)
    app.include_router(triggers.router)
    app.include_router(schedules.router)
    app.include_router(runs.router)
    app.include_router(dead_letters.router)
    app.include_router(sessions.router)
    app.include_router(session_ws.router)
    app.include_router(session_tools.router)
    app.include_router(session_pause.router)
    app.include_router(proxy.router)
    app.include_router(shares.router)
    app.include_router(web_page.router)
    # Handlers decode their own bodies; this adds the request schemas routes declare.
    install_openapi(app)
    return app
