"""Keeps the stack's embedded servers running: a server that dies is restarted, with backoff.

``./warren up`` watches each server it started (PostgreSQL, NATS, the scripted model). When
one exits, the :class:`Supervisor` restarts it on the same port and data folder, up to
``attempts`` times in a row with exponentially growing pauses, logging each attempt; clients
reconnect to the same address. Only when every attempt failed does it raise
:class:`SupervisionFailed`, and the stack shuts down. A server that comes back and then dies
later gets a fresh series of attempts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


class SupervisionFailed(RuntimeError):
    """A supervised server died and could not be restarted; the message names it and its log."""


@dataclass(frozen=True)
class Unit:
    """One supervised server: how to tell it runs, how to start it again, where it logs."""

    name: str
    alive: Callable[[], bool]
    restart: Callable[[], None]
    log_path: Path


class Supervisor:
    """Restarts dead units: ``attempts`` tries, pauses ``base``, 2·base, … up to ``cap`` s."""

    def __init__(
        self,
        units: Sequence[Unit],
        report: Callable[[str, str], None],
        *,
        attempts: int = 5,
        base: float = 1.0,
        cap: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.units = list(units)
        self.report = report
        self.attempts = attempts
        self.base = base
        self.cap = cap
        self.sleep = sleep
        self.restarts: dict[str, int] = {unit.name: 0 for unit in self.units}
        """Successful restarts per unit since the stack started."""

    def check(self) -> None:
        """Restart every unit that is not running; raise :class:`SupervisionFailed` if one
        cannot be brought back."""
        for unit in self.units:
            if not unit.alive():
                self.revive(unit)

    def revive(self, unit: Unit) -> None:
        """Restart ``unit`` with bounded, logged retries."""
        delay = self.base
        for attempt in range(1, self.attempts + 1):
            self.report(
                unit.name,
                f"exited; restart {attempt}/{self.attempts} in {delay:.1f} s (log {unit.log_path})",
            )
            self.sleep(delay)
            try:
                unit.restart()
            except Exception as exc:  # a failed start is one failed attempt; say why
                self.report(unit.name, f"restart {attempt}/{self.attempts} failed: {exc}")
            else:
                if unit.alive():
                    self.restarts[unit.name] += 1
                    self.report(unit.name, f"restarted (attempt {attempt}/{self.attempts})")
                    return
                self.report(unit.name, f"restart {attempt}/{self.attempts} exited at once")
            delay = min(delay * 2, self.cap)
        raise SupervisionFailed(
            f"{unit.name} exited and {self.attempts} restarts failed; see {unit.log_path}"
        )
