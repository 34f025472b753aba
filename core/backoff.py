"""Capped exponential backoff: the one formula every retry in Warren uses.

:func:`exponential_delay` is the plain delay for the n-th retry (JetStream redelivery,
outbox rows); :class:`Backoff` is the stateful form with jitter for retry loops (OpenCode
requests and its event stream, JetStream publishes).
"""

from __future__ import annotations

import random

_MAX_EXPONENT = 64
"""Beyond this, every cap in use is long reached; it keeps ``2.0**n`` from overflowing."""


def exponential_delay(attempt: int, base: float, cap: float) -> float:
    """``base · 2^attempt`` seconds, at most ``cap``; ``attempt`` counts from 0."""
    return float(min(cap, base * 2.0 ** min(max(0, attempt), _MAX_EXPONENT)))


class Backoff:
    """Capped exponential backoff with jitter: ``base · 2ⁿ`` up to ``cap``, minus ≤ 25 %."""

    def __init__(self, base: float = 0.25, cap: float = 10.0) -> None:
        self.base = base
        self.cap = cap
        self.attempt = 0

    def next(self) -> float:
        """The next delay (and count the attempt)."""
        delay = exponential_delay(self.attempt, self.base, self.cap)
        self.attempt += 1
        # Jitter spreads retries of many clients that failed together.
        jitter: float = random.uniform(0.75, 1.0)
        return delay * jitter

    def reset(self) -> None:
        """Start over after a success."""
        self.attempt = 0
