"""OpenCode in a sandbox: its config, environment, boot files, command line and readiness.

Where the files go (``home`` is the sandbox's fresh HOME, ``workspace`` the agent's cwd):

- ``home/.config/opencode/opencode.json``: the config (OpenCode's global config folder, so the
  repos stay clean and a repo's own ``opencode.json`` is not overwritten; it merges on top).
  It holds no secret: the model API key is read from ``WARREN_LLM_API_KEY`` through
  OpenCode's ``{env:...}`` substitution.
- ``home/.config/opencode/plugin/warren.js``: Warren's tools (see ``sandboxes/tool_plugins.py``).
- ``home/.config/opencode/warren/instructions.md``: the mode's instructions (config
  ``instructions`` names it as ``~/...``, which OpenCode expands with HOME).
- ``workspace/.warren/trigger-context.json``: the triggering event, when there is one;
  ``workspace/.warren/.gitignore`` (``*``) keeps the folder out of the repos' git status.

Start OpenCode with :func:`opencode_command`, cwd = workspace and :func:`opencode_env` merged
over the sandbox's base environment, then await :func:`wait_ready`.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp

from sandboxes.prompts import TRIGGER_CONTEXT_PATH, instructions_for
from sandboxes.tool_plugins import plugin_source
from schemas.sandbox import CreateSandboxOptions

PROVIDER_ID = "warren"
"""OpenCode provider id of the model endpoint; the model is ``warren/<model_id>``."""
API_KEY_ENV = "WARREN_LLM_API_KEY"
CONFIG_DIR = Path(".config/opencode")
"""OpenCode's global config folder, relative to HOME."""
INSTRUCTIONS_FILE = CONFIG_DIR / "warren" / "instructions.md"
"""Relative to HOME."""
PLUGIN_FILE = CONFIG_DIR / "plugin" / "warren.js"
"""Relative to HOME."""

# Keep OpenCode quiet and offline (PLATFORM-NOTES): no update checks, no models.dev fetch, no
# share links, no LSP downloads, no Claude Code / external skill files picked up from HOME.
OFFLINE_ENV: dict[str, str] = {
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_SHARE": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_CLAUDE_CODE": "1",
    "OPENCODE_DISABLE_EXTERNAL_SKILLS": "1",
    "npm_config_offline": "true",
}

_HEALTH_TRY_TIMEOUT = 0.5


def opencode_config(opts: CreateSandboxOptions) -> dict[str, Any]:
    """OpenCode's config for a sandbox (accepted by OpenCode 1.18's config schema).

    Permissions: everything allowed except the ``question`` tool (nobody may be there to
    answer; a denied tool is also hidden from the model).
    """
    agent = opts.agent_config
    model = f"{PROVIDER_ID}/{agent.model_id}"
    return {
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": False,
        "share": "disabled",
        "snapshot": False,
        "lsp": False,
        "formatter": False,
        "provider": {
            PROVIDER_ID: {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Warren",
                "options": {"baseURL": agent.base_url, "apiKey": f"{{env:{API_KEY_ENV}}}"},
                "models": {agent.model_id: {"name": agent.model_id}},
            }
        },
        "model": model,
        # Titles and summaries use the small model: keep them on the same endpoint.
        "small_model": model,
        # Order matters to OpenCode (later rules win): the wildcard first.
        "permission": {"*": "allow", "question": "deny"},
        "instructions": [f"~/{INSTRUCTIONS_FILE.as_posix()}"],
    }


def opencode_env(opts: CreateSandboxOptions, *, home: Path) -> dict[str, str]:
    """Variables to merge over the sandbox's base environment when starting OpenCode.

    A fresh HOME (OpenCode's sqlite db and config live under it; the XDG folders are pinned
    too, so a host's ``XDG_*`` can't redirect them), the offline switches, the model key and
    what Warren's tool plugin reads: ``WARREN_API_URL``, ``WARREN_SESSION_ID`` and
    ``WARREN_SANDBOX_TOKEN``. The session's own ``env_vars`` are not included.
    """
    return {
        **OFFLINE_ENV,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        API_KEY_ENV: opts.agent_config.api_key,
        "WARREN_API_URL": opts.api_url,
        "WARREN_SESSION_ID": opts.session_id,
        "WARREN_SANDBOX_TOKEN": opts.sandbox_token,
    }


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def write_opencode_files(opts: CreateSandboxOptions, *, home: Path, workspace: Path) -> None:
    """Write OpenCode's config, the instructions, Warren's tool plugin and the trigger context.

    Idempotent: a restored sandbox gets them rewritten for its new session.
    """
    config = home / CONFIG_DIR / "opencode.json"
    _write(config, json.dumps(opencode_config(opts), indent=2) + "\n")
    _write(home / INSTRUCTIONS_FILE, instructions_for(opts).rstrip("\n") + "\n")
    _write(home / PLUGIN_FILE, plugin_source(opts.agent_mode))
    warren_dir = workspace / ".warren"
    _write(warren_dir / ".gitignore", "*\n")
    trigger_file = workspace / TRIGGER_CONTEXT_PATH
    if opts.trigger_context is not None:
        _write(trigger_file, json.dumps(opts.trigger_context, indent=2) + "\n")
    else:
        # A restored snapshot may carry a previous run's context: it must not linger.
        trigger_file.unlink(missing_ok=True)


def opencode_command(bin: str, port: int, host: str = "127.0.0.1") -> list[str]:
    """The command line of ``opencode serve`` on ``host:port``."""
    return [bin, "serve", "--port", str(port), "--hostname", host]


# The `timeout` keyword is part of the provider-facing signature (not asyncio.timeout).
async def wait_ready(
    url: str,
    *,
    timeout: float = 30,  # noqa: ASYNC109
    password: str | None = None,
    username: str = "opencode",
) -> float:
    """Poll ``GET {url}/global/health`` until it answers 200; return the seconds waited.

    Each try has a 0.5 s timeout and a fresh connection: during start-up OpenCode may accept
    a connection and never answer it. With ``OPENCODE_SERVER_PASSWORD`` set on the server,
    health needs basic auth too: pass ``password`` (and ``username`` if
    ``OPENCODE_SERVER_USERNAME`` is set). Raises ``TimeoutError`` after ``timeout`` seconds.
    """
    health = url.rstrip("/") + "/global/health"
    start = time.monotonic()
    deadline = start + timeout
    pause = 0.05
    connector = aiohttp.TCPConnector(force_close=True)
    auth = aiohttp.BasicAuth(username, password) if password else None
    async with aiohttp.ClientSession(connector=connector, auth=auth) as http:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"OpenCode at {url} not ready after {timeout:.1f} s")
            per_try = aiohttp.ClientTimeout(total=min(_HEALTH_TRY_TIMEOUT, remaining))
            try:
                async with http.get(health, timeout=per_try) as response:
                    if response.status == 200:
                        return time.monotonic() - start
            except (aiohttp.ClientError, TimeoutError):
                pass
            remaining = deadline - time.monotonic()
            await asyncio.sleep(max(0.0, min(pause, remaining)))
            pause = min(pause * 1.5, 0.5)
