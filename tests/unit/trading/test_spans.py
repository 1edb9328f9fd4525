"""trading._spans: order step spans emitted without the SDK's start/end equal what the SDK path exports."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import sampling as s
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tradeobs_agent import trading
from tradeobs_agent.metrics import Registry
from tradeobs_agent.trading._spans import StepSpans


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
    tt._tracer_provider = provider
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
    tt._tracer_provider = provider
    o = tt.order_signal("c-1", "AAPL", "buy", 10)
    tt.flush()  # the signal is applied: its root span is on the fast path
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


def _root_details(spans: list[Any]) -> list[tuple[Any, ...]]:
    """What an exporter reads from each ``order`` root, beyond ``_shape``: events, links, timing, limits."""
    out = []
    for sp in spans:
        if sp.name != "order":
            continue
        out.append(
            (
                sp.parent,
                list(sp.attributes),  # order too: the SDK's attributes are ordered
                [(e.name, dict(e.attributes or {})) for e in sp.events],
                [(lk.context.trace_id == sp.context.trace_id, dict(lk.attributes or {})) for lk in sp.links],
                sp.dropped_attributes,
                sp.dropped_events,
                sp.dropped_links,
                type(sp.start_time),
                type(sp.end_time),
                sp.context.trace_state,
                sp.resource.schema_url,
                sp.instrumentation_scope.name,
            )
        )
    return sorted(out, key=repr)


def _run_life(provider: TracerProvider, exporter: InMemorySpanExporter) -> tuple[list[Any], list[Any]]:
    """Every way an order's root ends: filled, rejected, cancelled, evicted, an exception, user calls on it."""
    tt = trading.TradingTelemetry(strategy="s1", venue="v1", registry=Registry(), max_open_orders=3)
    tt._tracer_provider = provider
    user = provider.get_tracer("user")
    roots = []
    o = tt.order_signal("c-1", "AAPL", "buy", 10, price=100.0, order_type="limit")
    roots.append(o.span)
    with user.start_as_current_span("mine", context=o.context):  # the user's own span joins the order's trace
        pass
    o.span.set_attribute("user.note", "kept")
    o.risk_check(passed=True)
    o.submitted()
    o.acked("v-9")
    o.fill(10, 100.1)
    o2 = tt.order_signal("c-2", "MSFT", "sell", 5)
    roots.append(o2.span)
    o2.error(ValueError("venue said no"))  # an event on the root: the SDK's span takes over
    o2.span.set_attribute("user.tags", ("a", "b"))
    o2.rejected("too big")
    o3 = tt.order_signal("c-3", "MSFT", "buy", 5)
    roots.append(o3.span)
    o3.submitted()
    o3.cancelled("user")
    for i in range(5):  # max_open_orders=3: the first two are evicted, their roots end at eviction
        roots.append(tt.order_signal(f"e-{i}", "NVDA", "buy", 1).span)
    with user.start_as_current_span("request"):  # a current span: the root links to it
        roots.append(tt.order_signal("c-4", "AAPL", "buy", 1).span)
    tt.close()
    return list(exporter.get_finished_spans()), roots


@pytest.mark.parametrize("sampler", [s.ALWAYS_ON, s.ParentBased(s.ALWAYS_ON), s.TraceIdRatioBased(1.0)])
def test_fast_root_exports_what_the_sdk_root_exports(sampler: s.Sampler) -> None:
    from tradeobs_agent.trading._spans import RootSpan

    fast_provider, fast_exp = _provider(sampler)
    fast, fast_roots = _run_life(fast_provider, fast_exp)
    slow_provider, slow_exp = _provider(sampler)
    slow_provider.add_span_processor(_Noting())
    slow, slow_roots = _run_life(slow_provider, slow_exp)

    assert sum(type(r) is RootSpan for r in fast_roots) == len(fast_roots) - 1  # all but the linked one
    assert not any(type(r) is RootSpan for r in slow_roots)
    assert len(fast) == len(slow)
    assert _shape(fast) == _shape(slow)
    assert _root_details(fast) == _root_details(slow)
    outcomes = sorted(sp.attributes.get("order.outcome", "-") for sp in fast if sp.name == "order")
    assert outcomes == ["cancelled", *["closed"] * 3, *["evicted"] * 3, "filled", "rejected"]
    (mine,) = [sp for sp in fast if sp.name == "mine"]
    (root1,) = [sp for sp in fast if sp.name == "order" and sp.attributes["order.id"] == "c-1"]
    assert mine.parent is not None and mine.parent.span_id == root1.context.span_id
    assert mine.context.trace_id == root1.context.trace_id
    assert root1.attributes["user.note"] == "kept"
    assert root1.start_time < mine.start_time <= root1.end_time


def test_fast_root_follows_the_sampler_decision() -> None:
    provider, exporter = _provider(s.TraceIdRatioBased(0.0))
    tt = trading.TradingTelemetry(strategy="s1", venue="v1", registry=Registry())
    tt._tracer_provider = provider
    o = tt.order_signal("c-1", "AAPL", "buy", 10)
    assert not o.span.is_recording() and not o.span.get_span_context().trace_flags.sampled
    assert o.trace_id is not None  # a valid, unsampled context, as the SDK gives
    o.submitted()
    o.fill(10, 1.0)
    assert exporter.get_finished_spans() == ()


def test_fast_root_ended_twice_and_used_after_end_does_nothing() -> None:
    provider, exporter = _provider()
    tt = trading.TradingTelemetry(strategy="s1", venue="v1", registry=Registry())
    tt._tracer_provider = provider
    o = tt.order_signal("c-1", "AAPL", "buy", 10)
    o.done()
    o.span.end()
    o.span.set_attribute("late", 1)
    o.span.add_event("late")
    assert not o.span.is_recording()
    (root,) = exporter.get_finished_spans()
    assert "late" not in root.attributes and root.events == ()


# --------------------------------------------------------------------------- spans written to OTLP where they end


class _FastEncodingExporter(SpanExporter):
    """Stands for the agent's OTLP exporter with the fast encoder (``CountingSpanExporter.fast_encoding``)."""

    fast_encoding = True

    def __init__(self) -> None:
        self.items: list[Any] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.items.extend(spans)
        return SpanExportResult.SUCCESS


def _otlp_shape(items: list[Any]) -> list[tuple[Any, ...]]:
    """The exported request, ids replaced by span names and times by their order, for comparing two runs."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from tradeobs_agent._internal.otlp_encode import encode_spans

    req = MessageToDict(ExportTraceServiceRequest.FromString(encode_spans(items)))
    out = []
    for rs in req["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            spans = ss["spans"]
            names = {sp["spanId"]: sp["name"] for sp in spans}
            for sp in spans:
                assert int(sp["startTimeUnixNano"]) <= int(sp["endTimeUnixNano"])
                body = {k: v for k, v in sp.items() if k not in ("traceId", "spanId", "parentSpanId")}
                body.pop("startTimeUnixNano")
                body.pop("endTimeUnixNano")
                for ev in body.get("events", ()):
                    ev.pop("timeUnixNano")
                for link in body.get("links", ()):
                    assert link.pop("traceId") and link.pop("spanId")
                parent = names.get(sp.get("parentSpanId"), "?") if "parentSpanId" in sp else None
                out.append((repr(rs["resource"]), repr(ss["scope"]), repr(parent), repr(sorted(body.items()))))
    return sorted(out)


def test_spans_written_to_otlp_where_they_end_export_what_the_sdk_path_exports() -> None:
    from opentelemetry.sdk.resources import Resource

    from tradeobs_agent._internal.otlp_encode import Encoded

    resource = Resource.create({"service.name": "t", "service.instance.id": "one"})
    fast_provider = TracerProvider(shutdown_on_exit=False, resource=resource)
    fast_exp = _FastEncodingExporter()
    fast_provider.add_span_processor(BatchSpanProcessor(fast_exp, schedule_delay_millis=60_000))
    assert StepSpans.for_tracer(fast_provider.get_tracer("x"))._encoded  # type: ignore[union-attr]
    _run(fast_provider, InMemorySpanExporter())
    _run_life(fast_provider, InMemorySpanExporter())
    fast_provider.force_flush()

    slow_provider, slow_exp = _provider(resource=resource)
    slow_provider.add_span_processor(_Noting())
    _run(slow_provider, slow_exp)
    _run_life(slow_provider, slow_exp)

    assert sum(type(i) is Encoded for i in fast_exp.items) > len(fast_exp.items) // 2  # most went the short way
    assert len(fast_exp.items) == len(slow_exp.get_finished_spans())
    assert _otlp_shape(fast_exp.items) == _otlp_shape(list(slow_exp.get_finished_spans()))
    fast_provider.shutdown()


class _Slow(SpanExporter):
    """An exporter that takes its time (a big write, a busy host), or none at all until released (a stuck one)."""

    def __init__(self, delay: float = 0.0, stuck: bool = False) -> None:
        import threading

        self.delay, self.got = delay, 0
        self.released = threading.Event()
        if not stuck:
            self.released.set()

    def export(self, spans: Any) -> SpanExportResult:
        import time

        self.released.wait(30)
        time.sleep(self.delay)
        self.got += len(spans)
        return SpanExportResult.SUCCESS


def _burst(exporter: SpanExporter, orders: int) -> tuple[TracerProvider, int]:
    """``orders`` orders (3 spans each) into a batch queue of 16, their steps applied off the trading thread."""
    import threading

    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=16, max_export_batch_size=8, schedule_delay_millis=1000)
    )
    registry = Registry()
    tt = trading.TradingTelemetry(strategy="s1", venue="v1", registry=registry)
    tt._tracer_provider = provider
    for i in range(orders):
        o = tt.order_signal(f"c-{i}", "AAPL", "buy", 10, price=100.0)
        o.submitted()
        o.fill(10, 100.0)
    closer = threading.Thread(target=tt.close)  # the journal's last entries applied on a background thread
    closer.start()
    closer.join(60)
    return provider, orders * 3


def _dropped_spans() -> float:
    from tradeobs_agent.metrics import get_registry

    dropped = get_registry().get("tradeobs.agent.items.dropped")
    if dropped is None:
        return 0
    return sum(s.value for s in dropped.series() if s.attributes == {"signal": "traces", "reason": "queue_full"})


def test_a_burst_larger_than_the_export_queue_is_exported_not_dropped() -> None:
    """The SDK's emit dropped the oldest span of a full queue (2,048 by default: about 700 orders' steps, or what
    a shutdown's last journal flush emits at once) with one "Queue full" log line, counted as one drop: at exit a
    script lost hundreds of its last orders' spans, on Python 3.12 in most runs. A full queue now gets a moment
    to make room off the trading thread."""
    exporter = _Slow(delay=0.002)
    provider, total = _burst(exporter, 200)
    provider.shutdown()
    assert exporter.got == total
    assert _dropped_spans() == 0


def test_a_queue_that_does_not_drain_costs_one_wait_and_every_dropped_span_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    from tradeobs_agent._internal import gil

    misses: list[float] = []  # waits for room that found none
    missed = gil.QueueRoom.missed

    def counted(room: Any) -> None:
        misses.append(time.monotonic())
        missed(room)

    monkeypatch.setattr(gil.QueueRoom, "missed", counted)
    exporter = _Slow(stuck=True)
    began = time.monotonic()
    provider, total = _burst(exporter, 100)
    took = time.monotonic() - began
    exporter.released.set()
    provider.shutdown()
    # The worker holds one batch (8), the queue 16: the rest were dropped, each counted; and after a wait that
    # found no room, the next ones did not wait for ROOM_QUIET seconds (not 0.1 s for each of ~270 spans).
    assert exporter.got + _dropped_spans() == total
    assert exporter.got <= 8 + 16
    assert 1 <= len(misses) <= 1 + took / gil.ROOM_QUIET, (misses, took)


def test_at_shutdown_a_queue_that_drains_slowly_loses_nothing_within_the_bound() -> None:
    """At shutdown the last journal flush puts every order's steps at once. A worker exporting slowly (a loaded
    machine: 512 spans to the trace file took more than 0.1 s under 8 CPU burners on 2 cores) is not a stuck one,
    but one wait of 0.1 s that found no room was followed by a second with no wait at all: hundreds of a script's
    last order spans were dropped at SIGTERM (1,536-1,877 of 2,000 roots written), counted in a metric nobody read.
    While the agent stops, a full queue is now waited for until the shutdown's deadline."""
    from tradeobs_agent._internal import gil

    exporter = _Slow(delay=gil.ROOM_WAIT * 1.5)  # each batch of 8 takes longer than one wait for room
    gil.stopping(True, within=60.0)
    try:
        provider, total = _burst(exporter, 20)
    finally:
        gil.stopping(False)
    provider.shutdown()
    assert exporter.got == total
    assert _dropped_spans() == 0
