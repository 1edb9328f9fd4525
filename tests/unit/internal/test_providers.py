"""_internal/providers: the OTel providers built from Settings, the Prometheus endpoint, bounded steps."""

from __future__ import annotations

import base64
import logging
import socket
import threading
import time
import urllib.request
from typing import Any

import pytest
from opentelemetry.sdk.trace import sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tests._util import dead_endpoint, ended_spans, wait_for
from tradeobs_agent._internal import otel_private, providers
from tradeobs_agent._internal.exporters import CountingLogExporter, CountingSpanExporter
from tradeobs_agent._internal.ids import PrivateRandomIdGenerator
from tradeobs_agent._internal.resource import build_resource
from tradeobs_agent.config import SAMPLERS, otlp_for, resolve_settings
from tradeobs_agent.metrics import Registry


def _settings(**kw: Any) -> Any:
    settings, _ = resolve_settings(env={}, **kw)
    return settings


@pytest.mark.parametrize("name", SAMPLERS)
def test_every_configurable_sampler_is_built(name: str) -> None:
    s = providers.build_sampler(_settings(traces_sampler=name, traces_sampler_arg=0.25))
    assert isinstance(s, sampling.Sampler)
    if "ratio" in name:
        assert "0.25" in s.get_description()


@pytest.mark.parametrize(("protocol", "module"), [("grpc", "grpc"), ("http/protobuf", "http")])
def test_tracing_and_logs_export_through_counting_wrappers_with_the_configured_protocol(
    protocol: str, module: str
) -> None:
    s = _settings(otlp_endpoint=dead_endpoint(), otlp_protocol=protocol)
    res = build_resource(s)
    selfm = Registry().self_metrics
    tp = providers.build_tracing(s, res, selfm)
    lp = providers.build_logs_provider(s, res, selfm)
    try:
        assert isinstance(tp.id_generator, PrivateRandomIdGenerator)  # never the application's `random`
        (proc,) = otel_private.span_processors(tp.get_tracer("x").span_processor)
        assert isinstance(proc, BatchSpanProcessor)
        exporter = proc.span_exporter
        assert isinstance(exporter, CountingSpanExporter) and f".{module}." in type(exporter.inner).__module__
        assert exporter.fast_encoding  # the direct encoder serves the gRPC and the HTTP exporter
        _, (log_proc,) = otel_private.log_processors(lp.get_logger("x"))  # type: ignore[arg-type]
        assert isinstance(otel_private.batch_exporter(otel_private.batch_processor(log_proc)), CountingLogExporter)
    finally:
        tp.shutdown()
        lp.shutdown()


def test_otlp_off_builds_providers_without_exporters() -> None:
    s = _settings(otlp_enabled=False)
    tp = providers.build_tracing(s, build_resource(s), Registry().self_metrics, otlp=False)
    assert otel_private.span_processors(tp.get_tracer("x").span_processor) == ()
    tp.shutdown()


def test_metrics_bridge_the_registry_and_serve_it_on_the_endpoint() -> None:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    s = _settings(otlp_enabled=False, prometheus_host="127.0.0.1", prometheus_port=0)
    reg = Registry()
    reader = InMemoryMetricReader()
    mp, prom = providers.build_metrics(s, build_resource(s), reg, reg.self_metrics, [reader])
    try:
        reg.counter("orders").add(2)
        assert prom is not None and prom.url.startswith("http://127.0.0.1:")
        import urllib.request

        body = urllib.request.urlopen(prom.url, timeout=5).read().decode()
        assert "orders_total 2.0" in body
        assert f'service_name="{s.service_name}"' in body  # the provider's resource, in target_info
        names = [
            m.name for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        ]
        assert "orders" in names
    finally:
        if prom is not None:
            prom.stop()
        mp.shutdown()


def test_a_taken_port_is_tried_again_until_it_is_free_with_one_warning_and_a_count(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process this one replaces still holds the port (a restart), or the service was started twice: the
    endpoint serves once the port is free, instead of never."""
    monkeypatch.setattr(providers.PrometheusEndpoint, "RETRY_FIRST", 0.05)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    reg = Registry()
    reg.counter("orders").bind().add(2)
    s = _settings(prometheus_host="127.0.0.1", prometheus_port=port)
    prom = None
    try:
        with caplog.at_level(logging.WARNING, logger="tradeobs"):
            prom = providers.PrometheusEndpoint.start(s, reg.self_metrics, reg)
        assert prom is not None and prom.url is None
        busy = reg.self_metrics.prometheus_port_busy.bind()
        assert busy.value == 1  # the health an operator reads: this process's metrics are on no endpoint
        time.sleep(0.3)  # a few tries while it is taken
        assert prom.url is None
        taken.close()
        wait_for(lambda: prom is not None and prom.url is not None, "the endpoint on the freed port")
        assert busy.value == 0
        assert prom.url == f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(prom.url, timeout=10) as r:
            assert b"orders_total 2" in r.read()
    finally:
        taken.close()
        if prom is not None:
            prom.stop()
    assert reg.self_metrics.exports_failed.bind(signal="metrics", exporter="prometheus_endpoint").value == 1
    said = [r.getMessage() for r in caplog.records if "cannot serve the Prometheus endpoint" in r.getMessage()]
    assert len(said) == 1 and "trying again" in said[0], said


def test_a_stopped_endpoint_stops_trying(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers.PrometheusEndpoint, "RETRY_FIRST", 0.05)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        reg = Registry()
        s = _settings(prometheus_host="127.0.0.1", prometheus_port=port)
        prom = providers.PrometheusEndpoint.start(s, reg.self_metrics, reg)
        assert prom is not None
        prom.stop()
    wait_for(lambda: not any(t.name == "tradeobs-prometheus-bind" for t in threading.enumerate()), "the retry ended")
    assert prom.url is None


def test_an_address_that_is_not_this_machines_is_not_tried_again() -> None:
    reg = Registry()
    s = _settings(prometheus_host="192.0.2.1", prometheus_port=0)  # TEST-NET-1: never a local address
    assert providers.PrometheusEndpoint.start(s, reg.self_metrics, reg) is None


def test_call_bounded_runs_steps_in_order_and_gives_up_at_its_bound() -> None:
    seen: list[int] = []
    assert providers.call_bounded([lambda: seen.append(1), lambda: seen.append(2)], 5.0, "test")
    assert seen == [1, 2]
    release = threading.Event()
    assert not providers.call_bounded([lambda: release.wait(10)], 0.2, "test")  # gave up: False
    release.set()


def test_an_export_step_that_raises_is_an_outcome_said_once(caplog: pytest.LogCaptureFixture) -> None:
    def timed_out() -> None:
        raise TimeoutError("deadline already exceeded")

    with caplog.at_level(logging.INFO, logger="tradeobs"):
        step = providers.export_step("shutdown", timed_out)
        step()
        step()
    said = [r for r in caplog.records if "deadline already exceeded" in r.getMessage()]
    assert len(said) == 1


def test_nothing_configured_and_no_collector_is_the_embedded_mode() -> None:
    from tradeobs_agent.config import resolve_settings

    s, report = resolve_settings(env={"TRADEOBS_OTLP_ENDPOINT": ""})  # empty: not set
    assert report.source("otlp_endpoint") == "default"
    # The default endpoint (localhost:4317) has no collector on this machine while the unit tests run.
    assert providers.otlp_mode(s, report) == "not_configured"
    s2, report2 = resolve_settings(env={"TRADEOBS_OTLP_ENDPOINT": dead_endpoint()})
    assert providers.otlp_mode(s2, report2) == "on"  # configured: used, reachable or not
    s3, report3 = resolve_settings(env={"TRADEOBS_OTLP_ENABLED": "false"})
    assert providers.otlp_mode(s3, report3) == "off"


class _HeaderRecorder:
    """An OTLP receiver (HTTP or gRPC, traces only) on a free loopback port that keeps each request's headers."""

    def __init__(self, protocol: str) -> None:
        self.seen: list[dict[str, str]] = []
        self.protocol = protocol
        if protocol == "grpc":
            from concurrent import futures

            import grpc
            from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

            recorder = self

            class Traces(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
                def Export(self, request: Any, context: Any) -> Any:
                    recorder.seen.append({k: v for k, v in context.invocation_metadata()})
                    return trace_service_pb2.ExportTraceServiceResponse()

            self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
            trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), self._grpc)
            port = self._grpc.add_insecure_port("127.0.0.1:0")
            self._grpc.start()
        else:
            import http.server

            recorder = self

            class Handler(http.server.BaseHTTPRequestHandler):
                def do_POST(self) -> None:
                    self.rfile.read(int(self.headers.get("content-length", 0)))
                    recorder.seen.append({k.lower(): v for k, v in self.headers.items()})
                    self.send_response(200)
                    self.send_header("content-type", "application/x-protobuf")
                    self.send_header("content-length", "0")
                    self.end_headers()

                def log_message(self, *args: Any) -> None:
                    pass

            self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            port = self._http.server_address[1]
            threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{port}"

    def headers_of_one_export(self, **settings: Any) -> dict[str, str]:
        """The headers of the one export the traces exporter built from ``settings`` sends here."""
        resolved, _ = resolve_settings(**settings)
        exporter, _ = providers._otlp_exporter(resolved, "traces")
        try:
            assert exporter.export(ended_spans(1)).name == "SUCCESS"
        finally:
            exporter.shutdown()
        (headers,) = self.seen
        return headers

    def close(self) -> None:
        if self.protocol == "grpc":
            self._grpc.stop(grace=None).wait(10)
        else:
            self._http.shutdown()
            self._http.server_close()


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize(
    ("env", "explicit", "sent"),
    [
        # The argument's headers are the headers: the platform's token in the environment is not added to them.
        ({"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer PLATFORMTOKEN"}, {"x-vendor-key": "k1"}, "k1"),
        # An explicit "no headers" is no headers (gRPC took the environment's for an empty mapping).
        ({"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer PLATFORMTOKEN"}, {}, None),
        # A bad value at the highest source falls back to the default (none), not to the lower source.
        (
            {"TRADEOBS_OTLP_HEADERS": "bad name=1", "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer PLATFORMTOKEN"},
            None,
            None,
        ),
    ],
)
def test_an_otlp_exporter_sends_the_resolved_headers_and_none_the_sdk_reads_itself(
    monkeypatch: pytest.MonkeyPatch, protocol: str, env: dict[str, str], explicit: dict[str, str] | None, sent: str
) -> None:
    """The SDK's exporters read OTEL_EXPORTER_OTLP[_TRACES]_HEADERS on their own: over HTTP they were merged under
    any headers tradeobs resolved, and over gRPC sent when those were empty, so a platform's token went to an
    endpoint a service chose, whatever the precedence said (found in a platform review)."""

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    receiver = _HeaderRecorder(protocol)
    try:
        kw: dict[str, Any] = {"otlp_endpoint": receiver.endpoint, "otlp_protocol": protocol}
        if explicit is not None:
            kw["otlp_headers"] = explicit
        headers = receiver.headers_of_one_export(**kw)
    finally:
        receiver.close()
    assert "authorization" not in headers, headers
    assert headers.get("x-vendor-key") == sent


@pytest.mark.parametrize(
    ("explicit", "expected"),
    [
        (None, "Basic " + base64.b64encode(b"algo-1:p@ss:w0rd").decode()),  # as OTLP/HTTP (requests) sends it
        ({"Authorization": "Bearer OWN"}, "Bearer OWN"),  # headers that already authorize are kept
    ],
)
def test_a_grpc_endpoint_with_user_and_password_sends_them_as_basic_auth(
    explicit: dict[str, str] | None, expected: str
) -> None:
    """A ``user:password@`` in an OTLP/gRPC endpoint (a platform review): gRPC has no credentials in its target, so
    every export failed ("Misformatted domain name") and nothing said why; the user and password (percent-decoded)
    are now sent as the ``authorization: Basic`` header OTLP/HTTP sends for the same URL."""
    receiver = _HeaderRecorder("grpc")
    try:
        host = receiver.endpoint.removeprefix("http://")
        kw: dict[str, Any] = {"otlp_endpoint": f"http://algo-1:p%40ss%3Aw0rd@{host}", "otlp_protocol": "grpc"}
        if explicit is not None:
            kw["otlp_headers"] = explicit
        target = otlp_for(resolve_settings(**kw)[0], "traces")
        assert "@" not in target.endpoint and target.endpoint == receiver.endpoint
        headers = receiver.headers_of_one_export(**kw)
    finally:
        receiver.close()
    assert headers.get("authorization") == expected
