"""CORS policy from settings: allowed origins get CORS headers, others get none."""

from __future__ import annotations

import httpx
import msgspec

from api.app import create_app
from core.settings import Settings

ORIGIN = "https://app.example.test"


def _client(settings: Settings) -> httpx.AsyncClient:
    # CORS is answered by middleware before any route or connection is used, so the app is
    # driven in process without its lifespan (no Postgres or NATS needed for a preflight).
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(settings)), base_url="http://warren.test"
    )


def _preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }


async def test_allowed_origin_gets_cors_headers(settings: Settings) -> None:
    configured = msgspec.structs.replace(settings, cors_origins=(ORIGIN,))
    async with _client(configured) as client:
        resp = await client.options("/api/sessions", headers=_preflight(ORIGIN))
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == ORIGIN
    assert resp.headers["access-control-allow-credentials"] == "true"
    assert resp.headers["access-control-max-age"] == "86400"


async def test_other_origins_get_no_cors_headers(settings: Settings) -> None:
    configured = msgspec.structs.replace(settings, cors_origins=(ORIGIN,))
    async with _client(configured) as client:
        resp = await client.options("/api/sessions", headers=_preflight("https://evil.test"))
    assert resp.status_code == 400
    assert "access-control-allow-origin" not in resp.headers


async def test_no_configured_origins_means_same_origin_only(settings: Settings) -> None:
    assert settings.cors_origins == ()
    async with _client(settings) as client:
        resp = await client.options("/api/sessions", headers=_preflight(ORIGIN))
    assert "access-control-allow-origin" not in resp.headers
