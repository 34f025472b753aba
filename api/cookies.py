"""The browser-session cookie: its attributes, and re-issuing it when the session is refreshed.

``warren_session`` is httpOnly, SameSite=Lax, Path=/, Secure per ``settings.cookie_secure``,
and lives 7 days. When :mod:`api.deps` extends a session (at most once a day) it asks for the
cookie to be re-sent via request state; :class:`SessionCookieRefresh` adds the header to
whatever response the route produces, so every route gets sliding sessions for free.
"""

from __future__ import annotations

from datetime import timedelta
from http.cookies import SimpleCookie

from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "warren_session"
SESSION_TTL = timedelta(days=7)
REFRESH_EVERY = timedelta(days=1)
_STATE_KEY = "warren_refresh_cookie"


def set_session_cookie(response: Response, token: str, *, secure: bool) -> None:
    """Attach the session cookie carrying ``token`` to ``response``."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_TTL.total_seconds()),
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    """Tell the browser to drop the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")


def _cookie_header(token: str, secure: bool) -> bytes:
    jar: SimpleCookie = SimpleCookie()
    jar[SESSION_COOKIE] = token
    morsel = jar[SESSION_COOKIE]
    morsel["max-age"] = int(SESSION_TTL.total_seconds())
    morsel["path"] = "/"
    morsel["httponly"] = True
    morsel["samesite"] = "lax"
    if secure:
        morsel["secure"] = True
    return morsel.OutputString().encode("latin-1")


def request_cookie_refresh(conn: HTTPConnection, token: str, *, secure: bool) -> None:
    """Ask :class:`SessionCookieRefresh` to re-send the cookie with a fresh max-age."""
    conn.state.warren_refresh_cookie = _cookie_header(token, secure)


class SessionCookieRefresh:
    """ASGI middleware: appends the refreshed session cookie when one was requested."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_cookie(message: Message) -> None:
            header = state.get(_STATE_KEY) if isinstance(state, dict) else None
            if message["type"] == "http.response.start" and header:
                headers = list(message.get("headers", []))
                # A route that set the cookie itself (sign-in, sign-out) wins.
                if not any(
                    k.lower() == b"set-cookie" and SESSION_COOKIE.encode() in v for k, v in headers
                ):
                    headers.append((b"set-cookie", header))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cookie)
