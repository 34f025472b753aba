"""The in-sandbox agent: an aiohttp server (services, logs, git, terminal, env files) and a CLI.

It runs inside every sandbox and imports nothing of Warren but ``schemas/``, so it can be
installed there on its own. Start it with ``python -m sandboxes.agent``.
"""
