"""The terminal: a WebSocket bridged to ``bash`` on a real PTY.

Text frames are keystrokes, except a frame that parses as ``{"type": "resize", "cols", "rows"}``
which resizes the PTY (binary frames are always keystrokes). PTY output goes out as text frames.
The shell is the leader of its own session with the PTY as controlling terminal, so job control
works; closing the socket hangs up and then kills every process of that session.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import struct
import sys
import termios
from pathlib import Path

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from sandboxes.agent.procs import terminate_session
from schemas.agent import TerminalResize

log = logging.getLogger(__name__)

WORKSPACE = web.AppKey("terminal_workspace", Path)
SOCKETS = web.AppKey("terminal_sockets", set[web.WebSocketResponse])
READ_CHUNK = 65536
MAX_PENDING_INPUT = 1024 * 1024
_QUEUE_HIGH, _QUEUE_LOW = 64, 8
# Runs in the child, already a session leader (start_new_session): take the PTY on stdin as the
# controlling terminal, then become the shell. A tiny exec hop instead of preexec_fn, which is
# unsafe in a threaded parent.
_TAKE_CTTY = (
    "import fcntl, os, sys, termios\n"
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n"
)


def set_window_size(fd: int, cols: int, rows: int) -> None:
    """Set the PTY's size; the kernel then signals SIGWINCH to the foreground job."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class PtyShell:
    """An interactive shell on a PTY, read and written without blocking the event loop."""

    def __init__(self, master: int, process: asyncio.subprocess.Process) -> None:
        self.master = master
        self.process = process
        self.output: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._pending = b""
        self._reading = True
        self._loop.add_reader(master, self._on_readable)

    @classmethod
    async def spawn(cls, cwd: Path, cols: int = 80, rows: int = 24) -> PtyShell:
        """Start ``bash`` (or ``sh``) in ``cwd`` on a fresh PTY of ``cols`` x ``rows``."""
        master, slave = os.openpty()
        try:
            set_window_size(master, cols, rows)
            env = dict(os.environ, TERM="xterm-256color")
            shell = shutil.which("bash") or "/bin/sh"
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-c",
                _TAKE_CTTY,
                shell,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        return cls(master, process)

    def _on_readable(self) -> None:
        try:
            data = os.read(self.master, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: every holder of the PTY's other end has gone
        if not data:
            self._loop.remove_reader(self.master)
            self._reading = False
            self.output.put_nowait(None)
            return
        self.output.put_nowait(data)
        if self.output.qsize() >= _QUEUE_HIGH:
            # The socket is slower than the shell: stop reading so the PTY pushes back.
            self._loop.remove_reader(self.master)
            self._reading = False

    def resume_reading(self) -> None:
        """Read again once the output queue has drained."""
        if not self._reading and self.output.qsize() <= _QUEUE_LOW and self.master >= 0:
            self._reading = True
            self._loop.add_reader(self.master, self._on_readable)

    def write(self, data: bytes) -> None:
        """Type ``data``; what the PTY cannot take now is flushed when it becomes writable."""
        if self._pending:
            if len(self._pending) + len(data) > MAX_PENDING_INPUT:
                log.warning("terminal input dropped: the shell is not reading")
                return
            self._pending += data
            return
        try:
            written = os.write(self.master, data)
        except BlockingIOError:
            written = 0
        except OSError:
            return
        if written < len(data):
            self._pending = data[written:]
            self._loop.add_writer(self.master, self._flush)

    def _flush(self) -> None:
        try:
            written = os.write(self.master, self._pending)
        except BlockingIOError:
            return
        except OSError:
            written = len(self._pending)
        self._pending = self._pending[written:]
        if not self._pending:
            self._loop.remove_writer(self.master)

    def resize(self, cols: int, rows: int) -> None:
        """Resize the PTY."""
        set_window_size(self.master, cols, rows)

    async def close(self) -> None:
        """Hang up the shell's session, SIGKILL what survives, release the PTY."""
        await terminate_session(self.process.pid, 0.5, first=signal.SIGHUP)
        self._loop.remove_reader(self.master)
        self._loop.remove_writer(self.master)
        os.close(self.master)
        self.master = -1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), timeout=5)


def handle_text(shell: PtyShell, text: str) -> None:
    """Apply a resize frame, or type the text."""
    if text.startswith("{"):
        try:
            frame = msgspec.json.decode(text)
        except msgspec.DecodeError:
            frame = None
        if isinstance(frame, dict) and frame.get("type") == "resize":
            try:
                resize = msgspec.convert(frame, TerminalResize)
            except msgspec.ValidationError:
                return  # a malformed resize is dropped, never typed
            shell.resize(resize.cols, resize.rows)
            return
    shell.write(text.encode())


async def _pump_output(shell: PtyShell, ws: web.WebSocketResponse) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while True:
        chunks = [await shell.output.get()]
        while not shell.output.empty() and chunks[-1] is not None:
            chunks.append(shell.output.get_nowait())
        shell.resume_reading()
        ended = chunks[-1] is None
        text = decoder.decode(b"".join(c for c in chunks if c is not None), final=ended)
        if text:
            await ws.send_str(text)
        if ended:
            await ws.close(message=b"shell exited")
            return


def _size_param(request: web.Request, name: str, default: int) -> int:
    try:
        value = int(request.query.get(name, default))
    except ValueError:
        return default
    return value if 1 <= value <= 1000 else default


async def terminal(request: web.Request) -> web.WebSocketResponse:
    """``GET /api/terminal[?cols=&rows=]`` (WebSocket): an interactive shell in the workspace."""
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_PENDING_INPUT)
    await ws.prepare(request)
    cols, rows = _size_param(request, "cols", 80), _size_param(request, "rows", 24)
    try:
        shell = await PtyShell.spawn(request.app[WORKSPACE], cols, rows)
    except OSError:
        log.exception("cannot start a terminal shell")
        await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"cannot start a shell")
        return ws
    request.app[SOCKETS].add(ws)
    pump = asyncio.create_task(_pump_output(shell, ws), name="terminal-output")
    try:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                handle_text(shell, message.data)
            elif message.type == WSMsgType.BINARY:
                shell.write(message.data)
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
        await shell.close()
        request.app[SOCKETS].discard(ws)
    return ws


async def _close_sockets(app: web.Application) -> None:
    # Closing each socket ends its handler, whose cleanup kills the shell.
    sockets: set[web.WebSocketResponse] = app[SOCKETS]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"agent shutting down")


def add_terminal_route(app: web.Application, workspace: Path) -> None:
    """Mount the terminal WebSocket on ``app``."""
    app[WORKSPACE] = workspace
    app[SOCKETS] = set()
    app.on_shutdown.append(_close_sockets)
    app.router.add_get("/api/terminal", terminal)
