"""Fake Gmail API: ``users.getProfile``, ``users.history.list``, ``users.messages.get``.

A mailbox whose history id grows with each added message. ``history.list`` pages with
``maxResults``/``pageToken`` and answers 404 ``notFound`` for a ``startHistoryId`` older
than :attr:`FakeGmail.oldest_history_id`; ``messages.get`` honours ``format=metadata``
and ``metadataHeaders``. Errors use Google's ``{"error": {code, message, errors, status}}``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer, bearer_token

PREFIX = "/gmail/v1/users/{user}"


def google_error(status: int, message: str, reason: str, status_text: str) -> web.Response:
    """Google's JSON error envelope."""
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": status_text,
        }
    }
    return web.json_response(body, status=status)


class FakeGmail(FakeServer):
    """In-memory mailbox for ``me`` (or ``email``)."""

    def __init__(
        self,
        *,
        tokens: tuple[str, ...] = ("ya29.test-token",),
        email: str = "ops@example.com",
        start_history_id: int = 9000,
    ) -> None:
        super().__init__()
        self.tokens = set(tokens)
        self.email = email
        self.history_id = start_history_id
        self.oldest_history_id = start_history_id
        self.history: list[dict[str, Any]] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.rate_limited_requests = 0
        r = self.app.router
        r.add_get(PREFIX + "/profile", self._profile)
        r.add_get(PREFIX + "/history", self._history)
        r.add_get(PREFIX + "/messages/{id}", self._message)

    def add_message(
        self,
        *,
        subject: str,
        sender: str,
        snippet: str = "",
        label_ids: tuple[str, ...] = ("INBOX", "UNREAD"),
        to: str | None = None,
    ) -> dict[str, Any]:
        """Deliver a message: it gets an id and a new history record."""
        self.history_id += 7
        message_id = f"18c{self.history_id:013x}"
        headers = [
            {"name": "From", "value": sender},
            {"name": "To", "value": to or self.email},
            {"name": "Subject", "value": subject},
            {"name": "Date", "value": "Mon, 2 Feb 2026 10:00:00 +0000"},
            {"name": "Message-ID", "value": f"<{message_id}@mail.example.com>"},
        ]
        message = {
            "id": message_id,
            "threadId": message_id,
            "labelIds": list(label_ids),
            "snippet": snippet,
            "historyId": str(self.history_id),
            "internalDate": str(1_770_000_000_000 + self.history_id),
            "sizeEstimate": 2048,
            "payload": {"mimeType": "text/plain", "headers": headers, "body": {"size": 120}},
        }
        self.messages[message_id] = message
        ref = {"id": message_id, "threadId": message_id, "labelIds": list(label_ids)}
        self.history.append(
            {"id": str(self.history_id), "messages": [ref], "messagesAdded": [{"message": ref}]}
        )
        return message

    def expire_history_before(self, history_id: int) -> None:
        """Forget history older than ``history_id`` (Gmail keeps about a week)."""
        self.oldest_history_id = history_id
        self.history = [h for h in self.history if int(h["id"]) >= history_id]

    def _check(self, request: web.Request) -> web.Response | None:
        if bearer_token(request) not in self.tokens:
            return google_error(
                401,
                "Request had invalid authentication credentials.",
                "authError",
                "UNAUTHENTICATED",
            )
        if self.rate_limited_requests > 0:
            self.rate_limited_requests -= 1
            resp = google_error(
                429,
                "Too many concurrent requests for user.",
                "rateLimitExceeded",
                "RESOURCE_EXHAUSTED",
            )
            resp.headers["Retry-After"] = "2"
            return resp
        if request.match_info["user"] not in ("me", self.email):
            return google_error(
                400,
                "Invalid user id specified in request/Delegation denied",
                "invalidArgument",
                "INVALID_ARGUMENT",
            )
        return None

    async def _profile(self, request: web.Request) -> web.Response:
        problem = self._check(request)
        if problem:
            return problem
        return web.json_response(
            {
                "emailAddress": self.email,
                "messagesTotal": len(self.messages),
                "threadsTotal": len(self.messages),
                "historyId": str(self.history_id),
            }
        )

    async def _history(self, request: web.Request) -> web.Response:
        problem = self._check(request)
        if problem:
            return problem
        q = request.query
        start = q.get("startHistoryId", "")
        if not start.isdigit():
            return google_error(
                400, "Invalid startHistoryId", "invalidArgument", "INVALID_ARGUMENT"
            )
        if int(start) < self.oldest_history_id:
            return google_error(404, "Requested entity was not found.", "notFound", "NOT_FOUND")
        label = q.get("labelId")
        records = [
            h
            for h in self.history
            if int(h["id"]) > int(start)
            and (label is None or label in h["messagesAdded"][0]["message"]["labelIds"])
        ]
        size = min(int(q.get("maxResults", "100")), 500)
        offset = int(q.get("pageToken", "0") or "0")
        page = records[offset : offset + size]
        body: dict[str, Any] = {"historyId": str(self.history_id)}
        if page:
            body["history"] = page
        if offset + size < len(records):
            body["nextPageToken"] = str(offset + size)
        return web.json_response(body)

    async def _message(self, request: web.Request) -> web.Response:
        problem = self._check(request)
        if problem:
            return problem
        message = self.messages.get(request.match_info["id"])
        if message is None:
            return google_error(404, "Requested entity was not found.", "notFound", "NOT_FOUND")
        if request.query.get("format") == "metadata":
            wanted = {h.lower() for h in request.query.getall("metadataHeaders", [])}
            headers = [h for h in message["payload"]["headers"] if h["name"].lower() in wanted]
            message = {**message, "payload": {**message["payload"], "headers": headers}}
            message["payload"].pop("body", None)
        return web.json_response(message)
