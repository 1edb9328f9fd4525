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

from bisect import bisect_left
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

from .._errors import warn_once
from ..metrics import (
    Exemplar,
    Family,
    GaugeFamily,
    HistogramFamily,
    HistogramPoint,
    NumberPoint,
    Registry,
    Snapshot,
    SumFamily,
)
from ..metrics._clock import points_ns
from . import otel_private
from .gil import Slices
from .otlp_encode import FamilyData

__all__ = ["OtelMetrics", "attach", "collect", "collect_encoded", "families_from_otel"]

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
    """Every family of the registry's snapshot, as OTel ``Metric`` objects. Runs on a reader's thread, so it
    gives the GIL back to the trading thread between families (``gil.Slices``), as the export's encoder
    does between points: a whole collection is milliseconds of Python at 1,000 symbols."""
    slices = Slices()
    snap: Snapshot = registry.snapshot(offer=slices.offer)
    out = []
    for metric in snap.accept(OtelMetrics(snap.time_ns)):
        out.append(metric)
        slices.offer()
    return out


def collect_encoded(registry: Registry) -> list[Metric]:
    """The registry's instruments for the agent's own OTLP exporter (its fast encoder installed): each ``Metric``
    holds its instrument (``otlp_encode.FamilyData``), whose family is read when the exporter encodes it and
    written straight to OTLP bytes, with no OTel point objects made per series (``otlp_encode.encode_family``)."""
    registry.run_collect_hooks()
    now = points_ns()
    out = []
    for inst in registry.instruments():
        data: Any = FamilyData(inst.stream, now, _otel_data)  # read as Metric.data only by the fast encoder
        out.append(Metric(inst.name, inst.description, inst.unit, data))
    return out


def _otel_data(family: Family, now_ns: int) -> Any:
    return family.accept(OtelMetrics(now_ns)).data


def attach(
    reader: MetricReader,
    registry: Registry,
    resource: Callable[[], Resource],
    scope: InstrumentationScope,
    *,
    encoded: bool = False,
) -> None:
    """Make ``reader`` include ``registry`` in every collection. Call after ``MeterProvider(...)``. ``encoded``:
    the reader's exporter is the agent's OTLP one (gRPC or HTTP) with the fast encoder (:func:`collect_encoded`)."""
    read = collect_encoded if encoded else collect

    def wrap(original: Any) -> Callable[..., MetricsData | None]:
        # The SDK annotates this callback loosely; it is called as (reader, timeout_millis=...).
        def collect_with_registry(r: MetricReader, timeout_millis: float = 10_000) -> MetricsData | None:
            data: MetricsData | None = original(r, timeout_millis=timeout_millis) if original is not None else None
            ours = read(registry)
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


def families_from_otel(data: MetricsData | None, skip_scope: str = "tradeobs") -> list[Family]:
    """The SDK's own instruments (e.g. HTTP server metrics) in one collection, as snapshot families.

    The inverse of :class:`OtelMetrics`, so a worker group's snapshot holds them too and the shared endpoint
    sums them over workers (gauges: one series per process). Only cumulative sums, gauges and explicit-bucket
    histograms exist in the agent's readers; anything else is left out (said once). ``skip_scope`` is the
    agent's own scope (the registry, already in the snapshot).
    """
    out: list[Family] = []
    if data is None:
        return out
    seen: set[str] = set()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            if sm.scope.name == skip_scope:
                continue
            for m in sm.metrics:
                if m.name in seen:
                    continue
                fam = _family(m)
                if fam is not None:
                    seen.add(m.name)
                    out.append(fam)
    return out


def _key(attributes: Any) -> tuple[Any, dict[str, Any]]:
    attrs = {str(k): v for k, v in (attributes or {}).items() if isinstance(v, str | bool | int | float)}
    return tuple(sorted(attrs.items())), attrs


def _family(m: Metric) -> Family | None:
    d = m.data
    if isinstance(d, Sum) and d.aggregation_temporality == _CUMULATIVE:
        points = [NumberPoint(*_key(p.attributes), p.start_time_unix_nano, p.value) for p in d.data_points]
        return SumFamily(m.name, m.unit or "", m.description or "", bool(d.is_monotonic), points, "sum")
    if isinstance(d, Gauge):
        points = [NumberPoint(*_key(p.attributes), p.start_time_unix_nano or 0, p.value) for p in d.data_points]
        return GaugeFamily(m.name, m.unit or "", m.description or "", points, "pid")
    if isinstance(d, Histogram) and d.aggregation_temporality == _CUMULATIVE and d.data_points:
        bounds = tuple(float(b) for b in d.data_points[0].explicit_bounds)
        hpoints = []
        for p in d.data_points:
            if tuple(p.explicit_bounds) != bounds:
                continue
            counts = list(p.bucket_counts)
            exemplars = {}
            for e in p.exemplars or ():
                if e.trace_id and e.span_id:
                    i = bisect_left(bounds, e.value)
                    exemplars[i] = Exemplar(float(e.value), e.time_unix_nano, e.trace_id, e.span_id)
            lo = p.min if p.count else float("inf")
            hi = p.max if p.count else float("-inf")
            hpoints.append(
                HistogramPoint(
                    *_key(p.attributes), p.start_time_unix_nano, counts, sum(counts), p.sum, lo, hi, exemplars
                )
            )
        return HistogramFamily(m.name, m.unit or "", m.description or "", bounds, hpoints, "sum")
    warn_once(f"bridge:kind:{m.name}", "tradeobs: SDK metric %r is not shared between workers (its kind)", m.name)
    return None
