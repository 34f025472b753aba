"""Pausing a session: snapshot its sandbox, stop it, and let the actor exit.

A paused session has no sandbox and no actor. Its transcript is in Postgres, its files in
the snapshot; the next connect, prompt or explicit resume creates the actor again, whose
boot restores the snapshot (``_boot`` in :mod:`actors.session.core`).

Once a pause starts the session is ``pausing`` (:mod:`actors.session.state`): no boot may
begin, and calls that would need the sandbox raise :class:`SessionExiting`, which callers
answer by retrying against the next actor (:func:`actors.session_client.call_live`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from actors.session.errors import NothingToPause, SessionExiting
from core.metrics import lifecycle_metrics
from schemas.session_ws import Status
from schemas.sessions import PauseReason
from store import sessions as session_store

if TYPE_CHECKING:
    from actors.session.core import SessionCore

log = logging.getLogger(__name__)


__all__ = ["NothingToPause", "SessionExiting", "current_sandbox_id", "pause_session"]


def current_sandbox_id(core: SessionCore) -> str | None:
    """The sandbox the session runs on: the live handle's, else the row's."""
    runtime = core.runtime
    if runtime is not None and runtime.handle is not None:
        return runtime.handle.sandbox_id
    record = core.record
    if record is not None and record.status in ("running", "starting") and record.sandbox_id:
        return record.sandbox_id
    return None


async def pause_session(core: SessionCore, reason: PauseReason) -> str:
    """Snapshot and stop the sandbox, mark the row paused; returns the snapshot id.

    Moves the session to ``pausing`` first (the caller makes the actor exit afterwards).
    On failure the session goes back to where it was and the error is raised: the row
    still names the sandbox, so the pause can be retried (the provider keeps a failed
    pause's files).
    """
    await core.started()
    assert core.pool is not None and core.runtime is not None
    state = core.state
    if state.phase == "migrating":
        # Pause whichever sandbox the migration leaves the session on.
        async with core.prompt_gate:
            pass
    if state.exiting:
        raise SessionExiting(core.session_id)  # another pause is under way
    if not state.can("pausing"):
        raise NothingToPause(core.session_id)
    previous = state.phase
    await state.to("pausing")
    try:
        return await _pause(core, reason)
    except BaseException:
        if state.phase == "pausing":
            if core.runtime.ready:
                await state.to("running")
            else:
                await state.to("dormant" if previous == "dormant" else "failed")
        raise


async def _pause(core: SessionCore, reason: PauseReason) -> str:
    assert core.pool is not None and core.runtime is not None
    # A boot that finishes after the pause would leave a sandbox nobody owns.
    await core.cancel_boot()
    core.record = await session_store.get_session(core.pool, core.sid) or core.record
    sandbox_id = current_sandbox_id(core)
    if sandbox_id is None:
        raise NothingToPause(core.session_id)
    await core.close_open_messages()
    await core.runtime.close()
    result = await core.runtime.provider.pause(sandbox_id)
    changed = await session_store.mark_paused(
        core.pool, core.sid, sandbox_id=sandbox_id, snapshot_id=result.snapshot_id, reason=reason
    )
    core.record = await session_store.get_session(core.pool, core.sid) or core.record
    if not changed:
        # The row moved on (stopped, or another sandbox): the snapshot is not the session's.
        log.warning("session %s: paused sandbox was no longer current", core.session_id)
        await core.state.to("paused")
        return result.snapshot_id
    await core.emit([Status(status="paused")])
    await core.state.to("paused", "paused", reason=reason, sandbox_id=sandbox_id)
    lifecycle_metrics().pauses.inc(tags={"reason": reason})
    return result.snapshot_id
