"""_internal.otlp_encode: the fast span encoder produces what the reference OTLP encoder produces."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as reference
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from tradeobs_agent._internal import otel_private
from tradeobs_agent._internal.exporters import CountingSpanExporter
from tradeobs_agent._internal.otel_private import _RawStub
from tradeobs_agent._internal.otlp_encode import (
    UNSET_STATUS,
    Encoded,
    encode_logs,
    encode_spans,
    encode_step_span,
    install_fast_log_encoding,
    install_fast_span_encoding,
)
from tradeobs_agent._internal.scrub import scrub_logs, scrub_spans
from tradeobs_agent.metrics import Registry

from ..conftest import PointsAlive

_text = st.text(max_size=12)
_scalar = st.one_of(
    _text,
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.binary(max_size=8),
)
_value = st.one_of(
    _scalar,
    st.lists(st.one_of(_text), max_size=3).map(tuple),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=3),
)
_attrs = st.dictionaries(_text, _value, max_size=5)
_ids = st.integers(min_value=1, max_value=2**64 - 1)
_trace_ids = st.integers(min_value=1, max_value=2**128 - 1)
_times = st.integers(min_value=0, max_value=2**63)

RESOURCES = [
    Resource.create({"service.name": "a", "n": 1}),
    Resource.create({"service.name": "a", "n": 1}),  # equal to the first: one ResourceSpans for both
    Resource({"service.name": "b"}, schema_url="https://example.com/s"),
]
SCOPES = [
    InstrumentationScope("tradeobs.trading", "0.1.0"),
    InstrumentationScope("x", None, "https://example.com/x", {"k": "v"}),
    None,
]


@st.composite
def _context(draw: Any, remote: bool | None = None) -> SpanContext:
    state = draw(st.sampled_from([None, TraceState([("vendor", "v1"), ("k2", "x")])]))
    return SpanContext(
        draw(_trace_ids),
        draw(_ids),
        is_remote=draw(st.booleans()) if remote is None else remote,
        trace_flags=TraceFlags(draw(st.sampled_from([0, 1, 3]))),
        trace_state=state,
    )


@st.composite
def _span(draw: Any) -> ReadableSpan:
    status = draw(
        st.sampled_from(
            [
                Status(StatusCode.UNSET),
                Status(StatusCode.OK),
                Status(StatusCode.ERROR, "boom"),
                Status(StatusCode.ERROR),
            ]
        )
    )
    events = [Event(draw(_text), draw(_attrs), draw(_times)) for _ in range(draw(st.integers(0, 2)))]
    links = [Link(draw(_context()), draw(_attrs)) for _ in range(draw(st.integers(0, 2)))]
    return ReadableSpan(
        name=draw(_text),
        context=draw(_context(remote=False)),
        parent=draw(st.one_of(st.none(), _context())),
        resource=draw(st.sampled_from(RESOURCES)),
        attributes=draw(_attrs),
        events=events,
        links=links,
        kind=draw(st.sampled_from(list(SpanKind))),
        status=status,
        start_time=draw(_times),
        end_time=draw(_times),
        instrumentation_scope=draw(st.sampled_from(SCOPES)),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(_span(), max_size=6))
def test_equals_the_reference_encoder(spans: list[ReadableSpan]) -> None:
    """The fast encoder scrubs secrets as it encodes: it writes what the reference writes for the scrubbed spans."""
    assert ExportTraceServiceRequest.FromString(encode_spans(spans)) == reference(scrub_spans(spans))


def test_trading_spans_are_byte_identical() -> None:
    ctx = SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1))
    child = SpanContext(0xABC, 0x123, is_remote=False, trace_flags=TraceFlags(1))
    attrs = {"order.id": "c-1", "symbol": "AAPL", "order.qty": 10.0, "risk.passed": True, "n": 3}
    spans = [
        ReadableSpan(
            "order", ctx, None, RESOURCES[0], attrs, start_time=1, end_time=2, instrumentation_scope=SCOPES[0]
        ),
        ReadableSpan(
            "fill",
            child,
            ctx,
            RESOURCES[0],
            {"fill.price": math.pi},
            start_time=2,
            end_time=3,
            instrumentation_scope=SCOPES[0],
        ),
    ]
    for _ in range(2):  # the second time from the caches
        assert encode_spans(spans) == reference(spans).SerializeToString()


def test_float_attributes_are_byte_identical_for_every_key_length_and_field() -> None:
    """Floats are written inline after a remembered prefix per field and key: keys whose KeyValue needs a one- or a
    two-byte length (116 and 117 characters), non-ASCII, a secret name (masked), as span, event and link
    attributes, byte for byte what the reference writes (the second time from the remembered prefixes)."""
    ctx = SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1))
    attrs = {k: v for k, v in (("q", 1.5), ("k" * 116, -0.0), ("k" * 117, math.inf), ("é" * 70, 2.5e-300))}
    attrs["api_key"] = 1.25
    span = ReadableSpan(
        "fill",
        ctx,
        None,
        RESOURCES[0],
        attrs,
        events=[Event("e", attrs, 5)],
        links=[Link(ctx, attrs)],
        start_time=1,
        end_time=2,
        instrumentation_scope=SCOPES[0],
    )
    for _ in range(2):
        assert encode_spans([span]) == reference(scrub_spans([span])).SerializeToString()


def test_the_attribute_cache_is_bounded_and_keeps_what_repeats() -> None:
    """Two generations of ``_KV_GENERATION`` entries: one-off values (order ids) pass through, bounded; a value that
    repeats within a generation (a symbol) is carried into the next one; every encoding stays the reference's."""
    from tradeobs_agent._internal import otlp_encode as enc

    ctx = SpanContext(1, 2, is_remote=False)
    gen = enc._KV_GENERATION
    for i in range(3 * gen):
        spans = [ReadableSpan("o", ctx, None, RESOURCES[0], {"order.id": f"o-{i}", "symbol": "AAPL"}, start_time=1,
                              end_time=2, instrumentation_scope=SCOPES[0])]  # fmt: skip
        assert encode_spans(spans) == reference(spans).SerializeToString()
        assert len(enc._kv_cache) <= gen and len(enc._kv_old) <= gen
    symbol = next(k for k in enc._kv_cache if k[1] == "symbol")
    assert symbol[3] == "AAPL"  # still cached after 3 generations of order ids went through
    assert not any(k[3] == "o-0" for k in (*enc._kv_cache, *enc._kv_old))  # an old one-off value is gone


def _sender(exporter: Any) -> Any:
    """The stub that sends an exporter's bytes, under the wrapper that reads the collector's throttling hints."""
    client = exporter._client
    assert isinstance(client, otel_private._HintedStub)
    return client._stub


def test_installed_on_the_grpc_exporter_with_reference_fallback() -> None:
    exporter = OTLPSpanExporter(endpoint="http://127.0.0.1:9", insecure=True)
    try:
        counting = CountingSpanExporter(exporter, "traces", "127.0.0.1:9", Registry().self_metrics)
        assert counting.fast_encoding
        ctx = SpanContext(1, 2, is_remote=False)
        ok = [ReadableSpan("s", ctx, None, RESOURCES[0], {"a": "b"}, start_time=1, end_time=2)]
        assert ExportTraceServiceRequest.FromString(exporter._translate_data(ok)) == reference(ok)
        bad = [ReadableSpan("s", ctx, None, RESOURCES[0], {"big": 2**70}, start_time=1, end_time=2)]
        # the reference encoder drops the attribute it cannot encode (and logs it); so must we
        assert ExportTraceServiceRequest.FromString(exporter._translate_data(bad)) == reference(bad)
        assert isinstance(_sender(exporter), _RawStub)  # the bytes go to gRPC as they are
        exporter._initialize_channel_and_stub()  # a reconnect makes the raw stub again
        assert isinstance(_sender(exporter), _RawStub)
    finally:
        exporter.shutdown()
    assert not install_fast_span_encoding(object())


def test_a_header_pair_span_attribute_is_masked_on_both_span_paths() -> None:
    """A span attribute holding a header as a sequence, ["Authorization", "Bearer xyz"], had its items scrubbed one
    by one, and neither item alone looks secret: the token left the process in clear, in the trace file (the fast
    encoder, as OTLP/gRPC) and through scrub_spans (OTLP/HTTP). Sequences follow the attribute rule for pairs now:
    the value is masked when the name is secret, unless it is itself a field name."""
    import json
    import os
    from pathlib import Path

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import tradeobs_agent

    memory = InMemorySpanExporter()
    http_like = CountingSpanExporter(memory, "traces", "test", Registry().self_metrics)
    assert not http_like.fast_encoding  # it scrubs with scrub_spans, as the agent's OTLP/HTTP exporter does
    agent = tradeobs_agent.init(service_name="t", otlp=False, prometheus=False, live=False, span_exporters=[http_like])
    attrs = {
        "header": ["Authorization", "Bearer xyz"],
        "api.header": ("X-Api-Key", "abc123secret"),
        "form.required": ["password", "email"],  # a list of field names: kept
        "symbols": ["AAPL", "MSFT"],
    }
    with agent.tracer().start_as_current_span("call broker", attributes=attrs) as span:
        span.add_event("sent", {"header": ("Cookie", "sess=abcdef1")})
    tradeobs_agent.shutdown()

    wire = [
        sp
        for line in (Path(os.environ["TRADEOBS_LOG_DIR"]) / "traces.jsonl").read_text().splitlines()
        for rs in json.loads(line)["resourceSpans"]
        for ss in rs["scopeSpans"]
        for sp in ss["spans"]
    ]
    (written,) = [sp for sp in wire if sp["name"] == "call broker"]
    in_file = {
        a["key"]: tuple(v["stringValue"] for v in a["value"]["arrayValue"]["values"]) for a in written["attributes"]
    }
    (exported,) = memory.get_finished_spans()
    for got in (in_file, exported.attributes):  # the trace file's, and what an OTLP/HTTP exporter is given
        assert tuple(got["header"]) == ("Authorization", "[REDACTED]"), got
        assert tuple(got["api.header"]) == ("X-Api-Key", "[REDACTED]"), got
        assert tuple(got["form.required"]) == ("password", "email") and tuple(got["symbols"]) == ("AAPL", "MSFT")
    assert "sess=abcdef1" not in json.dumps(written["events"]) and "[REDACTED]" in json.dumps(written["events"])
    assert tuple(exported.events[0].attributes["header"]) == ("Cookie", "[REDACTED]")


# --------------------------------------------------------------------------- logs


@st.composite
def _log(draw: Any) -> Any:
    from opentelemetry._logs import LogRecord, SeverityNumber
    from opentelemetry.sdk._logs import ReadableLogRecord

    ctx = draw(st.one_of(st.none(), _context(remote=False)))
    record = LogRecord(
        timestamp=draw(st.one_of(st.none(), _times)),
        observed_timestamp=draw(_times),
        trace_id=ctx.trace_id if ctx else None,
        span_id=ctx.span_id if ctx else None,
        trace_flags=ctx.trace_flags if ctx else None,
        severity_text=draw(st.one_of(st.none(), _text)),
        severity_number=draw(st.one_of(st.none(), st.sampled_from(list(SeverityNumber)))),
        body=draw(st.one_of(st.none(), _value, st.dictionaries(_text, _scalar, max_size=2))),
        attributes=draw(_attrs),
    )
    record.event_name = draw(st.one_of(st.none(), _text))
    return ReadableLogRecord(record, draw(st.sampled_from(RESOURCES)), draw(st.sampled_from(SCOPES)))


@settings(max_examples=300, deadline=None)
@given(st.lists(_log(), max_size=6))
def test_logs_equal_the_reference_encoder(batch: list[Any]) -> None:
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as reference_logs
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    assert ExportLogsServiceRequest.FromString(encode_logs(batch)) == reference_logs(scrub_logs(batch))


@pytest.mark.parametrize("body", ["", "x", "é" * 40, "a" * 125, "a" * 126, "a" * 127, "a" * 128, "a" * 20_000, 7])
def test_a_log_record_is_byte_identical_for_every_body_length_and_severity(body: Any) -> None:
    """Text bodies are written without _any_value, severities from tables: a body whose value or field needs a one-
    or a two-byte length, non-ASCII, every severity number and text, with and without a trace, byte for byte what
    the reference writes (twice: the second time from the tables)."""
    from opentelemetry._logs import LogRecord, SeverityNumber
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as reference_logs
    from opentelemetry.sdk._logs import ReadableLogRecord

    ctx = SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1))
    for number in [None, *SeverityNumber]:
        for text, trace in ((None, None), ("INFO", ctx), ("a severity text of its own", ctx)):
            record = LogRecord(
                timestamp=1_700_000_000_000_000_001,
                observed_timestamp=1_700_000_000_000_000_002,
                trace_id=trace.trace_id if trace else None,
                span_id=trace.span_id if trace else None,
                trace_flags=trace.trace_flags if trace else None,
                severity_text=text,
                severity_number=number,
                body=body,
                attributes={"stream": "execution", "symbol": "SYM01", "qty": 5.0},
            )
            readable = ReadableLogRecord(record, RESOURCES[0], SCOPES[0])
            for _ in range(2):
                assert encode_logs([readable]) == reference_logs([readable]).SerializeToString()


def test_a_structured_log_body_from_the_otel_logs_api_is_scrubbed_on_both_encoders() -> None:
    """The OTel logs API takes a dict or a list as a body; only text bodies were scrubbed, so a secret in a dict body
    left the process over OTLP in clear (a user's review)."""
    from opentelemetry._logs import LogRecord
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as reference_logs
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.sdk._logs import ReadableLogRecord

    from tradeobs_agent._internal.otlp_encode import encode_logs

    body = {"event": "login", "api_key": "abc123secretvalue", "headers": [["Authorization", "Basic dXNlcjpwYXNz"]]}
    batch = [ReadableLogRecord(LogRecord(observed_timestamp=1, body=body), RESOURCES[0], SCOPES[0])]
    # the gRPC exporter's own encoder, and OTLP/HTTP's: the SDK's encoder after scrub_logs
    for encoded in (ExportLogsServiceRequest.FromString(encode_logs(batch)), reference_logs(scrub_logs(batch))):
        text = str(encoded)
        assert "abc123secretvalue" not in text and "dXNlcjpwYXNz" not in text, text
        assert "login" in text and "[REDACTED]" in text
    assert body["api_key"] == "abc123secretvalue"  # the application's own object is left alone


def test_installed_on_the_grpc_log_exporter() -> None:
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    from tradeobs_agent._internal.exporters import CountingLogExporter

    exporter = OTLPLogExporter(endpoint="http://127.0.0.1:9", insecure=True)
    try:
        assert CountingLogExporter(exporter, "logs", "127.0.0.1:9", Registry().self_metrics).fast_encoding
    finally:
        exporter.shutdown()
    assert not install_fast_log_encoding(object())


# --------------------------------------------------------------------------- spans written where they end


@settings(max_examples=300, deadline=None)
@given(
    ctx=_context(remote=False),
    parent=st.one_of(st.none(), _context(remote=False)),
    name=_text,
    attrs=st.one_of(st.none(), _attrs),
    status=st.sampled_from(
        [UNSET_STATUS, Status(StatusCode.UNSET), Status(StatusCode.ERROR, "risk"), Status(StatusCode.OK)]
    ),
    start=_times,
    end=_times,
    resource=st.sampled_from(RESOURCES),
    scope=st.sampled_from(SCOPES),
)
def test_a_step_span_encoded_where_it_ends_equals_its_readable_span(
    ctx: SpanContext,
    parent: SpanContext | None,
    name: str,
    attrs: dict[str, Any] | None,
    status: Status,
    start: int,
    end: int,
    resource: Resource,
    scope: InstrumentationScope | None,
) -> None:
    """``encode_step_span`` (trading order/step spans) writes exactly what the exporter writes for the span."""
    readable = ReadableSpan(
        name=name,
        context=ctx,
        parent=parent,
        resource=resource,
        attributes=attrs if attrs is not None else {},
        kind=SpanKind.INTERNAL,
        status=status,
        start_time=start,
        end_time=end,
        instrumentation_scope=scope,
    )
    data = encode_step_span(
        ctx.trace_id,
        ctx.span_id,
        ctx.trace_state,
        parent.span_id if parent is not None else None,
        name,
        start,
        end,
        attrs,
        status,
    )
    pre = Encoded(data, resource, scope)
    assert encode_spans([pre]) == encode_spans([readable]) == reference(scrub_spans([readable])).SerializeToString()
    # mixed with SDK spans in one batch, grouped by resource and scope as the reference groups them
    other = ReadableSpan("other", ctx, None, resource, {"a": 1}, instrumentation_scope=scope, start_time=1, end_time=2)
    assert ExportTraceServiceRequest.FromString(encode_spans([pre, other])) == reference(scrub_spans([readable, other]))


# --------------------------------------------------------------------------- metrics


@st.composite
def _exemplar(draw: Any) -> Any:
    from opentelemetry.sdk.metrics import Exemplar

    ids = draw(st.booleans())
    return Exemplar(
        draw(_attrs),
        draw(st.one_of(st.floats(allow_nan=False), st.integers(min_value=-(2**63), max_value=2**63 - 1))),
        draw(_times),
        draw(_ids) if ids or draw(st.booleans()) else None,
        draw(_trace_ids) if ids else None,
    )


_number = st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(allow_nan=False))
_exemplars = st.lists(_exemplar(), max_size=2)


@st.composite
def _metric(draw: Any) -> Any:
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        Gauge,
        Histogram,
        HistogramDataPoint,
        Metric,
        NumberDataPoint,
        Sum,
    )

    kind = draw(st.sampled_from(("sum", "gauge", "histogram")))
    temporality = draw(st.sampled_from(list(AggregationTemporality)))
    n = draw(st.integers(min_value=0, max_value=3))
    if kind == "histogram":
        points = []
        for _ in range(n):
            counts = draw(st.lists(st.integers(min_value=0, max_value=2**63), max_size=4))
            bounds = draw(st.lists(st.floats(allow_nan=False), max_size=3))
            points.append(
                HistogramDataPoint(
                    draw(_attrs),
                    draw(_times),
                    draw(_times),
                    draw(st.integers(min_value=0, max_value=2**63)),
                    draw(st.floats(allow_nan=False)),
                    counts,
                    bounds,
                    draw(st.floats(allow_nan=False)),
                    draw(st.floats(allow_nan=False)),
                    draw(_exemplars),
                )
            )
        data: Any = Histogram(points, temporality)
    else:
        numbers = [
            NumberDataPoint(draw(_attrs), draw(_times), draw(_times), draw(_number), draw(_exemplars)) for _ in range(n)
        ]
        data = Sum(numbers, temporality, draw(st.booleans())) if kind == "sum" else Gauge(numbers)
    return Metric(draw(_text), draw(st.one_of(st.none(), _text)), draw(st.one_of(st.none(), _text)), data)


@st.composite
def _metrics_data(draw: Any) -> Any:
    from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics

    # The reference keys resources and scopes by value (an equal second one replaces the first's metrics),
    # so each appears once here; the SDK and the registry's bridge never repeat one.
    resources = draw(st.lists(st.sampled_from([RESOURCES[0], RESOURCES[2]]), unique=True, max_size=2))
    out = []
    for res in resources:
        scopes = draw(st.lists(st.sampled_from([s for s in SCOPES if s is not None]), unique=True, max_size=2))
        sms = [ScopeMetrics(s, draw(st.lists(_metric(), max_size=3)), "") for s in scopes]
        out.append(ResourceMetrics(res, sms, ""))
    return MetricsData(out)


def _reference_metrics(data: Any) -> Any:
    from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics as reference_metrics

    return reference_metrics(data)


@settings(max_examples=300, deadline=None)
@given(_metrics_data())
def test_metrics_equal_the_reference_encoder(data: Any) -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    from tradeobs_agent._internal.otlp_encode import encode_metrics
    from tradeobs_agent._internal.scrub import scrub_metrics

    assert ExportMetricsServiceRequest.FromString(encode_metrics(data)) == _reference_metrics(scrub_metrics(data))


def _one_metric(attrs: dict[str, Any], data: Any = None) -> Any:
    from opentelemetry.sdk.metrics.export import (
        Metric,
        MetricsData,
        NumberDataPoint,
        ResourceMetrics,
        ScopeMetrics,
        Sum,
    )

    if data is None:
        data = Sum([NumberDataPoint(attrs, 1, 2, 3, [])], 2, True)
    return MetricsData([ResourceMetrics(RESOURCES[0], [ScopeMetrics(SCOPES[0], [Metric("m", "", "", data)], "")], "")])


def test_metric_attributes_leave_scrubbed_on_both_paths() -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    from tradeobs_agent._internal.otlp_encode import encode_metrics
    from tradeobs_agent._internal.scrub import scrub_metrics

    data = _one_metric(
        {"url": "https://venue.example/v1?api_key=sk_live_abcdef123456", "token": "t0ps3cret", "ok": "x"}
    )
    fast = encode_metrics(data)
    slow = _reference_metrics(scrub_metrics(data)).SerializeToString()
    for wire in (fast, slow):
        assert b"sk_live_abcdef123456" not in wire and b"t0ps3cret" not in wire
        assert b"venue.example" in wire  # the rest of the value is kept
    assert ExportMetricsServiceRequest.FromString(fast) == ExportMetricsServiceRequest.FromString(slow)
    clean = _one_metric({"ok": "x"})
    assert scrub_metrics(clean) is clean  # nothing secret: the same object, no copy


def test_installed_on_the_grpc_metric_exporter_with_reference_fallback() -> None:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.sdk.metrics._internal.point import Buckets
    from opentelemetry.sdk.metrics.export import ExponentialHistogram, ExponentialHistogramDataPoint

    from tradeobs_agent._internal.exporters import CountingMetricExporter
    from tradeobs_agent._internal.otlp_encode import install_fast_metric_encoding

    exporter = OTLPMetricExporter(endpoint="http://127.0.0.1:9", insecure=True)
    try:
        assert CountingMetricExporter(exporter, "metrics", "127.0.0.1:9", Registry().self_metrics).fast_encoding
        assert isinstance(_sender(exporter), _RawStub)  # the bytes go to gRPC as they are
        ok = _one_metric({"symbol": "AAPL"})
        assert ExportMetricsServiceRequest.FromString(exporter._translate_data(ok)) == _reference_metrics(ok)
        # a kind the fast encoder does not write (exponential histograms): the reference encoder takes the batch
        point = ExponentialHistogramDataPoint(
            {"a": "b"}, 1, 2, 3, 1.5, 0, 1, Buckets(0, [1, 2]), Buckets(0, []), 0, 0.5, 1.0
        )
        expo = _one_metric({}, ExponentialHistogram([point], 2))
        assert ExportMetricsServiceRequest.FromString(exporter._translate_data(expo)) == _reference_metrics(expo)
        # a registry family in the same batch goes to the reference encoder as the bridge's OTel data
        from opentelemetry.sdk.metrics.export import Metric, MetricsData, ResourceMetrics, ScopeMetrics

        from tradeobs_agent._internal.bridge import OtelMetrics, _otel_data
        from tradeobs_agent._internal.otlp_encode import FamilyData
        from tradeobs_agent.metrics import NumberPoint, SumFamily

        fam = SumFamily("orders", "{order}", "", True, [NumberPoint((("symbol", "AAPL"),), {"symbol": "AAPL"}, 1, 7)])
        expo_metric = expo.resource_metrics[0].scope_metrics[0].metrics[0]

        def batch(first: Any) -> Any:
            return MetricsData([ResourceMetrics(RESOURCES[0], [ScopeMetrics(SCOPES[0], [first, expo_metric], "")], "")])

        mixed = batch(Metric(fam.name, fam.description, fam.unit, FamilyData(lambda: fam, 5, _otel_data)))  # type: ignore[arg-type]
        wire = ExportMetricsServiceRequest.FromString(exporter._translate_data(mixed))
        assert wire == _reference_metrics(batch(fam.accept(OtelMetrics(5))))
        big = _one_metric({"big": 2**70})  # the reference drops the attribute it cannot encode; so do we
        assert ExportMetricsServiceRequest.FromString(exporter._translate_data(big)) == _reference_metrics(big)
    finally:
        exporter.shutdown()
    assert not install_fast_metric_encoding(object())


_label = st.one_of(
    _text, st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(allow_nan=False)
)


@st.composite
def _family(draw: Any) -> Any:
    """A registry family as ``Registry.snapshot()`` makes it (the registry's own read model)."""
    from tradeobs_agent.metrics import Exemplar, GaugeFamily, HistogramFamily, HistogramPoint, NumberPoint, SumFamily

    kind = draw(st.sampled_from(("sum", "gauge", "histogram")))
    name, unit, desc = draw(_text), draw(_text), draw(_text)
    bounds = tuple(sorted(draw(st.sets(st.floats(allow_nan=False, allow_infinity=False), min_size=3, max_size=3))))
    points: list[Any] = []
    for attrs in draw(st.lists(st.dictionaries(_text, _label, max_size=3), max_size=3)):
        key = tuple(sorted(attrs.items(), key=lambda kv: kv[0]))
        start = draw(_times)
        if kind != "histogram":
            points.append(NumberPoint(key, attrs, start, draw(_number)))
            continue
        counts = draw(st.lists(st.integers(min_value=0, max_value=2**40), min_size=4, max_size=4))
        n = sum(counts)
        value = st.one_of(st.floats(allow_nan=False), st.integers(-(2**40), 2**40))
        exemplars = {
            i: Exemplar(draw(value), draw(_times), draw(_trace_ids), draw(_ids))
            for i in draw(st.sets(st.integers(min_value=0, max_value=3), max_size=2))
        }
        lo, hi = (draw(st.floats(allow_nan=False)), draw(st.floats(allow_nan=False))) if n else (math.inf, -math.inf)
        total = draw(st.floats(allow_nan=False))
        points.append(HistogramPoint(key, attrs, start, counts, n, total, lo, hi, exemplars))
    if kind == "histogram":
        return HistogramFamily(name, unit, desc, bounds, points)
    if kind == "gauge":
        return GaugeFamily(name, unit, desc, points)
    return SumFamily(name, unit, desc, draw(st.booleans()), points)


@settings(max_examples=300, deadline=None)
@given(st.lists(_family(), max_size=4), _times)
def test_registry_families_written_directly_equal_the_reference_encoder(families: list[Any], now: int) -> None:
    """The agent's own OTLP export writes the registry's families straight to bytes (no OTel points per series):
    what the reference encoder writes for the same families through the bridge. A family with no point (an
    instrument whose gauges were never set) is left out, as a snapshot leaves it out."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.sdk.metrics.export import Metric, MetricsData, ResourceMetrics, ScopeMetrics

    from tradeobs_agent._internal.bridge import OtelMetrics, _otel_data
    from tradeobs_agent._internal.otlp_encode import FamilyData, encode_metrics
    from tradeobs_agent._internal.scrub import scrub_metrics

    def data(metrics: list[Any]) -> Any:
        return MetricsData([ResourceMetrics(RESOURCES[0], [ScopeMetrics(SCOPES[0], metrics, "")], "")])

    fast = data([Metric(f.name, f.description, f.unit, FamilyData(lambda f=f: f, now, _otel_data)) for f in families])
    ref = data([f.accept(OtelMetrics(now)) for f in families if f.points])
    assert ExportMetricsServiceRequest.FromString(encode_metrics(fast)) == _reference_metrics(scrub_metrics(ref))


def test_equal_keys_of_two_instruments_keep_their_own_attribute_types() -> None:
    """``(("x", 1),) == (("x", True),)``: the attribute bytes cached per series are the instrument's own."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.sdk.metrics.export import Metric, MetricsData, ResourceMetrics, ScopeMetrics

    from tradeobs_agent._internal.bridge import _otel_data
    from tradeobs_agent._internal.otlp_encode import FamilyData, encode_metrics
    from tradeobs_agent.metrics import NumberPoint, SumFamily

    one = SumFamily("a", "", "", True, [NumberPoint((("x", 1),), {"x": 1}, 1, 2)])
    true = SumFamily("b", "", "", True, [NumberPoint((("x", True),), {"x": True}, 1, 2)])
    metrics = [Metric(f.name, "", "", FamilyData(lambda f=f: f, 5, _otel_data)) for f in (one, true)]  # type: ignore[arg-type]
    data = MetricsData([ResourceMetrics(RESOURCES[0], [ScopeMetrics(SCOPES[0], metrics, "")], "")])
    got = ExportMetricsServiceRequest.FromString(encode_metrics(data)).resource_metrics[0].scope_metrics[0].metrics
    values = [m.sum.data_points[0].attributes[0].value for m in got]
    assert values[0].WhichOneof("value") == "int_value" and values[1].WhichOneof("value") == "bool_value"


def test_an_export_of_the_registry_keeps_one_point_alive_at_a_time_and_counts_what_it_sent(
    points_alive: PointsAlive,
) -> None:
    """The agent's OTLP reader reads each instrument when it is encoded and writes each point as it is made
    (``Instrument.stream``): no family's points are kept alive (see the scrape's test in test_prometheus.py).
    What it sent is counted after the encoding; an instrument with no point (gauges never set) is left out,
    on the fast path and on the reference encoder's fallback alike."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics

    from tradeobs_agent._internal.bridge import collect_encoded
    from tradeobs_agent._internal.otlp_encode import _plain, encode_metrics

    reg = Registry()
    orders = reg.counter("orders")
    for i in range(2_000):
        orders.add(1, {"symbol": f"S{i:04d}"})
    reg.gauge("never.set").bind(symbol="X")
    half = reg.gauge("half.set")
    half.bind(symbol="X")
    half.set(2.0, {"symbol": "Y"})

    def data() -> Any:
        metrics = collect_encoded(reg)
        return metrics, MetricsData([ResourceMetrics(RESOURCES[0], [ScopeMetrics(SCOPES[0], metrics, "")], "")])

    metrics, md = data()
    got = ExportMetricsServiceRequest.FromString(encode_metrics(md)).resource_metrics[0].scope_metrics[0].metrics
    assert points_alive.most <= 2, f"{points_alive.most} points alive at once"
    assert {m.name: len(m.sum.data_points or m.gauge.data_points) for m in got} == {"orders": 2_000, "half.set": 1}
    sent = {m.name: len(m.data.data_points) for m in metrics}
    assert sent == {"orders": 2_000, "never.set": 0, "half.set": 1}

    metrics, md = data()
    plain = _plain(md).resource_metrics[0].scope_metrics[0].metrics
    assert {m.name: len(m.data.data_points) for m in plain} == {"orders": 2_000, "half.set": 1}
    assert {m.name: len(m.data.data_points) for m in metrics} == sent


def test_a_lone_surrogate_is_written_as_a_question_mark_not_a_lost_batch() -> None:
    """The SDK's encoder raises on it (the whole batch fails); ours writes '?' where UTF-8 cannot go."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
    from opentelemetry.trace import Status, StatusCode

    from tradeobs_agent._internal.otlp_encode import encode_step_span

    data = encode_step_span(1, 2, None, 3, "fill\ud800", 10, 20, {"symbol": "\udc80X"}, Status(StatusCode.UNSET))
    span = PbSpan()
    span.ParseFromString(data[2:])  # after the ScopeSpans.spans tag and its one-byte length
    assert span.name == "fill?" and span.attributes[0].value.string_value == "?X"


def _histograms(n: int, metrics: int = 1) -> Any:
    """``metrics`` histogram metrics of ``n`` series each (19 bounds, as the agent's latencies): ~420 bytes a point."""
    from opentelemetry.sdk.metrics.export import (
        Histogram,
        HistogramDataPoint,
        Metric,
        MetricsData,
        ResourceMetrics,
        ScopeMetrics,
    )

    bounds = [0.00001 * 2**i for i in range(19)]

    def point(i: int) -> Any:
        attrs = {"symbol": f"S{i:05d}", "side": "buy", "venue": "NYSE", "strategy": "momentum"}
        return HistogramDataPoint(attrs, 1, 2, i + 1, 0.5 * i, [i] * 20, bounds, 0.0, 1.0, [])

    ms = [Metric(f"latency.{k}", "d", "s", Histogram([point(i) for i in range(n)], 2)) for k in range(metrics)]
    return MetricsData([ResourceMetrics(RESOURCES[0], [ScopeMetrics(SCOPES[0], ms, "")], "")])


def _points_by_metric(requests: list[Any]) -> dict[tuple[str, str, str, str], list[Any]]:
    out: dict[tuple[str, str, str, str], list[Any]] = {}
    for req in requests:
        for rm in req.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    points = getattr(m, kind).data_points if kind else []
                    out.setdefault((str(rm.resource.attributes), sm.scope.name, m.name, kind or ""), []).extend(points)
    return out


@settings(max_examples=20, deadline=None)
@given(max_bytes=st.integers(min_value=2_000, max_value=40_000), n=st.integers(min_value=0, max_value=300))
def test_a_large_metrics_export_is_split_into_requests_under_the_limit_holding_every_point_once(
    max_bytes: int, n: int
) -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    from tradeobs_agent._internal.otlp_encode import encode_metric_requests

    data = _histograms(n, metrics=3)
    requests = encode_metric_requests(data, max_bytes)
    assert all(len(r) <= max_bytes for r in requests)  # a point with its resource and scope fits in 2,000
    whole = _reference_metrics(data)
    parsed = [ExportMetricsServiceRequest.FromString(r) for r in requests]
    assert _points_by_metric(parsed) == _points_by_metric([whole])
    if len(requests) == 1:
        assert parsed[0] == whole
    for req in parsed:  # every request names its resource, scope and metric, with its temporality
        for rm in req.resource_metrics:
            assert rm.resource == whole.resource_metrics[0].resource
            for sm in rm.scope_metrics:
                assert sm.scope == whole.resource_metrics[0].scope_metrics[0].scope
                for m in sm.metrics:
                    assert (m.description, m.unit) == ("d", "s")
                    assert m.histogram.aggregation_temporality == 2 or not n  # no point: no data field


def test_an_export_over_grpcs_4_mib_reaches_a_default_grpc_receiver_whole() -> None:
    """At 1,000 symbols x 5 strategies x 3 venues one metrics export was one request of 6 to 30 MB: the collector
    (as any gRPC server, 4 MiB a message by default) refused it whole, RESOURCE_EXHAUSTED, and no metric of the
    process reached it. It goes as several requests now, each taken."""
    from concurrent import futures

    import grpc
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
    from opentelemetry.sdk.metrics.export import MetricExportResult

    from tradeobs_agent._internal.exporters import CountingMetricExporter

    received: list[Any] = []

    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
        def Export(self, request: Any, context: Any) -> Any:
            received.append(request)
            return metrics_service_pb2.ExportMetricsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))  # gRPC's default limit: 4 MiB a message
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    # The deadline only bounds a broken run (a refusal comes at once): encoding and sending 5.5 MB took more than 3 s
    # on a loaded 2-core machine (DEADLINE_EXCEEDED, a red run of tests/unit with nothing wrong).
    exporter = OTLPMetricExporter(endpoint=f"http://127.0.0.1:{port}", insecure=True, timeout=60)
    try:
        counting = CountingMetricExporter(exporter, "metrics", f"127.0.0.1:{port}", Registry().self_metrics)
        assert counting.fast_encoding
        data = _histograms(4_000, metrics=5)  # 20,000 points, about 5.5 MB
        assert len(_reference_metrics(data).SerializeToString()) > 4 << 20
        assert counting.export(data) is MetricExportResult.SUCCESS
    finally:
        exporter.shutdown()
        server.stop(None)
    assert len(received) > 1
    assert _points_by_metric(received) == _points_by_metric([_reference_metrics(data)])


# --------------------------------------------------------------------------- OTLP/HTTP: the same encoder


class _Capturing:
    """A real HTTP server on loopback that answers every POST with 200 and keeps (path, content-encoding, body)."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.got: list[tuple[str, str, bytes]] = []
        got = self.got

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                got.append((self.path, self.headers.get("Content-Encoding") or "", body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("compression", ["", "gzip"])
def test_otlp_http_span_and_log_exporters_send_the_agents_encoding_of_what_the_reference_sends(
    monkeypatch: pytest.MonkeyPatch, compression: str
) -> None:
    """The agent's OTLP/HTTP exporters (as ``init()`` builds them) encode with the agent's encoder: the request is
    the reference encoder's of the scrubbed batch (a value it cannot encode included), through the SDK's own HTTP
    client (its compression, ``OTEL_EXPORTER_OTLP_COMPRESSION``, applied). Before, OTLP/HTTP took the SDK's
    encoder: about twice the agent's CPU per order (measured 2026-12-06: 212-224 against 107-114 us per order over
    gRPC, 3,000 orders to a local OTLP server; now 108 us over HTTP)."""
    import gzip

    from opentelemetry._logs import LogRecord
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as reference_logs
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.sdk._logs import ReadableLogRecord

    from tradeobs_agent._internal import providers
    from tradeobs_agent._internal.exporters import CountingLogExporter
    from tradeobs_agent.config import resolve_settings

    if compression:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", compression)
    srv = _Capturing()
    try:
        settings, _ = resolve_settings(otlp_endpoint=srv.url, otlp_protocol="http/protobuf", otlp_timeout=5.0)
        selfm = Registry().self_metrics
        spans_inner, target = providers._otlp_exporter(settings, "traces")
        logs_inner, log_target = providers._otlp_exporter(settings, "logs")
        spans_exp = CountingSpanExporter(spans_inner, "traces", target, selfm)
        logs_exp = CountingLogExporter(logs_inner, "logs", log_target, selfm)
        assert spans_exp.fast_encoding and logs_exp.fast_encoding
        ctx = SpanContext(1, 2, is_remote=False)
        spans = [
            ReadableSpan("s", ctx, None, RESOURCES[0], {"api_key": "abc123secretvalue"}, start_time=1, end_time=2),
            ReadableSpan("t", ctx, None, RESOURCES[0], {"big": 2**70}, start_time=1, end_time=2),  # the fallback
        ]
        body = {"event": "login", "api_key": "abc123secretvalue"}
        records = [ReadableLogRecord(LogRecord(observed_timestamp=1, body=body), RESOURCES[0], SCOPES[0])]
        assert spans_exp.export(spans).name == "SUCCESS" and logs_exp.export(records).name == "SUCCESS"
        spans_exp.shutdown()
        logs_exp.shutdown()
        assert spans_exp.export(spans).name == "FAILURE"  # shut down: nothing sent
    finally:
        srv.close()
    assert [(p, e) for p, e, _ in srv.got] == [("/v1/traces", compression), ("/v1/logs", compression)]
    sent = [gzip.decompress(b) if compression else b for _, _, b in srv.got]
    assert ExportTraceServiceRequest.FromString(sent[0]) == reference(scrub_spans(spans))
    assert ExportLogsServiceRequest.FromString(sent[1]) == reference_logs(scrub_logs(records))
    assert b"abc123secretvalue" not in sent[0] + sent[1]


def test_an_otlp_http_metrics_export_is_the_agents_encoding_in_requests_of_at_most_3_mib() -> None:
    """The agent's OTLP/HTTP metric exporter (as ``init()`` builds it) encodes with the agent's encoder, in requests of
    at most 3 MiB as over gRPC: 3,500 series of 1 KB attributes (3.6 MiB) go as two requests holding every point
    once. Before, OTLP/HTTP took the SDK's encoder and sent one request however large (the collector's HTTP receiver
    refuses past 20 MiB by default: every export of a large registry refused)."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult

    from tradeobs_agent._internal import providers
    from tradeobs_agent._internal.exporters import CountingMetricExporter
    from tradeobs_agent.config import resolve_settings

    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("m")
    for name in ("big", "bigger"):  # 1,750 series each: within the SDK's 2,000 a counter
        counter = meter.create_counter(name)
        for i in range(1750):
            counter.add(1, {"k": f"{i:05d}" + "y" * 1000})
    data = reader.get_metrics_data()
    small = _one_metric({"symbol": "AAPL"})
    srv = _Capturing()
    try:
        settings, _ = resolve_settings(otlp_endpoint=srv.url, otlp_protocol="http/protobuf", otlp_timeout=10.0)
        inner, target = providers._otlp_exporter(settings, "metrics")
        exp = CountingMetricExporter(inner, "metrics", target, Registry().self_metrics)
        assert exp.fast_encoding
        assert exp.export(small) == MetricExportResult.SUCCESS
        assert exp.export(data) == MetricExportResult.SUCCESS
        exp.shutdown()
    finally:
        srv.close()
    assert [p for p, _, _ in srv.got] == ["/v1/metrics"] * 3
    assert ExportMetricsServiceRequest.FromString(srv.got[0][2]) == _reference_metrics(small)
    parts = [ExportMetricsServiceRequest.FromString(b) for _, _, b in srv.got[1:]]
    assert all(len(b) <= 3 * 1024 * 1024 for _, _, b in srv.got[1:])

    def points(request: Any) -> list[bytes]:
        return sorted(
            p.SerializeToString(deterministic=True)
            for rm in request.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            for p in m.sum.data_points
        )

    assert sorted(points(parts[0]) + points(parts[1])) == points(_reference_metrics(data))


def test_bytes_values_leave_scrubbed_on_every_path() -> None:
    """The SDK takes bytes as an attribute value (``span.set_attribute("request.body", request.body)``) and the logs
    API as a body. The agent scrubbed text only, and the collector's redaction skips bytes (docs/collector.md), so a
    key or a token in bytes reached the trace and log stores (base64) and the Prometheus page in clear. Bytes are now
    scrubbed as text is, on the fast encoders and on the reference path, bytes that are not UTF-8 kept as sent."""
    from opentelemetry._logs import LogRecord
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as reference_logs
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.sdk._logs import ReadableLogRecord

    from tradeobs_agent._internal.otlp_encode import encode_metrics
    from tradeobs_agent._internal.scrub import scrub_metrics

    body = b'POST /v2/orders {"symbol": "AAPL"} api_key=sk_live_abcdef123456 \xff\xfe'
    attrs = {"request.body": body, "parts": [b"token=t0ps3cretvalue", "AAPL"], "raw": b"\x00\x01\x02\x03\x04\x05"}
    ctx = SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=TraceFlags(1))
    span = ReadableSpan("send", ctx, None, RESOURCES[0], attrs, start_time=1, end_time=2)
    log = ReadableLogRecord(LogRecord(observed_timestamp=1, body=body, attributes=attrs), RESOURCES[0], SCOPES[0])
    metric = _one_metric(attrs)
    wires = {
        "span, fast": encode_spans([span]),
        "span, reference": reference([span]).SerializeToString(),  # unscrubbed: the check below must see it leak
        "span, scrubbed reference": reference(scrub_spans([span])).SerializeToString(),
        "log, fast": encode_logs([log]),
        "log, scrubbed reference": reference_logs(scrub_logs([log])).SerializeToString(),
        "metric, fast": encode_metrics(metric),
        "metric, scrubbed reference": _reference_metrics(scrub_metrics(metric)).SerializeToString(),
    }
    assert b"sk_live_abcdef123456" in wires.pop("span, reference")  # the secret is there to be found
    for path, wire in wires.items():
        assert wire, path
        assert b"sk_live_abcdef123456" not in wire and b"t0ps3cretvalue" not in wire, path
        assert b"[REDACTED]" in wire and b"/v2/orders" in wire and b"\xff\xfe" in wire, path  # the rest kept
        assert b"\x00\x01\x02\x03\x04\x05" in wire, path  # bytes with nothing secret: as they were
    assert ExportLogsServiceRequest.FromString(wires["log, fast"]) == ExportLogsServiceRequest.FromString(
        wires["log, scrubbed reference"]
    )
    assert ExportMetricsServiceRequest.FromString(wires["metric, fast"]) == ExportMetricsServiceRequest.FromString(
        wires["metric, scrubbed reference"]
    )
    assert attrs["request.body"] is body  # the application's own values are left alone
    clean = [ReadableSpan("s", ctx, None, RESOURCES[0], {"raw": b"\x00\x01\x02\x03\x04\x05"}, start_time=1, end_time=2)]
    assert scrub_spans(clean) is clean  # nothing secret: no copy


def test_with_the_fast_paths_off_scopes_and_metric_points_leave_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the fast paths off (``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``, or an SDK whose private parts the agent
    no longer recognises: ``fastpath``) the SDK's reference encoders send what the agent's OTLP exporters pass
    them. The metric exporter passed the SDK instruments' points unscrubbed (``api_key`` and ``password=...``
    attributes reached the collector), and no exporter scrubbed a scope's attributes
    (``get_tracer("broker", attributes={"api_key": ...})``), which the fast encoders do. Through the real OTLP/HTTP
    exporters, as ``init()`` builds them, to a local server."""
    from opentelemetry._logs import LogRecord
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from tradeobs_agent._internal import providers
    from tradeobs_agent._internal.exporters import CountingLogExporter, CountingMetricExporter
    from tradeobs_agent.config import resolve_settings

    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    secret = "Zq7Secret0Value"
    scoped = {"api_key": secret, "note": f"token={secret}", "venue": "NYSE"}
    scope = InstrumentationScope("broker", "1.0", None, scoped)
    ctx = SpanContext(1, 2, is_remote=False)
    spans = [
        ReadableSpan("s", ctx, None, RESOURCES[0], {"i": 1}, start_time=1, end_time=2, instrumentation_scope=scope)
    ]
    records = [ReadableLogRecord(LogRecord(observed_timestamp=1, body="login"), RESOURCES[0], scope)]
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader], resource=RESOURCES[0]).get_meter("broker", attributes=scoped)
    meter.create_counter("calls").add(1, {"api_key": secret, "note": f"password={secret}", "venue": "NYSE"})
    data = reader.get_metrics_data()
    srv = _Capturing()
    try:
        settings, _ = resolve_settings(otlp_endpoint=srv.url, otlp_protocol="http/protobuf", otlp_timeout=5.0)
        selfm = Registry().self_metrics
        exporters = {
            signal: cls(providers._otlp_exporter(settings, signal)[0], signal, "x", selfm)
            for signal, cls in (
                ("traces", CountingSpanExporter),
                ("logs", CountingLogExporter),
                ("metrics", CountingMetricExporter),
            )
        }
        assert not any(e.fast_encoding for e in exporters.values())  # the reference encoders
        assert exporters["traces"].export(spans).name == "SUCCESS"
        assert exporters["logs"].export(records).name == "SUCCESS"
        assert exporters["metrics"].export(data) == MetricExportResult.SUCCESS
        for e in exporters.values():
            e.shutdown()
    finally:
        srv.close()
    assert sorted(p for p, _, _ in srv.got) == ["/v1/logs", "/v1/metrics", "/v1/traces"]
    for path, _, body in srv.got:
        assert secret.encode() not in body, path
        assert b"[REDACTED]" in body and b"NYSE" in body, path  # masked, the rest kept
    assert dict(scope.attributes or {}) == scoped  # the application's own scope is left alone
