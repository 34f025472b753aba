"""``python -m deploy up|stop|status``: the local stack's command line (``./warren`` calls it)."""

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
        choices=["up", "stop", "status"],
        help="up: start and stay in the foreground; stop: stop a running up; status: what runs",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=ROOT,
        help="folder whose .data holds the stack (default: the checkout)",
    )
    args = parser.parse_args(argv)
    paths = Paths(args.root.absolute())
    if args.command == "up":
        return stack.up(paths)
    if args.command == "stop":
        return control.stop(paths)
    return control.status(paths)
