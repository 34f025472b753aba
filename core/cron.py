"""Cron expressions in a time zone: validation, next slot, latest slot.

Five fields (minute hour day-of-month month day-of-week) or six with *seconds first*
(as BullMQ/cron-parser read them, which the reference used). Slots are computed in the
expression's IANA time zone and returned in UTC; DST gaps and repeats follow croniter.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter


class CronError(ValueError):
    """A cron expression or time zone is invalid; the message says which."""


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; :class:`CronError` if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {name!r}") from None


def validate(expression: str, timezone: str = "UTC") -> None:
    """Raise :class:`CronError` unless ``expression`` has 5 or 6 valid fields in a known zone."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise CronError("cron expression must have 5 fields, or 6 with seconds first")
    zone(timezone)
    if not croniter.is_valid(expression, second_at_beginning=len(fields) == 6):
        raise CronError(f"invalid cron expression {expression!r}")


def _iter(expression: str, timezone: str, start: datetime) -> croniter:
    validate(expression, timezone)
    local = start.astimezone(zone(timezone))
    return croniter(expression, local, second_at_beginning=len(expression.split()) == 6)


def next_slot(expression: str, timezone: str, after: datetime) -> datetime:
    """The first slot strictly after ``after``, in UTC."""
    slot: datetime = _iter(expression, timezone, after).get_next(datetime)
    return slot.astimezone(UTC)


def latest_slot(expression: str, timezone: str, at: datetime) -> datetime:
    """The last slot at or before ``at``, in UTC."""
    # croniter's get_prev is strict; start just after ``at`` so a slot equal to it counts.
    slot: datetime = _iter(expression, timezone, at + timedelta(microseconds=1)).get_prev(datetime)
    return slot.astimezone(UTC)
