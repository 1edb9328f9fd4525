"""Feed the registry's in-process state into OTel ``MetricReader`` collections.

The OTel Python SDK (1.45) has no public MetricProducer hook, so we wrap each
reader's collect callback (the one ``MeterProvider`` installs) and append a
``tradeobs`` scope holding our instruments' current values. The reader then
exports them exactly like SDK instruments: OTLP, the Prometheus endpoint and
in-memory test readers all see the same numbers. Our data is always cumulative.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics import Exemplar
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

from ..metrics import BoundCounter, BoundGauge, BoundHistogram, Registry

_CUMULATIVE = AggregationTemporality.CUMULATIVE


def collect(registry: Registry) -> list[Metric]:
    """Every instrument with at least one series, as OTel ``Metric`` objects."""
    registry.run_collect_hooks()
    now = time.time_ns()
    out: list[Metric] = []
    for inst in registry.instruments():
        series = inst.series()
        if not series:
            continue
        data: Any
        if inst.kind in ("counter", "updowncounter"):
            points = [
                NumberDataPoint(s.attributes, s.start_ns, now, s.value) for s in series if isinstance(s, BoundCounter)
            ]
            data = Sum(points, _CUMULATIVE, is_monotonic=inst.kind == "counter")
        elif inst.kind == "gauge":
            points = [
                NumberDataPoint(s.attributes, s.start_ns, now, s.value)
                for s in series
                if isinstance(s, BoundGauge) and s.value is not None
            ]
            if not points:
                continue
            data = Gauge(points)
        else:
            hpoints = []
            for s in series:
                if not isinstance(s, BoundHistogram):
                    continue
                counts, total, lo, hi = s.snapshot()
                n = sum(counts)
                exemplars = [
                    Exemplar({}, value, t, span_id, trace_id)
                    for (value, t, trace_id, span_id) in list(s.exemplars.values())
                ]
                hpoints.append(
                    HistogramDataPoint(
                        s.attributes,
                        s.start_ns,
                        now,
                        n,
                        total,
                        counts,
                        list(s._bounds),
                        lo if n else 0.0,
                        hi if n else 0.0,
                        exemplars,
                    )
                )
            data = Histogram(hpoints, _CUMULATIVE)
        out.append(Metric(inst.name, inst.description, inst.unit, data))
    return out


def attach(
    reader: MetricReader, registry: Registry, resource: Callable[[], Resource], scope: InstrumentationScope
) -> None:
    """Make ``reader`` include ``registry`` in every collection. Call after ``MeterProvider(...)``."""
    # The SDK annotates this callback loosely (and wrongly); it is called as (reader, timeout_millis=...).
    original: Any = reader._collect

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

    reader._set_collect_callback(collect_with_registry)  # type: ignore[arg-type]
