"""The public share page: a session's title, status and transcript as static HTML.

Every piece of text (the title, prompts, agent output, tool names) comes from users or a
model and is escaped. The page runs no script; its one inline style block is allowed by
hash in a strict Content-Security-Policy. A live preview is an iframe to the share's
read-only preview path, itself sandboxed (no same-origin access).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from html import escape

from schemas.sessions import SessionRecord, client_status
from schemas.transcript import ImagePart, Message, TextPart, ToolPart

_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;"
    "color:#1d1d1f}"
    "header{border-bottom:1px solid #ddd;margin-bottom:1rem}"
    ".status{font-size:.85rem;color:#555}"
    ".msg{border:1px solid #e3e3e3;border-radius:6px;margin:.75rem 0;padding:.5rem .75rem}"
    ".msg.user{background:#f4f7fb}"
    ".role{font-weight:600;font-size:.8rem;text-transform:uppercase;color:#666}"
    ".text{white-space:pre-wrap;word-wrap:break-word}"
    ".tool{font-family:ui-monospace,monospace;font-size:.85rem;color:#444}"
    "iframe{width:100%;height:32rem;border:1px solid #ccc;border-radius:6px}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        f"style-src 'sha256-{_STYLE_HASH}'",
        "frame-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
"""Policy of the share page: no script at all, only its own style and same-origin frames."""
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
"""Headers of the page (``no-store``: a revoked share must not linger in caches)."""


def _part(part: TextPart | ImagePart | ToolPart) -> str:
    if isinstance(part, TextPart):
        return f'<div class="text">{escape(part.text)}</div>'
    if isinstance(part, ImagePart):
        return '<div class="tool">[image]</div>'
    title = f" — {escape(part.title)}" if part.title else ""
    return f'<div class="tool">tool {escape(part.tool_name)}{title} ({escape(part.status)})</div>'


def _message(message: Message) -> str:
    role = "user" if message.role == "user" else "assistant"
    if message.role == "user" or not message.parts:
        body = f'<div class="text">{escape(message.content)}</div>'
    else:
        body = "".join(_part(p) for p in message.parts)
    note = " (cancelled)" if message.cancelled else ""
    return f'<section class="msg {role}"><div class="role">{role}{note}</div>{body}</section>'


def render_share_page(
    record: SessionRecord, messages: Iterable[Message], preview_src: str | None
) -> str:
    """The whole HTML document."""
    title = escape(record.title or "Untitled session")
    status = escape(client_status(record.status))
    transcript = "".join(_message(m) for m in messages) or "<p>No messages yet.</p>"
    preview = (
        f'<h2>Preview</h2><iframe src="{escape(preview_src)}" title="Preview" '
        'sandbox="allow-scripts allow-forms allow-popups" referrerpolicy="no-referrer">'
        "</iframe>"
        if preview_src
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{title} · Warren</title><style>{_STYLE}</style></head><body>"
        f'<header><h1>{title}</h1><p class="status">Status: {status}</p></header>'
        f"{preview}<main><h2>Transcript</h2>{transcript}</main></body></html>"
    )
