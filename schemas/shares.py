"""Wire shapes of preview links and public session shares."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec


class PreviewLink(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/sessions/{id}/preview``: the exposed port through the proxy.

    ``url`` carries a preview token in its path (see :class:`PreviewClaims`): it opens this
    session's exposed port, read-only, and nothing else, until ``expires_at``; ask again for
    a new one.
    """

    url: str
    port: int
    expires_at: datetime


class PreviewClaims(msgspec.Struct, frozen=True, kw_only=True):
    """Claims of a preview token: one session's one proxy target, read-only, until ``exp``.

    ``sub`` is the session id, ``org`` its org (every lookup stays scoped to it), ``target``
    the proxy target it opens (``port-<N>``).
    """

    sub: str
    org: str
    target: str
    iat: int
    exp: int
    typ: Literal["preview"] = "preview"


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
