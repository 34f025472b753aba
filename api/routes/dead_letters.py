"""Dead letters of the caller's active org: messages a pool gave up on, and their replay.

A pool parks a message it cannot process (malformed, unknown target) or that still fails
on its last delivery (actors/pool.py). ``GET /api/dead-letters`` lists the org's, newest
first (``consumer``: ``trigger-pool``, ``run-pool`` or ``run-lifecycle``). ``POST
/api/dead-letters/{id}/replay`` publishes the original message to its original subject
once (202); a second replay is 409, another org's dead letter 404.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from api.deps import parse_uuid
from api.errors import ApiError, not_found
from api.responses import json_response
from api.routes._org_scoped import OrgMember, active_org, app_state, json_or_404
from schemas.dead_letters import DeadLetterList
from store import dead_letters as store

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/dead-letters", tags=["dead-letters"])


@router.get("")
async def list_dead_letters(
    request: Request,
    caller: OrgMember,
    consumer: Annotated[str | None, Query(max_length=64)] = None,
    before: Annotated[datetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """The org's dead letters, newest first; filter by consumer, page with ``before``."""
    async with app_state(request).pool.acquire() as conn:
        items = await store.list_for_org(
            conn, active_org(caller), consumer=consumer, before=before, limit=limit
        )
    return json_response(DeadLetterList(dead_letters=items))


@router.get("/{dead_letter_id}")
async def get_dead_letter(request: Request, caller: OrgMember, dead_letter_id: str) -> Response:
    """One dead letter of the org."""
    target = parse_uuid(dead_letter_id, "dead letter")
    async with app_state(request).pool.acquire() as conn:
        found = await store.get_for_org(conn, active_org(caller), target)
    return json_or_404(found, "dead letter")


@router.post("/{dead_letter_id}/replay", status_code=202)
async def replay_dead_letter(request: Request, caller: OrgMember, dead_letter_id: str) -> Response:
    """Publish the original message to its original subject again (once)."""
    target = parse_uuid(dead_letter_id, "dead letter")
    org = active_org(caller)
    assert caller.user_id is not None
    state = app_state(request)
    async with state.pool.acquire() as conn:
        try:
            replay = await store.begin_replay(conn, org, target, caller.user_id)
        except store.AlreadyReplayed:
            raise ApiError(409, "dead letter was replayed already", code="conflict") from None
    if replay is None:
        raise not_found("dead letter")
    try:
        # Its own message id: the original's may still be inside the stream's dedup window.
        await state.js.publish(
            replay.subject, replay.data, timeout=5.0, headers={"Nats-Msg-Id": f"replay:{target}"}
        )
    except Exception as exc:
        async with state.pool.acquire() as conn:
            await store.undo_replay(conn, target)
        log.warning("replaying dead letter %s failed: %s", target, type(exc).__name__)
        raise ApiError(503, "could not publish the message; try again") from None
    async with state.pool.acquire() as conn:
        found = await store.get_for_org(conn, org, target)
    return json_response(found, status=202)
