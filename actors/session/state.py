"""The session's life as one state machine: its phases, the allowed transitions, and the
single place each transition happens (with its guard and its ``sessions.lifecycle`` event).

One actor incarnation walks these phases (the ``sessions`` row in Postgres keeps what
outlives it; a paused session has no actor, the next one starts at ``creating``)::

    creating ──► dormant ──► booting ──► running ──► migrating ──► booting (new sandbox)
        │           ▲  │        │  ▲        │  ▲          │
        │           │  │        ▼  │        │  └──────────┘ (migration failed, old kept)
        │           │  │      failed ◄──────┘ (sandbox lost)
        │           │  ▼
        │        pausing ──► paused (the actor exits)
        ▼
     stopped ◄── stopping ◄── any phase but creating and stopped

- ``creating``: start-up recovery (Postgres, JetStream) not finished.
- ``dormant``: recovered; no runtime (the row is pending or paused), nothing booting.
- ``booting``: the sandbox, OpenCode session and event stream are being made ready.
- ``running``: the runtime is ready; prompts go straight to the agent.
- ``migrating``: moving to a new sandbox before the old one expires (prompts wait).
- ``pausing`` / ``paused``: snapshot and stop the sandbox; then the actor exits.
- ``stopping`` / ``stopped``: the sandbox is destroyed and the session ends for good.
- ``failed``: a boot failed or the sandbox died; the next connect or prompt boots again.

The other session modules ask for a transition (:meth:`SessionState.to`) and read the
phase; none keeps a flag of its own about the session's life. A transition the table does
not list raises :class:`~actors.session.errors.IllegalTransition` and is logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal, Protocol, get_args

from actors.session.errors import IllegalTransition, SessionExiting, SessionStopped
from schemas.sessions import LifecycleKind

log = logging.getLogger(__name__)

Phase = Literal[
    "creating",
    "dormant",
    "booting",
    "running",
    "migrating",
    "pausing",
    "paused",
    "stopping",
    "stopped",
    "failed",
]
PHASES: tuple[Phase, ...] = get_args(Phase)

Event = LifecycleKind | None
"""The lifecycle event a transition publishes (None: it publishes none)."""

_QUIET: frozenset[Event] = frozenset({None})
_PAUSABLE: tuple[Phase, ...] = ("dormant", "booting", "running", "failed")
_STOPPABLE: tuple[Phase, ...] = tuple(
    p for p in PHASES if p not in ("creating", "stopping", "stopped")
)

TRANSITIONS: dict[tuple[Phase, Phase], frozenset[Event]] = {
    # start-up recovery found the row
    ("creating", "dormant"): _QUIET,
    ("creating", "stopped"): _QUIET,
    # a boot begins: on demand, after the runtime dropped, or onto the migration's sandbox
    ("dormant", "booting"): _QUIET,
    ("failed", "booting"): _QUIET,
    ("running", "booting"): _QUIET,
    ("migrating", "booting"): _QUIET,
    # a boot ends
    ("booting", "running"): frozenset({"running", "resumed", "migrated"}),
    ("booting", "failed"): _QUIET,
    ("booting", "stopped"): _QUIET,  # the row was stopped meanwhile
    # the sandbox died under a running session
    ("running", "failed"): _QUIET,
    # migration before expiry
    ("running", "migrating"): _QUIET,
    ("migrating", "running"): _QUIET,  # failed, the session stays on the old sandbox
    ("migrating", "failed"): _QUIET,  # broke off unexpectedly: the next call re-boots
    # pause (and a pause that failed going back)
    **{(phase, "pausing"): _QUIET for phase in _PAUSABLE},
    ("pausing", "paused"): frozenset({"paused", None}),  # None: the row had moved on
    ("pausing", "running"): _QUIET,
    ("pausing", "dormant"): _QUIET,
    ("pausing", "failed"): _QUIET,
    # terminate
    **{(phase, "stopping"): _QUIET for phase in _STOPPABLE},
    ("stopping", "stopped"): frozenset({"stopped", None}),  # None: it was stopped already
}
"""Every allowed ``(from, to)`` and the lifecycle events it may publish."""


class LifecyclePublisher(Protocol):
    """Publishes one lifecycle event of the session on ``sessions.lifecycle``."""

    async def __call__(self, kind: LifecycleKind, **fields: Any) -> None:
        """Publish ``kind`` with ``fields`` (reason, sandbox_id, ...)."""


class SessionState:
    """The phase of one session actor and the only code that changes it."""

    def __init__(self, session_id: str, publish: LifecyclePublisher) -> None:
        self.session_id = session_id
        self._publish = publish
        self.phase: Phase = "creating"
        self._boot_from: Phase | None = None
        self._changed = asyncio.Event()

    async def to(self, target: Phase, event: Event = None, **fields: Any) -> None:
        """Move to ``target`` and publish ``event`` (with ``fields``) if it is one.

        The phase changes before anything is awaited, so no other task sees the old one
        afterwards. Raises :class:`IllegalTransition` for a move or event the table does
        not list.
        """
        source = self.phase
        allowed = TRANSITIONS.get((source, target))
        if allowed is None or event not in allowed:
            log.error(
                "session %s: illegal transition %s -> %s (event %s)",
                self.session_id,
                source,
                target,
                event,
            )
            raise IllegalTransition(f"{source} -> {target} (event {event})")
        if target == "booting":
            self._boot_from = source
        self.phase = target
        log.debug("session %s: %s -> %s", self.session_id, source, target)
        changed, self._changed = self._changed, asyncio.Event()
        try:
            if event is not None:
                await self._publish(event, **fields)
        finally:
            # Waiters wake once the event is out: one that ends the actor must not cut it off.
            changed.set()

    async def note(self, event: Literal["completed"], **fields: Any) -> None:
        """Publish an event that changes no phase (an automation run's completion; the
        stop that follows is a transition of its own)."""
        await self._publish(event, **fields)

    def boot_event(self, *, was_paused: bool) -> LifecycleKind:
        """The event a boot that succeeds now publishes."""
        if self._boot_from == "migrating":
            return "migrated"
        return "resumed" if was_paused else "running"

    def check_boot(self) -> None:
        """Raise what a caller gets when no boot may start (stopping, pausing)."""
        if self.phase in ("stopping", "stopped"):
            raise SessionStopped(self.session_id)
        if self.phase in ("pausing", "paused"):
            raise SessionExiting(self.session_id)

    def at(self, *phases: Phase) -> bool:
        """Whether the phase is one of ``phases`` (read afresh after an await)."""
        return self.phase in phases

    def can(self, target: Phase) -> bool:
        """Whether the table allows moving to ``target`` now."""
        return (self.phase, target) in TRANSITIONS

    @property
    def exiting(self) -> bool:
        """A pause is under way or done: the actor exits after it."""
        return self.phase in ("pausing", "paused")

    @property
    def ending(self) -> bool:
        """The session is being paused or stopped (this actor will not serve it again)."""
        return self.phase in ("pausing", "paused", "stopping", "stopped")

    async def wait_for(self, *phases: Phase) -> None:
        """Return once the phase is one of ``phases`` (and its lifecycle event is out)."""
        while self.phase not in phases:
            await self._changed.wait()
