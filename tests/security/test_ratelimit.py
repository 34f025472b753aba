"""The in-process failure limiter."""

from __future__ import annotations

from security.ratelimit import FailureLimiter


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_blocks_after_max_failures_until_the_window_passes() -> None:
    clock = Clock()
    limiter = FailureLimiter(3, 60, clock=clock)
    for _ in range(2):
        limiter.record_failure("a")
        assert limiter.retry_after("a") is None
    clock.now += 10
    limiter.record_failure("a")
    assert limiter.retry_after("a") == 50
    assert limiter.retry_after("b") is None
    clock.now += 49.5
    assert limiter.retry_after("a") == 1
    clock.now += 0.5
    assert limiter.retry_after("a") is None


def test_reset_forgets_failures() -> None:
    limiter = FailureLimiter(2, 60, clock=Clock())
    limiter.record_failure("a")
    limiter.record_failure("a")
    assert limiter.retry_after("a") is not None
    limiter.reset("a")
    assert limiter.retry_after("a") is None


def test_tracked_keys_are_bounded() -> None:
    limiter = FailureLimiter(1, 60, max_keys=3, clock=Clock())
    for key in "abcd":
        limiter.record_failure(key)
    assert limiter.retry_after("a") is None  # evicted as the least recent
    assert all(limiter.retry_after(k) is not None for k in "bcd")
