"""Loopback port allocation shared by every process that runs local sandboxes.

A port is reserved by creating ``<dir>/<port>`` exclusively (``O_EXCL``) with the owner's id
inside, so two control-plane processes never hand out the same port. A reservation whose
owner is gone (``owner_alive`` says so) is stale and reclaimed. A reserved port is also
checked to be bindable: something outside Warren may already listen on it.
"""

from __future__ import annotations

import errno
import os
import random
import socket
from collections.abc import Callable
from pathlib import Path


class PortsExhausted(RuntimeError):
    """No free port is left in the configured range."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing is bound to ``host:port`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class PortAllocator:
    """Hands out ports from ``[low, high]``, reserving them on disk per owner."""

    def __init__(
        self,
        reservations: Path,
        port_range: tuple[int, int],
        owner_alive: Callable[[str], bool],
    ) -> None:
        low, high = port_range
        if not 1024 <= low <= high <= 65535:
            raise ValueError(f"bad port range {port_range}")
        self._dir = reservations
        self._low = low
        self._high = high
        self._owner_alive = owner_alive

    def allocate(self, owner: str, count: int) -> list[int]:
        """Reserve ``count`` free ports for ``owner``; raises PortsExhausted."""
        self._dir.mkdir(parents=True, exist_ok=True)
        span = self._high - self._low + 1
        # A random start spreads concurrent allocators over the range.
        start = random.randrange(span)
        ports: list[int] = []
        for offset in range(span):
            port = self._low + (start + offset) % span
            if self._reserve(port, owner):
                if port_is_free(port):
                    ports.append(port)
                    if len(ports) == count:
                        return ports
                else:
                    self._path(port).unlink(missing_ok=True)
        for port in ports:
            self._path(port).unlink(missing_ok=True)
        raise PortsExhausted(f"no {count} free ports in {self._low}-{self._high}")

    def release(self, owner: str) -> None:
        """Drop every reservation held by ``owner``."""
        if not self._dir.is_dir():
            return
        for entry in self._dir.iterdir():
            if _read_owner(entry) == owner:
                entry.unlink(missing_ok=True)

    def owner_of(self, port: int) -> str | None:
        """Who holds ``port``, if anyone."""
        return _read_owner(self._path(port))

    def _path(self, port: int) -> Path:
        return self._dir / str(port)

    def _reserve(self, port: int, owner: str) -> bool:
        path = self._path(port)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise
                holder = _read_owner(path)
                if holder is None or self._owner_alive(holder):
                    return False
                path.unlink(missing_ok=True)  # stale: its sandbox is gone
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(owner)
            return True
        return False


def _read_owner(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except (FileNotFoundError, IsADirectoryError):
        return None
