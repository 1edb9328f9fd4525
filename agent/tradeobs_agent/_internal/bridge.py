"""Feed the registry's snapshot into OTel ``MetricReader`` collections.

>>> attach(reader, registry, lambda: resource, scope)      # doctest: +SKIP

The OTel Python SDK (1.45) has no public MetricProducer hook, so each reader's
collect callback (the one ``MeterProvider`` installs) is wrapped
(``otel_private.wrap_collect``) to append a ``tradeobs`` scope holding the
registry's :class:`~tradeobs_agent.metrics.Snapshot`, converted by
:class:`OtelMetrics`. The reader then exports it exactly like SDK instruments:
OTLP and in-memory test readers see the same numbers as the Prometheus
endpoint and the live stream. Our data is always cumulative.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics import Exemplar as OtelExemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from ..metrics import GaugeFamily, HistogramFamily, Registry, Snapshot, SumFamily
from . import otel_private

__all__ = ["OtelMetrics", "attach", "collect"]

_CUMULATIVE = AggregationTemporality.CUMULATIVE


class OtelMetrics:
    """Snapshot families -> OTel ``Metric`` s (a :class:`~tradeobs_agent.metrics.SnapshotVisitor`)."""

    def __init__(self, now_ns: int) -> None:
        self.now = now_ns

    def sum(self, f: SumFamily) -> Metric:
        now = self.now
        points = [NumberDataPoint(p.attributes, p.start_ns, now, p.value) for p in f.points]
        return Metric(f.name, f.description, f.unit, Sum(points, _CUMULATIVE, is_monotonic=f.monotonic))

    def gauge(self, f: GaugeFamily) -> Metric:
        now = self.now
        points = [NumberDataPoint(p.attributes, p.start_ns, now, p.value) for p in f.points]
        return Metric(f.name, f.description, f.unit, Gauge(points))

    def histogram(self, f: HistogramFamily) -> Metric:
        now, bounds = self.now, list(f.bounds)
        points = []
        for p in f.points:
            n = p.observed
            exemplars = [OtelExemplar({}, e.value, e.time_ns, e.span_id, e.trace_id) for e in p.exemplars.values()]
            points.append(
                HistogramDataPoint(
                    p.attributes,
                    p.start_ns,
                    now,
                    n,
                    p.sum,
                    list(p.counts),
                    bounds,
                    p.min if n else 0.0,
                    p.max if n else 0.0,
                    exemplars,
                )
            )
        return Metric(f.name, f.description, f.unit, Histogram(points, _CUMULATIVE))


def collect(registry: Registry) -> list[Metric]:
    """Every family of the registry's snapshot, as OTel ``Metric`` objects."""
    snap: Snapshot = registry.snapshot()
    return list(snap.accept(OtelMetrics(snap.time_ns)))


def attach(
    reader: MetricReader, registry: Registry, resource: Callable[[], Resource], scope: InstrumentationScope
) -> None:
    """Make ``reader`` include ``registry`` in every collection. Call after ``MeterProvider(...)``."""

    def wrap(original: Any) -> Callable[..., MetricsData | None]:
        # The SDK annotates this callback loosely; it is called as (reader, timeout_millis=...).
        def collect_with_registry(r: MetricReader, timeout_millis: float = 10_000) -> MetricsData | None:
            data: MetricsData | None = original(r, timeout_millis=timeout_millis) if original is not None else None
            ours = collect(registry)
            if not ours:
                return data
            sm = ScopeMetrics(scope, ours, "")
            if data is None or not data.resource_metrics:
                return MetricsData([ResourceMetrics(resource(), [sm], "")])
            first = data.resource_metrics[0]
            merged = ResourceMetrics(first.resource, [*first.scope_metrics, sm], first.schema_url)
            return MetricsData([merged, *data.resource_metrics[1:]])

        return collect_with_registry

    otel_private.wrap_collect(reader, wrap)
