"""A tiny synchronous client for the local agent (stdlib only, so the CLI starts fast)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

from sandboxes.agent.config import ConfigError, parse_port

_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


class AgentError(Exception):
    """The agent answered with an error, or could not be reached."""


class AgentClient:
    """Talks to the agent at ``base_url`` with a bearer ``token``."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        # Never route loopback traffic through an HTTP proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AgentClient:
        """The local agent: ``WARREN_AGENT_PORT`` on loopback (or ``WARREN_AGENT_HOST``)."""
        port = parse_port(env)
        token = env.get("WARREN_SANDBOX_TOKEN", "")
        if not token:
            raise ConfigError("WARREN_SANDBOX_TOKEN", "is not set")
        host = env.get("WARREN_AGENT_HOST", "")
        if host in _WILDCARD_HOSTS:
            host = "127.0.0.1"
        elif ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return cls(f"http://{host}:{port}", token)

    def _open(self, method: str, path: str, body: Any, timeout: float | None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            return self._opener.open(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise AgentError(_error_message(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            where = self.base_url
            raise AgentError(f"cannot reach the sandbox agent at {where}: {reason}") from None

    def call(self, method: str, path: str, body: Any = None, timeout: float = 60.0) -> Any:
        """One JSON request; returns the decoded answer or raises AgentError."""
        with self._open(method, path, body, timeout) as response:
            return json.loads(response.read() or b"null")

    def events(self, path: str) -> Iterator[str]:
        """The ``data:`` payloads of an SSE stream, as they arrive, until the server ends it."""
        with self._open("GET", path, None, None) as response:
            for raw in response:
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if line.startswith("data:"):
                    yield line[5:].removeprefix(" ")


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(exc.read())["error"]
        where = f" ({detail['field']})" if detail.get("field") else ""
        return f"{detail['message']}{where} [{exc.code} {detail['code']}]"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {exc.code} {exc.reason}"
