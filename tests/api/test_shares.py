"""Public session shares through the real Serve app: create, view, revoke, the public page
(escaped transcript, preview iframe) and its read-only preview."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from core.settings import Settings
from schemas.transcript import Message, TextPart, ToolPart
from store import messages as message_store
from store import orgs
from store import sessions as session_store
from tests.api.accounts import Account, assert_error, call
from tests.api.conftest import AccountFactory
from tests.api.proxy_support import Upstream, new_session, running_sandbox


@pytest.fixture(scope="module")
async def opencode() -> AsyncIterator[Upstream]:
    """The app standing in for the sandbox's OpenCode."""
    server = Upstream()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
async def devserver() -> AsyncIterator[Upstream]:
    """The app standing in for a dev server on the port the sandbox exposes."""
    server = Upstream()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def anonymous(api_url: str) -> AsyncIterator[aiohttp.ClientSession]:
    """A client with no credentials at all."""
    async with aiohttp.ClientSession(api_url) as client:
        yield client


async def _share(account: Account, session_id: str) -> tuple[int, dict[str, str]]:
    status, body = await call(account.client, "POST", f"/api/sessions/{session_id}/share")
    return status, body


async def _page(client: aiohttp.ClientSession, share_id: str) -> tuple[int, str]:
    async with client.get(f"/share/{share_id}") as resp:
        return resp.status, await resp.text()


async def test_create_view_and_revoke(
    api_url: str, db: asyncpg.Pool, account: AccountFactory, anonymous: aiohttp.ClientSession
) -> None:
    owner = await account("Owner")
    record = await new_session(db, owner, title="Shared work")
    sid = str(record.id)

    status, created = await _share(owner, sid)
    assert status == 201, created
    share_id = created["share_id"]
    assert len(share_id) >= 22  # at least 128 random bits, URL-safe
    assert created["url"] == f"{api_url}/share/{share_id}"
    status, again = await _share(owner, sid)
    assert status == 200 and again["share_id"] == share_id

    async with anonymous.get(f"/share/{share_id}") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/html")
        assert "script-src" not in resp.headers["Content-Security-Policy"]
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["Cache-Control"] == "no-store"
        page = await resp.text()
    assert "Shared work" in page and "Status: creating" in page
    assert "<iframe" not in page  # not running: no preview

    status, _ = await call(owner.client, "DELETE", f"/api/sessions/{sid}/share")
    assert status == 204
    status, body = await call(anonymous, "GET", f"/share/{share_id}")
    assert status == 404
    assert_error(body, "not_found")
    status, body = await call(owner.client, "DELETE", f"/api/sessions/{sid}/share")
    assert status == 404

    status, renewed = await _share(owner, sid)
    assert status == 201 and renewed["share_id"] != share_id
    assert (await _page(anonymous, share_id))[0] == 404
    assert (await _page(anonymous, renewed["share_id"]))[0] == 200

    # Deleting the session ends its share too.
    status, _ = await call(owner.client, "DELETE", f"/api/sessions/{sid}")
    assert status == 204
    assert (await _page(anonymous, renewed["share_id"]))[0] == 404


async def test_unknown_or_malformed_ids_are_404(anonymous: aiohttp.ClientSession) -> None:
    for share_id in ("A" * 32, "short", "../etc", "x" * 200):
        status, _ = await _page(anonymous, share_id)
        assert status == 404, share_id
    async with anonymous.get(f"/share/{'B' * 32}/preview/") as resp:
        assert resp.status == 404


async def test_who_may_share(db: asyncpg.Pool, account: AccountFactory) -> None:
    owner = await account("Owner")
    member = await account("Member")
    admin = await account("Admin")
    outsider = await account("Outsider")
    org = uuid.UUID(owner.org_id)
    async with db.acquire() as conn:
        await orgs.add_member(conn, org, uuid.UUID(member.user_id), "member")
        await orgs.add_member(conn, org, uuid.UUID(admin.user_id), "admin")
    record = await new_session(db, owner)
    path = f"/api/sessions/{record.id}/share"
    in_org = {"X-Org-Id": owner.org_id}

    status, body = await call(member.client, "POST", path, headers=in_org)
    assert status == 403
    assert_error(body, "forbidden")
    status, body = await call(outsider.client, "POST", path)
    assert status == 404
    assert_error(body, "not_found")
    status, body = await call(outsider.client, "POST", path, headers=in_org)
    assert status == 404
    status, created = await call(admin.client, "POST", path, headers=in_org)
    assert status == 201, created
    status, _ = await call(member.client, "DELETE", path, headers=in_org)
    assert status == 403
    status, _ = await call(outsider.client, "DELETE", path)
    assert status == 404
    status, _ = await call(owner.client, "DELETE", path)
    assert status == 204


async def test_transcript_is_escaped(
    db: asyncpg.Pool, account: AccountFactory, anonymous: aiohttp.ClientSession
) -> None:
    owner = await account("Owner")
    record = await new_session(db, owner, title="<b>bold</b> & co")
    now = datetime.now(UTC)
    prompt = Message(
        id="m1",
        role="user",
        content="<script>alert('user')</script>",
        is_complete=True,
        created_at=now,
        source="web",
        parts=(TextPart(id="p0", text="<script>alert('user')</script>"),),
    )
    answer = Message(
        id="m2",
        role="assistant",
        content='<img src=x onerror="alert(1)">',
        is_complete=True,
        created_at=now,
        parts=(
            TextPart(id="p1", text='<img src=x onerror="alert(1)">'),
            ToolPart(
                id="p2",
                tool_call_id="c1",
                tool_name="bash<i>",
                title="</div><script>x()</script>",
                status="completed",
            ),
        ),
    )
    await message_store.complete_message(db, record.id, prompt, 1)
    await message_store.complete_message(db, record.id, answer, 2)
    status, created = await _share(owner, str(record.id))
    assert status == 201
    status, page = await _page(anonymous, created["share_id"])
    assert status == 200
    assert "<script" not in page and "<img" not in page and "<b>" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(&#x27;user&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page
    assert "tool bash&lt;i&gt;" in page
    assert page.index("alert(&#x27;user") < page.index("onerror")  # in order


async def test_running_share_has_a_read_only_preview(
    db: asyncpg.Pool,
    settings: Settings,
    account: AccountFactory,
    anonymous: aiohttp.ClientSession,
    opencode: Upstream,
    devserver: Upstream,
    tmp_path: Path,
) -> None:
    owner = await account("Owner")
    async with running_sandbox(
        db, settings.secret_key, owner, opencode, tmp_path / "workspace", title="Live"
    ) as box:
        status, created = await _share(owner, box.id)
        assert status == 201
        share_id = created["share_id"]
        status, page = await _page(anonymous, share_id)
        assert status == 200 and "Status: running" in page
        assert "<iframe" not in page  # nothing exposed yet
        async with anonymous.get(f"/share/{share_id}/preview/") as resp:
            assert resp.status == 409

        await box.expose(devserver.port)
        await asyncio.sleep(2.1)  # past the replica's short cache of the exposed port
        status, page = await _page(anonymous, share_id)
        assert f'src="/share/{share_id}/preview/"' in page
        assert 'sandbox="allow-scripts allow-forms allow-popups"' in page

        preview = f"/share/{share_id}/preview/echo?q=1"
        async with anonymous.get(preview, headers={"Cookie": "warren_session=x"}) as resp:
            assert resp.status == 200
            echoed = await resp.json()
            assert resp.headers["Content-Security-Policy"].startswith("sandbox ")
        assert echoed["method"] == "GET" and echoed["path"] == "/echo"
        assert echoed["query"] == {"q": "1"}
        assert "cookie" not in {k.lower() for k in echoed["headers"]}
        async with anonymous.head(preview) as resp:
            assert resp.status == 200
            assert await resp.read() == b""

        for method in ("POST", "PUT", "DELETE", "PATCH"):
            async with anonymous.request(method, preview, data=b"x") as resp:
                assert resp.status == 405, method
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await anonymous.ws_connect(f"/share/{share_id}/preview/ws")
        # The preview path only ever reaches the exposed port: never OpenCode or the agent.
        async with anonymous.get(f"/share/{share_id}/preview/api/expose") as resp:
            assert resp.status == 404  # the dev server has no such route (the agent would)

        # Revoked while the sandbox runs: the page and the preview are gone at once.
        status, _ = await call(owner.client, "DELETE", f"/api/sessions/{box.id}/share")
        assert status == 204
        async with anonymous.get(preview) as resp:
            assert resp.status == 404
            assert_error(await resp.json(), "not_found")
        assert (await _page(anonymous, share_id))[0] == 404
        status, created = await _share(owner, box.id)
        assert status == 201 and created["share_id"] != share_id
        preview = f"/share/{created['share_id']}/preview/echo?q=1"
        async with anonymous.get(preview) as resp:
            assert resp.status == 200
        share_id = created["share_id"]

        # Stopped: the page stays (transcript) but the preview is gone.
        await session_store.mark_stopped(db, box.record.id, reason="manual")
        status, page = await _page(anonymous, share_id)
        assert status == 200 and "<iframe" not in page
        async with anonymous.get(preview) as resp:
            assert resp.status == 409
