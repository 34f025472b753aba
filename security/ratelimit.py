"""An in-process limiter of failed attempts per key (e.g. sign-in failures per email).

Per replica: with N API replicas an attacker gets at most N times the budget, which still
turns online guessing from thousands of tries per minute into a handful.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class FailureLimiter:
    """Blocks a key once it has ``max_failures`` failures within ``window_seconds``.

    Memory is bounded: at most ``max_keys`` keys are tracked, the least recently failed
    dropped first.
    """

    def __init__(
        self,
        max_failures: int,
        window_seconds: float,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window_seconds:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, key: str) -> int | None:
        """Seconds until ``key`` may try again, or None if it is not blocked."""
        now = self._clock()
        times = self._recent(key, now)
        if times is None or len(times) < self.max_failures:
            return None
        # History is trimmed to max_failures: unblocked once the oldest leaves the window.
        return max(1, math.ceil(times[0] + self.window_seconds - now))

    def record_failure(self, key: str) -> None:
        """Count one failure for ``key`` now."""
        now = self._clock()
        times = self._recent(key, now) or deque()
        times.append(now)
        # Keep no more history than a decision needs.
        while len(times) > self.max_failures:
            times.popleft()
        self._failures[key] = times
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def reset(self, key: str) -> None:
        """Forget ``key``'s failures (after a success)."""
        self._failures.pop(key, None)
