"""The port-forwarding proxy and preview links, through the real Serve app.

Sessions are rows marked running whose OpenCode URL is a real loopback aiohttp app and
whose agent is a real ``python -m sandboxes.agent`` process (the proxy only reads the row).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from api.proxy_activity import ProxyActivity
from api.proxy_http import location_rewriter, request_headers, response_headers
from core.settings import Settings
from deploy.net import free_port
from security import tokens
from store import orgs, users
from tests.api.accounts import Account, assert_error, call
from tests.api.conftest import AccountFactory
from tests.api.proxy_support import (
    Sandbox,
    Upstream,
    json_of,
    metric_value,
    new_session,
    proxy_path,
    running_sandbox,
    ws_token,
)


@pytest.fixture(scope="module")
async def opencode() -> AsyncIterator[Upstream]:
    """The app standing in for the sandbox's OpenCode (state is per request)."""
    server = Upstream()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
async def upstream() -> AsyncIterator[Upstream]:
    """The app standing in for a dev server in the sandbox, on the port it exposes."""
    server = Upstream()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def owner(account: AccountFactory) -> Account:
    """A fresh user with their own org."""
    return await account("Owner")


@pytest.fixture
async def sandbox(
    api_url: str,
    db: asyncpg.Pool,
    settings: Settings,
    owner: Account,
    opencode: Upstream,
    upstream: Upstream,
    tmp_path: Path,
) -> AsyncIterator[Sandbox]:
    """A running session of ``owner`` that exposed the upstream's port."""
    async with running_sandbox(
        db, settings.secret_key, owner, opencode, tmp_path / "workspace"
    ) as box:
        await box.expose(upstream.port)
        yield box


async def _get(client: aiohttp.ClientSession, path: str, **kw: Any) -> tuple[int, str, Any]:
    async with client.get(path, **kw) as resp:
        return resp.status, await resp.text(), resp.headers


async def test_http_round_trip_strips_credentials(
    owner: Account, sandbox: Sandbox, opencode: Upstream
) -> None:
    token = await ws_token(owner)
    path = proxy_path(sandbox.id, token, "opencode", "echo/a%2Fb?x=1&y=a%20b")
    headers = {
        "Authorization": "Bearer user-secret",
        "X-Custom": "kept",
        "Referer": f"http://example.test/proxy/{sandbox.id}/{token}/",
        "Content-Type": "application/json",
    }
    # The owner's client carries their session cookie: it must not reach the sandbox.
    async with owner.client.post(path, data=b'{"hello": "world"}', headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        echoed = await resp.json()
        assert resp.headers["X-Upstream"] == "yes"
        assert "Set-Cookie" not in resp.headers
        assert resp.headers["Content-Security-Policy"].startswith("sandbox ")
        assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert echoed["method"] == "POST"
    assert echoed["raw_path"] == "/echo/a%2Fb?x=1&y=a%20b"
    assert echoed["query"] == {"x": "1", "y": "a b"}
    assert echoed["body"] == '{"hello": "world"}'
    sent = {k.lower(): v for k, v in echoed["headers"].items()}
    assert "cookie" not in sent and "authorization" not in sent and "referer" not in sent
    assert sent["x-custom"] == "kept" and sent["content-type"] == "application/json"
    assert sent["host"] == f"127.0.0.1:{opencode.port}"
    assert token not in str(echoed)

    status, text, _ = await _get(owner.client, proxy_path(sandbox.id, token, "opencode", "echo"))
    assert status == 200 and json_of(text)["method"] == "GET"

    # A redirect to the upstream's own origin stays inside the proxy.
    async with owner.client.get(
        proxy_path(sandbox.id, token, "opencode", "redirect"), allow_redirects=False
    ) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == (
            f"/proxy/{sandbox.id}/{token}/opencode/echo?from=redirect"
        )


async def test_sse_arrives_incrementally(
    owner: Account, sandbox: Sandbox, opencode: Upstream
) -> None:
    token = await ws_token(owner)
    gate = uuid.uuid4().hex
    path = proxy_path(sandbox.id, token, "opencode", f"sse?gate={gate}")
    async with owner.client.get(path) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        # The upstream holds the second event until the first reached the client.
        first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 15)
        assert first == b"data: first\n\n"
        assert not opencode.gate(gate).is_set()
        opencode.gate(gate).set()
        second = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 15)
        assert second == b"data: second\n\n"
    await _wait_metric(owner.client, "opencode", 0)

    # A client that walks away mid-stream ends the exchange (and the upstream request).
    path = proxy_path(sandbox.id, token, "opencode", f"sse?gate={uuid.uuid4().hex}")
    async with owner.client.get(path) as resp:
        assert (await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 15)) == b"data: first\n\n"
        await _wait_metric(owner.client, "opencode", 1)
    await _wait_metric(owner.client, "opencode", 0)


async def test_websocket_both_directions_and_close(
    api_url: str, owner: Account, sandbox: Sandbox, upstream: Upstream
) -> None:
    token = await ws_token(owner)
    url = api_url + proxy_path(sandbox.id, token, f"port-{upstream.port}", "ws")
    seen = len(upstream.ws_headers)
    async with owner.client.ws_connect(
        url, protocols=("warren-test",), headers={"Authorization": "Bearer user-secret"}
    ) as socket:
        assert socket.protocol == "warren-test"
        assert (await socket.receive_str(timeout=10)) == "hello"
        await socket.send_str("ping")
        assert (await socket.receive_str(timeout=10)) == "echo:ping"
        await socket.send_bytes(b"\x01\x02\x03")
        assert (await socket.receive_bytes(timeout=10)) == b"\x03\x02\x01"
        # The upstream ends it: the browser side closes with the same code.
        await socket.send_str("close-me")
        closing = await socket.receive(timeout=10)
        assert closing.type == aiohttp.WSMsgType.CLOSE
        assert socket.close_code == 4001 or closing.data == 4001
    sent = {k.lower(): v for k, v in upstream.ws_headers[seen].items()}
    assert "cookie" not in sent and "authorization" not in sent


async def test_browser_close_closes_upstream(
    api_url: str, owner: Account, sandbox: Sandbox, upstream: Upstream
) -> None:
    token = await ws_token(owner)
    upstream.ws_closed.clear()
    url = api_url + proxy_path(sandbox.id, token, f"port-{upstream.port}", "ws")
    async with owner.client.ws_connect(url) as socket:
        assert (await socket.receive_str(timeout=10)) == "hello"
    await asyncio.wait_for(upstream.ws_closed.wait(), 10)


async def _wait_metric(client: aiohttp.ClientSession, target: str, want: float) -> None:
    deadline = time.monotonic() + 15
    while True:
        value = await metric_value(client, "warren_proxy_connections", target=target)
        if value == want:
            return
        assert time.monotonic() < deadline, f"proxy gauge for {target} stayed at {value}"
        await asyncio.sleep(0.1)


async def test_terminal_through_the_proxy(
    api_url: str, owner: Account, sandbox: Sandbox, upstream: Upstream
) -> None:
    token = await ws_token(owner)
    url = api_url + proxy_path(sandbox.id, token, "terminal")
    async with owner.client.ws_connect(url) as socket:
        await _wait_metric(owner.client, "terminal", 1)
        await socket.send_str("echo hi-$((40+2))\n")
        output = ""
        deadline = time.monotonic() + 15
        while "hi-42" not in output:
            assert time.monotonic() < deadline, output
            output += await socket.receive_str(timeout=15)
    await _wait_metric(owner.client, "terminal", 0)

    # HTTP to the terminal is refused; the agent target gets the sandbox bearer server-side.
    status, text, _ = await _get(owner.client, proxy_path(sandbox.id, token, "terminal"))
    assert status == 400, text
    status, text, _ = await _get(owner.client, proxy_path(sandbox.id, token, "agent", "api/expose"))
    assert status == 200 and json_of(text) == {"port": upstream.port}
    assert sandbox.token not in text


async def test_other_org_gets_404(
    account: AccountFactory, owner: Account, sandbox: Sandbox, upstream: Upstream
) -> None:
    outsider = await account("Outsider")
    token = await ws_token(outsider)
    for target in ("opencode", "agent", f"port-{upstream.port}"):
        status, text, _ = await _get(outsider.client, proxy_path(sandbox.id, token, target, "echo"))
        assert status == 404, (target, text)
        assert_error(json_of(text), "not_found")
    status, body = await call(outsider.client, "GET", f"/api/sessions/{sandbox.id}/preview")
    assert status == 404
    assert_error(body, "not_found")
    # An unknown target or a malformed session id is 404 for the owner too.
    mine = await ws_token(owner)
    status, _, _ = await _get(owner.client, proxy_path(sandbox.id, mine, "vscode"))
    assert status == 404
    status, _, _ = await _get(owner.client, proxy_path("not-a-uuid", mine, "opencode"))
    assert status == 404


async def test_bad_expired_or_revoked_tokens_get_401(
    api_url: str, db: asyncpg.Pool, settings: Settings, owner: Account, sandbox: Sandbox
) -> None:
    expired, _ = tokens.mint_ws_token(
        settings.secret_key, owner.user_id, owner.org_id, 60, now=int(time.time()) - 3600
    )
    forged, _ = tokens.mint_ws_token("x" * 64, owner.user_id, owner.org_id, 60)
    api_key_like = "wk_" + "a" * 40
    for bad in ("garbage", expired, forged, api_key_like):
        status, text, _ = await _get(owner.client, proxy_path(sandbox.id, bad, "opencode"))
        assert status == 401, (bad, text)
        assert_error(json_of(text), "unauthorized")
        assert bad not in text
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await owner.client.ws_connect(api_url + proxy_path(sandbox.id, expired, "terminal"))
    assert refused.value.status == 401

    # A token stops working when its user leaves the org.
    async with db.acquire() as conn:
        user = await users.create_user(
            conn,
            email=f"{uuid.uuid4().hex[:12]}@example.test",
            name="Leaver",
            password_hash="scrypt$not-a-real-hash",
        )
        other_user = user.id
        await orgs.add_member(conn, uuid.UUID(owner.org_id), other_user, "member")
        token, _ = tokens.mint_ws_token(settings.secret_key, str(other_user), owner.org_id, 60)
        status, _, _ = await _get(owner.client, proxy_path(sandbox.id, token, "opencode", "echo"))
        assert status == 200
        await orgs.remove_member(conn, uuid.UUID(owner.org_id), other_user)
    status, _, _ = await _get(owner.client, proxy_path(sandbox.id, token, "opencode", "echo"))
    assert status == 401


async def test_only_the_exposed_port_is_reachable(
    owner: Account, sandbox: Sandbox, upstream: Upstream
) -> None:
    token = await ws_token(owner)
    other = upstream.port + 1 if upstream.port < 65535 else upstream.port - 1
    for target in (f"port-{other}", "port-0", "port-70000", "port-x"):
        status, text, _ = await _get(owner.client, proxy_path(sandbox.id, token, target, "echo"))
        assert status in (403, 404), (target, text)
    status, text, _ = await _get(owner.client, proxy_path(sandbox.id, token, f"port-{other}"))
    assert status == 403
    assert_error(json_of(text), "port_not_exposed")
    status, text, _ = await _get(
        owner.client, proxy_path(sandbox.id, token, f"port-{upstream.port}", "echo")
    )
    assert status == 200 and json_of(text)["path"] == "/echo"


async def test_the_sessions_own_ports_are_never_a_preview(
    db: asyncpg.Pool,
    settings: Settings,
    owner: Account,
    opencode: Upstream,
    tmp_path: Path,
) -> None:
    async with running_sandbox(
        db, settings.secret_key, owner, opencode, tmp_path / "workspace"
    ) as box:
        token = await ws_token(owner)
        for port in (box.agent_port, opencode.port):
            await box.expose(port)  # code in the sandbox may try anything
            await asyncio.sleep(2.1)  # past the replica's short cache of the exposed port
            path = proxy_path(box.id, token, f"port-{port}", "api/expose")
            status, text, _ = await _get(owner.client, path)
            assert status == 403, text
            status, body = await call(owner.client, "GET", f"/api/sessions/{box.id}/preview")
            assert status == 403, body


async def test_not_running_is_409(db: asyncpg.Pool, owner: Account) -> None:
    record = await new_session(db, owner)
    token = await ws_token(owner)
    for target in ("opencode", "agent", "port-3000"):
        status, text, _ = await _get(owner.client, proxy_path(str(record.id), token, target))
        assert status == 409, text
        body = json_of(text)
        assert_error(body, "session_not_running")
        assert "not running" in body["error"]["message"]
    status, body = await call(owner.client, "GET", f"/api/sessions/{record.id}/preview")
    assert status == 409
    assert_error(body, "session_not_running")


async def _preview(owner: Account, session_id: str) -> tuple[str, str]:
    """The preview URL of the session, and the token in it."""
    status, body = await call(owner.client, "GET", f"/api/sessions/{session_id}/preview")
    assert status == 200, body
    prefix = body["url"].split("/proxy/", 1)[0] + f"/proxy/{session_id}/"
    assert body["url"].startswith(prefix), body
    return str(body["url"]), body["url"][len(prefix) :].split("/")[0]


async def test_preview_url_carries_a_preview_token(
    api_url: str,
    db: asyncpg.Pool,
    settings: Settings,
    owner: Account,
    opencode: Upstream,
    upstream: Upstream,
    tmp_path: Path,
) -> None:
    async with running_sandbox(
        db, settings.secret_key, owner, opencode, tmp_path / "workspace"
    ) as box:
        status, body = await call(owner.client, "GET", f"/api/sessions/{box.id}/preview")
        assert status == 409
        assert_error(body, "no_exposed_port")

        await box.expose(upstream.port)
        await asyncio.sleep(2.1)  # past the replica's short cache of the exposed port
        status, body = await call(owner.client, "GET", f"/api/sessions/{box.id}/preview")
        assert status == 200, body
        assert body["port"] == upstream.port
        assert body["url"].startswith(f"{api_url}/proxy/{box.id}/")
        assert body["url"].endswith(f"/port-{upstream.port}/")
        url, token = await _preview(owner, box.id)
        claims = tokens.verify_preview_token(settings.secret_key, token)
        assert (claims.sub, claims.org) == (box.id, owner.org_id)
        assert claims.target == f"port-{upstream.port}"
        # It is no WebSocket token: it opens neither the session socket nor anything else.
        with pytest.raises(tokens.TokenError):
            tokens.verify_ws_token(settings.secret_key, token)
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await owner.client.ws_connect(f"{api_url}/api/sessions/{box.id}/ws?token={token}")

        # Headerless: a fresh client with no cookie follows the URL, GET and HEAD.
        async with aiohttp.ClientSession() as anonymous:
            async with anonymous.get(url + "echo?q=1") as resp:
                assert resp.status == 200
                assert (await resp.json())["query"] == {"q": "1"}
            async with anonymous.head(url + "echo") as resp:
                assert resp.status == 200


async def test_preview_token_is_read_only_and_opens_one_port_of_one_session(
    api_url: str,
    db: asyncpg.Pool,
    settings: Settings,
    owner: Account,
    sandbox: Sandbox,
    upstream: Upstream,
) -> None:
    url, token = await _preview(owner, sandbox.id)
    target = f"port-{upstream.port}"
    async with aiohttp.ClientSession() as anonymous:
        # Read-only: every other method is refused before anything reaches the sandbox.
        for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            async with anonymous.request(method, url + "echo", data=b"x") as resp:
                assert resp.status == 405, method
                assert resp.headers["Allow"] == "GET, HEAD"
                assert_error(await resp.json(), "method_not_allowed")
        # The dev server's hot-reload socket works.
        async with anonymous.ws_connect(url.replace("http", "ws", 1) + "ws") as socket:
            assert (await socket.receive_str(timeout=10)) == "hello"
            await socket.send_str("hmr")
            assert (await socket.receive_str(timeout=10)) == "echo:hmr"

        # Nothing else of the session: not OpenCode, the agent, the terminal or another port.
        other = upstream.port + 1 if upstream.port < 65535 else upstream.port - 1
        for elsewhere in ("opencode", "agent", f"port-{other}"):
            status, text, _ = await _get(
                anonymous, api_url + proxy_path(sandbox.id, token, elsewhere)
            )
            assert status == 403, (elsewhere, text)
            assert_error(json_of(text), "forbidden")
        for socket_target in ("terminal", "opencode"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await anonymous.ws_connect(api_url + proxy_path(sandbox.id, token, socket_target))
            assert refused.value.status == 403, socket_target

        # Nor another session, even of the same org and on the same port.
        sibling = await new_session(db, owner)
        status, text, _ = await _get(
            anonymous, api_url + proxy_path(str(sibling.id), token, target)
        )
        assert status == 403, text

        # Forged or expired preview tokens are 401.
        forged, _ = tokens.mint_preview_token("x" * 64, sandbox.id, owner.org_id, target, 60)
        expired, _ = tokens.mint_preview_token(
            settings.secret_key, sandbox.id, owner.org_id, target, 60, now=int(time.time()) - 3600
        )
        for bad in (forged, expired):
            status, text, _ = await _get(anonymous, api_url + proxy_path(sandbox.id, bad, target))
            assert status == 401, text
        # A token naming another org finds no session (every lookup is scoped to its org).
        stray, _ = tokens.mint_preview_token(
            settings.secret_key, sandbox.id, str(uuid.uuid4()), target, 60
        )
        status, text, _ = await _get(anonymous, api_url + proxy_path(sandbox.id, stray, target))
        assert status == 404, text


class _Recorder:
    """Stands in for a session actor handle: records what the tracker tells it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def record(self, handle: Any, method: str, conn_id: str) -> None:
        self.calls.append((method, conn_id))

    def proxy_opened(self) -> None:
        """Present so the tracker sees the hook."""

    def proxy_closed(self) -> None:
        """Present so the tracker sees the hook."""


async def _until(predicate: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


async def test_activity_tracker_tells_the_actor_once_per_burst() -> None:
    actor = _Recorder()

    async def lookup(session_id: str) -> Any:
        return actor

    activity = ProxyActivity(lookup, actor.record, heartbeat=0.3, linger=0.2)
    sid = str(uuid.uuid4())
    first = activity.opened(sid, "port")
    second = activity.opened(sid, "port")
    await _until(lambda: actor.calls == [("proxy_opened", activity.conn_id)])
    first()
    first()  # releasing twice counts once
    assert activity.count(sid) == 1
    await _until(lambda: len(actor.calls) >= 2)  # heartbeat while still open
    assert actor.calls[1] == ("proxy_opened", activity.conn_id)
    second()
    assert activity.count(sid) == 0
    await _until(lambda: actor.calls[-1] == ("proxy_closed", activity.conn_id))
    # A new connection after the close announces again.
    third = activity.opened(sid, "port")
    await _until(lambda: actor.calls[-1] == ("proxy_opened", activity.conn_id))
    third()
    await _until(lambda: actor.calls[-1] == ("proxy_closed", activity.conn_id))


async def test_activity_tracker_skips_actors_without_hooks() -> None:
    calls: list[str] = []

    async def lookup(session_id: str) -> Any:
        return object()  # an actor without proxy_opened/proxy_closed

    async def call(handle: Any, method: str, conn_id: str) -> None:
        calls.append(method)

    activity = ProxyActivity(lookup, call, heartbeat=0.05, linger=0.05)
    release = activity.opened(str(uuid.uuid4()), "opencode")
    await asyncio.sleep(0.2)
    release()
    await asyncio.sleep(0.2)
    assert calls == []


def test_header_filters() -> None:
    sent = request_headers(
        [
            ("Host", "warren.test"),
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Cookie", "warren_session=s"),
            ("Authorization", "Bearer user"),
            ("Referer", "http://warren.test/proxy/s/token/opencode/"),
            ("Accept", "text/html"),
        ],
        {"Authorization": "Bearer sandbox"},
    )
    assert sent == [("Accept", "text/html"), ("Authorization", "Bearer sandbox")]
    answered = response_headers(
        [
            ("Content-Type", "text/html"),
            ("Transfer-Encoding", "chunked"),
            ("Set-Cookie", "warren_session=evil; Path=/"),
            ("Location", "http://127.0.0.1:3000/next"),
        ],
        location=location_rewriter("http://127.0.0.1:3000", "/proxy/s/t/port-3000"),
        opaque_origin=True,
    )
    names = [k.lower() for k, _ in answered]
    assert "set-cookie" not in names and "transfer-encoding" not in names
    assert ("Location", "/proxy/s/t/port-3000/next") in answered
    assert ("access-control-allow-origin", "*") in answered
    rewrite = location_rewriter("http://127.0.0.1:3000", "/p")
    assert rewrite("/a?b=1") == "/p/a?b=1"
    assert rewrite("http://127.0.0.1:3000") == "/p/"
    assert rewrite("https://example.com/x") == "https://example.com/x"
    assert rewrite("//evil.test/x") == "//evil.test/x"


async def _wait_running(ws: aiohttp.ClientWebSocketResponse) -> None:
    async with asyncio.timeout(90):
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data)
            frame = json_of(msg.data)
            if frame.get("type") == "status" and frame.get("status") == "running":
                return
            if frame.get("type") == "init" and frame.get("status") == "running":
                return


async def test_preview_of_a_real_local_sandbox(api_url: str, owner: Account) -> None:
    """A session booted by its actor on the local provider (real OpenCode): code in the
    sandbox serves a page on a port and exposes it; the preview link reads it, and only it."""
    status, created = await call(owner.client, "POST", "/api/sessions", json={"title": "Dev"})
    assert status == 201, created
    sid = created["session_id"]
    member = await ws_token(owner)
    ws = await owner.client.ws_connect(f"{api_url}/api/sessions/{sid}/ws?token={member}")
    try:
        await _wait_running(ws)
        port = free_port()
        marker = uuid.uuid4().hex
        serve = (
            f"mkdir -p site && echo {marker} > site/index.html && "
            f"exec python3 -m http.server {port} --bind 127.0.0.1 --directory site"
        )
        agent = api_url + proxy_path(sid, member, "agent")
        async with owner.client.post(
            agent + "api/services", json={"name": "dev", "command": serve}
        ) as resp:
            assert resp.status == 201, await resp.text()
        async with owner.client.post(agent + "api/expose", json={"port": port}) as resp:
            assert resp.status == 200, await resp.text()

        url, token = await _preview(owner, sid)
        assert member not in url
        async with aiohttp.ClientSession() as anonymous:
            async with asyncio.timeout(30):  # until the dev server listens
                while True:
                    async with anonymous.get(url + "index.html") as resp:
                        if resp.status == 200:
                            assert (await resp.text()).strip() == marker
                            break
                        assert resp.status == 502, await resp.text()
                    await asyncio.sleep(0.2)
            async with anonymous.post(url + "index.html", data=b"x") as resp:
                assert resp.status == 405
            for elsewhere in ("opencode", "agent"):
                path = api_url + proxy_path(sid, token, elsewhere, "api/expose")
                status, text, _ = await _get(anonymous, path)
                assert status == 403, (elsewhere, text)
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await anonymous.ws_connect(api_url + proxy_path(sid, token, "terminal"))
            assert refused.value.status == 403
    finally:
        await ws.close()
        status, _ = await call(owner.client, "DELETE", f"/api/sessions/{sid}")
        assert status == 204
