"""_internal/bridge: an OTel reader's collection carries the registry's snapshot next to the SDK's own metrics."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Gauge, Histogram, InMemoryMetricReader, Sum
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from tradeobs_agent._internal import bridge
from tradeobs_agent._internal.providers import SCOPE
from tradeobs_agent.metrics import Registry


def _collect(reader: InMemoryMetricReader) -> dict[str, tuple[Any, Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        m.name: (sm.scope.name, m.data) for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }


def test_every_kind_arrives_exactly_next_to_sdk_instruments_under_one_resource() -> None:
    reg = Registry()
    reader = InMemoryMetricReader()
    resource = Resource({"service.name": "bridge-test"})
    mp = MeterProvider(metric_readers=[reader], resource=resource, shutdown_on_exit=False)
    bridge.attach(reader, reg, lambda: resource, SCOPE)
    mp.get_meter("sdk").create_counter("sdk.calls").add(1)
    reg.counter("c", "{x}", "C").add(3, {"side": "buy"})
    reg.updown_counter("u").add(-2)
    reg.gauge("g").set(1.5)
    reg.gauge("unset").bind(a=1)  # no value yet: not exported
    span = TracerProvider(shutdown_on_exit=False).get_tracer("t").start_span("fill")
    reg.histogram("h", "s", bounds=[0.1, 1.0]).record(0.5, exemplar=span)
    got = _collect(reader)
    data = reader.get_metrics_data()
    assert data is not None and len(data.resource_metrics) == 1
    assert data.resource_metrics[0].resource.attributes["service.name"] == "bridge-test"
    assert got["sdk.calls"][0] == "sdk" and got["c"][0] == SCOPE.name
    c = got["c"][1]
    assert isinstance(c, Sum) and c.is_monotonic and c.data_points[0].value == 3
    assert dict(c.data_points[0].attributes) == {"side": "buy"}
    u = got["u"][1]
    assert isinstance(u, Sum) and not u.is_monotonic and u.data_points[0].value == -2
    assert isinstance(got["g"][1], Gauge) and got["g"][1].data_points[0].value == 1.5
    assert "unset" not in got
    h = got["h"][1]
    assert isinstance(h, Histogram)
    (p,) = h.data_points
    assert (p.count, p.sum, list(p.bucket_counts), list(p.explicit_bounds)) == (1, 0.5, [0, 1, 0], [0.1, 1.0])
    assert (p.min, p.max) == (0.5, 0.5)
    (ex,) = p.exemplars
    assert ex.trace_id == span.get_span_context().trace_id and ex.value == 0.5
    mp.shutdown()


def test_an_empty_registry_leaves_the_sdk_collection_as_it_was() -> None:
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    bridge.attach(reader, Registry(), lambda: Resource({}), SCOPE)
    mp.get_meter("sdk").create_counter("only.sdk").add(1)
    assert set(_collect(reader)) == {"only.sdk"}
    mp.shutdown()


def test_a_reader_with_no_sdk_instruments_still_exports_the_registry() -> None:
    reg = Registry()
    reader = InMemoryMetricReader()
    resource = Resource({"service.name": "r"})
    mp = MeterProvider(metric_readers=[reader], resource=resource, shutdown_on_exit=False)
    bridge.attach(reader, reg, lambda: resource, SCOPE)
    reg.counter("alone").add(1)
    assert set(_collect(reader)) == {"alone"}
    mp.shutdown()
