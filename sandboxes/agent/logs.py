"""Service logs as Server-Sent Events: the existing content, then new lines as they are written.

Each line becomes one ``data:`` event (carriage returns split lines too, since SSE data may not
contain them). A restart truncates the log; the tail notices and starts over from the top.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

POLL_SECONDS = 0.2
KEEPALIVE_SECONDS = 15.0
MAX_LINE_BYTES = 64 * 1024
_CHUNK = 256 * 1024


class LineTail:
    """Reads complete lines appended to a file since the last call."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._inode: int | None = None
        self.offset = 0
        """Bytes of the file consumed so far."""
        self._partial = b""

    def read_lines(self) -> list[bytes]:
        """New complete lines (at most one chunk's worth per call)."""
        try:
            stat = os.stat(self._path)
        except FileNotFoundError:
            return []
        if stat.st_ino != self._inode or stat.st_size < self.offset:
            self._inode, self.offset, self._partial = stat.st_ino, 0, b""
        data = b""
        if stat.st_size > self.offset:
            with open(self._path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read(min(stat.st_size - self.offset, _CHUNK))
            self.offset += len(data)
        pieces = (self._partial + data).split(b"\n")
        self._partial = pieces.pop()
        if len(self._partial) > MAX_LINE_BYTES:
            pieces.append(self._partial)
            self._partial = b""
        return _split_cr(pieces)

    def take_partial(self) -> list[bytes]:
        """The unterminated last line, if any (the writer is done)."""
        partial, self._partial = self._partial, b""
        return _split_cr([partial]) if partial else []


def _split_cr(pieces: list[bytes]) -> list[bytes]:
    lines: list[bytes] = []
    for piece in pieces:
        lines.extend(piece.rstrip(b"\r").split(b"\r"))
    return lines


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def sse_event(line: bytes) -> bytes:
    """One SSE ``data:`` event carrying ``line`` as valid UTF-8."""
    text = line.decode("utf-8", errors="replace").encode()
    return b"data: " + text + b"\n\n"


async def stream_log(
    request: web.Request, path: Path, running: Callable[[], bool], *, follow: bool
) -> web.StreamResponse:
    """Answer ``request`` with ``path`` as SSE; keep following until the client goes away."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    tail = LineTail(path)
    # Without follow: send what exists now, then end the stream.
    end_at = None if follow else _size(path)
    last_sent = time.monotonic()
    try:
        while True:
            lines = tail.read_lines()
            done = end_at is not None and (tail.offset >= end_at or not lines)
            if done or (end_at is None and not running()):
                lines += tail.take_partial()
            if lines:
                await response.write(b"".join(sse_event(line) for line in lines))
                last_sent = time.monotonic()
            if done:
                break
            if end_at is not None:
                continue
            if request.transport is None or request.transport.is_closing():
                break
            if time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
                # A comment line: keeps proxies from timing out and surfaces a gone client.
                await response.write(b": keepalive\n\n")
                last_sent = time.monotonic()
            if not lines:
                await asyncio.sleep(POLL_SECONDS)
        await response.write_eof()
    except ConnectionResetError:
        pass
    return response
