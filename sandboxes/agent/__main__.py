"""Entry point: ``python -m sandboxes.agent`` serves the agent with its environment's config."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from sandboxes.agent.app import PathOnlyAccessLogger, access_logger, create_app
from sandboxes.agent.config import ConfigError, load_config


def main() -> int:
    """Load config (exit 2 naming the bad variable), then serve until SIGINT/SIGTERM."""
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"warren-agent: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if config.token is None:
        logging.getLogger("sandboxes.agent").warning(
            "WARREN_SANDBOX_TOKEN is not set: every route but /api/health will deny"
        )
    web.run_app(
        create_app(config),
        host=config.host,
        port=config.port,
        access_log=access_logger(),
        access_log_class=PathOnlyAccessLogger,
        print=None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
