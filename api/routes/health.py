"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from actors.pool_metrics import refresh_pool_metrics
from api.openapi import returns
from api.responses import json_response
from api.state import AppState
from core.metrics import REGISTRY
from core.migrate import pending_migrations

router = APIRouter(tags=["health"])


@router.get("/healthz")
@returns(dict[str, str])
async def healthz() -> Response:
    """The process is up."""
    return json_response({"status": "ok"})


async def _check_postgres(state: AppState) -> str | None:
    async with state.pool.acquire() as conn:
        pending = await pending_migrations(conn)
    return f"migrations pending: {pending}" if pending else None


async def _check_nats(state: AppState) -> str | None:
    if not state.nats.is_connected:
        return "not connected"
    await state.nats.flush(timeout=2)
    return None


@router.get("/readyz")
@returns(dict[str, Any])
@returns(dict[str, Any], 503)
async def readyz(request: Request) -> Response:
    """Postgres and NATS reachable, migrations applied: 200, else 503 naming what failed."""
    state: AppState = request.app.state.warren
    checks: dict[str, str] = {}
    for name, check in (("postgres", _check_postgres), ("nats", _check_nats)):
        try:
            problem = await asyncio.wait_for(check(state), timeout=3)
        except Exception as exc:  # any failure means not ready; the reason is reported
            problem = type(exc).__name__
        checks[name] = problem or "ok"
    ready = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


@router.get("/metrics")
@returns(str, media_type="text/plain")
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this replica's metrics (the pools' read now)."""
    state: AppState = request.app.state.warren
    await refresh_pool_metrics(state.pool, state.js, state.subjects, state.settings)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
