"""Serve driver for the local stack: deploy Warren onto a running Ray head, or shut Serve down.

``python -m deploy.serve deploy --address 127.0.0.1:26380`` connects to the head, starts Serve's
HTTP proxy on ``WARREN_HTTP_HOST:WARREN_HTTP_PORT``, runs ``build_app(settings)`` as the
application ``warren`` at ``/`` and exits (Serve's controller is detached and keeps it running).
``shutdown`` removes every Serve application and the proxy, so replicas close their
connections before the head goes away. Settings come from the ``WARREN_*`` environment.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from core.ray_env import NAMESPACE

if TYPE_CHECKING:
    from core.settings import Settings

APP_NAME = "warren"


def _connect(address: str) -> None:
    import ray

    ray.init(
        address=address, namespace=NAMESPACE, logging_level=logging.WARNING, log_to_driver=False
    )


def run_warren(settings: Settings) -> None:
    """On the connected Ray: start Serve's HTTP proxy on ``http_host:http_port`` and run
    Warren as the application ``warren`` at ``/`` (returns once it is running)."""
    from ray import serve

    from serve_app import build_app

    serve.start(http_options={"host": settings.http_host, "port": settings.http_port})
    serve.run(build_app(settings), name=APP_NAME, route_prefix="/", blocking=False)


def deploy(address: str) -> None:
    """Deploy the Serve application for the ``WARREN_*`` settings (returns once it is running)."""
    from core.settings import load_settings

    settings = load_settings()
    _connect(address)
    run_warren(settings)


def shutdown(address: str) -> None:
    """Delete every Serve application and the Serve controller and proxies of this cluster."""
    from ray import serve

    _connect(address)
    serve.shutdown()  # type: ignore[no-untyped-call]  # unannotated in Ray


def main(argv: list[str] | None = None) -> int:
    """Command line: ``deploy`` or ``shutdown`` with ``--address``."""
    parser = argparse.ArgumentParser(prog="python -m deploy.serve", description=__doc__)
    parser.add_argument("action", choices=["deploy", "shutdown"])
    parser.add_argument("--address", required=True, help="the head's GCS address, host:port")
    args = parser.parse_args(argv)
    if args.action == "deploy":
        deploy(args.address)
    else:
        shutdown(args.address)
    return 0


if __name__ == "__main__":
    sys.exit(main())
