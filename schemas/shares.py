"""Wire shapes of preview links and public session shares."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class PreviewLink(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/sessions/{id}/preview``: the exposed port through the proxy.

    ``url`` carries a fresh WebSocket token of the caller in its path, so it stops working
    at ``expires_at``; ask again for a new one.
    """

    url: str
    port: int
    expires_at: datetime


class ShareCreated(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/sessions/{id}/share``: the public, read-only page of the session."""

    share_id: str
    url: str
    created_at: datetime


class ShareRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A ``session_shares`` row."""

    id: str
    session_id: uuid.UUID
    org_id: uuid.UUID
    created_by: uuid.UUID | None
    created_at: datetime
    revoked_at: datetime | None
