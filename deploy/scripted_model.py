"""The scripted model as the local stack's default model: ``python -m llm.scripted`` on loopback.

When ``WARREN_LLM_BASE_URL`` is empty, ``./warren up`` runs it with ``deploy/demo-script.json``
so sessions reach a model with no provider configured. It is a test/demo stand-in that
follows a script, not an LLM.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from deploy.net import LOOPBACK, port_free, wait_until
from deploy.proc import running, tail, terminate

DEMO_SCRIPT = Path(__file__).resolve().parent / "demo-script.json"
"""The script ``./warren up`` serves."""
MODEL_ID = "scripted"
_ROOT = Path(__file__).resolve().parent.parent


class ScriptedModelError(RuntimeError):
    """The scripted model could not be started."""


def marker(port: int) -> str:
    """What the command line of the scripted model on ``port`` contains (for pid checks)."""
    return f"-m llm.scripted --host {LOOPBACK} --port {port}"


def _models_answer(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/models", timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class EmbeddedScriptedModel:
    """``python -m llm.scripted`` on 127.0.0.1:``port`` answering from ``script``."""

    def __init__(self, port: int, log_path: Path, script: Path = DEMO_SCRIPT) -> None:
        self.port = port
        self.log_path = log_path
        self.script = script
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (``WARREN_LLM_BASE_URL``)."""
        return f"http://{LOOPBACK}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        process = self._process
        if process is None or process.poll() is not None:
            return None
        return process.pid

    def start(self, timeout: float = 30.0) -> None:
        """Start the server in a session of its own and wait until ``/v1/models`` answers."""
        if not port_free(self.port):
            raise ScriptedModelError(f"port {self.port} on {LOOPBACK} is in use")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, *marker(self.port).split(), "--script", str(self.script)]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=_ROOT,
            )
        process = self._process
        up = wait_until(
            lambda: process.poll() is not None or _models_answer(self.base_url), timeout
        )
        if process.poll() is not None or not up:
            self.stop()
            raise ScriptedModelError(
                f"the scripted model did not start on port {self.port}\n{tail(self.log_path)}"
            )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, SIGKILL after ``timeout``) and reap it."""
        if self._process is None:
            return
        terminate(self._process.pid, marker(self.port), timeout)
        self._process.wait()
        self._process = None


def stop_leftover(pid: int, port: int) -> None:
    """Stop a scripted model a dead runner left, if ``pid`` still is that server."""
    if running(pid, marker(port)):
        terminate(pid, marker(port))
