"""The local stack: state file, ports, lock, and one real `up` → /readyz → `stop` round trip."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import aiohttp
import msgspec
import pytest
from nats.js.errors import NotFoundError

from core.bus import ROLES, connect
from deploy import stack
from deploy import state as files
from deploy.nats import EmbeddedNats
from deploy.net import free_port, port_free
from deploy.postgres import EmbeddedPostgres
from deploy.proc import running, session_members
from deploy.ray_head import AUTH_TOKEN_PATH, choose_temp_dir
from tests.api.accounts import call, sign_up

ROOT = Path(__file__).resolve().parents[2]


def test_state_round_trips_and_survives_a_corrupt_file(tmp_path: Path) -> None:
    paths = files.Paths(tmp_path)
    saved = files.StackState(ports=files.StackPorts(postgres=1234))
    files.save(paths, saved)
    assert files.load(paths) == saved
    paths.state.write_text("{not json")
    assert files.load(paths) == files.StackState()


def test_choose_ports_keeps_free_ones_and_replaces_taken_ones() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken_port = busy.getsockname()[1]
        free = free_port()
        saved = files.StackPorts(postgres=taken_port, nats=free)
        chosen = stack.choose_ports(saved, taken={saved.ray.gcs})
    assert chosen.nats == free
    assert chosen.postgres != taken_port
    assert chosen.ray.gcs != saved.ray.gcs
    ports = [chosen.postgres, chosen.nats, *msgspec.structs.astuple(chosen.ray)]
    assert len(set(ports)) == len(ports)
    assert all(not 10002 <= p <= 19999 for p in ports)  # Ray's worker range


def test_lock_is_exclusive_and_a_second_up_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = files.Paths(tmp_path)
    held = files.try_lock(paths)
    assert held is not None
    try:
        assert files.try_lock(paths) is None
        assert stack.up(paths) == 1
        assert "already running" in capsys.readouterr().out
    finally:
        held.close()
    again = files.try_lock(paths)
    assert again is not None
    again.close()


def test_secret_key_is_generated_once_and_private(tmp_path: Path) -> None:
    paths = files.Paths(tmp_path)
    key = files.secret_key(paths)
    assert len(key) >= 32
    assert files.secret_key(paths) == key
    assert (paths.data / "secret_key").stat().st_mode & 0o777 == 0o600


def test_ray_temp_dir_falls_back_when_socket_paths_would_be_too_long(tmp_path: Path) -> None:
    short = Path("/tmp/w/.data/ray")
    assert choose_temp_dir(short, Path("/tmp/fallback")) == short
    deep = Path("/" + "x" * 60) / ".data" / "ray"
    assert choose_temp_dir(deep, Path("/tmp/fallback")) == Path("/tmp/fallback")


def _deploy(root: Path, command: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "deploy", "--root", str(root), command],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _check_secrets_stay_out_of_ray(paths: files.Paths, run: files.Running) -> None:
    """The Serve app as Ray stores and shows it (dashboard API) carries no secret."""
    url = f"{run.dashboard_url}/api/serve/applications/"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401  # the dashboard wants Ray's token
    token = AUTH_TOKEN_PATH.read_text().strip()
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        shown = resp.read().decode()
    assert "WARREN_NATS_PREFIX" in shown  # the runtime_env is there, with the other settings
    nats = EmbeddedNats(paths.nats)
    secrets = [
        files.secret_key(paths),
        urllib.parse.urlsplit(EmbeddedPostgres(paths.postgres).dsn("warren")).password,
        *(nats.credentials(role).split(":", 1)[1] for role in ROLES),
    ]
    for secret in secrets:
        assert secret and secret not in shown
    for name in ("WARREN_SECRET_KEY", "WARREN_DATABASE_URL", "WARREN_NATS_CREDENTIALS_POOL"):
        assert name not in shown


async def _check_pools_logged_in_as_their_role(paths: files.Paths) -> None:
    """The trigger pool (role ``pool``) created its consumer on the permissioned NATS."""
    nats = EmbeddedNats(paths.nats)
    nc = await connect(nats.url, credentials=nats.credentials("ingress"))
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + 120
        while True:
            try:
                info = await js.consumer_info("WARREN_TRIGGER_EVENTS", "trigger-pool")
                break
            except NotFoundError:
                assert time.monotonic() < deadline, "the trigger pool never made its consumer"
                await asyncio.sleep(0.5)
        assert info.config.durable_name == "trigger-pool"
    finally:
        await nc.close()


async def _check_a_session_streams(api_url: str) -> None:
    """A prompt over the WebSocket gets the demo model's answer: the ingress, the session
    actor and the pools each work with their own, scoped NATS login."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(api_url, cookie_jar=jar) as client:
        await sign_up(client)
        status, created = await call(client, "POST", "/api/sessions", json={"title": "stack"})
        assert status == 201, created
        status, token = await call(client, "POST", "/api/auth/ws-token")
        assert status == 200, token
        url = f"/api/sessions/{created['session_id']}/ws?token={token['token']}"
        async with client.ws_connect(url) as ws, asyncio.timeout(180):
            assert msgspec.json.decode((await ws.receive()).data)["type"] == "init"
            await ws.send_json({"type": "prompt", "content": "hello"})
            frames: list[dict[str, object]] = []
            while not frames or frames[-1]["type"] != "message_complete":
                msg = await ws.receive()
                assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data)
                frames.append(msgspec.json.decode(msg.data))
        assert any(f["type"] == "token" for f in frames), frames


def test_up_serves_readyz_and_stop_leaves_nothing_running(tmp_path: Path) -> None:
    http_port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WARREN_DATABASE_URL", "WARREN_NATS_URL", "WARREN_SECRET_KEY")
        and not k.startswith("WARREN_LLM_")
    }
    env["WARREN_HTTP_PORT"] = str(http_port)
    env["WARREN_LOG_LEVEL"] = "WARNING"
    up = _deploy(tmp_path, "up", env=env)
    paths = files.Paths(tmp_path)
    try:
        deadline = time.monotonic() + 240
        run = None
        while time.monotonic() < deadline and up.poll() is None:
            run = files.load(paths).running
            if run is not None and run.ready:
                break
            time.sleep(0.5)
        assert run is not None and run.ready, up.communicate(timeout=60)[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=5) as resp:
            assert json.loads(resp.read())["status"] == "ok"
        status = _deploy(tmp_path, "status", env=env)
        assert status.wait(timeout=60) == 0, status.communicate()[0]
        again = _deploy(tmp_path, "up", env=env)
        output = again.communicate(timeout=60)[0]
        assert again.returncode == 1 and "already running" in output
        pg_pid = EmbeddedPostgres(paths.postgres).pid
        nats_pid = EmbeddedNats(paths.nats).pid
        assert pg_pid and nats_pid and run.ray_pid
        # No WARREN_LLM_BASE_URL: the stack runs the scripted demo model and records it.
        model_pid = run.scripted_model_pid
        assert model_pid and running(model_pid, "-m llm.scripted")
        models = f"http://{run.scripted_model}/v1/models"
        with urllib.request.urlopen(models, timeout=5) as resp:
            assert json.loads(resp.read())["data"][0]["id"] == "scripted"
        _check_secrets_stay_out_of_ray(paths, run)
        asyncio.run(_check_pools_logged_in_as_their_role(paths))
        asyncio.run(_check_a_session_streams(run.api_url))
        # NATS dies: `up` restarts it and the API is ready again (it used to stop the stack).
        os.kill(nats_pid, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while EmbeddedNats(paths.nats).pid in (None, nats_pid):
            assert time.monotonic() < deadline and up.poll() is None, "NATS was not restarted"
            time.sleep(0.2)
        while not stack.http_ready(f"http://127.0.0.1:{http_port}/readyz")[0]:
            assert time.monotonic() < deadline and up.poll() is None, "not ready after NATS"
            time.sleep(0.2)
        nats_pid = EmbeddedNats(paths.nats).pid
    finally:
        stopper = _deploy(tmp_path, "stop", env=env)
        stop_output = stopper.communicate(timeout=240)[0]
        output = up.communicate(timeout=60)[0]
        postgres = EmbeddedPostgres(paths.postgres)
        pg_left = postgres.pid  # before remove(), which would stop it
        postgres.remove()
        if not paths.ray_temp.is_relative_to(tmp_path):
            shutil.rmtree(paths.ray_temp.parent, ignore_errors=True)
    assert stopper.returncode == 0, stop_output
    assert up.returncode == 0, output
    for step in (
        "postgres   started in",
        "nats       started in",
        "model      started in",
        "ray head   started in",
        "serve      deployed in",
        "api        ready in",
        "ray head   stopped in",
        "model      stopped in",
        "nats       exited; restart 1/5",
        "nats       restarted (attempt 1/5)",
    ):
        assert step in output
    assert pg_left is None and not running(pg_pid)
    assert not running(nats_pid) and not running(run.ray_pid) and not running(model_pid)
    # Nothing of this Ray head is left (zombies wait for init to reap them: not running).
    assert [p for p in session_members(run.ray_pid) if running(p)] == []
    assert port_free(http_port)
    assert files.load(paths).running is None
