"""The ``warren`` command inside a sandbox: services, env files, actions.

``python -m sandboxes.agent.cli services list|start NAME -- CMD|stop NAME|logs NAME [-f]``,
``env apply|scrub`` and ``actions list|guide|run``. Add ``--json`` before the subcommand for
machine-readable output. Exit codes: 0 success, 1 the agent refused or could not be reached,
2 usage or configuration errors and actions (not available in this build).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from sandboxes.agent.client import AgentClient, AgentError
from sandboxes.agent.config import ConfigError

ACTIONS_UNAVAILABLE = "warren: actions are not available yet in this Warren build"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="warren", description="Warren sandbox tools.")
    parser.add_argument("--json", action="store_true", help="print raw JSON answers")
    areas = parser.add_subparsers(dest="area", required=True)

    services = areas.add_parser("services", help="long-running commands in the sandbox")
    verbs = services.add_subparsers(dest="verb", required=True)
    verbs.add_parser("list", help="list services and their status")
    start = verbs.add_parser("start", help="start (or restart) a service: start NAME -- CMD")
    start.add_argument("name")
    start.add_argument("--cwd", help="directory relative to the workspace")
    start.add_argument("command", nargs="+", help="the command (after --)")
    stop = verbs.add_parser("stop", help="stop a service and its whole process tree")
    stop.add_argument("name")
    logs = verbs.add_parser("logs", help="print a service's log")
    logs.add_argument("name")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")

    env = areas.add_parser("env", help="secret env files in the workspace")
    env_verbs = env.add_subparsers(dest="verb", required=True)
    env_verbs.add_parser("apply", help="write the secret env files")
    env_verbs.add_parser("scrub", help="delete the secret env files")

    actions = areas.add_parser("actions", help="external actions (not available yet)")
    actions.add_argument("verb", choices=["list", "guide", "run"])
    actions.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def _print_services(services: list[dict[str, Any]]) -> None:
    if not services:
        print("no services")
        return
    rows = [("NAME", "STATUS", "PID", "EXIT", "CWD", "COMMAND")]
    for s in services:
        exit_code = "" if s.get("exit_code") is None else str(s["exit_code"])
        pid = "" if s.get("pid") is None else str(s["pid"])
        rows.append((s["name"], s["status"], pid, exit_code, s["cwd"], s["command"]))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*padded, row[5]]))


def _services(client: AgentClient, args: argparse.Namespace) -> None:
    if args.verb == "logs":
        query = "" if args.follow else "?follow=0"
        for line in client.events(f"/api/logs/{quote(args.name, safe='')}{query}"):
            print(line, flush=True)
        return
    if args.verb == "list":
        answer = client.call("GET", "/api/services")
    elif args.verb == "start":
        # One argument is taken as a shell command line as is; several are quoted and joined.
        command = args.command[0] if len(args.command) == 1 else shlex.join(args.command)
        body = {"name": args.name, "command": command, "cwd": args.cwd}
        answer = client.call("POST", "/api/services", body)
    else:
        answer = client.call("DELETE", f"/api/services/{quote(args.name, safe='')}")
    if args.json:
        print(json.dumps(answer, indent=2))
    elif args.verb == "list":
        _print_services(answer["services"])
    else:
        print(f"{answer['name']}: {answer['status']} (pid {answer['pid']})")


def _env(client: AgentClient, args: argparse.Namespace) -> None:
    answer = client.call("POST", f"/api/env/{args.verb}")
    if args.json:
        print(json.dumps(answer, indent=2))
        return
    done = "wrote" if args.verb == "apply" else "removed"
    for path in answer["files"]:
        print(f"{done} {path}")
    if not answer["files"]:
        print(f"{done} no files")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.area == "actions":
        print(ACTIONS_UNAVAILABLE, file=sys.stderr)
        return 2
    try:
        client = AgentClient.from_env(os.environ)
    except ConfigError as exc:
        print(f"warren: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.area == "services":
            _services(client, args)
        else:
            _env(client, args)
    except AgentError as exc:
        print(f"warren: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
