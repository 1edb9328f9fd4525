"""compose's trace store, run natively: ``compose/jaeger/jaeger.yaml`` with the Jaeger binary the
tests build (scripts/build-jaeger.sh, the release compose's image is pinned to), Badger in a tmp dir.

It loads, stores an order trace sent over OTLP, serves it to the queries Grafana's Jaeger
datasource makes, keeps it across a restart (persistent storage), drops it after the retention
(``JAEGER_SPAN_TTL``), and exposes the telemetry the pipeline dashboard and alert read.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from .procs import COMPOSE_JAEGER_CONFIG, JaegerProc, http_get, jaeger_search, jaeger_trace, start_jaeger, wait_for

pytestmark = pytest.mark.integration

SERVICE = "compose-jaeger-test"


def _send_order(j: JaegerProc, order_id: str, fill_sleep: float = 0.02) -> str:
    """One order trace (root ``order`` + ``fill`` child) over OTLP/gRPC -> its trace id."""
    tp = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    tp.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://{j.otlp_grpc_endpoint}", insecure=True))
    )
    tracer = tp.get_tracer("test")
    with tracer.start_as_current_span("order", attributes={"order.id": order_id, "symbol": "AAPL"}) as root:
        time.sleep(fill_sleep)
        with tracer.start_as_current_span("fill", attributes={"fill.qty": 100}):
            pass
        trace_id = format(root.get_span_context().trace_id, "032x")
    tp.shutdown()
    return trace_id


def _found(j: JaegerProc, order_id: str) -> list[str]:
    traces = jaeger_search(j.query_url, SERVICE, operation="order", tags=f"order.id={order_id}")
    return [t["traceID"] for t in traces]


def test_compose_jaeger_config_stores_serves_and_keeps_a_trace(tmp_path: Path) -> None:
    badger = tmp_path / "badger"
    with start_jaeger(
        tmp_path / "run1", config=COMPOSE_JAEGER_CONFIG, extra_env={"JAEGER_BADGER_DIR": str(badger)}
    ) as j:
        trace_id = _send_order(j, "ord-1")
        assert wait_for(lambda: _found(j, "ord-1"), "the order trace in Jaeger", procs=(j.proc,)) == [trace_id]
        trace = jaeger_trace(j.query_url, trace_id)
        assert trace is not None
        assert sorted(s["operationName"] for s in trace["spans"]) == ["fill", "order"]
        # the drill-down's duration search: the order lasted at least the sleep before its fill
        slow = jaeger_search(j.query_url, SERVICE, operation="order", min_duration="20ms", max_duration="10s")
        assert [t["traceID"] for t in slow] == [trace_id]
        # (Badger matches each condition on any span of the trace, so bound the minimum, not the maximum)
        assert jaeger_search(j.query_url, SERVICE, operation="order", min_duration="5s") == []
        # what the pipeline dashboard and TraceStoreWriteFailures read, on the port Prometheus scrapes
        status, body = http_get(f"{j.metrics_url}/metrics")
        assert status == 200
        sent = re.search(
            rb'otelcol_exporter_sent_spans(?:_total)?\{[^}]*exporter="jaeger_storage_exporter"[^}]*\} (\d+)', body
        )
        assert sent and int(sent.group(1)) == 2, body[:2000]
        assert re.search(rb'otelcol_receiver_accepted_spans(?:_total)?\{[^}]*receiver="otlp"', body)
    assert j.proc.popen.returncode == 0, j.describe()
    assert (badger / "keys").is_dir() and any((badger / "values").iterdir())

    # Same storage, new process: the trace is still there (Badger, not memory).
    with start_jaeger(tmp_path / "run2", config=COMPOSE_JAEGER_CONFIG, env=j.env) as j2:
        assert _found(j2, "ord-1") == [trace_id]
        assert jaeger_trace(j2.query_url, trace_id) is not None


def test_compose_jaeger_retention_deletes_old_traces(tmp_path: Path) -> None:
    """JAEGER_SPAN_TTL is the retention: a trace older than it is no longer served."""
    env = {"JAEGER_BADGER_DIR": str(tmp_path / "badger"), "JAEGER_SPAN_TTL": "3s"}
    with start_jaeger(tmp_path, config=COMPOSE_JAEGER_CONFIG, extra_env=env) as j:
        trace_id = _send_order(j, "ord-ttl")
        assert wait_for(lambda: _found(j, "ord-ttl"), "the order trace in Jaeger", procs=(j.proc,)) == [trace_id]
        wait_for(
            lambda: jaeger_trace(j.query_url, trace_id) is None and not _found(j, "ord-ttl"),
            "the trace to expire after JAEGER_SPAN_TTL=3s",
            procs=(j.proc,),
        )
