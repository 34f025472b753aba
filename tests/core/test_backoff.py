"""The one backoff formula: capped doubling, jitter within 25 %, no overflow on long outages."""

from __future__ import annotations

from core.backoff import Backoff, exponential_delay


def test_exponential_delay_doubles_up_to_the_cap() -> None:
    assert [exponential_delay(n, 1.0, 60.0) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert exponential_delay(-3, 1.0, 60.0) == 1.0  # a first delivery counts as attempt 0


def test_exponential_delay_survives_any_attempt_count() -> None:
    # 2.0**1024 overflows a float: an outage that long must still give the cap.
    assert exponential_delay(5000, 0.1, 5.0) == 5.0


def test_backoff_jitters_below_the_delay_and_resets() -> None:
    backoff = Backoff(0.2, 1.0)
    delays = [backoff.next() for _ in range(5)]
    for delay, full in zip(delays, (0.2, 0.4, 0.8, 1.0, 1.0), strict=True):
        assert 0.75 * full <= delay <= full
    backoff.attempt = 2000
    assert 0.75 <= backoff.next() <= 1.0
    backoff.reset()
    assert 0.15 <= backoff.next() <= 0.2
