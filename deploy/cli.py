"""``python -m deploy up|stop|status|nats-user``: the local stack's command line (``./warren``
calls it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from deploy import control, stack
from deploy.state import Paths

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; the process exit code."""
    parser = argparse.ArgumentParser(prog="./warren", description="Warren's local stack.")
    parser.add_argument(
        "command",
        choices=["up", "stop", "status", "nats-user"],
        help="up: start and stay in the foreground; stop: stop a running up; status: what "
        "runs; nats-user NAME: mint an external publisher's NATS login",
    )
    parser.add_argument("name", nargs="?", help="nats-user: the publisher's name")
    parser.add_argument(
        "--root",
        type=Path,
        default=ROOT,
        help="folder whose .data holds the stack (default: the checkout)",
    )
    args = parser.parse_args(argv)
    paths = Paths(args.root.absolute())
    if args.command == "nats-user":
        if not args.name:
            parser.error("nats-user needs the publisher's NAME")
        return control.nats_user(paths, args.name)
    if args.name:
        parser.error(f"{args.command} takes no NAME")
    if args.command == "up":
        return stack.up(paths)
    if args.command == "stop":
        return control.stop(paths)
    return control.status(paths)
