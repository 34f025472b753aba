"""The one facade through which the ingress (``api/``) and other actors reach sessions.

Nothing in ``api/`` imports another module of :mod:`actors.session`: what a route needs
is here (or re-exported from here).

- :func:`create_session`: the one way a session comes to be (API, automations, Slack):
  the row, the ``created`` lifecycle event, and an eager start for ``immediate`` mode.
- :func:`session_actor` / :func:`get_session_actor`: get-or-create the named actor
  ``session:<id>`` (namespace ``warren``, detached, ``num_cpus=0``, restarts forever).
- :func:`existing_session_actor`: the actor if it is alive, without creating one.
- :func:`call_live` (get-or-create, then call) and :func:`call_existing` (call the actor
  only if one is alive): every route reaches an actor through one of them; both drop a
  handle whose actor exited (a pause, an idle or expiry pause, a completed automation)
  and try again.
- :func:`build_init`: the ``init`` message (transcript from Postgres, cursor into JetStream).
- The exceptions a call may raise on purpose, for routes to map to HTTP:
  :class:`SessionGone` (404), :class:`SessionStopped` (409), :class:`SessionExiting`
  (retried by :func:`call_live`), :class:`NothingToPause` (409), :class:`SessionUnavailable`
  (503 with Retry-After).
- The event-log readers the WebSocket relay uses (:func:`subscribe_events`,
  :func:`cursor_is_retained`) and the git request types (:data:`GitRequest`,
  :func:`action_of`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import ray
from nats.js import JetStreamContext
from ray.actor import ActorHandle
from ray.exceptions import ActorDiedError, ActorUnavailableError, TaskCancelledError

from actors.session.actor import SessionActor
from actors.session.errors import NothingToPause, SessionExiting, SessionGone, SessionStopped
from actors.session.git import GitRequest, action_of
from actors.session.log import cursor_is_retained, stream_last_seq, subscribe_events
from actors.session.runtime import ProviderFactory
from core.bus import Subjects
from core.settings import Settings
from schemas.session_ws import Init, InitConfig
from schemas.sessions import NewSession, SessionLifecycleEvent, SessionRecord, client_status
from store import messages as message_store
from store import sessions as session_store

__all__ = [
    "GitRequest",
    "NothingToPause",
    "SessionExiting",
    "SessionGone",
    "SessionStopped",
    "SessionUnavailable",
    "action_of",
    "cursor_is_retained",
    "subscribe_events",
]
_GONE_ACTOR = (ActorDiedError, ActorUnavailableError, SessionExiting)
"""What a call raises when the actor it reached has exited or is about to."""


class SessionUnavailable(Exception):
    """The session's actor could not be reached in time (it keeps exiting, or the call was
    cancelled under it): the caller may retry shortly."""


ACTOR_NAMESPACE = "warren"
MAX_TASK_RETRIES = 3
"""Calls in flight when the actor dies are retried on its restart (every method is
idempotent)."""
_HANDLE_CACHE_SIZE = 4096
_handles: OrderedDict[str, ActorHandle[Any]] = OrderedDict()


def actor_name(session_id: str) -> str:
    """The Ray name of a session's actor."""
    return f"session:{session_id}"


def session_actor(
    session_id: str, settings: Settings, provider_factory: ProviderFactory | None = None
) -> ActorHandle[Any]:
    """Get or create the session's actor (blocking; see :func:`get_session_actor`)."""
    cached = _handles.get(session_id)
    if cached is not None:
        _handles.move_to_end(session_id)
        return cached
    handle: ActorHandle[Any] = SessionActor.options(  # type: ignore[attr-defined]
        name=actor_name(session_id),
        namespace=ACTOR_NAMESPACE,
        lifetime="detached",
        num_cpus=0,
        max_restarts=-1,
        max_task_retries=MAX_TASK_RETRIES,
        max_concurrency=1000,
        get_if_exists=True,
    ).remote(session_id, settings, provider_factory)
    _handles[session_id] = handle
    while len(_handles) > _HANDLE_CACHE_SIZE:
        _handles.popitem(last=False)
    return handle


async def get_session_actor(
    session_id: str, settings: Settings, provider_factory: ProviderFactory | None = None
) -> ActorHandle[Any]:
    """:func:`session_actor` off the event loop (the name lookup is a blocking GCS call)."""
    cached = _handles.get(session_id)
    if cached is not None:
        return cached
    return await asyncio.to_thread(session_actor, session_id, settings, provider_factory)


def forget_actor(session_id: str) -> None:
    """Drop a cached handle (its actor was killed for good)."""
    _handles.pop(session_id, None)


async def existing_session_actor(session_id: str) -> ActorHandle[Any] | None:
    """The session's actor if one is alive; never creates it."""
    cached = _handles.get(session_id)
    if cached is not None:
        return cached

    def lookup() -> ActorHandle[Any] | None:
        try:
            found: ActorHandle[Any] = ray.get_actor(
                actor_name(session_id), namespace=ACTOR_NAMESPACE
            )
        except ValueError:
            return None
        return found

    return await asyncio.to_thread(lookup)


async def kill_session_actor(session_id: str) -> None:
    """Kill the session's actor for good (after it terminated its sandbox)."""
    handle = await existing_session_actor(session_id)
    forget_actor(session_id)
    if handle is not None:
        await asyncio.to_thread(ray.kill, handle, no_restart=True)


async def call_actor(handle: ActorHandle[Any], method: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``handle.method(*args)`` and await its result."""
    return await getattr(handle, method).remote(*args, **kwargs)


LIVE_CALL_DEADLINE = 60.0
"""How long :func:`call_live` keeps retrying while a pausing actor exits."""


async def call_live(
    session_id: str,
    settings: Settings,
    method: str,
    *args: Any,
    handle: ActorHandle[Any] | None = None,
    **kwargs: Any,
) -> tuple[ActorHandle[Any], Any]:
    """Call ``method`` on the session's actor, creating it if needed; returns (handle, result).

    A paused session's actor exits (actors/session/pause.py): a cached handle may point at
    a dead actor, or at one still finishing its pause (``SessionExiting``). Either way the
    handle is dropped and the call retried on the next actor (a fresh one boots from the
    snapshot), until :data:`LIVE_CALL_DEADLINE`.
    """
    deadline = asyncio.get_running_loop().time() + LIVE_CALL_DEADLINE
    delay = 0.05
    while True:
        if handle is None:
            handle = await get_session_actor(session_id, settings)
        try:
            return handle, await call_actor(handle, method, *args, **kwargs)
        except _GONE_ACTOR:
            forget_actor(session_id)
            handle = None
            if asyncio.get_running_loop().time() >= deadline:
                raise SessionUnavailable(session_id) from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
        except SessionGone:
            # The session was deleted: the actor this call created (or found) has nothing
            # to do, ever.
            await kill_session_actor(session_id)
            raise
        except TaskCancelledError:
            raise SessionUnavailable(session_id) from None


async def call_existing(
    session_id: str, method: str, *args: Any, **kwargs: Any
) -> tuple[bool, Any]:
    """Call ``method`` on the session's actor if one is alive; returns (reached, result).

    Never creates an actor. A cached handle whose actor exited is dropped and the name
    looked up once more; (False, None) when no live actor answers.
    """
    for _ in range(2):
        handle = await existing_session_actor(session_id)
        if handle is None:
            return False, None
        try:
            return True, await call_actor(handle, method, *args, **kwargs)
        except _GONE_ACTOR:
            forget_actor(session_id)
        except TaskCancelledError:
            raise SessionUnavailable(session_id) from None
    return False, None


async def publish_lifecycle(
    js: JetStreamContext, subjects: Subjects, event: SessionLifecycleEvent
) -> None:
    """Publish a lifecycle event on ``sessions.lifecycle``."""
    await js.publish(
        subjects.session_lifecycle,
        msgspec.json.encode(event),
        headers={"Nats-Msg-Id": f"{event.session_id}:{event.event}:{event.at.isoformat()}"},
    )


async def create_session(
    pool: asyncpg.Pool,
    js: JetStreamContext,
    subjects: Subjects,
    settings: Settings,
    new: NewSession,
) -> tuple[SessionRecord, bool]:
    """Create a session (idempotent on ``new.idempotency_key`` within the org).

    Returns (row, is_new). A new session is announced on ``sessions.lifecycle``; in
    ``immediate`` mode its actor starts booting the sandbox in the background.
    """
    record, is_new = await session_store.insert_session(pool, new)
    if is_new:
        await publish_lifecycle(
            js,
            subjects,
            SessionLifecycleEvent(
                event="created",
                session_id=str(record.id),
                org_id=str(record.org_id),
                at=datetime.now(UTC),
                client_type=record.client_type,
                automation_id=str(record.automation_id) if record.automation_id else None,
            ),
        )
    if record.sandbox_mode == "immediate" and record.status in ("pending", "paused", "failed"):
        handle = await get_session_actor(str(record.id), settings)
        await call_actor(handle, "eager_start")
    return record, is_new


async def build_init(
    pool: asyncpg.Pool, js: JetStreamContext, subjects: Subjects, record: SessionRecord
) -> Init:
    """``init`` for a client: the transcript and the cursor its events continue from.

    The stream position is read before the transcript (see store/messages.py).
    """
    last = await stream_last_seq(js, subjects)
    messages, cursor = await message_store.load_transcript(pool, record.id, last)
    return Init(
        seq=cursor,
        messages=tuple(messages),
        config=InitConfig(
            session_id=str(record.id),
            title=record.title,
            session_type=record.session_type,
            client_type=record.client_type,
            status=client_status(record.status),
        ),
    )


def new_message_id() -> str:
    """A fresh id for a user prompt."""
    return str(uuid.uuid4())


def message_id_for_key(session_id: str, idempotency_key: str) -> str:
    """The prompt id an Idempotency-Key maps to (so a retried POST sends it once)."""
    return str(uuid.uuid5(uuid.UUID(session_id), "idempotency:" + idempotency_key))
