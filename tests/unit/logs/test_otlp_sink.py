"""logs._sinks.OtlpSink: records handed straight to batch processors export exactly like Logger.emit's."""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import LoggerProvider, LogRecordDroppedAttributesWarning, LogRecordProcessor
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from tradeobs_agent.logs._capture import Captured
from tradeobs_agent.logs._format import RecordBuilder
from tradeobs_agent.logs._sinks import OtlpSink, otel_attributes
from tradeobs_agent.logs.redact import Redactor
from tradeobs_agent.metrics import Registry

RESOURCE = Resource.create({"service.name": "svc"})


class _Other(LogRecordProcessor):
    """A processor of the user's own: its presence must send records through Logger.emit."""

    def __init__(self) -> None:
        self.seen = 0

    def on_emit(self, log_record: Any) -> None:
        self.seen += 1

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _sink(extra: LogRecordProcessor | None = None) -> tuple[OtlpSink, LoggerProvider, InMemoryLogRecordExporter]:
    provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False)
    exporter = InMemoryLogRecordExporter()
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter, schedule_delay_millis=60_000))
    if extra is not None:
        provider.add_log_record_processor(extra)
    return OtlpSink(provider, Registry().counter("errors").bind()), provider, exporter


def _cap(
    ts: int, level: int, name: str, msg: str, args: Any = None, extra: Any = None, ctx: Any = None, corr: Any = None
) -> Captured:
    return Captured(ts, level, name, msg, args, extra, None, ctx, corr, 0, None, None)


def _entries() -> list[Captured]:
    tp = TracerProvider(shutdown_on_exit=False)
    span = tp.get_tracer("t").start_span("s")
    ctx = trace.set_span_in_context(span)
    now = time.time_ns()
    extra: dict[str, Any] = {"symbol": "AAPL", "qty": 3, "px": 1.5, "ok": True, "tags": ["a", "b"], "obj": {"k": 1}}
    return [
        Captured(
            now,
            logging.INFO,
            "tradeobs.execution",
            "filled %s",
            ("o-1",),
            extra,
            None,
            ctx,
            {"order": "o-1"},
            0,
            None,
            None,
        ),
        Captured(now + 1, logging.WARNING, "app", "plain", None, None, None, None, None, 0, None, None),
        Captured(
            now + 2, logging.ERROR, "app", "empty key", None, {"": "x", "n": None}, None, None, None, 0, None, None
        ),
        Captured(
            now + 3, 5, "app", "odd level", None, {f"k{i}": i for i in range(70)}, None, None, None, 0, None, None
        ),
    ]


def _emit_all(sink: OtlpSink, entries: list[Captured]) -> None:
    builder = RecordBuilder(Redactor(), {"service.name": "svc"})
    with warnings.catch_warnings():  # the SDK warns when it drops the empty key; not an error here
        warnings.simplefilter("ignore", LogRecordDroppedAttributesWarning)
        for e in entries:
            b = builder.build(e)
            b.otel_attrs = otel_attributes(b.fields)
            sink.emit(b)


def _exported(
    sink: OtlpSink, provider: LoggerProvider, exporter: InMemoryLogRecordExporter, entries: list[tuple[Any, ...]]
) -> Any:
    _emit_all(sink, entries)
    assert provider.force_flush(10_000)
    logs = exporter.get_finished_logs()
    for r in logs:
        r.log_record.observed_timestamp = 0  # set per emit call; everything else must match
    return encode_logs(logs)


def test_fast_path_exports_what_logger_emit_exports() -> None:
    fast_sink, fast_provider, fast_exp = _sink()
    assert fast_sink._batch is not None
    other = _Other()
    slow_sink, slow_provider, slow_exp = _sink(other)
    assert slow_sink._batch is None
    entries = _entries()
    fast = _exported(fast_sink, fast_provider, fast_exp, entries)
    slow = _exported(slow_sink, slow_provider, slow_exp, entries)
    assert other.seen == 4  # the slow side really went through Logger.emit
    assert fast == slow
    assert len(fast.resource_logs[0].scope_logs[0].log_records) == 4
    fast_provider.shutdown()
    slow_provider.shutdown()


def test_processor_added_later_switches_to_logger_emit() -> None:
    sink, provider, exporter = _sink()
    assert sink._batch is not None
    other = _Other()
    provider.add_log_record_processor(other)
    _exported(sink, provider, exporter, _entries())
    assert other.seen == 4
    assert len(exporter.get_finished_logs()) == 4
    provider.shutdown()


@pytest.mark.parametrize("env", ["true", "TRUE"])
def test_internal_sdk_metrics_use_logger_emit(monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", env)
    sink, provider, _ = _sink()
    assert sink._batch is None
    provider.shutdown()


def test_fast_path_looks_up_the_span_when_the_builder_did_not() -> None:
    """A Built made without the builder's span look-up still gets the context's trace and span ids."""
    from tradeobs_agent.logs._format import Built

    sink, provider, exporter = _sink()
    assert sink._batch is not None
    tp = TracerProvider(shutdown_on_exit=False)
    span = tp.get_tracer("t").start_span("s")
    ctx = trace.set_span_in_context(span)
    b = Built({"message": "m", "level": "INFO"}, "service", logging.INFO, time.time_ns(), ctx, "app")
    assert b.span_context is None
    sink.emit(b)
    assert provider.force_flush(10_000)
    (rec,) = exporter.get_finished_logs()
    sc = span.get_span_context()
    assert (rec.log_record.trace_id, rec.log_record.span_id) == (sc.trace_id, sc.span_id)
    assert rec.log_record.trace_flags == sc.trace_flags
    provider.shutdown()


class _FastEncodingExporter(LogRecordExporter):
    """Stands for the agent's OTLP exporter with the fast encoder (``CountingLogExporter.fast_encoding``)."""

    fast_encoding = True

    def __init__(self) -> None:
        self.items: list[Any] = []

    def export(self, batch: Any) -> LogRecordExportResult:
        self.items.extend(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def test_records_queued_already_encoded_export_what_logger_emit_exports() -> None:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    from tradeobs_agent._internal.otlp_encode import Encoded
    from tradeobs_agent._internal.otlp_encode import encode_logs as fast_encode

    provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False)
    fast_exp = _FastEncodingExporter()
    provider.add_log_record_processor(BatchLogRecordProcessor(fast_exp, schedule_delay_millis=60_000))
    sink = OtlpSink(provider, Registry().counter("errors").bind())
    assert sink._batch is not None and sink._batch.encoded
    slow_sink, slow_provider, slow_exp = _sink(_Other())
    entries = _entries()
    slow = _exported(slow_sink, slow_provider, slow_exp, entries)

    _emit_all(sink, entries)
    assert provider.force_flush(10_000)
    encoded = [i for i in fast_exp.items if type(i) is Encoded]
    assert 0 < len(encoded) < len(entries)  # records the fast path cannot take (an empty key, 70 attributes) ...
    fast = ExportLogsServiceRequest.FromString(fast_encode(fast_exp.items))  # ... are SDK records in the same batch
    for rl in fast.resource_logs:
        for sl in rl.scope_logs:
            for r in sl.log_records:
                r.observed_time_unix_nano = 0
    assert fast == ExportLogsServiceRequest(resource_logs=slow.resource_logs)
    provider.shutdown()
    slow_provider.shutdown()


def test_a_trace_found_by_links_exports_the_same_on_every_path() -> None:
    """A record put on another trace (a correlation id's, an exception's) carries it through Logger.emit, the
    batch queues and the pre-encoded entries alike, with or without a span in its own context."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.trace import SpanContext, TraceFlags

    from tradeobs_agent._internal.otlp_encode import encode_logs as fast_encode
    from tradeobs_agent.logs import links

    job = SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    escaped = SpanContext(0x123, 0x456, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    exc = RuntimeError("boom")
    links.remember_span(exc, escaped)

    def resolve(value: Any, current: Any) -> Any:
        return job if value == "j-1" else None

    tp = TracerProvider(shutdown_on_exit=False)
    span = tp.get_tracer("t").start_span("request")
    ctx = trace.set_span_in_context(span)
    now = time.time_ns()
    entries = [
        Captured(
            now, logging.INFO, "app", "job, in a request", None, None, None, ctx, {"job_id": "j-1"}, 0, None, None
        ),
        Captured(now, logging.INFO, "app", "job, no span", None, None, None, None, {"job_id": "j-1"}, 0, None, None),
        Captured(
            now, logging.ERROR, "app", "escaped", None, None, (RuntimeError, exc, None), None, None, 0, None, None
        ),
        Captured(now, logging.INFO, "app", "request only", None, None, None, ctx, {"job_id": "j-2"}, 0, None, None),
    ]
    links.register_trace_resolver("job_id", resolve)
    try:
        slow_sink, slow_provider, slow_exp = _sink(_Other())
        fast_sink, fast_provider, fast_exp = _sink()
        slow = _exported(slow_sink, slow_provider, slow_exp, entries)
        fast = _exported(fast_sink, fast_provider, fast_exp, entries)
        enc_provider = LoggerProvider(resource=RESOURCE, shutdown_on_exit=False)
        enc_exp = _FastEncodingExporter()
        enc_provider.add_log_record_processor(BatchLogRecordProcessor(enc_exp, schedule_delay_millis=60_000))
        enc_sink = OtlpSink(enc_provider, Registry().counter("errors").bind())
        assert enc_sink._batch is not None and enc_sink._batch.encoded
        _emit_all(enc_sink, entries)
        assert enc_provider.force_flush(10_000)
    finally:
        links.unregister_trace_resolver("job_id", resolve)
    encoded = ExportLogsServiceRequest.FromString(fast_encode(enc_exp.items))
    for rl in encoded.resource_logs:
        for sl in rl.scope_logs:
            for r in sl.log_records:
                r.observed_time_unix_nano = 0
    assert fast == slow
    assert encoded == ExportLogsServiceRequest(resource_logs=slow.resource_logs)
    ids = [
        (int.from_bytes(r.trace_id, "big"), int.from_bytes(r.span_id, "big"))
        for r in slow.resource_logs[0].scope_logs[0].log_records
    ]
    own = span.get_span_context()
    assert ids == [(0xABC, 0xDEF), (0xABC, 0xDEF), (0x123, 0x456), (own.trace_id, own.span_id)]
    for p in (slow_provider, fast_provider, enc_provider):
        p.shutdown()


class _Text(str):
    pass


def test_otel_attributes_keep_the_fields_order_and_take_odd_values_the_long_way() -> None:
    """A line's fields without the record's own (timestamp, level, message, ids, resource) in their order; values that
    are not exactly str/int/float/bool: None dropped, a list of one type kept, a subclass kept, anything else JSON."""
    plain = {"timestamp": "t", "level": "INFO", "stream": "execution", "logger": "demo", "message": "m",
             "trace_id": "0" * 32, "span_id": "1" * 16, "service.name": "svc", "service.instance.id": "i",
             "order_id": "o-1", "qty": 10.0, "n": 3, "ok": True, "thread": "MainThread"}  # fmt: skip
    got = otel_attributes(plain)
    assert list(got.items()) == [
        ("stream", "execution"), ("logger", "demo"), ("order_id", "o-1"), ("qty", 10.0), ("n", 3), ("ok", True),
        ("thread", "MainThread"),
    ]  # fmt: skip
    assert got is not plain and plain["timestamp"] == "t"  # a new dict: the line's own fields untouched
    odd = {"message": "m", "a": None, "b": [1, 2], "c": _Text("x"), "d": {"k": 1}, "e": 1, "trace_id": None,
           "f": [1, "x"], "level": ["odd"]}  # fmt: skip
    assert list(otel_attributes(odd).items()) == [
        ("b", [1, 2]), ("c", "x"), ("d", '{"k":1}'), ("e", 1), ("f", '[1,"x"]')
    ]  # fmt: skip
    assert type(otel_attributes(odd)["c"]) is _Text
