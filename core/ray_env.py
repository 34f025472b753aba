"""The Ray environment of every Warren Ray: the stack's head, tests and benchmarks.

:data:`RAY_ENV` is set for ``ray start`` and for drivers; :func:`start_local_ray` starts an
in-process Ray with it (tests and benchmarks, once per process).

Facts this relies on (Ray 2.60, PLATFORM-NOTES): the quiet settings cut Ray's own CPU use;
``RAY_NODE_IP_ADDRESS`` with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (a single-node
cluster, which this is) keeps the stack's head on loopback; on SIGTERM Ray drains the node for 30 s
first, and a single node has nowhere to drain to, so that is turned off.
"""

from __future__ import annotations

import logging
import os

LOOPBACK = "127.0.0.1"
"""Ray's node address (``--node-ip-address``, ``RAY_NODE_IP_ADDRESS``)."""
NAMESPACE = "warren"
"""The Ray namespace of Warren's named actors."""

QUIET_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_task_events_report_interval_ms": "0",
    "RAY_enable_timeline": "0",
    "RAY_event_stats": "0",
    "RAY_metrics_report_interval_ms": "60000",
    "RAY_LOG_MONITOR_MANY_FILES_THRESHOLD": "0",
    "LOG_NAME_UPDATE_INTERVAL_S": "5",
    "REPORTER_UPDATE_INTERVAL_MS": "60000",
}
"""Settings that cut Ray's own CPU use (never ``RAY_event_stats_print_interval_ms=-1``)."""
LOOPBACK_ENV = {
    "RAY_NODE_IP_ADDRESS": LOOPBACK,
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
}
"""A single node on loopback that stops without draining."""
RAY_ENV = {**QUIET_ENV, **LOOPBACK_ENV}
"""Environment for ``ray start`` and for every driver (the stack's head adds token auth)."""


def start_local_ray(num_cpus: int = 2) -> None:
    """Start an in-process Ray in namespace ``warren`` with no dashboard, on loopback.

    For tests and benchmarks (the stack starts a head instead: ``deploy.ray_head``).
    """
    import ray

    os.environ.update(RAY_ENV)
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        namespace=NAMESPACE,
        _node_ip_address=LOOPBACK,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
