"""The expiry check's decision: migrate with clients attached, pause without."""

from __future__ import annotations

import pytest

from actors.session.migrate import decide


@pytest.mark.parametrize(
    ("ws_clients", "client_type", "expected"),
    [
        (0, "web", "pause"),
        (0, "cli", "pause"),
        (0, "slack", "pause"),
        (1, "web", "migrate"),
        (3, "web", "migrate"),
        # An automation session counts as one client even with no WebSocket attached.
        (0, "automation", "migrate"),
        (2, "automation", "migrate"),
    ],
)
def test_decide(ws_clients: int, client_type: str, expected: str) -> None:
    assert decide(ws_clients, client_type) == expected
