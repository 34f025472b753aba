"""Health, readiness and metrics through the real Serve app."""

from __future__ import annotations

import aiohttp


async def test_healthz(http: aiohttp.ClientSession) -> None:
    async with http.get("/healthz") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ok"}
        assert len(resp.headers["x-request-id"]) >= 8


async def test_readyz_reports_postgres_and_nats(http: aiohttp.ClientSession) -> None:
    async with http.get("/readyz") as resp:
        body = await resp.json()
        assert resp.status == 200, body
        assert body["checks"] == {"postgres": "ok", "nats": "ok"}


async def test_request_id_is_echoed(http: aiohttp.ClientSession) -> None:
    async with http.get("/healthz", headers={"X-Request-Id": "abcdef123456"}) as resp:
        assert resp.headers["x-request-id"] == "abcdef123456"


async def test_metrics_counts_requests(http: aiohttp.ClientSession) -> None:
    async with http.get("/healthz"):
        pass
    async with http.get("/metrics") as resp:
        text = await resp.text()
        assert resp.status == 200
        assert 'warren_http_requests_total{method="GET",route="/healthz",status="200"}' in text


async def test_unknown_route_is_json_404(http: aiohttp.ClientSession) -> None:
    async with http.get("/nope") as resp:
        assert resp.status == 404
        body = await resp.json()
        assert body["error"]["code"] == "not_found"
