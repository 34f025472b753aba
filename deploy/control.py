"""``./warren stop`` and ``./warren status``: commands against a running (or dead) ``up``."""

from __future__ import annotations

import os
import signal
import time

from core.bus import inbox_prefix
from deploy import state as files
from deploy.nats import EmbeddedNats, NatsError
from deploy.nats_auth import NatsAuthError
from deploy.postgres import EmbeddedPostgres
from deploy.proc import running
from deploy.ray_head import AUTH_TOKEN_PATH
from deploy.stack import RUNNER_MARKER, http_ready, say, stop_leftovers


def stop(paths: files.Paths, timeout: float = 180.0) -> int:
    """``./warren stop``: ask the running ``up`` to shut down (or clean up after a dead one)."""
    run = files.load(paths).running
    if run is None:
        print("Warren is not running.", flush=True)
        return 0
    began = time.monotonic()
    if running(run.runner_pid, RUNNER_MARKER):
        os.kill(run.runner_pid, signal.SIGTERM)
        while running(run.runner_pid, RUNNER_MARKER):
            if time.monotonic() - began > timeout:
                print(f"up (pid {run.runner_pid}) is still shutting down after {timeout:.0f} s")
                return 1
            time.sleep(0.2)
        print(f"Warren stopped in {time.monotonic() - began:.1f} s.", flush=True)
        return 0
    lock = files.try_lock(paths)
    if lock is None:
        print("Another ./warren command holds the lock; try again.", flush=True)
        return 1
    try:
        stop_leftovers(paths, run)
        files.save(paths, files.StackState(ports=files.load(paths).ports))
    finally:
        lock.close()
    print(f"Warren stopped in {time.monotonic() - began:.1f} s.", flush=True)
    return 0


def status(paths: files.Paths) -> int:
    """``./warren status``: what runs; exit 0 when the API is ready, else 1."""
    run = files.load(paths).running
    if run is None or not running(run.runner_pid, RUNNER_MARKER):
        print(
            "Warren is not running."
            + (" (Leftovers of a run that died: `./warren stop` cleans them up.)" if run else ""),
            flush=True,
        )
        return 1
    age = time.time() - run.started_at
    print(f"Warren is running: pid {run.runner_pid}, up {age / 60:.0f} min", flush=True)
    pg_pid = EmbeddedPostgres(paths.postgres).pid if run.postgres else None
    nats_pid = EmbeddedNats(paths.nats).pid if run.nats else None
    say("postgres", f"{run.postgres} pid {pg_pid}" if run.postgres else "external")
    say("nats", f"{run.nats} pid {nats_pid}" if run.nats else "external")
    say(
        "model",
        f"{run.scripted_model} scripted (pid {run.scripted_model_pid})"
        if run.scripted_model
        else "external (WARREN_LLM_BASE_URL)",
    )
    ray_state = "running" if running(run.ray_pid, "ray start") else "not running"
    say("ray head", f"{run.ray_address} {ray_state} (pid {run.ray_pid})")
    say("dashboard", f"{run.dashboard_url} (token: {AUTH_TOKEN_PATH})")
    ok, body = http_ready(run.api_url + "/readyz")
    say("api", f"{run.api_url} {'ready' if ok else 'not ready: ' + body[:200]}")
    return 0 if ok else 1


def nats_user(paths: files.Paths, name: str) -> int:
    """``python -m deploy nats-user NAME``: mint an external publisher of the embedded NATS.

    Prints its login and the only subjects it may publish to; a running server takes the
    user at once. The password is shown here only (it is stored in the server's config).
    """
    # Its last port and the prefix the stack last wrote the users for.
    server = EmbeddedNats(paths.nats)
    try:
        user, password = server.add_publisher(name)
    except (NatsAuthError, NatsError) as exc:
        print(f"nats-user: {exc}", flush=True)
        return 2
    print(f"url            {server.url}", flush=True)
    print(f"user           {user}", flush=True)
    print(f"password       {password}", flush=True)
    print(f"publish to     {server.subjects.custom_trigger_events}", flush=True)
    print(f"inbox prefix   {inbox_prefix(user)}   (set it in the client: acks arrive there)")
    if server.pid is None:
        print("(the stack's NATS is not running: the user exists from its next start)")
    return 0
