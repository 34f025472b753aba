"""NATS: one connection helper, subject names, and the JetStream streams Warren declares.

All subjects and stream names carry the ``nats_prefix`` setting, so several Warren
deployments (or test runs) can share one NATS server without seeing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

DAY = 24 * 3600

NatsRole = Literal["ingress", "session", "pool"]
"""Who connects: the Serve ingress, a session actor, or a pool/singleton actor. Each role has
its own NATS user (``WARREN_NATS_CREDENTIALS_<ROLE>``) limited to the subjects it needs."""
ROLES: tuple[NatsRole, ...] = ("ingress", "session", "pool")


@dataclass(frozen=True)
class Subjects:
    """Subject and stream names under one prefix."""

    prefix: str

    def session_events(self, session_id: str) -> str:
        """Numbered client events of one session (the durable event log)."""
        return f"{self.prefix}.sessions.{session_id}.events"

    @property
    def session_lifecycle(self) -> str:
        """Session created/running/paused/resumed/migrated/stopped notices."""
        return f"{self.prefix}.sessions.lifecycle"

    def trigger_events(self, provider: str) -> str:
        """Inbound trigger events of one provider (webhooks, publishers, polls)."""
        return f"{self.prefix}.triggers.events.{provider}"

    def trigger_dead_letter(self, reason: str) -> str:
        """Trigger events that could not be processed, with the reason as last token."""
        return self.dead_letter("triggers", reason)

    def dead_letter(self, source: str, reason: str) -> str:
        """Messages a consumer gave up on: ``<prefix>.<source>.dead.<reason>`` (source
        ``triggers``, ``runs`` or ``sessions.lifecycle``, the subject root it consumes)."""
        return f"{self.prefix}.{source}.dead.{reason}"

    def runs(self, stage: str) -> str:
        """Work for the run pool: ``enrich`` or ``execute``."""
        return f"{self.prefix}.runs.{stage}"

    @property
    def outbox_wake(self) -> str:
        """Wake-up pings for the outbox dispatchers."""
        return f"{self.prefix}.outbox.wake"

    def stream(self, name: str) -> str:
        """A stream name under this prefix (``SESSION_EVENTS`` → ``WARREN_SESSION_EVENTS``)."""
        return f"{self.prefix.upper()}_{name}"

    @property
    def custom_trigger_events(self) -> str:
        """What an external publisher may publish to: custom trigger events, any trigger."""
        return self.trigger_events("custom") + ".>"

    def publishes(self, role: NatsRole) -> list[str]:
        """The subjects ``role`` publishes to (JetStream's API aside): its NATS permission.

        Keep in step with the code: a publish outside this list is refused by a NATS that
        enforces the stack's permissions.
        """
        p = self.prefix
        lifecycle = self.session_lifecycle
        return {
            # The ingress also replays dead letters to their original subjects (run work).
            "ingress": [f"{p}.triggers.events.>", f"{p}.runs.*", lifecycle, self.outbox_wake],
            "session": [self.session_events("*"), lifecycle],
            "pool": [
                f"{p}.triggers.dead.>",
                f"{p}.runs.>",
                self.outbox_wake,
                lifecycle,
                f"{lifecycle}.dead.>",
            ],
        }[role]

    def subscribes(self, role: NatsRole) -> list[str]:
        """Plain subscriptions of ``role`` besides its own inbox (JetStream delivers there)."""
        return [self.outbox_wake] if role == "pool" else []


def stream_configs(subjects: Subjects, *, max_bytes: int = 1024**3) -> list[StreamConfig]:
    """Every stream Warren needs, with explicit limits.

    ``max_bytes`` caps the two big streams (session events, trigger events); the small ones
    get a quarter. JetStream reserves these bytes on the server's disk up front, so they
    are kept modest and set by ``WARREN_NATS_STREAM_MAX_BYTES``.
    """
    p = subjects.prefix
    small = max(max_bytes // 4, 1024**2)
    return [
        StreamConfig(
            name=subjects.stream("SESSION_EVENTS"),
            subjects=[f"{p}.sessions.*.events"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=7 * DAY,
            max_msgs_per_subject=200_000,
            max_bytes=max_bytes,
            max_msg_size=4 * 1024**2,
            discard=DiscardPolicy.OLD,
        ),
        StreamConfig(
            name=subjects.stream("SESSION_LIFECYCLE"),
            subjects=[subjects.session_lifecycle],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=30 * DAY,
            max_bytes=small,
            max_msg_size=64 * 1024,
            discard=DiscardPolicy.OLD,
        ),
        StreamConfig(
            name=subjects.stream("TRIGGER_EVENTS"),
            subjects=[f"{p}.triggers.events.>", f"{p}.triggers.dead.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=14 * DAY,
            max_bytes=max_bytes,
            max_msg_size=32 * 1024**2,
            discard=DiscardPolicy.OLD,
            duplicate_window=300,
        ),
        StreamConfig(
            name=subjects.stream("RUNS"),
            # One token after ``runs``: ``runs.dead.>`` belongs to DEAD_LETTERS.
            subjects=[f"{p}.runs.*"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            max_age=14 * DAY,
            max_bytes=small,
            max_msg_size=64 * 1024,
            duplicate_window=300,
        ),
        StreamConfig(
            name=subjects.stream("DEAD_LETTERS"),
            # Trigger dead letters stay beside their events in TRIGGER_EVENTS.
            subjects=[f"{p}.runs.dead.>", f"{p}.sessions.lifecycle.dead.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=30 * DAY,
            max_bytes=small,
            max_msg_size=4 * 1024**2,
            discard=DiscardPolicy.OLD,
            duplicate_window=300,
        ),
        StreamConfig(
            name=subjects.stream("OUTBOX"),
            subjects=[subjects.outbox_wake],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=DAY,
            max_msgs=100_000,
            max_msg_size=4096,
            discard=DiscardPolicy.OLD,
        ),
    ]


def inbox_prefix(user: str) -> str:
    """The reply/delivery subject prefix of NATS user ``user``.

    Each user may subscribe only under its own prefix, so no client can read the replies
    (JetStream acks, fetched messages) meant for another.
    """
    return f"_INBOX_{user}"


async def connect(url: str, *, name: str = "warren", credentials: str = "") -> NATS:
    """Connect to NATS with reconnects that outlast a server restart.

    ``credentials`` (``user:password``, a role's ``WARREN_NATS_CREDENTIALS_<ROLE>`` setting)
    log in as that user, with its own inbox prefix; empty connects as ``url`` says.
    """
    login: dict[str, Any] = {}
    if credentials:
        user, _, password = credentials.partition(":")
        login = {"user": user, "password": password, "inbox_prefix": inbox_prefix(user)}
    nc: NATS = await nats.connect(
        url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        **login,
    )
    return nc


async def declare_streams(
    js: JetStreamContext, subjects: Subjects, *, max_bytes: int = 1024**3
) -> list[str]:
    """Create or update every stream; safe to call from every process at start-up."""
    names: list[str] = []
    for config in stream_configs(subjects, max_bytes=max_bytes):
        try:
            await js.add_stream(config)
        except BadRequestError as exc:
            # 10058: the stream exists with another config; bring it to this one.
            if exc.err_code != 10058:
                raise
            await js.update_stream(config)
        names.append(str(config.name))
    return names
