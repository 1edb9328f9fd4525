"""An OTLP server that accepts an export but rejects part of it (OTLP ``partial_success``): the rejected items are
counted as dropped (``reason="rejected_by_server"``), never sent again, and said once per exporter with the server's
message made safe to log.

The OTLP specification: a server may answer a successful export with ``partial_success {rejected_spans |
rejected_data_points | rejected_log_records, error_message}`` (over gRPC and HTTP alike), or with 0 rejected and a
message (a warning); the client must not retry it. Before, the SDK's exporters dropped that answer (gRPC: the
response is discarded; HTTP: the body is not read), so the rejected items vanished with no count and no word.

Real parts: the agent's own OTLP exporters as ``init()`` builds them (``providers._otlp_exporter``, the fast gRPC
encoders included), the agent's wrappers, and a real grpcio / HTTP server on loopback answering partial success
(``tests/faults/otlp_refuser.py``).
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
import pytest
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from tests._util import ended_spans
from tests.faults.otlp_refuser import RefusingOtlpServer
from tests.unit.internal.test_exporters import _metrics_data
from tradeobs_agent._internal import providers
from tradeobs_agent._internal.exporters import CountingLogExporter, CountingMetricExporter, CountingSpanExporter
from tradeobs_agent.config import resolve_settings
from tradeobs_agent.metrics import Registry

PROTOCOLS = ["grpc", "http/protobuf"]
# What a backend could answer: a terminal escape, a line break and a long tail (it is remote input)
HOSTILE = "attribute limit \x1b[31mexceeded\x1b[0m\nforged: log line " + "x" * 1000


def _logs(n: int) -> list[Any]:
    resource, scope = Resource.create({"service.name": "partial"}), InstrumentationScope("t")
    return [ReadableLogRecord(LogRecord(observed_timestamp=1, body=f"record {i}"), resource, scope) for i in range(n)]


class _Agent:
    """The agent's exporter of ``signal`` to ``srv``, counted in its own registry; no retry buffer (each export is
    sent on the caller's thread, so its outcome is known when ``export()`` returns)."""

    def __init__(self, srv: RefusingOtlpServer, signal: str) -> None:
        settings, _ = resolve_settings(otlp_endpoint=srv.endpoint, otlp_protocol=srv.protocol, otlp_timeout=5.0)
        inner, target = providers._otlp_exporter(settings, signal)
        self.reg = Registry()
        self.signal = signal
        self.name = type(inner).__name__
        selfm = self.reg.self_metrics
        cls: Any = {"traces": CountingSpanExporter, "logs": CountingLogExporter, "metrics": CountingMetricExporter}
        self.exp = cls[signal](inner, signal, target, selfm)

    def export(self, n: int) -> bool:
        """Export ``n`` items (metrics: one export of 4 points, whatever ``n``); True when it succeeded."""
        if self.signal == "traces":
            return bool(self.exp.export(ended_spans(n)).name == "SUCCESS")
        if self.signal == "logs":
            return bool(self.exp.export(_logs(n)).name == "SUCCESS")
        return bool(self.exp.export(_metrics_data(AggregationTemporality.CUMULATIVE)) == MetricExportResult.SUCCESS)

    def dropped(self, reason: str = "rejected_by_server") -> float:
        return self.reg.self_metrics.items_dropped.bind(signal=self.signal, reason=reason).value

    def exported(self) -> float:
        return self.reg.self_metrics.items_exported.bind(signal=self.signal, exporter=self.name).value

    def failed(self) -> float:
        return self.reg.self_metrics.exports_failed.bind(signal=self.signal, exporter=self.name).value


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tradeobs"]


@pytest.mark.parametrize("signal", ["traces", "logs", "metrics"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_items_the_server_rejects_in_a_partial_success_are_counted_and_said_once(
    caplog: pytest.LogCaptureFixture, protocol: str, signal: str
) -> None:
    caplog.set_level(logging.WARNING, logger="tradeobs")
    with RefusingOtlpServer(protocol) as srv:
        srv.mode = None
        srv.partial = (2, HOSTILE)
        agent = _Agent(srv, signal)
        try:
            assert agent.export(5) and agent.export(5) and agent.export(3)
        finally:
            agent.exp.shutdown()
        rejected, accepted = srv.rejected[signal], srv.accepted[signal]
    assert rejected == 6  # 2 of each export: the server said so three times
    assert agent.dropped() == rejected
    assert agent.exported() == accepted  # what the server took, not what was sent
    assert agent.failed() == 0  # an accepted export: no outage, no failure
    said = _said(caplog)
    assert len(said) == 1, said  # once per exporter, however many exports
    line = said[0]
    assert f"accepted {signal} but rejected 2 of" in line and 'reason="rejected_by_server"' in line, line
    assert "attribute limit" in line and "exceeded" in line
    assert "\x1b" not in line and "\n" not in line and "x" * 300 not in line, line  # remote input, made safe
    assert "cannot export" not in line  # not an outage


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_partial_success_with_nothing_rejected_is_a_warning_said_once_and_drops_nothing(
    caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    """The specification lets a server send a warning in ``partial_success`` (0 rejected, a message)."""
    caplog.set_level(logging.WARNING, logger="tradeobs")
    with RefusingOtlpServer(protocol) as srv:
        srv.mode = None
        srv.partial = (0, "deprecated attribute http.method: use http.request.method")
        agent = _Agent(srv, "traces")
        try:
            assert agent.export(3) and agent.export(3)
        finally:
            agent.exp.shutdown()
    assert agent.dropped() == 0 and agent.exported() == 6
    said = _said(caplog)
    assert len(said) == 1 and "with a warning: deprecated attribute http.method" in said[0], said
    assert "nothing was dropped" in said[0]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_plain_success_says_nothing_and_counts_no_rejection(caplog: pytest.LogCaptureFixture, protocol: str) -> None:
    caplog.set_level(logging.WARNING, logger="tradeobs")
    with RefusingOtlpServer(protocol) as srv:
        srv.mode = None
        agent = _Agent(srv, "logs")
        try:
            assert agent.export(4)
        finally:
            agent.exp.shutdown()
        assert srv.accepted["logs"] == 4
    assert agent.dropped() == 0 and agent.exported() == 4 and not _said(caplog)


def test_the_rejected_part_is_not_sent_again_through_the_retry_buffer() -> None:
    """With the retry buffer (as ``init()`` builds it): the accepted batch is done; nothing is sent twice."""
    from tests._util import wait_for
    from tradeobs_agent._internal.exporters import Retry

    with RefusingOtlpServer("grpc") as srv:
        srv.mode = None
        srv.partial = (1, "one span too old")
        settings, _ = resolve_settings(otlp_endpoint=srv.endpoint, otlp_protocol="grpc", otlp_timeout=5.0)
        inner, target = providers._otlp_exporter(settings, "traces")
        reg = Registry()
        exp = CountingSpanExporter(inner, "traces", target, reg.self_metrics, Retry(1000, 300.0))
        try:
            exp.export(ended_spans(4))
            assert exp.force_flush(10_000)
            wait_for(lambda: srv.accepted["traces"] + srv.rejected["traces"] == 4, "the export")
            assert exp.force_flush(10_000)
        finally:
            exp.shutdown()
        assert srv.accepted["traces"] == 3 and srv.rejected["traces"] == 1  # one export, not retried
    assert reg.self_metrics.items_dropped.bind(signal="traces", reason="rejected_by_server").value == 1


def _split_metrics(temporality: AggregationTemporality) -> Any:
    """A metrics export the agent sends as several requests (about 5.5 MB, past its 3 MiB a request): 5 histogram
    metrics of 4,000 series."""
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

    ms = [Metric(f"latency.{k}", "d", "s", Histogram([point(i) for i in range(4000)], temporality)) for k in range(5)]
    resource, scope = Resource.create({"service.name": "split"}), InstrumentationScope("t")
    return MetricsData([ResourceMetrics(resource, [ScopeMetrics(scope, ms, "")], "")])


@pytest.mark.parametrize(
    ("later", "ok", "reason"),
    [
        pytest.param([grpc.StatusCode.UNAVAILABLE] * 20, False, "export_failed", id="the second request fails"),
        pytest.param([grpc.StatusCode.INVALID_ARGUMENT], False, "rejected", id="the second is refused for good"),
        pytest.param([grpc.StatusCode.UNAVAILABLE], True, "", id="the second request passes when sent again"),
    ],
)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_split_metrics_export_counts_each_requests_rejections_once_whatever_a_later_request_does(
    protocol: str, later: list[grpc.StatusCode], ok: bool, reason: str
) -> None:
    """The first request of a metrics export sent as several is accepted with 7 points rejected, the second fails
    (or fails once and passes when sent again, as do the others, each with 7 rejected). The agent counts the 7 as
    rejected by the server, what the server took as exported, and the delta points the server never took as
    dropped: each point once. Before, a failed export forgot the first request's rejections, counted none of its
    points as exported and every delta point as dropped; over gRPC the SDK's retry sent the taken requests again."""
    from tradeobs_agent._internal.otlp_encode import encode_metric_requests

    data = _split_metrics(AggregationTemporality.DELTA)  # a failed export loses delta points: counted
    total, requests = 20_000, len(encode_metric_requests(data))
    assert requests > 1
    with RefusingOtlpServer(protocol) as srv:
        srv.mode = None
        srv.partial = (7, "too many series")
        srv.plan = [None, *later]
        agent = _Agent(srv, "metrics")
        try:
            assert agent.exp.export(data) == (MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE)
        finally:
            agent.exp.shutdown()
        rejected, accepted = srv.rejected["metrics"], srv.accepted["metrics"]
    assert rejected == (7 * requests if ok else 7)  # each request answered once: the first one was not sent again
    assert 0 < accepted < total and (accepted + rejected == total) == ok
    assert agent.dropped() == rejected
    assert agent.exported() == accepted
    assert agent.failed() == (0 if ok else 1)
    if not ok:  # the points the server never took, dropped for the reason the later request failed
        assert agent.dropped(reason) == total - accepted - rejected
