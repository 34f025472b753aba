"""Port reservations: distinct, exclusive across allocators, busy ports skipped, stale reclaimed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from deploy.net import free_port
from sandboxes.ports import PortAllocator, PortsExhausted


def _allocator(tmp_path: Path, low: int, high: int, alive: set[str]) -> PortAllocator:
    return PortAllocator(tmp_path / "ports", (low, high), lambda owner: owner in alive)


def test_allocations_are_distinct_and_exclusive_between_allocators(tmp_path: Path) -> None:
    low = free_port() // 10 * 10  # a small window near a port that was just free
    low = max(low, 1024)
    alive = {"a", "b"}
    first = _allocator(tmp_path, low, low + 9, alive)
    second = _allocator(tmp_path, low, low + 9, alive)  # another process, same folder
    got_a = first.allocate("a", 2)
    got_b = second.allocate("b", 2)
    assert len(set(got_a + got_b)) == 4
    assert {first.owner_of(p) for p in got_a} == {"a"}
    first.release("a")
    assert all(first.owner_of(p) is None for p in got_a)
    assert all(first.owner_of(p) == "b" for p in got_b)


def test_busy_port_is_skipped(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        allocator = _allocator(tmp_path, port, port, {"a"})
        with pytest.raises(PortsExhausted):
            allocator.allocate("a", 1)
        assert allocator.owner_of(port) is None  # the failed reservation was undone


def test_stale_reservation_is_reclaimed(tmp_path: Path) -> None:
    port = free_port()
    alive = {"old"}
    allocator = _allocator(tmp_path, port, port, alive)
    assert allocator.allocate("old", 1) == [port]
    with pytest.raises(PortsExhausted):
        allocator.allocate("new", 1)
    alive.discard("old")  # its sandbox is gone
    assert allocator.allocate("new", 1) == [port]
    assert allocator.owner_of(port) == "new"
