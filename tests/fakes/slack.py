"""Fake Slack Web API: ``chat.postMessage`` with Slack's ``{"ok": ...}`` envelope.

Serves under ``/api`` (point a client at ``f"{fake.url}/api"``). Auth is the bot token in
``Authorization: Bearer`` (or a ``token`` form field): missing → ``not_authed``, unknown →
``invalid_auth``. Channels must exist (``channel_not_found``), be joined
(``not_in_channel``) and not archived (``is_archived``); a message needs ``text`` or
``blocks`` (``no_text``); blocks are checked for known types and Slack's size limits
(``invalid_blocks``). :meth:`FakeSlack.rate_limit_next` makes the next calls answer
HTTP 429 with ``Retry-After`` and ``ratelimited``. Posted messages land in ``messages``.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer, bearer_token

BLOCK_TYPES = {"section", "context", "divider", "header", "actions", "image", "rich_text"}


def _fail(error: str, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"ok": False, "error": error}, status=status, headers=headers)


def _blocks_problem(blocks: Any) -> str | None:
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            return "invalid_blocks"
        text = block.get("text")
        if isinstance(text, dict) and len(str(text.get("text", ""))) > 3000:
            return "invalid_blocks"
        accessory = block.get("accessory")
        if accessory is not None and (
            not isinstance(accessory, dict)
            or accessory.get("type") != "button"
            or len(str((accessory.get("text") or {}).get("text", ""))) > 75
        ):
            return "invalid_blocks"
    return None


class FakeSlack(FakeServer):
    """In-memory Slack workspace with one bot."""

    def __init__(
        self,
        *,
        tokens: tuple[str, ...] = ("xoxb-test-token",),
        channels: tuple[str, ...] = ("C0RUNS",),
        not_joined: tuple[str, ...] = (),
        archived: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.tokens = set(tokens)
        self.channels = set(channels) | set(not_joined) | set(archived)
        self.not_joined = set(not_joined)
        self.archived = set(archived)
        self.messages: list[dict[str, Any]] = []
        self._rate_limited = 0
        self._retry_after = 1
        self._ts = itertools.count(1)
        self.app.router.add_post("/api/chat.postMessage", self._post_message)

    def rate_limit_next(self, count: int = 1, *, retry_after: int = 1) -> None:
        """Answer the next ``count`` calls with HTTP 429 ``ratelimited``."""
        self._rate_limited = count
        self._retry_after = retry_after

    async def _read_args(self, request: web.Request) -> dict[str, Any] | None:
        ctype = request.content_type
        if ctype == "application/json":
            try:
                args = await request.json()
            except ValueError:
                return None
            return args if isinstance(args, dict) else None
        form = await request.post()
        args = {k: str(v) for k, v in form.items()}
        if "blocks" in args:
            try:
                args["blocks"] = json.loads(args["blocks"])
            except ValueError:
                args["blocks"] = None
        return args

    async def _post_message(self, request: web.Request) -> web.Response:
        if self._rate_limited > 0:
            self._rate_limited -= 1
            return _fail("ratelimited", status=429, headers={"Retry-After": str(self._retry_after)})
        args = await self._read_args(request)
        if args is None:
            return _fail("invalid_json")
        token = bearer_token(request) or args.get("token")
        if not token:
            return _fail("not_authed")
        if token not in self.tokens:
            return _fail("invalid_auth")
        channel = args.get("channel")
        if not channel or channel not in self.channels:
            return _fail("channel_not_found")
        if channel in self.archived:
            return _fail("is_archived")
        if channel in self.not_joined:
            return _fail("not_in_channel")
        text, blocks = args.get("text"), args.get("blocks")
        if not text and not blocks:
            return _fail("no_text")
        if blocks is not None and (problem := _blocks_problem(blocks)):
            return _fail(problem)
        ts = f"1770000000.{next(self._ts):06d}"
        message = {
            "type": "message",
            "subtype": "bot_message",
            "text": text or "",
            "ts": ts,
            "bot_id": "B0WARREN",
            "blocks": blocks or [],
        }
        self.messages.append({"channel": channel, **message, "thread_ts": args.get("thread_ts")})
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": message})
