"""A batch larger than the collector takes is sent again in parts (only an item too large by itself is dropped,
counted), said once, and does not hold later batches back.

otelcol-tradeobs with a 1 MiB receiver limit (OTLP/gRPC ``max_recv_msg_size_mib: 1``, OTLP/HTTP
``max_request_body_size: 1048576``) and a batch of about 2 MiB. Before: gRPC ``RESOURCE_EXHAUSTED`` ("received
message larger than max") was retried by the SDK for its whole timeout and then by the agent's sender, with an
outage message saying only "export failed"; the HTTP answer (400 "request body too large") was kept and sent again
the same way. Either way the batch stayed at the head of the retry buffer, so every later batch waited behind it
until it expired (``TRADEOBS_OTLP_RETRY_MAX_AGE``, 5 minutes by default), and nothing said what to change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from tests._util import dead_endpoint
from tradeobs_agent._internal import providers
from tradeobs_agent._internal.exporters import CountingSpanExporter, Retry
from tradeobs_agent.config import resolve_settings
from tradeobs_agent.metrics import Registry

from .procs import start_collector, wait_for

pytestmark = pytest.mark.integration

_SMALL_LIMITS = """\
receivers:
  otlp:
    protocols:
      grpc:
        max_recv_msg_size_mib: 1
      http:
        max_request_body_size: 1048576
"""


@contextmanager
def _limited_collector(tmp_path: Path, protocol: str, signal: str) -> Iterator[tuple[Any, str, Any]]:
    """A real collector with the 1 MiB limits above, the agent's OTLP exporter of ``signal`` to it, and the
    collector."""
    overlay = tmp_path / "limits.yaml"
    overlay.write_text(_SMALL_LIMITS)
    with start_collector(tmp_path / "collector", dead_endpoint(), overlays=[overlay]) as col:
        endpoint = f"http://{col.otlp_grpc_endpoint}" if protocol == "grpc" else col.otlp_http_endpoint
        settings, _ = resolve_settings(otlp_endpoint=endpoint, otlp_protocol=protocol, otlp_timeout=5.0)
        inner, target = providers._otlp_exporter(settings, signal)
        yield inner, target, col


def _spans(n: int, attrs: int) -> list[Any]:
    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("t")
    out = []
    for i in range(n):
        s = tracer.start_span(f"s{i}", attributes={f"a{k}": "x" * 100 for k in range(attrs)})
        s.end()
        out.append(s)
    return out


@pytest.mark.parametrize(
    ("protocol", "setting"),
    [("grpc", "max_recv_msg_size_mib"), ("http/protobuf", "max_request_body_size")],
)
def test_a_batch_too_large_for_the_collector_is_sent_in_parts_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, protocol: str, setting: str
) -> None:
    caplog.set_level(logging.WARNING, logger="tradeobs")
    with _limited_collector(tmp_path, protocol, "traces") as (inner, target, col):
        reg = Registry()
        exp = CountingSpanExporter(inner, "traces", target, reg.self_metrics, Retry(100_000, 300.0))
        exported = reg.self_metrics.items_exported.bind(signal="traces", exporter=type(inner).__name__)
        dropped = reg.self_metrics.items_dropped
        try:
            exp.export(_spans(1000, 20))  # about 2.2 MiB encoded: its quarters pass
            exp.export(_spans(3, 0))
            big = _spans(1000, 20)
            huge = (
                TracerProvider(shutdown_on_exit=False)
                .get_tracer("t")
                .start_span("huge", attributes={"a": "z" * 1_200_000})
            )
            huge.end()
            big[700] = huge  # 1.2 MB by itself, over the 1 MiB limit: the one span dropped
            exp.export(big)
            exp.export(_spans(2, 0))
            wait_for(
                lambda: exported.value == 2004,
                "the large batches delivered in parts, the small ones behind them",
                timeout=60,
                procs=(col.proc,),
            )
            assert len(exp.delivery) == 0
        finally:
            exp.deadline = 0.0
            exp.shutdown()
    assert exported.value == 2004
    assert dropped.bind(signal="traces", reason="too_large").value == 1
    for reason in ("expired", "retry_buffer_full", "shutdown", "export_failed"):
        assert dropped.bind(signal="traces", reason=reason).value == 0, reason
    said = [r.getMessage() for r in caplog.records if r.name == "tradeobs" and "too large" in r.getMessage()]
    assert len(said) == 1, said
    assert setting in said[0] and "OTEL_BSP_MAX_EXPORT_BATCH_SIZE" in said[0] and 'reason="too_large"' in said[0]
    assert not [r for r in caplog.records if r.name == "tradeobs" and "outage" in r.getMessage()]


@pytest.mark.parametrize(
    ("protocol", "setting"),
    [("grpc", "max_recv_msg_size_mib"), ("http/protobuf", "max_request_body_size")],
)
def test_a_metrics_export_too_large_for_the_collector_is_said_once_with_the_setting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, protocol: str, setting: str
) -> None:
    """1,900 series of 1 KB attributes, about 2 MiB in one request (the agent splits at 3 MiB): refused whole. Before,
    the gRPC export was retried inside the SDK for its timeout at every export interval and said as an outage
    ("export failed"); now it ends at the first refusal and the warning names the collector's limit."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult

    from tradeobs_agent._internal.exporters import CountingMetricExporter

    reader = InMemoryMetricReader()
    counter = MeterProvider(metric_readers=[reader]).get_meter("m").create_counter("big")
    for i in range(1900):
        counter.add(1, {"k": f"{i:05d}" + "y" * 1000})
    data = reader.get_metrics_data()
    caplog.set_level(logging.WARNING, logger="tradeobs")
    with _limited_collector(tmp_path, protocol, "metrics") as (inner, target, _):
        reg = Registry()
        exp = CountingMetricExporter(inner, "metrics", target, reg.self_metrics)
        try:
            assert exp.export(data) == MetricExportResult.FAILURE
            assert exp.export(data) == MetricExportResult.FAILURE
        finally:
            exp.shutdown()
    failed = reg.self_metrics.exports_failed.bind(signal="metrics", exporter=type(inner).__name__)
    assert failed.value == 2
    said = [r.getMessage() for r in caplog.records if r.name == "tradeobs" and "too large" in r.getMessage()]
    assert len(said) == 1, said
    assert setting in said[0] and "1900 points" in said[0]
    assert not [r for r in caplog.records if r.name == "tradeobs" and "outage" in r.getMessage()]
