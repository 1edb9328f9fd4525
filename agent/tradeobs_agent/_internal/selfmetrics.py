"""The agent's own health, as ordinary instruments in the registry (``tradeobs.agent.*``).

They reach Prometheus as ``tradeobs_agent_*`` and the live stream's health panel,
so a dead collector or a full log queue is visible where the trading metrics are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..metrics import Registry


class SelfMetrics:
    def __init__(self, registry: Registry) -> None:
        c, g = registry.counter, registry.gauge
        self.exports_failed = c(
            "tradeobs.agent.exports.failed", "{export}", "Export calls that failed, by signal and exporter"
        )
        self.exports_succeeded = c("tradeobs.agent.exports.succeeded", "{export}", "Export calls that succeeded")
        self.items_exported = c("tradeobs.agent.items.exported", "{item}", "Spans/log records/metric points exported")
        self.items_dropped = c(
            "tradeobs.agent.items.dropped", "{item}", "Items dropped before export, by signal and reason"
        )
        self.queue_size = g("tradeobs.agent.queue.size", "{item}", "Items waiting in an agent queue")
        self.queue_capacity = g("tradeobs.agent.queue.capacity", "{item}", "Capacity of an agent queue")
        self.logs_dropped = c("tradeobs.agent.logs.dropped", "{record}", "Log records dropped, by reason")
        self.sink_errors = c("tradeobs.agent.sink.errors", "{error}", "Failures writing to a log sink")
        self.metric_overflow = c(
            "tradeobs.agent.metric.overflow", "{series}", "Attribute sets sent to the overflow series, by instrument"
        )
        self.invalid = c(
            "tradeobs.agent.measurements.invalid",
            "{measurement}",
            "Measurements or attributes dropped or fixed, by instrument and reason",
        )
