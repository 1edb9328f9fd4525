"""The agent's own health, as ordinary instruments in the registry (``tradeobs.agent.*``).

They reach Prometheus as ``tradeobs_agent_*`` and the live stream's health panel,
so a dead collector or a full log queue is visible where the trading metrics are.
Every one is per process (each worker reports its own; ``service.instance.id``
and ``process.pid`` tell them apart over OTLP, a ``pid`` label on the shared
Prometheus endpoint of a multi-process service: ``aggregation="pid"``).
"""

from __future__ import annotations

import functools
from typing import Protocol

from ._instruments import Counter, Gauge
from .snapshot import Aggregation

__all__ = ["SelfMetrics"]


class _Factory(Protocol):
    def counter(
        self, name: str, unit: str = "", description: str = "", *, aggregation: Aggregation | None = None
    ) -> Counter: ...

    def gauge(
        self, name: str, unit: str = "", description: str = "", *, aggregation: Aggregation | None = None
    ) -> Gauge: ...


class SelfMetrics:
    """Typed handles on every ``tradeobs.agent.*`` instrument (``registry.self_metrics``)."""

    def __init__(self, make: _Factory) -> None:
        c = functools.partial(make.counter, aggregation="pid")
        g = functools.partial(make.gauge, aggregation="pid")
        self.exports_failed = c(
            "tradeobs.agent.exports.failed", "{export}", "Export calls that failed, by signal and exporter"
        )
        self.exports_succeeded = c(
            "tradeobs.agent.exports.succeeded", "{export}", "Export calls that succeeded, by signal and exporter"
        )
        self.items_exported = c(
            "tradeobs.agent.items.exported", "{item}", "Spans, log records and metric points exported, by signal"
        )
        self.items_dropped = c(
            "tradeobs.agent.items.dropped", "{item}", "Items dropped before export, by signal and reason"
        )
        self.queue_size = g("tradeobs.agent.queue.size", "{item}", "Items waiting in an agent queue, by queue")
        self.queue_capacity = g("tradeobs.agent.queue.capacity", "{item}", "Capacity of an agent queue, by queue")
        self.logs_dropped = c("tradeobs.agent.logs.dropped", "{record}", "Log records dropped, by reason")
        self.sink_errors = c("tradeobs.agent.sink.errors", "{error}", "Failures writing to a log sink, by sink")
        self.metric_overflow = c(
            "tradeobs.agent.metric.overflow", "{series}", "Attribute sets sent to the overflow series, by instrument"
        )
        self.config_problems = c(
            "tradeobs.agent.config.problems",
            "{problem}",
            "Configuration problems init() found and said (a bad value, an unknown or misspelt variable), by kind",
        )
        self.invalid = c(
            "tradeobs.agent.measurements.invalid",
            "{measurement}",
            "Measurements or attributes dropped or fixed, by instrument and reason",
        )
        self.internal_errors = c(
            "tradeobs.agent.internal_errors",
            "{error}",
            "Unexpected exceptions inside the agent, by site (each is logged once with its traceback)",
        )
        self.workers_leader = g(
            "tradeobs.agent.workers.leader",
            "{state}",
            "1 in the worker that leads its group (it serves the shared Prometheus endpoint and live frames), else 0",
        )
        self.stopped = g(
            "tradeobs.agent.stopped",
            "{state}",
            "1 once the agent shuts down cleanly (shutdown(), SIGTERM, a normal exit), sent with its last export: "
            "TradingServiceTelemetryMissing leaves an instance that stopped so alone; a crash never sends it",
        )
        self.workers_stale = c(
            "tradeobs.agent.workers.stale",
            "{worker}",
            "Workers a scrape counted with their last snapshot because they did not answer its sync in time",
        )
        self.workers_mismatched = c(
            "tradeobs.agent.workers.mismatched",
            "{event}",
            "What the worker group read from workers of another agent release (a rolling deploy), by reason: older, "
            "newer (a worker's snapshot layout of an earlier or later release, merged), aggregation (one this "
            "release does not know: merged by its declared stand-in), mixed (workers declare different aggregations "
            "for one instrument), format (a snapshot this release cannot read: that worker left out, its file kept); "
            "and multiplier (live workers that disagree on a symbol's contract multiplier, once per symbol)",
        )
        self.children_uninitialised = c(
            "tradeobs.agent.children.uninitialised",
            "{process}",
            "multiprocessing children (spawn, forkserver) this process started that recorded with tradeobs without "
            "calling init(): what they recorded (metrics, tradeobs logs, spans) was dropped; each says what on stderr",
        )
        self.prometheus_port_busy = g(
            "tradeobs.agent.prometheus.port_busy",
            "{state}",
            "1 while this process cannot serve the Prometheus endpoint it should serve (a single process, or a worker "
            "group's leader) because its port is in use (the same service started twice, another program): tried "
            "again until it is free; then 0. No series while it never was",
        )
        self.prometheus_refused = c(
            "tradeobs.agent.prometheus.refused",
            "{request}",
            "Requests the Prometheus endpoint refused, by reason: host (a Host header it does not answer, a possible "
            "DNS rebinding: prometheus_allowed_hosts), busy (past its connections at once), timeout (a client silent "
            "for 10 s), error",
        )
        self.fast_path_fallbacks = c(
            "tradeobs.agent.fast_path.fallbacks",
            "{decision}",
            "Times a fast path was found not exact for a tracer, logger or exporter and the SDK path was used",
        )
