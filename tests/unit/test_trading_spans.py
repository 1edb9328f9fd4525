"""trading._spans: order step spans emitted without the SDK's start/end equal what the SDK path exports."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import sampling as s
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tradeobs_agent import trading
from tradeobs_agent.agent import _reset_for_tests
from tradeobs_agent.metrics import Registry
from tradeobs_agent.trading._spans import StepSpans


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    _reset_for_tests()
    yield
    _reset_for_tests()


class _Odd:
    def __str__(self) -> str:
        return "odd"


class _Noting(SpanProcessor):
    """A processor of the user's own: its presence must send steps through the SDK path."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        self.started.append(span.name)


def _run(provider: TracerProvider, exporter: InMemorySpanExporter) -> list[Any]:
    tt = trading.TradingTelemetry(strategy="s1", venue="v1", registry=Registry())
    tt._tracer = lambda: provider.get_tracer("tradeobs.trading")  # type: ignore[method-assign]
    o = tt.order_signal("c-1", "AAPL", "buy", 10, price=100.0, order_type="limit")
    o.risk_check(passed=True, checks={"max_qty": 100, "odd": _Odd()})
    o.submitted()
    o.acked("v-9")
    o.fill(4, 100.1)
    o.fill(6, 100.2, expected_price=100.0)
    o2 = tt.order_signal("c-2", "AAPL", "sell", 5)
    o2.risk_check(passed=False, reason="too big")
    tt.close()
    return list(exporter.get_finished_spans())


def _shape(spans: list[Any]) -> list[tuple[Any, ...]]:
    by_id = {sp.context.span_id: sp for sp in spans}
    out = []
    for sp in spans:
        parent = by_id.get(sp.parent.span_id).name if sp.parent is not None else None  # type: ignore[union-attr]
        out.append(
            (
                sp.name,
                parent,
                sp.kind,
                dict(sp.attributes),
                sp.status.status_code,
                sp.status.description,
                dict(sp.resource.attributes),
                sp.instrumentation_scope,
                sp.context.trace_flags,
                sp.context.is_remote,
                sp.parent.trace_id == sp.context.trace_id if sp.parent is not None else True,
                len(sp.events),
                len(sp.links),
                sp.dropped_attributes,
                sp.start_time is not None and sp.end_time is not None and sp.start_time <= sp.end_time,
            )
        )
    return sorted(out, key=repr)


def _provider(sampler: s.Sampler = s.ALWAYS_ON, **kw: Any) -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider(sampler=sampler, shutdown_on_exit=False, **kw)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.mark.parametrize(
    "sampler", [s.ALWAYS_ON, s.ParentBased(s.ALWAYS_ON), s.TraceIdRatioBased(1.0), s.ParentBasedTraceIdRatio(1.0)]
)
def test_fast_steps_export_the_same_spans_as_the_sdk_path(sampler: s.Sampler) -> None:
    fast_provider, fast_exp = _provider(sampler)
    assert StepSpans.for_tracer(fast_provider.get_tracer("x")) is not None
    fast = _run(fast_provider, fast_exp)

    slow_provider, slow_exp = _provider(sampler)
    noting = _Noting()
    slow_provider.add_span_processor(noting)
    assert StepSpans.for_tracer(slow_provider.get_tracer("x")) is None
    slow = _run(slow_provider, slow_exp)

    assert {"risk_check", "submit", "ack", "fill"} <= set(noting.started)  # the SDK path really ran
    assert len(fast) == len(slow) == 8
    assert _shape(fast) == _shape(slow)
    (reject,) = [sp for sp in fast if sp.name == "risk_check" and sp.status.status_code is StatusCode.ERROR]
    assert reject.status.description == "too big"


def test_attribute_limits_are_applied_like_the_sdk() -> None:
    from opentelemetry.sdk.trace import SpanLimits

    limits = SpanLimits(max_span_attributes=2, max_span_attribute_length=3)
    fast_provider, fast_exp = _provider(span_limits=limits)
    slow_provider, slow_exp = _provider(span_limits=limits)
    slow_provider.add_span_processor(_Noting())
    assert _shape(_run(fast_provider, fast_exp)) == _shape(_run(slow_provider, slow_exp))


def test_fast_path_only_when_exact() -> None:
    provider, _ = _provider()
    assert StepSpans.for_tracer(provider.get_tracer("x")) is not None
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    assert StepSpans.for_tracer(provider.get_tracer("x")) is not None
    for sampler in (s.ALWAYS_OFF, s.ParentBased(s.ALWAYS_ON, local_parent_sampled=s.ALWAYS_OFF)):
        other, _ = _provider(sampler)
        assert StepSpans.for_tracer(other.get_tracer("x")) is None
    from opentelemetry.trace import NoOpTracer

    assert StepSpans.for_tracer(NoOpTracer()) is None


def test_processor_added_later_switches_open_orders_to_the_sdk_path() -> None:
    provider, exporter = _provider()
    tt = trading.TradingTelemetry(strategy="s1", venue="v1", registry=Registry())
    tt._tracer = lambda: provider.get_tracer("tradeobs.trading")  # type: ignore[method-assign]
    o = tt.order_signal("c-1", "AAPL", "buy", 10)
    noting = _Noting()
    provider.add_span_processor(noting)
    o.submitted()
    o.fill(10, 1.0)
    tt.close()
    assert noting.started == ["submit", "fill"]
    names = sorted(sp.name for sp in exporter.get_finished_spans())
    assert names == ["fill", "order", "submit"]


def test_without_an_sdk_steps_are_no_ops() -> None:
    tt = trading.TradingTelemetry(strategy="s1", venue="v1", registry=Registry())
    o = tt.order_signal("c-1", "AAPL", "buy", 10)
    assert o.trace_id is None
    o.risk_check(passed=True)
    o.submitted()
    o.acked("v")
    o.fill(10, 1.0)
    assert o.closed
    assert o.context is not None
    tt.close()
