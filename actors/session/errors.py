"""What a call to a session actor may raise on purpose (the ingress maps each to HTTP).

They cross Ray as the cause of a ``RayTaskError`` that subclasses them, so ``except
SessionStopped`` works on the caller's side too. :mod:`actors.session_client` re-exports
them: routes import them from there.
"""

from __future__ import annotations


class SessionGone(Exception):
    """The session does not exist (or was deleted): the actor has nothing to do."""


class SessionStopped(Exception):
    """The session is stopped (or stopping): no sandbox will be started for it again."""


class SessionExiting(Exception):
    """The session's actor is pausing and about to exit: retry against the next one."""


class NothingToPause(Exception):
    """The session has no sandbox (it never started, or is paused or stopped already)."""


class IllegalTransition(Exception):
    """A session state change the transition table does not allow (a bug, or a race lost)."""
