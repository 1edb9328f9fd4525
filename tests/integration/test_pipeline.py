"""Smoke tests of the native pipeline with real processes:

    OTel Python SDK --OTLP--> otelcol-tradeobs --> Prometheus (scrape, exemplars)
                                               --> Jaeger v2 (OTLP, HTTP query API)
                                               --> JSON-lines file (logs)

Each test uses a unique service.name so tests never see each other's data.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tradeobs_agent.redaction import default_redactor

from .procs import (
    Stack,
    free_port,
    http_get,
    jaeger_search,
    jaeger_trace,
    prometheus_exemplars,
    prometheus_query,
    read_otlp_json_logs,
    span_tags,
    start_collector,
    start_jaeger,
    wait_for,
)

pytestmark = pytest.mark.integration

SECRETS = {
    "api_key": "SEKRIT-api-key",
    "token": "SEKRIT-token",
    "password": "SEKRIT-password",
    "secret": "SEKRIT-secret",
    "authorization": "Bearer SEKRIT-bearer",
    "APCA-API-KEY-ID": "SEKRIT-alpaca-key-id",
    "APCA-API-SECRET-KEY": "SEKRIT-alpaca-secret",
    "http.request.header.authorization": "Basic SEKRIT-basic",
}
KEPT = {"order.id": "ord-42", "gen_ai.usage.input_tokens": 7, "symbol": "AAPL"}


@pytest.fixture
def service_name() -> str:
    return f"tradeobs-smoke-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sdk(stack: Stack, service_name: str) -> Iterator[dict[str, object]]:
    """Tracer, meter and logger providers exporting OTLP/gRPC to the collector."""
    resource = Resource.create({"service.name": service_name, "service.instance.id": "smoke-1", **SECRETS})
    endpoint = f"http://{stack.otlp_grpc_endpoint}"
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
    # Exports happen on force_flush() only (the interval is an hour): the
    # prometheus exporter keeps the LAST data point of a series, and the SDK
    # attaches an exemplar only to the export that follows its measurement; a
    # later periodic export without new measurements would replace it before
    # Prometheus scrapes it.
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint, insecure=True), export_interval_millis=3_600_000
    )
    mp = MeterProvider(resource=resource, metric_readers=[reader])
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True)))
    yield {"tracer_provider": tp, "meter_provider": mp, "logger_provider": lp}
    tp.shutdown()
    mp.shutdown()
    lp.shutdown()


def test_span_arrives_in_jaeger_with_secrets_redacted(stack: Stack, sdk: dict[str, object], service_name: str) -> None:
    tp = sdk["tracer_provider"]
    assert isinstance(tp, TracerProvider)
    tracer = tp.get_tracer("smoke")
    with tracer.start_as_current_span("place_order", attributes={**SECRETS, **KEPT}) as span:
        span.add_event("order.sent", {"api_key": "SEKRIT-event", "qty": 5})
        trace_id = format(span.get_span_context().trace_id, "032x")
    # a health probe span, exported in the same request: filter/noise drops it
    with tracer.start_as_current_span("GET /healthz", attributes={"url.path": "/healthz"}) as probe:
        probe_trace_id = format(probe.get_span_context().trace_id, "032x")
    assert tp.force_flush()

    trace = stack.wait_for(lambda: jaeger_trace(stack.jaeger_query_url, trace_id), f"trace {trace_id} in Jaeger")
    (jspan,) = trace["spans"]
    assert jspan["operationName"] == "place_order"
    tags = span_tags(jspan)
    for key in SECRETS:
        assert key not in tags, f"span attribute {key} was not redacted: {tags}"
    for key, value in KEPT.items():
        assert tags[key] == value
    process = trace["processes"][jspan["processID"]]
    assert process["serviceName"] == service_name
    ptags = {t["key"]: t["value"] for t in process["tags"]}
    for key in SECRETS:
        assert key not in ptags, f"resource attribute {key} was not redacted: {ptags}"
    # resource processor filled in what the SDK did not set
    assert ptags["deployment.environment.name"] == "test"
    (event,) = jspan["logs"]
    event_fields = {f["key"]: f["value"] for f in event["fields"]}
    assert "api_key" not in event_fields
    assert event_fields["qty"] == 5
    assert "SEKRIT" not in str(trace)

    # Grafana's search finds it by service, operation and tag too, and not the dropped probe span
    found = jaeger_search(stack.jaeger_query_url, service_name)
    assert [t["traceID"] for t in found] == [trace_id]
    found = jaeger_search(stack.jaeger_query_url, service_name, operation="place_order", tags="order.id=ord-42")
    assert [t["traceID"] for t in found] == [trace_id]
    assert jaeger_search(stack.jaeger_query_url, service_name, tags="order.id=ord-43") == []
    assert jaeger_trace(stack.jaeger_query_url, probe_trace_id) is None


def test_metrics_arrive_in_prometheus_with_exemplars(stack: Stack, sdk: dict[str, object], service_name: str) -> None:
    mp = sdk["meter_provider"]
    tp = sdk["tracer_provider"]
    assert isinstance(mp, MeterProvider)
    assert isinstance(tp, TracerProvider)
    meter = mp.get_meter("smoke")
    orders = meter.create_counter("smoke.orders", description="orders placed")
    latency = meter.create_histogram("smoke.order.latency", unit="s", description="order latency")
    tracer = tp.get_tracer("smoke")
    for _ in range(3):
        orders.add(1, {"order_type": "limit", "api_key": "SEKRIT-metric"})
    with tracer.start_as_current_span("slow_order") as span:
        # recorded inside a sampled span -> the SDK attaches an exemplar
        latency.record(2.5, {"order_type": "limit"})
        trace_id = format(span.get_span_context().trace_id, "032x")
    assert mp.force_flush()
    assert tp.force_flush()

    sel = f'{{job="{service_name}"}}'
    series = stack.wait_for(
        lambda: prometheus_query(stack.prometheus_url, f"smoke_orders_total{sel}"),
        "smoke_orders_total in Prometheus",
    )
    (s,) = series
    assert s["value"][1] == "3"
    assert s["metric"]["order_type"] == "limit"
    assert s["metric"]["instance"] == "smoke-1"
    assert "api_key" not in s["metric"], f"metric attribute api_key not redacted: {s}"

    exemplars = stack.wait_for(
        lambda: prometheus_exemplars(stack.prometheus_url, f"smoke_order_latency_seconds_bucket{sel}"),
        "a histogram exemplar in Prometheus",
    )
    assert trace_id in [e["labels"].get("trace_id") for e in exemplars], exemplars
    # ...and the exemplar's trace is in the trace store: the metric->trace link works
    stack.wait_for(lambda: jaeger_trace(stack.jaeger_query_url, trace_id), "exemplar's trace")


def test_logs_arrive_in_file_with_secrets_redacted(stack: Stack, sdk: dict[str, object], service_name: str) -> None:
    lp = sdk["logger_provider"]
    assert isinstance(lp, LoggerProvider)
    marker = uuid.uuid4().hex
    body = (
        f"order {marker} rejected: api_key=SEKRIT-body-1 qty=5 "
        f'{{"password": "SEKRIT-body-2"}} Authorization: Bearer SEKRIT-body-3'
    )
    lp.get_logger("smoke").emit(body=body, attributes={**SECRETS, **KEPT})
    assert lp.force_flush()

    def mine() -> list[dict[str, object]]:
        return [r for r in read_otlp_json_logs(stack.logs_file) if marker in str(r.get("body"))]

    (record,) = stack.wait_for(mine, f"log record {marker} in {stack.logs_file}")
    text = record["body"]["stringValue"]  # type: ignore[index]
    assert "SEKRIT" not in str(record), f"secret leaked into the log sink: {record}"
    assert f"order {marker} rejected" in text
    assert "qty=5" in text
    # the agent's marker and rules, so a line reads the same in its file and here (the Bearer scheme stays visible)
    assert 'api_key=[REDACTED] qty=5 {"password": "[REDACTED]"} Authorization: Bearer [REDACTED]' in text, text
    assert text == default_redactor().text(body), text
    attrs = record["_attributes"]
    assert isinstance(attrs, dict)
    for key, value in KEPT.items():
        assert attrs[key] == value
    resource = record["_resource"]
    assert isinstance(resource, dict)
    assert resource["service.name"] == service_name


def test_prometheus_scrapes_collector_self_telemetry(stack: Stack) -> None:
    up = stack.wait_for(
        lambda: prometheus_query(stack.prometheus_url, 'up{job="otelcol"} == 1'),
        "Prometheus to scrape the collector's own metrics",
    )
    assert len(up) == 1
    status, body = http_get(f"{stack.collector.metrics_url}/metrics")
    assert status == 200
    assert b"otelcol_process_uptime" in body


def test_alertmanager_is_wired_to_prometheus(stack: Stack) -> None:
    def discovered() -> list[object]:
        import json

        status, body = http_get(f"{stack.prometheus_url}/api/v1/alertmanagers")
        active = json.loads(body)["data"]["activeAlertmanagers"] if status == 200 else []
        return [a for a in active if stack.alertmanager.target in a["url"]]

    assert stack.wait_for(discovered, "Prometheus to discover the Alertmanager")


def test_disk_queue_survives_collector_restart(tmp_path: Path) -> None:
    """Spans accepted while the trace store is down are kept on disk (file_storage
    sending queue) across a collector restart and delivered afterwards."""
    jaeger_port = free_port()  # reserved; nothing listens there yet
    service = f"tradeobs-queue-{uuid.uuid4().hex[:10]}"
    col = start_collector(tmp_path / "collector", f"127.0.0.1:{jaeger_port}")
    try:
        tp = TracerProvider(resource=Resource.create({"service.name": service}))
        tp.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"http://{col.otlp_grpc_endpoint}", insecure=True))
        )
        with tp.get_tracer("queue").start_as_current_span("queued") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
        assert tp.force_flush()
        tp.shutdown()

        # Wait until the exporter has tried (and failed) to send it: the span
        # has passed the batch processor and sits in the persistent queue.
        def failed_once() -> bool:
            status, body = http_get(f"{col.metrics_url}/metrics")
            return status == 200 and bool(
                re.search(rb'otelcol_exporter_queue_size\{[^}]*exporter="otlp_grpc/traces"[^}]*\} [1-9]', body)
                or re.search(rb"Exporting failed", col.proc.log_path.read_bytes())
            )

        wait_for(failed_once, "the span to be queued in the collector", procs=(col.proc,))
    finally:
        col.stop()
    assert col.proc.popen.returncode == 0, col.describe()

    with (
        start_jaeger(tmp_path / "jaeger", otlp_grpc_port=jaeger_port) as jaeger,
        # same env: same ports and the same storage directory
        start_collector(tmp_path / "collector", jaeger.otlp_grpc_endpoint, env=col.env) as col2,
    ):
        trace = wait_for(
            lambda: jaeger_trace(jaeger.query_url, trace_id),
            f"queued trace {trace_id} to be delivered after the restart",
            procs=(col2.proc, jaeger.proc),
        )
    assert trace["spans"][0]["operationName"] == "queued"
