"""The in-sandbox agent: an aiohttp server (services, logs, git, terminal, env files) and a CLI.

It runs inside every sandbox and imports nothing of Warren but ``schemas/`` (so it needs only
aiohttp and msgspec there). Start it with ``python -m sandboxes.agent``; the CLI is
``python -m sandboxes.agent.cli``. Environment: ``WARREN_SANDBOX_TOKEN``, ``WARREN_WORKSPACE``,
``WARREN_STATE_DIR``, ``WARREN_AGENT_PORT``, ``WARREN_AGENT_HOST`` (default 127.0.0.1).

Routes (JSON; errors ``{"error": {"code", "message", "field"?}}``):

- ``GET /api/health`` open; everything else needs ``Authorization: Bearer`` (401 missing, 403
  wrong or no token configured). ``/api/terminal`` and ``/api/logs/*`` also take ``?token=``.
- ``GET /api/auth/check`` 200 when authorized (forward-auth for a proxy).
- ``GET|POST /api/services``, ``DELETE /api/services/{name}``, ``GET /api/logs/{name}`` (SSE,
  ``?follow=0`` ends after the current content).
- ``GET|POST /api/expose`` {port}, kept in ``$WARREN_STATE_DIR/expose.json``.
- ``GET /api/git/repos``, ``GET /api/git/status?repo=``, ``GET /api/git/diff?repo=`` (64 KB cap).
- ``GET /api/terminal`` WebSocket (bash on a PTY).
- ``POST /api/env/apply|scrub`` from ``$WARREN_STATE_DIR/env.json``.

Paths a client names are relative to the workspace: absolute paths, ``..`` and symlinks that
lead out answer 403 ``path_outside_workspace`` (see paths.py).
"""
