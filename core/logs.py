"""JSON log lines: one object per line, with the request id when there is one.

The ingress and every actor process (pools, scheduler, session actors) call
:func:`configure_logging` once at start, so all of Warren logs in the same shape; an actor
passes its name, which then tags each of its lines.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time

import msgspec

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "warren_request_id", default=None
)

_encoder = msgspec.json.Encoder()
_STD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; ``extra=`` fields are kept as keys, and
    ``fields`` (e.g. the actor's name) are added to every line."""

    def __init__(self, fields: dict[str, str] | None = None) -> None:
        super().__init__()
        self.fields: dict[str, str] = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a JSON line."""
        out: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **self.fields,
        }
        rid = request_id_var.get()
        if rid:
            out["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return _encoder.encode(out).decode()


def configure_logging(level: str = "INFO", **fields: str) -> None:
    """Send every log line of this process to stderr as JSON, tagged with ``fields``
    (idempotent: a second call updates the level and fields)."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if isinstance(handler.formatter, JsonFormatter):
            handler.formatter.fields = dict(fields)
            return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(fields))
    root.addHandler(handler)


def monotonic_ms() -> float:
    """Milliseconds from a monotonic clock, for durations."""
    return time.perf_counter() * 1000.0
