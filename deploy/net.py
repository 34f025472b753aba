"""Loopback ports for the local stack: is a port free, pick one, wait until something listens."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Collection

LOOPBACK = "127.0.0.1"


def port_free(port: int, host: str = LOOPBACK) -> bool:
    """True if a server could listen on ``host:port`` now (SO_REUSEADDR, as servers bind)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK) -> int:
    """A port the kernel hands out as free (ephemeral range, outside Ray's 10002-19999)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def pick_port(preferred: int | None, taken: Collection[int] = ()) -> int:
    """``preferred`` when it is free and not in ``taken``, else any free port not in ``taken``."""
    if preferred and preferred not in taken and port_free(preferred):
        return preferred
    while True:
        port = free_port()
        if port not in taken:
            return port


def accepts(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Call ``check`` until it returns True or ``timeout`` seconds pass; the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
