"""What the org-scoped routers (automations, triggers, schedules, runs) share.

Each of them acts in the caller's active org, reads the replica's :class:`AppState`, and
answers 404 for a row that is not in that org.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from starlette.responses import Response

from api.deps import Caller, require_active_org
from api.errors import ApiError, not_found
from api.responses import json_response
from api.state import AppState
from store import automations as automations_store

OrgMember = Annotated[Caller, Depends(require_active_org("member"))]
"""A caller who is at least a member of their active org."""


def app_state(request: Request) -> AppState:
    """The replica's shared connections and settings."""
    state: AppState = request.app.state.warren
    return state


def active_org(caller: Caller) -> uuid.UUID:
    """The caller's active org (``OrgMember`` guarantees there is one)."""
    assert caller.org_id is not None
    return caller.org_id


def json_or_404(found: Any, what: str) -> Response:
    """``found`` as JSON, or 404 ``<what> not found`` when it is None."""
    if found is None:
        raise not_found(what)
    return json_response(found)


async def require_automation_in_org(
    conn: asyncpg.Connection, org_id: uuid.UUID, automation_id: uuid.UUID
) -> None:
    """400 on ``automation_id`` unless that automation belongs to ``org_id``."""
    if await automations_store.get_automation(conn, org_id, automation_id) is None:
        raise ApiError(
            400, "automation not found in this org", code="invalid", field="automation_id"
        )
