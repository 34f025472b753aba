"""The preview proxy asks the session's sandbox provider which sandbox holds a port
(``SandboxProvider.port_holder``), not the local provider's files: a port another local
sandbox reserved is never proxied, even when this sandbox claims to expose it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from core.settings import Settings
from sandboxes.factory import ProviderConfig, get_provider
from tests.api.accounts import Account, assert_error
from tests.api.proxy_support import Sandbox, Upstream, json_of, proxy_path, ws_token
from tests.api.test_proxy import opencode, owner, sandbox, upstream  # noqa: F401  (fixtures)


async def _get(client: aiohttp.ClientSession, path: str) -> tuple[int, str]:
    async with client.get(path) as resp:
        return resp.status, await resp.text()


async def test_a_port_another_sandbox_holds_is_refused(
    settings: Settings, owner: Account, sandbox: Sandbox, upstream: Upstream
) -> None:
    token = await ws_token(owner)
    path = proxy_path(sandbox.id, token, f"port-{upstream.port}", "echo")
    status, text = await _get(owner.client, path)
    assert status == 200 and json_of(text)["path"] == "/echo"

    # Another local sandbox reserves the port, the way the local provider records it.
    provider: Any = get_provider("local", ProviderConfig(data_dir=Path(settings.data_dir)))
    reservations = Path(settings.data_dir) / "sandboxes" / ".ports"
    reservations.mkdir(parents=True, exist_ok=True)
    held = reservations / str(upstream.port)
    held.write_text("sbx-someone-else")
    try:
        assert provider.port_holder(upstream.port) == "sbx-someone-else"
        status, text = await _get(owner.client, path)
        assert status == 403
        assert_error(json_of(text), "port_not_exposed")
    finally:
        held.unlink()
    status, _ = await _get(owner.client, path)
    assert status == 200
