"""Prometheus metrics of the API process. Later areas add their gauges here."""

from __future__ import annotations

import functools

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "warren_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)

HTTP_LATENCY = Histogram(
    "warren_http_request_duration_seconds",
    "Time from request start to response start, by route template.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)


# --- live sessions (ingress side) -------------------------------------------------------------

from prometheus_client import Gauge  # noqa: E402  (kept with the section that uses it)
from prometheus_client.core import GaugeMetricFamily  # noqa: E402
from prometheus_client.registry import Collector  # noqa: E402

SESSION_WS_CLIENTS = Gauge(
    "warren_session_ws_clients",
    "Session WebSockets open on this replica.",
    registry=REGISTRY,
)
SESSION_EVENTS_RELAYED = Counter(
    "warren_session_events_relayed_total",
    "Session events sent to WebSocket clients by this replica (replayed or live).",
    registry=REGISTRY,
)
SESSION_REPLAYS = Counter(
    "warren_session_replays_total",
    "WebSocket connects resumed from a cursor (after_seq) out of the event log.",
    registry=REGISTRY,
)
SESSION_RESYNCS = Counter(
    "warren_session_resyncs_total",
    "WebSocket connects answered with init (no cursor, a cursor no longer kept, get_messages).",
    ["reason"],
    registry=REGISTRY,
)
SESSION_SLOW_CONSUMERS = Counter(
    "warren_session_slow_consumer_closes_total",
    "WebSockets closed with 4008 because the client read too slowly.",
    registry=REGISTRY,
)


class _LiveSessionActors(Collector):
    """``warren_session_actors_live``: named session actors alive in the cluster (at scrape)."""

    def collect(self) -> list[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "warren_session_actors_live", "Session actors alive in the Ray cluster."
        )
        try:
            import ray

            if not ray.is_initialized():
                return []
            names = ray.util.list_named_actors(all_namespaces=True)
        except Exception:  # Ray unreachable at scrape time: report nothing rather than fail
            return []
        count = sum(
            1
            for entry in names
            if isinstance(entry, dict)
            and entry.get("namespace") == "warren"
            and str(entry.get("name", "")).startswith("session:")
        )
        family.add_metric([], count)
        return [family]


REGISTRY.register(_LiveSessionActors())


# --- live sessions (actor side: exported through Ray's metrics agent) ---------------------------


class ActorMetrics:
    """Counters the session actors report (one set per actor process)."""

    def __init__(self) -> None:
        from ray.util import metrics as ray_metrics

        self.events_published = ray_metrics.Counter(
            "warren_session_events_published_total",
            description="Client events a session actor stored in its event log.",
        )
        self.sse_reconnects = ray_metrics.Counter(
            "warren_session_sse_reconnects_total",
            description="Reconnects of a session actor to its sandbox's OpenCode event stream.",
        )
        self.actor_starts = ray_metrics.Counter(
            "warren_session_actor_starts_total",
            description="Session actor starts (first start and every restart).",
        )


@functools.cache
def actor_metrics() -> ActorMetrics:
    """The session-actor counters of this process, created on first use."""
    return ActorMetrics()


# --- port-forwarding proxy (ingress side) -------------------------------------------------------

PROXY_CONNECTIONS = Gauge(
    "warren_proxy_connections",
    "Proxy connections open on this replica (HTTP exchanges in flight and WebSockets).",
    ["target"],
    registry=REGISTRY,
)


# --- session pause, resume, migration (actor side) ----------------------------------------------


class LifecycleMetrics:
    """Counters of session pauses, resumes, idle snapshots and migrations (actor side)."""

    def __init__(self) -> None:
        from ray.util import metrics as ray_metrics

        self.pauses = ray_metrics.Counter(
            "warren_session_pauses_total",
            description="Sessions snapshotted and paused, by reason (manual, inactivity).",
            tag_keys=("reason",),
        )
        self.resumes = ray_metrics.Counter(
            "warren_session_resumes_total",
            description="Paused sessions booted again from their snapshot.",
        )
        self.idle_snapshots = ray_metrics.Counter(
            "warren_session_idle_snapshots_total",
            description="Idle-snapshot attempts, by outcome (ok, failed, gave_up).",
            tag_keys=("outcome",),
        )
        self.migrations = ray_metrics.Counter(
            "warren_session_migrations_total",
            description=(
                "Expiry checks, by outcome: migrated, failed (kept the old sandbox), "
                "stopped (old sandbox gone), paused (no clients), pause_failed."
            ),
            tag_keys=("outcome",),
        )


@functools.cache
def lifecycle_metrics() -> LifecycleMetrics:
    """The pause/resume counters of this process, created on first use."""
    return LifecycleMetrics()


# --- triggers: webhooks (ingress side) and the scheduler (asked at scrape) ----------------------

from prometheus_client.core import CounterMetricFamily  # noqa: E402

WEBHOOKS = Counter(
    "warren_webhooks_total",
    "Webhook deliveries answered, by provider, outcome (accepted, ignored, rejected) and "
    "reason (the error code of a rejection, why a delivery was ignored, or 'event').",
    ["provider", "outcome", "reason"],
    registry=REGISTRY,
)

SCHEDULER_ROLE = "scheduler"
"""The role token in a scheduler actor's name (``<prefix>:scheduler:<n>``)."""
SCHEDULER_STATS_TIMEOUT_SECONDS = 2.0


class _SchedulerCounters(Collector):
    """``warren_scheduler_*_total``: each scheduler actor's counters, asked at scrape.

    A scheduler answers ``stats()`` with ``{"fires": {kind: n}, "errors": {reason: n},
    "poll_errors": {provider: n}}``; counters restart with the actor, as Prometheus expects.
    """

    _FAMILIES = (
        ("fires", "warren_scheduler_fires", "Runs the scheduler created, by kind.", "kind"),
        ("errors", "warren_scheduler_errors", "Scheduler errors (e.g. bad_cron).", "reason"),
        ("poll_errors", "warren_scheduler_poll_errors", "Failed polls, by provider.", "provider"),
    )

    def collect(self) -> list[CounterMetricFamily]:
        try:
            import ray

            if not ray.is_initialized():
                return []
            names = [
                str(entry["name"])
                for entry in ray.util.list_named_actors(all_namespaces=True)
                if isinstance(entry, dict)
                and entry.get("namespace") == "warren"
                and str(entry.get("name", "")).split(":")[1:2] == [SCHEDULER_ROLE]
            ]
            refs = [ray.get_actor(n, namespace="warren").stats.remote() for n in names]
            answers: list[dict[str, dict[str, int]]] = ray.get(
                refs, timeout=SCHEDULER_STATS_TIMEOUT_SECONDS
            )
        except Exception:  # Ray or the scheduler unreachable at scrape: report nothing
            return []
        families = []
        for key, name, doc, label in self._FAMILIES:
            family = CounterMetricFamily(name, doc, labels=["scheduler", label])
            for actor, stats in zip(names, answers, strict=True):
                for value, count in stats.get(key, {}).items():
                    family.add_metric([actor, value], count)
            families.append(family)
        return families


REGISTRY.register(_SchedulerCounters())
