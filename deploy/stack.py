"""The local stack: PostgreSQL, NATS, the scripted model, a Ray head and the Serve app,
started and stopped in order.

``up`` prints each step with its duration, the URLs, then stays in the foreground until
Ctrl-C, SIGTERM (``stop`` from another terminal), the death of its Ray head, or an embedded
server that dies and cannot be restarted (:mod:`deploy.supervise`: bounded retries with
backoff, each logged), and then shuts everything it started down: Serve, its Ray head (by
pid), the scripted model, NATS, PostgreSQL. ``WARREN_DATABASE_URL`` / ``WARREN_NATS_URL`` in
the environment replace the embedded servers; with ``WARREN_LLM_BASE_URL`` set, no scripted
model is started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from core.bus import ROLES
from core.settings import Settings, SettingsError, env_name, load_settings
from deploy import state as files
from deploy.nats import EmbeddedNats
from deploy.net import LOOPBACK, pick_port, port_free
from deploy.postgres import EmbeddedPostgres
from deploy.proc import running, tail
from deploy.ray_head import AUTH_TOKEN_PATH, RayHead, RayPorts, ray_env, stop_head
from deploy.scripted_model import DEMO_SCRIPT, MODEL_ID, EmbeddedScriptedModel, stop_leftover
from deploy.supervise import Supervisor, Unit

RUNNER_MARKER = "-m deploy"


class StackError(RuntimeError):
    """A step of the stack failed; the message says which and where its log is."""


class Interrupted(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived."""


def tell(text: str) -> None:
    """Print a line; a closed terminal (SIGHUP) must not stop a shutdown half-way."""
    try:
        print(text, flush=True)
    except OSError:
        pass


def say(label: str, text: str) -> None:
    """One aligned line of progress."""
    tell(f"{label:<10} {text}")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def _hold_on(signum: int, frame: FrameType | None) -> None:
    tell("(still shutting down, please wait)")


def choose_ports(saved: files.StackPorts, taken: set[int]) -> files.StackPorts:
    """The saved ports where still free, other free ports where not; none twice."""
    used = set(taken)

    def pick(port: int) -> int:
        chosen = pick_port(port, used)
        used.add(chosen)
        return chosen

    r = saved.ray
    ray = RayPorts(
        gcs=pick(r.gcs),
        client=pick(r.client),
        dashboard=pick(r.dashboard),
        agent=pick(r.agent),
        autoscaler_metrics=pick(r.autoscaler_metrics),
        dashboard_metrics=pick(r.dashboard_metrics),
    )
    return files.StackPorts(
        postgres=pick(saved.postgres),
        nats=pick(saved.nats),
        scripted_model=pick(saved.scripted_model),
        ray=ray,
    )


def http_ready(url: str, timeout: float = 2.0) -> tuple[bool, str]:
    """GET ``url``: (status is 200, body or error)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return False, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return False, str(exc)


def run_serve_driver(action: str, address: str, env: dict[str, str], log: Path) -> None:
    """``python -m deploy.serve <action>`` against the head, output appended to ``log``."""
    with log.open("ab") as out:
        result = subprocess.run(
            [sys.executable, "-m", "deploy.serve", action, "--address", address],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            timeout=300,
            check=False,
            cwd=Path(__file__).parent.parent,
        )
    if result.returncode != 0:
        raise StackError(f"serve {action} failed (exit {result.returncode})\n{tail(log)}")


class Stack:
    """One run of the stack; :meth:`start`, :meth:`watch` and :meth:`shutdown`."""

    def __init__(self, paths: files.Paths, ports: files.StackPorts, env: dict[str, str]) -> None:
        self.paths = paths
        self.ports = ports
        self.env = env
        self.postgres: EmbeddedPostgres | None = None
        self.nats: EmbeddedNats | None = None
        self.model: EmbeddedScriptedModel | None = None
        self.ray = RayHead(ports.ray, paths.ray_temp, paths.logs / "ray.log", os.cpu_count() or 1)
        self.settings: Settings | None = None
        self.serving = False

    def start(self) -> Settings:
        """Start every part, deploy the app and wait until ``/readyz`` answers 200."""
        began = time.monotonic()
        if not self.env.get("WARREN_DATABASE_URL"):
            self.postgres = EmbeddedPostgres(self.paths.postgres, self.ports.postgres)
            self.postgres.start()
            asyncio.run(self.postgres.ensure_database("warren"))
            self.env["WARREN_DATABASE_URL"] = self.postgres.dsn("warren")
            self.save_running(ready=False)
            extra = (
                f", initdb {self.postgres.timings['initdb']:.1f} s"
                if ("initdb" in self.postgres.timings)
                else ""
            )
            say(
                "postgres",
                f"started in {time.monotonic() - began:.1f} s   "
                f"{LOOPBACK}:{self.postgres.port}, database warren{extra}",
            )
        else:
            say("postgres", "external (WARREN_DATABASE_URL)")
        if not self.env.get("WARREN_NATS_URL"):
            step = time.monotonic()
            prefix = load_settings(self.env).nats_prefix
            self.nats = EmbeddedNats(self.paths.nats, self.ports.nats, prefix=prefix)
            self.nats.start()
            self.env["WARREN_NATS_URL"] = self.nats.url
            for role in ROLES:
                self.env[env_name(f"nats_credentials_{role}")] = self.nats.credentials(role)
            self.save_running(ready=False)
            say(
                "nats",
                f"started in {time.monotonic() - step:.1f} s   "
                f"{LOOPBACK}:{self.nats.port}, JetStream in {self.paths.nats}, a user per role",
            )
        else:
            say("nats", "external (WARREN_NATS_URL)")
        ray_began = time.monotonic()
        # Ray's processes (replicas, actors) read the secrets from the head's environment;
        # the Serve runtime_env carries only the rest.
        self.ray.launch(self.env)
        self.save_running(ready=False)
        self.start_model()  # while the head comes up
        self.ray.wait_ready()
        temp = (
            ""
            if self.paths.ray_temp.is_relative_to(self.paths.data)
            else (f", temp dir {self.paths.ray_temp} (.data path too long for Unix sockets)")
        )
        say(
            "ray head",
            f"started in {time.monotonic() - ray_began:.1f} s   {self.ray.address}{temp}",
        )
        settings = load_settings(self.env)
        self.settings = settings
        self.save_running(ready=False)
        step = time.monotonic()
        self.serving = True
        try:
            run_serve_driver("deploy", self.ray.address, self.env, self.paths.logs / "serve.log")
        except StackError as exc:
            replicas = self.paths.ray_temp / "session_latest" / "logs" / "serve"
            raise StackError(f"{exc}\nreplica logs: {replicas}") from None
        say("serve", f"deployed in {time.monotonic() - step:.1f} s")
        step = time.monotonic()
        self.wait_ready(settings)
        say("api", f"ready in {time.monotonic() - step:.1f} s")
        self.save_running(ready=True)
        _print_urls(settings, self.ray, self.local_url(settings))
        print(
            f"Warren is up in {time.monotonic() - began:.1f} s. "
            "Ctrl-C or `./warren stop` shuts it down.",
            flush=True,
        )
        return settings

    def start_model(self) -> None:
        """Start the scripted model unless ``WARREN_LLM_BASE_URL`` names a real one."""
        if self.env.get("WARREN_LLM_BASE_URL"):
            say("model", "external (WARREN_LLM_BASE_URL)")
            return
        step = time.monotonic()
        self.model = EmbeddedScriptedModel(
            self.ports.scripted_model, self.paths.logs / "scripted-model.log"
        )
        self.model.start()
        self.env["WARREN_LLM_BASE_URL"] = self.model.base_url
        self.env["WARREN_LLM_MODEL"] = MODEL_ID
        self.save_running(ready=False)
        say(
            "model",
            f"started in {time.monotonic() - step:.1f} s   {self.model.base_url}, scripted demo "
            f"model ({DEMO_SCRIPT.name}, not an LLM; set WARREN_LLM_BASE_URL for a real one)",
        )

    def local_url(self, settings: Settings) -> str:
        """The API as reached from this machine."""
        host = LOOPBACK if settings.http_host in ("0.0.0.0", "::", "") else settings.http_host
        return f"http://{host}:{settings.http_port}"

    def wait_ready(self, settings: Settings, timeout: float = 180.0) -> None:
        """Poll ``GET /readyz`` until it answers 200."""
        url = self.local_url(settings) + "/readyz"
        deadline = time.monotonic() + timeout
        body = ""
        while time.monotonic() < deadline:
            ok, body = http_ready(url)
            if ok:
                return
            self.check_alive()
            time.sleep(0.2)
        raise StackError(f"{url} did not answer 200 within {timeout:.0f} s: {body[:500]}")

    def save_running(self, ready: bool) -> None:
        """Record what runs in ``stack.json``."""
        settings = self.settings
        run = files.Running(
            runner_pid=os.getpid(),
            started_at=time.time(),
            api_url=self.local_url(settings) if settings else "",
            ray_address=self.ray.address,
            dashboard_url=self.ray.dashboard_url,
            ray_pid=self.ray.pid,
            postgres=f"{LOOPBACK}:{self.postgres.port}" if self.postgres else "",
            nats=f"{LOOPBACK}:{self.nats.port}" if self.nats else "",
            scripted_model=f"{LOOPBACK}:{self.model.port}" if self.model else "",
            scripted_model_pid=self.model.pid if self.model else None,
            ready=ready,
        )
        files.save(self.paths, files.StackState(ports=self.ports, running=run))

    def check_alive(self) -> None:
        """Raise :class:`StackError` if one of the stack's servers has died."""
        if self.ray.pid is not None and not running(self.ray.pid):
            raise StackError(f"the Ray head exited; see {self.ray.log_path}")
        if self.nats is not None and self.nats.pid is None:
            raise StackError(f"nats-server exited; see {self.nats.log_path}")
        if self.model is not None and self.model.pid is None:
            raise StackError(f"the scripted model exited; see {self.model.log_path}")
        if self.postgres is not None and self.postgres.pid is None:
            raise StackError(f"PostgreSQL exited; see {self.postgres.log_path}")

    def supervisor(self, *, attempts: int = 5, base: float = 1.0, cap: float = 30.0) -> Supervisor:
        """A :class:`Supervisor` of the embedded servers this run started."""
        units: list[Unit] = []
        if self.postgres is not None:
            pg = self.postgres
            units.append(Unit("postgres", lambda: pg.pid is not None, pg.start, pg.log_path))
        if self.nats is not None:
            nats = self.nats
            units.append(Unit("nats", lambda: nats.pid is not None, nats.restart, nats.log_path))
        if self.model is not None:
            model = self.model
            units.append(
                Unit("model", lambda: model.pid is not None, self._restart_model, model.log_path)
            )
        return Supervisor(units, say, attempts=attempts, base=base, cap=cap)

    def _restart_model(self) -> None:
        assert self.model is not None
        self.model.stop()
        self.model.start()
        self.save_running(ready=True)  # its new pid, for `stop` after a crash of this runner

    def watch(self, supervisor: Supervisor | None = None) -> None:
        """Stay in the foreground until a signal arrives, the Ray head dies or a dead
        embedded server cannot be restarted."""
        supervisor = supervisor or self.supervisor()
        while True:
            if self.ray.pid is not None and not running(self.ray.pid):
                raise StackError(f"the Ray head exited; see {self.ray.log_path}")
            supervisor.check()
            time.sleep(1.0)

    def shutdown(self) -> None:
        """Stop what this run started, newest first, each step timed."""
        if self.serving and self.ray.pid is not None and running(self.ray.pid):
            self._timed(
                "serve",
                lambda: run_serve_driver(
                    "shutdown", self.ray.address, self.env, self.paths.logs / "serve.log"
                ),
            )
        if self.ray.pid is not None:
            self._timed("ray head", self.ray.stop)
        data_dir = Path(self.env.get("WARREN_DATA_DIR", str(self.paths.data)))
        self._timed("sandboxes", lambda: stop_local_sandboxes(data_dir))
        if self.model is not None:
            self._timed("model", self.model.stop)
        if self.nats is not None:
            self._timed("nats", self.nats.stop)
        if self.postgres is not None:
            self._timed("postgres", self.postgres.stop)

    @staticmethod
    def _timed(label: str, action: Callable[[], object]) -> None:
        step = time.monotonic()
        try:
            action()
        except Exception as exc:  # keep stopping the rest; report what failed
            say(label, f"failed to stop: {exc}")
            return
        say(label, f"stopped in {time.monotonic() - step:.1f} s")


def _print_urls(settings: Settings, ray: RayHead, api: str) -> None:
    say("API", settings.api_url if settings.public_url else api)
    say("browser", (settings.api_url if settings.public_url else api) + "/")
    say(
        "dashboard",
        f"{ray.dashboard_url}   (Ray token auth: paste the token from "
        f"{AUTH_TOKEN_PATH} when asked, or send 'Authorization: Bearer <token>')",
    )


def stop_local_sandboxes(data_dir: Path) -> int:
    """Terminate the local sandboxes of this install (their processes outlive Ray).

    Sessions keep their transcript (Postgres) and last snapshot; a session that was
    running boots a fresh sandbox on its next connect or prompt.
    """
    from sandboxes.local import LocalSandboxProvider

    provider = LocalSandboxProvider.from_data_dir(data_dir)
    return len(asyncio.run(provider.terminate_all()))


def stop_leftovers(paths: files.Paths, run: files.Running) -> None:
    """Stop servers a runner that died without cleaning up left behind (by recorded pid)."""
    if run.ray_pid and running(run.ray_pid, "ray start"):
        Stack._timed("ray head", lambda: stop_head(run.ray_pid or 0))
    data_dir = Path(os.environ.get("WARREN_DATA_DIR", str(paths.data)))
    Stack._timed("sandboxes", lambda: stop_local_sandboxes(data_dir))
    if run.scripted_model and run.scripted_model_pid:
        port = int(run.scripted_model.rsplit(":", 1)[1])
        Stack._timed("model", lambda: stop_leftover(run.scripted_model_pid or 0, port))
    if run.nats:
        Stack._timed("nats", EmbeddedNats(paths.nats).stop)
    if run.postgres:
        Stack._timed("postgres", EmbeddedPostgres(paths.postgres).stop)


def up(paths: files.Paths) -> int:
    """``./warren up``: start, stay in the foreground, shut down; the exit code."""
    lock = files.try_lock(paths)
    if lock is None:
        run = files.load(paths).running
        where = f" (pid {run.runner_pid}, API {run.api_url or 'starting'})" if run else ""
        print(f"Warren is already running{where}. `./warren stop` stops it.", flush=True)
        return 1
    try:
        return _up_locked(paths)
    finally:
        lock.close()


def _up_locked(paths: files.Paths) -> int:
    saved = files.load(paths)
    if saved.running is not None:
        print("A previous run did not shut down; stopping what it left.", flush=True)
        stop_leftovers(paths, saved.running)
    env = dict(os.environ)
    env.setdefault("WARREN_SECRET_KEY", files.secret_key(paths))
    env.setdefault("WARREN_DATA_DIR", str(paths.data))
    try:
        settings = load_settings(env)
    except SettingsError as exc:
        print(f"Invalid setting: {exc}", flush=True)
        return 2
    if not port_free(settings.http_port, settings.http_host):
        print(
            f"Port {settings.http_port} on {settings.http_host} is in use: set "
            "WARREN_HTTP_PORT to a free port.",
            flush=True,
        )
        return 1
    ports = choose_ports(saved.ports, taken={settings.http_port})
    env.update(ray_env(ports.ray))
    files.save(paths, files.StackState(ports=ports))
    stack = Stack(paths, ports, env)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    code = 0
    try:
        stack.start()
        stack.watch()
    except Interrupted as exc:
        tell(f"\n{exc}: shutting down")
    except KeyboardInterrupt:
        tell("\nshutting down")
    except Exception as exc:  # any failed step: report it, then clean up what started
        tell(f"error: {exc}")
        code = 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _hold_on)
        stack.shutdown()
        files.save(paths, files.StackState(ports=ports))
    return code
