"""Where a proxy path leads: ``opencode``, ``agent``, ``terminal`` or ``port-<N>`` of a session.

- ``opencode`` → the session's OpenCode (``opencode_url``).
- ``agent`` → the in-sandbox agent (``sandbox_agent_url``), with the sandbox bearer added here.
- ``terminal`` → the agent's ``/api/terminal`` WebSocket, with the sandbox bearer.
- ``port-<N>`` → port N on the sandbox's host (127.0.0.1 for the local provider), allowed
  only when it is the port the sandbox exposed (``GET /api/expose`` of its agent) and is
  none of the session's own agent ports nor a port another local sandbox holds.

The sandbox token is derived on demand and only ever sent to the sandbox.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import aiohttp
import msgspec
from starlette.requests import HTTPConnection
from yarl import URL

from api.errors import ApiError, not_found
from api.proxy_http import upstream_client
from sandboxes.errors import SandboxError
from sandboxes.factory import ProviderConfig, get_provider
from schemas.agent import ExposeState
from schemas.sessions import SessionRecord
from security import tokens

TargetKind = Literal["opencode", "agent", "terminal", "port"]
EXPOSE_CACHE_SECONDS = 2.0
"""A preview page loads many assets; the exposed port is asked of the sandbox at most this
often per session and replica."""
EXPOSE_TIMEOUT = aiohttp.ClientTimeout(total=5.0)
_expose_cache: dict[tuple[str, str], tuple[float, int | None]] = {}


@dataclass(frozen=True)
class Target:
    """A parsed ``{target}`` path segment."""

    kind: TargetKind
    port: int | None = None


@dataclass(frozen=True)
class Upstream:
    """Where to send the request, and the headers only Warren adds."""

    url: URL
    kind: TargetKind
    base: str
    """The upstream's origin (redirects to it are mapped back under the proxy path)."""
    headers: dict[str, str] = field(default_factory=dict)


def parse_target(value: str) -> Target:
    """The target a path segment names; 404 for anything else."""
    if value in ("opencode", "agent", "terminal"):
        return Target(value)  # type: ignore[arg-type]
    digits = value.removeprefix("port-")
    if value.startswith("port-") and digits.isdigit() and len(digits) <= 5:
        port = int(digits)
        if 1 <= port <= 65535:
            return Target("port", port)
    raise not_found("proxy target")


def require_running(record: SessionRecord) -> tuple[str, str]:
    """The session's (opencode_url, sandbox_agent_url), or 409 if it has no running sandbox."""
    if record.status != "running" or not record.opencode_url or not record.sandbox_agent_url:
        raise ApiError(
            409,
            f"the session is not running (status {record.status}); start it first",
            code="session_not_running",
        )
    return record.opencode_url, record.sandbox_agent_url


def sandbox_bearer(secret_key: str, record: SessionRecord) -> dict[str, str]:
    """The header that authenticates Warren to the session's in-sandbox agent."""
    return {"Authorization": f"Bearer {tokens.sandbox_token(secret_key, str(record.id))}"}


async def exposed_port(conn: HTTPConnection, secret_key: str, record: SessionRecord) -> int | None:
    """The port the sandbox exposed for previews, or None (cached briefly)."""
    _, sandbox_agent_url = require_running(record)
    key = (str(record.id), sandbox_agent_url)
    cached = _expose_cache.get(key)
    now = time.monotonic()
    if cached is not None and now - cached[0] < EXPOSE_CACHE_SECONDS:
        return cached[1]
    url = URL(sandbox_agent_url) / "api" / "expose"
    try:
        async with upstream_client(conn).get(
            url, headers=sandbox_bearer(secret_key, record), timeout=EXPOSE_TIMEOUT
        ) as resp:
            if resp.status != 200:
                raise ApiError(502, "the sandbox agent refused to report the exposed port")
            state = msgspec.json.decode(await resp.read(), type=ExposeState)
    except (aiohttp.ClientError, OSError, TimeoutError, msgspec.DecodeError):
        raise ApiError(502, "the sandbox agent is not reachable") from None
    for stale in [k for k, (at, _) in _expose_cache.items() if now - at >= EXPOSE_CACHE_SECONDS]:
        del _expose_cache[stale]
    _expose_cache[key] = (now, state.port)
    return state.port


def _held_by_other_sandbox(data_dir: str, record: SessionRecord, port: int) -> bool:
    # Asked of the session's provider: sandboxes sharing a host (local) share its ports,
    # and a port another sandbox holds is another session's.
    try:
        provider = get_provider(record.sandbox_provider, ProviderConfig(data_dir=Path(data_dir)))
    except SandboxError:
        return False  # a provider this replica cannot build holds no port on this host
    owner = provider.port_holder(port)
    return owner is not None and owner != record.sandbox_id


def _port_url(sandbox_agent_url: str, port: int) -> URL:
    base = URL(sandbox_agent_url)
    return URL.build(scheme=base.scheme, host=base.host or "127.0.0.1", port=port)


async def check_port(
    conn: HTTPConnection, secret_key: str, data_dir: str, record: SessionRecord, port: int
) -> URL:
    """The URL of ``port`` in the sandbox if it may be proxied, else 403."""
    opencode_url, sandbox_agent_url = require_running(record)
    own = {URL(opencode_url).port, URL(sandbox_agent_url).port}
    if port != await exposed_port(conn, secret_key, record) or port in own:
        raise ApiError(403, f"port {port} is not exposed by this sandbox", code="port_not_exposed")
    if _held_by_other_sandbox(data_dir, record, port):
        raise ApiError(403, f"port {port} is not exposed by this sandbox", code="port_not_exposed")
    return _port_url(sandbox_agent_url, port)


async def resolve(
    conn: HTTPConnection,
    secret_key: str,
    data_dir: str,
    record: SessionRecord,
    target: Target,
    path: str,
) -> Upstream:
    """The upstream for ``target`` and the rest of the path (already URL-encoded)."""
    opencode_url, sandbox_agent_url = require_running(record)
    rest = "/" + path.lstrip("/")
    if target.kind == "opencode":
        base = opencode_url.rstrip("/")
        return Upstream(URL(base + rest, encoded=True), "opencode", base)
    bearer = sandbox_bearer(secret_key, record)
    base = sandbox_agent_url.rstrip("/")
    if target.kind == "agent":
        return Upstream(URL(base + rest, encoded=True), "agent", base, bearer)
    if target.kind == "terminal":
        return Upstream(URL(base + "/api/terminal"), "terminal", base, bearer)
    assert target.port is not None
    base = str(await check_port(conn, secret_key, data_dir, record, target.port))
    return Upstream(URL(base + rest, encoded=True), "port", base)
