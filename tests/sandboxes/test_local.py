"""The local provider with real processes: real git, the real OpenCode binary, the real agent."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import tarfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from sandboxes.errors import ExecTimeout, SandboxError, SandboxNotFound
from sandboxes.local import LocalSandboxProvider
from sandboxes.local_layout import SandboxLayout, valid_sandbox_id
from sandboxes.snapshot_store import LocalSnapshotStore
from schemas.sandbox import CreateSandboxOptions, RepoSpec, SandboxHandle, SecretFile
from tests.sandboxes.local_support import (
    environ_of,
    group_exists,
    make_repo,
    process_gone,
    processes_pointing_into,
    tree_digest,
)

CANARY_VAR = "WARREN_TEST_HOST_CANARY"


def _provider(root: Path, expiry_seconds: float = 3600.0) -> LocalSandboxProvider:
    return LocalSandboxProvider(
        root / "sandboxes", LocalSnapshotStore(root / "snapshots"), expiry_seconds=expiry_seconds
    )


def _opts(repo: Path, **overrides: object) -> CreateSandboxOptions:
    fields: dict[str, object] = {
        "session_id": "ses_" + secrets.token_hex(4),
        "repos": (RepoSpec(url=str(repo)),),
        "env_vars": {"APP_MODE": "test", "DB_PASSWORD": "pw-" + secrets.token_hex(6)},
        "sandbox_token": "sbt-" + secrets.token_hex(12),
        "secret_files": (SecretFile(values={"API_KEY": "sk-" + secrets.token_hex(8)}),),
    }
    fields.update(overrides)
    return CreateSandboxOptions(**fields)  # type: ignore[arg-type]


async def _get(url: str) -> int:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
        http.get(url) as response,
    ):
        return response.status


@dataclass
class Booted:
    provider: LocalSandboxProvider
    handle: SandboxHandle
    opts: CreateSandboxOptions
    layout: SandboxLayout
    canary: str


@pytest.fixture(scope="module")
async def booted(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Booted]:
    """One sandbox shared by the read-only tests (booting OpenCode costs ~2 s and 300 MB)."""
    root = tmp_path_factory.mktemp("local")
    repo = make_repo(root / "origin")
    canary = "leak-" + secrets.token_hex(6)
    os.environ[CANARY_VAR] = canary  # a host variable that must not reach the sandbox
    try:
        provider = _provider(root)
        opts = _opts(repo)
        handle = await provider.create_sandbox(opts)
    finally:
        del os.environ[CANARY_VAR]
    yield Booted(provider, handle, opts, SandboxLayout(provider.root / handle.sandbox_id), canary)
    await provider.terminate_all()


@pytest.fixture
async def provider(tmp_path: Path) -> AsyncIterator[LocalSandboxProvider]:
    """A provider of its own; every sandbox it leaves behind is terminated."""
    instance = _provider(tmp_path)
    yield instance
    await instance.terminate_all()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "origin")


# -- boot -------------------------------------------------------------------------------


async def test_create_clones_repo_and_records_boot_phases(booted: Booted) -> None:
    handle = booted.handle
    assert valid_sandbox_id(handle.sandbox_id)
    assert handle.provider == "local" and not handle.recovered
    assert handle.preview_url is None
    assert {"created", "repos_cloned", "agent_ready"} <= set(handle.boot_phases)
    assert all(v >= 0 for v in handle.boot_phases.values())
    workspace = booted.layout.workspace
    assert (workspace / "README.md").read_text() == "# demo\n"
    assert (workspace / "src/app.py").is_file() and (workspace / ".git").is_dir()
    assert handle.expires_at == pytest.approx(time.time() + 3600, abs=120)


async def test_opencode_and_agent_answer_on_their_urls(booted: Booted) -> None:
    assert await _get(booted.handle.opencode_url + "/global/health") == 200
    assert await _get(booted.handle.sandbox_agent_url + "/api/health") == 200


async def test_each_process_has_its_own_group_and_only_warrens_env(booted: Booted) -> None:
    meta = booted.layout.read_meta()
    assert meta is not None and {p.name for p in meta.processes} == {"opencode", "agent"}
    for record in meta.processes:
        assert os.getpgid(record.pid) == record.pid == record.pgid
        assert os.getsid(record.pid) == record.pid
        env = environ_of(record.pid)
        assert CANARY_VAR not in env and booted.canary not in env.values()
        assert env["HOME"] == str(booted.layout.home)
        assert env["PATH"].split(":")[0] == str(booted.layout.bin)
        assert env["WARREN_SANDBOX_TOKEN"] == booted.opts.sandbox_token


async def test_exec_sees_only_warrens_environment(booted: Booted) -> None:
    result = await booted.provider.exec(booted.handle.sandbox_id, ["env"])
    assert result.exit_code == 0
    env = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert CANARY_VAR not in env and booted.canary not in result.stdout
    # PWD is added by no one: exec starts the command directly, without a shell.
    assert set(env) == {
        "PATH",
        "HOME",
        "LANG",
        "APP_MODE",
        "DB_PASSWORD",
        "WARREN_SESSION_ID",
        "WARREN_API_URL",
        "WARREN_SANDBOX_TOKEN",
        "WARREN_WORKSPACE",
        "WARREN_STATE_DIR",
        "WARREN_AGENT_PORT",
        "WARREN_AGENT_HOST",
    }
    assert env["WARREN_AGENT_HOST"] == "127.0.0.1"
    assert env["WARREN_AGENT_PORT"] == booted.handle.sandbox_agent_url.rsplit(":", 1)[1]


async def test_exec_runs_in_the_workspace_and_confines_cwd(booted: Booted) -> None:
    sid = booted.handle.sandbox_id
    workspace = booted.layout.workspace.resolve()
    assert (await booted.provider.exec(sid, ["pwd"])).stdout.strip() == str(workspace)
    sub = await booted.provider.exec(sid, ["pwd"], cwd="src")
    assert sub.stdout.strip() == str(workspace / "src")
    failing = await booted.provider.exec(sid, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (failing.exit_code, failing.stdout, failing.stderr) == (3, "out\n", "err\n")
    assert (await booted.provider.exec(sid, ["no-such-command-x"])).exit_code == 127
    for bad in ("..", "../..", "/etc", "src/../../"):
        with pytest.raises(SandboxError):
            await booted.provider.exec(sid, ["pwd"], cwd=bad)


async def test_exec_timeout_kills_the_whole_group(booted: Booted) -> None:
    sid = booted.handle.sandbox_id
    script = "sleep 60 & echo $! > .bg.pid; echo $$ > .fg.pid; wait"
    with pytest.raises(ExecTimeout):
        await booted.provider.exec(sid, ["sh", "-c", script], timeout=1.0)
    for name in (".bg.pid", ".fg.pid"):
        pid = int((booted.layout.workspace / name).read_text())
        (booted.layout.workspace / name).unlink()
        deadline = time.monotonic() + 3
        while not process_gone(pid) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        assert process_gone(pid), f"{name} survived the timeout"


async def test_warren_shim_runs_the_agent_cli(booted: Booted) -> None:
    result = await booted.provider.exec(booted.handle.sandbox_id, ["warren", "--help"])
    assert result.exit_code == 0, result.stderr
    assert "usage: warren" in result.stdout


async def test_secret_files_are_written_by_the_agent(booted: Booted) -> None:
    env_file = booted.layout.workspace / ".env"
    value = booted.opts.secret_files[0].values["API_KEY"]
    assert f"API_KEY='{value}'" in env_file.read_text()
    assert env_file.stat().st_mode & 0o777 == 0o600


async def test_read_files_is_confined_to_the_workspace(booted: Booted) -> None:
    sid = booted.handle.sandbox_id
    script = (
        "mkdir -p .warren/verify/shots && printf png > .warren/verify/shots/a.png && "
        "printf log > .warren/verify/run.log && ln -sf /etc/hostname .warren/verify/escape"
    )
    assert (await booted.provider.exec(sid, ["sh", "-c", script])).exit_code == 0
    files = await booted.provider.read_files(sid, ".warren/verify")
    assert files == {"run.log": b"log", "shots/a.png": b"png"}  # the escaping link is skipped
    assert await booted.provider.read_files(sid, "no/such/folder") == {}
    for bad in ("..", "../state", "/etc", ".warren/../../home"):
        with pytest.raises(SandboxError):
            await booted.provider.read_files(sid, bad)


async def test_check_and_resolve_report_the_live_sandbox(booted: Booted) -> None:
    sid = booted.handle.sandbox_id
    unknown = "sbx_" + "0" * 24
    [live, gone, junk] = await booted.provider.check_sandboxes([sid, unknown, "../x"])
    assert (live.alive, live.expired) == (True, False)
    assert not gone.alive and not junk.alive
    resolved = await booted.provider.resolve_tunnels(sid)
    assert (resolved.opencode_url, resolved.sandbox_agent_url) == (
        booted.handle.opencode_url,
        booted.handle.sandbox_agent_url,
    )
    with pytest.raises(SandboxNotFound):
        await booted.provider.resolve_tunnels(unknown)


async def test_recovery_after_a_control_plane_restart(booted: Booted) -> None:
    restarted = LocalSandboxProvider(booted.provider.root, booted.provider.snapshots)
    opts = CreateSandboxOptions(
        session_id=booted.opts.session_id, current_sandbox_id=booted.handle.sandbox_id
    )
    handle = await restarted.ensure_sandbox(opts)
    assert handle.recovered
    assert handle.sandbox_id == booted.handle.sandbox_id
    assert handle.opencode_url == booted.handle.opencode_url
    assert handle.boot_phases == {}


async def test_another_sessions_sandbox_is_never_recovered_nor_touched(booted: Booted) -> None:
    opts = _opts(
        booted.layout.workspace,  # any repo will do
        current_sandbox_id=booted.handle.sandbox_id,
    )
    handle = await booted.provider.ensure_sandbox(opts)
    try:
        assert not handle.recovered and handle.sandbox_id != booted.handle.sandbox_id
        [original] = await booted.provider.check_sandboxes([booted.handle.sandbox_id])
        assert original.alive
    finally:
        await booted.provider.terminate(handle.sandbox_id)


async def test_write_env_file_replaces_the_spec_and_the_files(booted: Booted) -> None:
    sid = booted.handle.sandbox_id
    new = SecretFile(workspace_path="src", file_path=".env.local", values={"TOKEN": "t-123456"})
    await booted.provider.write_env_file(sid, [*booted.opts.secret_files, new])
    assert "TOKEN='t-123456'" in (booted.layout.workspace / "src/.env.local").read_text()
    with pytest.raises(SandboxError) as info:
        bad = SecretFile(file_path="../outside.env", values={"X": "secret-x-value"})
        await booted.provider.write_env_file(sid, [bad])
    assert "secret-x-value" not in str(info.value)


# -- snapshot, pause, restore -----------------------------------------------------------------


async def _open_opencode_session(opencode_url: str) -> str:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.post(opencode_url + "/session", json={"title": "kept across restore"}) as response,
    ):
        assert response.status == 200
        session_id: str = (await response.json())["id"]
        return session_id


async def _opencode_session_ids(opencode_url: str) -> set[str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.get(opencode_url + "/session") as response,
    ):
        return {item["id"] for item in await response.json()}


async def test_snapshot_terminate_restore_gives_an_identical_workspace(
    provider: LocalSandboxProvider, repo: Path
) -> None:
    opts = _opts(repo)
    first = await provider.create_sandbox(opts)
    script = (
        "head -c 2000000 /dev/urandom > blob.bin && mkdir -p empty/dir && "
        "printf '#!/bin/sh\\n' > tool.sh && chmod +x tool.sh && ln -s src/app.py link && "
        "echo change >> README.md && git add -A && git -c user.name=a -c user.email=a@b "
        "commit -qm work"
    )
    assert (await provider.exec(first.sandbox_id, ["sh", "-c", script])).exit_code == 0
    oc_session = await _open_opencode_session(first.opencode_url)
    workspace = provider.root / first.sandbox_id / "workspace"
    before = tree_digest(workspace)
    del before[".env"]  # secret files are left out of snapshots and written again on boot

    snap = await provider.snapshot(first.sandbox_id)
    archive = provider.snapshots.path_for(snap.snapshot_id)
    assert archive is not None and snap.size_bytes > 2_000_000
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "workspace/.env" not in names and not any(n.startswith("state") for n in names)
    assert opts.secret_files[0].values["API_KEY"].encode() not in archive.read_bytes()

    await provider.terminate(first.sandbox_id)
    restored = await provider.ensure_sandbox(
        _opts(
            repo,
            session_id=opts.session_id,
            snapshot_id=snap.snapshot_id,
            secret_files=opts.secret_files,
        )
    )
    assert restored.sandbox_id != first.sandbox_id and not restored.recovered
    assert "snapshot_restored" in restored.boot_phases
    after = tree_digest(provider.root / restored.sandbox_id / "workspace")
    assert after.pop(".env").endswith(":-")  # written again on boot
    assert after == before
    assert oc_session in await _opencode_session_ids(restored.opencode_url)


async def test_pause_stops_everything_and_resume_restores(
    provider: LocalSandboxProvider, repo: Path
) -> None:
    opts = _opts(repo, secret_files=())
    first = await provider.create_sandbox(opts)
    await provider.exec(first.sandbox_id, ["sh", "-c", "echo paused-state > note.txt"])
    folder = provider.root / first.sandbox_id
    snap = await provider.pause(first.sandbox_id)
    assert not folder.exists()
    assert processes_pointing_into(folder) == []
    [state] = await provider.check_sandboxes([first.sandbox_id])
    assert not state.alive
    resumed = await provider.ensure_sandbox(
        _opts(
            repo,
            session_id=opts.session_id,
            current_sandbox_id=first.sandbox_id,
            snapshot_id=snap.snapshot_id,
            secret_files=(),
        )
    )
    assert not resumed.recovered
    note = provider.root / resumed.sandbox_id / "workspace/note.txt"
    assert note.read_text() == "paused-state\n"


# -- terminate, expiry ------------------------------------------------------------------------


async def test_terminate_leaves_no_process_of_the_sandbox(
    provider: LocalSandboxProvider, repo: Path
) -> None:
    handle = await provider.create_sandbox(_opts(repo))
    folder = provider.root / handle.sandbox_id
    meta = SandboxLayout(folder).read_meta()
    assert meta is not None
    # A daemon that left the process group (setsid), like a started service would.
    escape = "setsid sh -c 'sleep 300' > /dev/null 2>&1 < /dev/null & sleep 0.2"
    assert (await provider.exec(handle.sandbox_id, ["sh", "-c", escape])).exit_code == 0
    assert len(processes_pointing_into(folder)) >= 3

    await provider.terminate(handle.sandbox_id)

    assert not folder.exists()
    for record in meta.processes:
        assert not group_exists(record.pgid), record
        assert process_gone(record.pid), record
    assert processes_pointing_into(folder) == []
    assert [p for p in (provider.root / ".ports").iterdir()] == []  # ports released


async def test_dead_process_is_reported_and_not_recovered(
    provider: LocalSandboxProvider, repo: Path
) -> None:
    opts = _opts(repo)
    handle = await provider.create_sandbox(opts)
    meta = SandboxLayout(provider.root / handle.sandbox_id).read_meta()
    assert meta is not None
    opencode_pid = next(p.pid for p in meta.processes if p.name == "opencode")
    os.kill(opencode_pid, signal.SIGKILL)
    await asyncio.sleep(0.2)
    [state] = await provider.check_sandboxes([handle.sandbox_id])
    assert not state.alive
    assert (provider.root / handle.sandbox_id).exists()  # checking has no side effect
    replacement = await provider.ensure_sandbox(
        _opts(repo, session_id=opts.session_id, current_sandbox_id=handle.sandbox_id)
    )
    assert not replacement.recovered and replacement.sandbox_id != handle.sandbox_id
    assert not (provider.root / handle.sandbox_id).exists()  # the dead one was cleaned up


async def test_terminate_all_ends_every_sandbox(provider: LocalSandboxProvider, repo: Path) -> None:
    handle = await provider.create_sandbox(_opts(repo))
    folder = provider.root / handle.sandbox_id
    assert processes_pointing_into(folder)
    assert await provider.terminate_all() == [handle.sandbox_id]
    assert not folder.exists() and processes_pointing_into(folder) == []
    assert await provider.terminate_all() == []


async def test_terminate_of_unknown_ids_succeeds(provider: LocalSandboxProvider) -> None:
    await provider.terminate("sbx_" + "f" * 24)
    await provider.terminate("../../etc")
    await provider.terminate("")


async def test_expiry_is_reported_and_blocks_recovery(tmp_path: Path, repo: Path) -> None:
    provider = _provider(tmp_path, expiry_seconds=2.0)
    try:
        opts = _opts(repo, secret_files=())
        handle = await provider.create_sandbox(opts)
        assert handle.expires_at - time.time() < 2.1
        [fresh] = await provider.check_sandboxes([handle.sandbox_id])
        assert fresh.alive and not fresh.expired
        await asyncio.sleep(max(0.0, handle.expires_at - time.time()) + 0.1)
        [old] = await provider.check_sandboxes([handle.sandbox_id])
        assert old.expired and old.alive
        again = await provider.ensure_sandbox(
            _opts(
                repo,
                session_id=opts.session_id,
                current_sandbox_id=handle.sandbox_id,
                secret_files=(),
            )
        )
        assert not again.recovered and again.sandbox_id != handle.sandbox_id
        assert not (provider.root / handle.sandbox_id).exists()
        await asyncio.sleep(max(0.0, again.expires_at - time.time()) + 0.1)
        assert await provider.reap_expired() == [again.sandbox_id]
        assert not (provider.root / again.sandbox_id).exists()
    finally:
        await provider.terminate_all()


# -- failures ---------------------------------------------------------------------------------


async def test_failed_clone_leaks_no_secret_and_leaves_nothing(
    provider: LocalSandboxProvider,
) -> None:
    token = "ghp_" + secrets.token_hex(16)
    opts = _opts(
        Path("/unused"),
        repos=(RepoSpec(url=f"https://x-access-token:{token}@127.0.0.1:9/o/r.git"),),
    )
    with pytest.raises(SandboxError) as info:
        await provider.create_sandbox(opts)
    message = str(info.value)
    assert token not in message and opts.env_vars["DB_PASSWORD"] not in message
    assert [p.name for p in provider.root.iterdir() if valid_sandbox_id(p.name)] == []


async def test_process_that_dies_at_boot_fails_fast_with_redacted_log(
    tmp_path: Path, repo: Path
) -> None:
    # An "OpenCode" that prints its whole environment and exits: the error must carry the
    # log tail without any of the secrets in it.
    fake = tmp_path / "fake-opencode"
    fake.write_text("#!/bin/sh\nenv\nexit 7\n")
    fake.chmod(0o755)
    provider = LocalSandboxProvider(
        tmp_path / "sandboxes", LocalSnapshotStore(tmp_path / "snaps"), opencode_bin=fake
    )
    opts = _opts(repo)
    started = time.monotonic()
    with pytest.raises(SandboxError) as info:
        await provider.create_sandbox(opts)
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert "exited while booting" in message and "WARREN_SANDBOX_TOKEN=***" in message
    for secret in (opts.sandbox_token, opts.env_vars["DB_PASSWORD"]):
        assert secret not in message
    assert [p.name for p in provider.root.iterdir() if valid_sandbox_id(p.name)] == []
