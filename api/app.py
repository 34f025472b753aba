"""The FastAPI application: middleware, error handlers and every router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from api.cookies import SessionCookieRefresh
from api.errors import install_error_handlers
from api.middleware import RequestContextMiddleware
from api.routes import api_keys, auth, health, orgs
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
        try:
            yield
        finally:
            await app.state.warren.close()

    app = FastAPI(title="Warren", version="0.1.0", lifespan=lifespan)
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
    app.include_router(auth.router)
    app.include_router(orgs.router)
    app.include_router(api_keys.router)
    return app
