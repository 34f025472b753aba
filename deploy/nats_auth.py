"""NATS users of the local stack: one per role, plus external publishers, each limited to its
subjects by the server configuration written here.

The ingress, session actors and pools (:data:`core.bus.ROLES`) each log in as their own user;
an external publisher may only publish custom trigger events
(``<prefix>.triggers.events.custom.>``) and read the acks sent to its own inbox. Internal
roles may use JetStream's API on the deployment's streams only; nobody may delete a stream.
Every user subscribes only under its own inbox prefix (:func:`core.bus.inbox_prefix`), so
no one reads another's replies. Passwords live in ``users.json`` (mode 0600) beside the
config (also 0600), never on a command line or in a log.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

import msgspec

from core.bus import ROLES, NatsRole, Subjects, inbox_prefix, stream_configs

_EXTERNAL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class NatsAuthError(ValueError):
    """A bad publisher name, or a users file that cannot be read."""


class Users(msgspec.Struct, kw_only=True):
    """The content of ``users.json``: a password per role and per external publisher, and
    the subject prefix the permissions are written for."""

    prefix: str = "warren"
    roles: dict[str, str] = {}
    external: dict[str, str] = {}
    admin: str = ""
    """Password of ``warren_admin``: every subject, for operators and test tooling (deleting
    streams); never given to a Warren process."""


ADMIN_USER = "warren_admin"


def role_user(role: NatsRole) -> str:
    """The NATS user name of an internal role."""
    return f"warren_{role}"


def external_user(name: str) -> str:
    """The NATS user name of external publisher ``name``."""
    return f"publisher_{name}"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


class UserStore:
    """``users.json`` in the NATS data folder: created with a password per role on first use."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "users.json"

    def load(self) -> Users:
        """The users, with a fresh password for any role that has none yet (saved)."""
        users = Users()
        if self.path.exists():
            try:
                users = msgspec.json.decode(self.path.read_bytes(), type=Users)
            except msgspec.DecodeError as exc:
                raise NatsAuthError(f"{self.path} is not a users file: {exc}") from None
        missing = [role for role in ROLES if role not in users.roles]
        for role in missing:
            users.roles[role] = secrets.token_urlsafe(24)
        if missing or not users.admin:
            users.admin = users.admin or secrets.token_urlsafe(24)
            self.save(users)
        return users

    def save(self, users: Users) -> None:
        """Write the users (owner-only)."""
        _write_private(self.path, msgspec.json.encode(users).decode())

    def credentials(self, role: NatsRole) -> str:
        """``user:password`` of ``role`` (``WARREN_NATS_CREDENTIALS_<ROLE>``; a secret)."""
        return f"{role_user(role)}:{self.load().roles[role]}"

    def add_external(self, name: str) -> tuple[str, str]:
        """Mint (or re-mint, replacing the password) publisher ``name``: (user, password)."""
        if not _EXTERNAL_NAME.match(name):
            raise NatsAuthError(
                f"publisher name {name!r}: use 1-40 of a-z, 0-9, _ and -, starting with a "
                "letter or digit"
            )
        users = self.load()
        users.external[name] = secrets.token_urlsafe(24)
        self.save(users)
        return external_user(name), users.external[name]


def jetstream_api(subjects: Subjects) -> list[str]:
    """JetStream API subjects an internal role needs on this prefix's streams, and no more:
    declare and read streams, manage and pull from consumers, ack, answer flow control."""
    allowed = ["$JS.API.INFO", "$JS.API.STREAM.NAMES"]
    for config in stream_configs(subjects):
        s = str(config.name)
        allowed += [
            f"$JS.API.STREAM.CREATE.{s}",
            f"$JS.API.STREAM.UPDATE.{s}",
            f"$JS.API.STREAM.INFO.{s}",
            f"$JS.API.STREAM.MSG.GET.{s}",
            f"$JS.API.DIRECT.GET.{s}",
            f"$JS.API.DIRECT.GET.{s}.>",
            f"$JS.API.CONSUMER.*.{s}",
            f"$JS.API.CONSUMER.*.{s}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{s}.>",
            f"$JS.API.CONSUMER.MSG.NEXT.{s}.>",
            f"$JS.ACK.{s}.>",
            f"$JS.FC.{s}.>",
        ]
    return allowed


def _user(user: str, password: str, publish: list[str], subscribe: list[str]) -> dict[str, object]:
    return {
        "user": user,
        "password": password,
        "permissions": {
            "publish": {"allow": publish},
            "subscribe": {"allow": [*subscribe, inbox_prefix(user) + ".>"]},
        },
    }


def server_config(users: Users) -> str:
    """The nats-server configuration: account ``WARREN`` (JetStream on) and its users."""
    subjects = Subjects(users.prefix)
    api = jetstream_api(subjects)
    entries = [
        _user(
            role_user(role),
            users.roles[role],
            [*subjects.publishes(role), *api],
            subjects.subscribes(role),
        )
        for role in ROLES
    ]
    entries += [
        _user(external_user(name), password, [subjects.custom_trigger_events], [])
        for name, password in sorted(users.external.items())
    ]
    entries.append({"user": ADMIN_USER, "password": users.admin})
    # The configuration language accepts JSON values; quoted strings keep `$JS` literal.
    account = {"jetstream": "enabled", "users": entries}
    return "accounts: " + json.dumps({"WARREN": account}, indent=2) + "\n"


def write_server_config(path: Path, users: Users) -> None:
    """Write :func:`server_config` to ``path`` (owner-only: it holds the passwords)."""
    _write_private(path, server_config(users))
