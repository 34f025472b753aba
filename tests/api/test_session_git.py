"""Git through a live session: Serve → session actor → a real local sandbox (real OpenCode)
whose workspace is a clone of a local repo with a bare ``origin``; pull requests go to the
GitHub fake. Also: cloning ``repos`` on session create, and who may run git operations."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from actors import session_client
from core.settings import Settings
from llm.scripted import ScriptedModelServer, run_scripted_model
from schemas.llm import Script
from store import sessions as session_store
from tests.api.accounts import Account, assert_error, call
from tests.api.conftest import AccountFactory
from tests.fakes.github import FakeGitHub

GITHUB_TOKEN = "ghp_" + "x" * 36
GITHUB_URL = "https://github.com/acme/widgets.git"


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` (no global config) and return its stdout."""
    done = subprocess.run(
        ["git", "-c", "user.name=Seed", "-c", "user.email=seed@example.test", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd)},
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
async def model() -> AsyncIterator[ScriptedModelServer]:
    async with run_scripted_model(Script(final_text="ok")) as server:
        yield server


@pytest.fixture
async def github() -> AsyncIterator[FakeGitHub]:
    async with FakeGitHub(tokens=(GITHUB_TOKEN,)) as fake:
        fake.add_repo("acme/widgets", default_branch="main", branches=("feature",))
        yield fake


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare repo with two commits on ``main``."""
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "init", "-q", "-b", "main", str(seed))
    for i in range(2):
        (seed / f"file{i}.txt").write_text(f"{i}\n")
        git(seed, "add", ".")
        git(seed, "commit", "-qm", f"commit {i}")
    git(seed, "push", "-q", str(bare), "main")
    return bare


class Socket:
    """A session WebSocket that returns the next frame of a given type."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def next(self, kind: str, within: float = 120.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                msg = await self.ws.receive()
                assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data)
                frame: dict[str, Any] = msgspec.json.decode(msg.data)
                if frame["type"] == kind:
                    return frame

    async def ask(self, kind: str, **message: Any) -> dict[str, Any]:
        await self.ws.send_json(message)
        return await self.next(kind)


async def _connect(
    api_url: str, who: Account, sid: str, org_id: str | None = None
) -> aiohttp.ClientWebSocketResponse:
    headers = {"X-Org-Id": org_id} if org_id else None
    status, token = await call(who.client, "POST", "/api/auth/ws-token", headers=headers)
    assert status == 200, token
    return await who.client.ws_connect(f"{api_url}/api/sessions/{sid}/ws?token={token['token']}")


async def test_git_status_commit_push_and_pr_through_the_session(
    account: AccountFactory,
    api_url: str,
    settings: Settings,
    model: ScriptedModelServer,
    github: FakeGitHub,
    origin: Path,
    db: Any,
) -> None:
    owner = await account("Gina Owner")
    status, created = await call(
        owner.client,
        "POST",
        "/api/sessions",
        json={"title": "Git", "repos": [{"url": str(origin)}]},
    )
    assert status == 201, created
    assert created["session"]["repos"] == [
        {"url": str(origin), "branch": None, "workspace_path": "."}
    ]
    sid = created["session_id"]
    session_client.session_actor(
        sid,
        msgspec.structs.replace(
            settings,
            llm_base_url=model.base_url,
            github_token=GITHUB_TOKEN,
            github_api_url=github.url,
        ),
    )
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    try:
        sockets.append(await _connect(api_url, owner, sid))
        ws = Socket(sockets[-1])
        await ws.next("init")
        clean = await ws.ask("git_status", type="get_git_status")
        assert clean["seq"] == 0
        state = clean["state"]
        assert state["branch"] == "main" and state["untracked"] == []
        assert [c["subject"] for c in state["commits"]] == ["commit 1", "commit 0"]

        record = await session_store.get_session(db, uuid.UUID(sid))
        assert record is not None and record.sandbox_id is not None
        workspace = Path(settings.data_dir) / "sandboxes" / record.sandbox_id / "workspace"
        (workspace / "hello.txt").write_text("hello\n")
        dirty = await ws.ask("git_status", type="get_git_status", workspace_path=".")
        assert dirty["state"]["untracked"] == ["hello.txt"]

        committed = await ws.ask(
            "git_result", type="git_commit", message="Add hello", include_untracked=True
        )
        assert (committed["action"], committed["success"], committed["code"]) == (
            "commit",
            True,
            "SUCCESS",
        ), committed
        again = await ws.ask("git_result", type="git_commit", message="Again")
        assert (again["success"], again["code"]) == (False, "NOTHING_TO_COMMIT")

        pushed = await ws.ask("git_result", type="git_push")
        assert (pushed["action"], pushed["success"], pushed["code"]) == ("push", True, "SUCCESS")
        assert git(origin, "log", "-1", "--format=%s|%an|%ae", "main") == (
            f"Add hello|Gina Owner|{owner.email}"
        )
        assert git(origin, "rev-parse", "main") == git(workspace, "rev-parse", "HEAD")

        # A pull request: origin reads as GitHub; git reaches the bare repo via insteadOf.
        git(workspace, "config", f"url.{origin.as_uri()}.insteadOf", GITHUB_URL)
        git(workspace, "remote", "set-url", "origin", GITHUB_URL)
        branched = await ws.ask("git_result", type="git_create_branch", branch_name="feature")
        assert branched["success"], branched
        (workspace / "feature.txt").write_text("f\n")
        await ws.ask("git_result", type="git_commit", message="Feature", include_untracked=True)
        pr = await ws.ask("git_result", type="git_create_pr", title="Add feature", body="Why")
        assert (pr["action"], pr["success"], pr["code"]) == ("create_pr", True, "SUCCESS"), pr
        assert pr["pr_url"] == "https://github.com/acme/widgets/pull/1"
        [posted] = github.requests_to("/repos/acme/widgets/pulls", "POST")
        assert posted.json()["head"] == "acme:feature" and posted.json()["base"] == "main"
        assert git(origin, "rev-parse", "feature") == git(workspace, "rev-parse", "HEAD")
        urls = await db.fetchval("SELECT pr_urls FROM sessions WHERE id = $1", uuid.UUID(sid))
        assert urls == [pr["pr_url"]]
        # The token never reaches a client.
        assert GITHUB_TOKEN not in msgspec.json.encode([clean, dirty, pushed, pr]).decode()

        # A member of the org who did not create the session may read, not change.
        member = await account("Mo Member")
        status, added = await call(
            owner.client,
            "POST",
            f"/api/orgs/{owner.org_id}/members",
            json={"email": member.email, "role": "member"},
        )
        assert status == 201, added
        sockets.append(await _connect(api_url, member, sid, owner.org_id))
        theirs = Socket(sockets[-1])
        await theirs.next("init")
        seen = await theirs.ask("git_status", type="get_git_status")
        assert seen["state"]["branch"] == "feature"
        (workspace / "sneaky.txt").write_text("x\n")
        for request in (
            {"type": "git_commit", "message": "sneaky", "include_untracked": True},
            {"type": "git_push"},
            {"type": "git_create_branch", "branch_name": "other"},
            {"type": "git_create_pr", "title": "t"},
        ):
            refused = await theirs.ask("git_result", **request)
            assert refused["success"] is False, refused
            assert "creator" in refused["message"]
        head = git(workspace, "rev-parse", "HEAD")
        assert git(workspace, "log", "-1", "--format=%s") == "Feature" and head
        assert len(github.requests_to("/repos/acme/widgets/pulls", "POST")) == 1

        # Another org's user cannot even open the socket.
        stranger = await account("Sam Stranger")
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused_ws:
            await _connect(api_url, stranger, sid)
        assert refused_ws.value.status == 403
    finally:
        for socket in sockets:
            await socket.close()
        status, _ = await call(owner.client, "DELETE", f"/api/sessions/{sid}")
        assert status == 204


async def test_git_on_a_scratch_session_without_a_repo_says_so(
    account: AccountFactory,
    api_url: str,
    settings: Settings,
    model: ScriptedModelServer,
) -> None:
    owner = await account()
    status, created = await call(owner.client, "POST", "/api/sessions", json={})
    assert status == 201
    sid = created["session_id"]
    session_client.session_actor(
        sid, msgspec.structs.replace(settings, llm_base_url=model.base_url)
    )
    ws_raw = await _connect(api_url, owner, sid)
    try:
        ws = Socket(ws_raw)
        await ws.next("init")
        result = await ws.ask("git_result", type="get_git_status")
        assert (result["action"], result["success"]) == ("status", False)
        assert "not a git repository" in result["message"]
        escaped = await ws.ask("git_result", type="git_push", workspace_path="../other")
        assert escaped["success"] is False and "leaves the workspace" in escaped["message"]
    finally:
        await ws_raw.close()
        await call(owner.client, "DELETE", f"/api/sessions/{sid}")


@pytest.mark.parametrize(
    ("repos", "fragment"),
    [
        ([{"url": "http://example.com/a/b.git"}], "https, ssh"),
        ([{"url": "https://user:tok@github.com/a/b.git"}], "credentials"),
        ([{"url": "https://tok@github.com/a/b.git"}], "credentials"),
        ([{"url": "ext::sh -c touch% /tmp/pwned"}], "whitespace"),
        ([{"url": "fd::17"}], "transport"),
        ([{"url": "relative/path"}], "https, ssh"),
        ([{"url": "https://github.com/a/b.git", "workspace_path": "../up"}], "workspace_path"),
        ([{"url": "https://github.com/a/b.git", "branch": "--upload-pack=x"}], "branch"),
        ([{"url": "https://github.com/a/b.git"}, {"url": "git@github.com:a/c.git"}], "own"),
        (
            [
                {"url": "https://github.com/a/b.git", "workspace_path": "x"},
                {"url": "ssh://git@github.com/a/c.git", "workspace_path": "x/"},
            ],
            "share",
        ),
    ],
)
async def test_session_create_refuses_bad_repos(
    account: AccountFactory, repos: list[dict[str, Any]], fragment: str
) -> None:
    owner = await account()
    status, body = await call(owner.client, "POST", "/api/sessions", json={"repos": repos})
    assert status == 400, body
    assert_error(body, field="repos")
    assert fragment in body["error"]["message"]
