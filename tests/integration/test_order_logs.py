"""An order's log lines are on the order's trace, end to end: the demo service (real uvicorn), a real collector
and Jaeger. What Grafana does for "logs for this trace" (the Jaeger datasource's trace-to-logs query,
``| trace_id="<order trace>"`` on Loki) is done here on the collector's file exporter, Loki's stand-in.

The order is placed with ``POST /api/orders`` (a request trace of its own): the demo logs the signal inside
the request with ``correlate(order_id=...)``, and the broker's callbacks (ack, fills) inside ``order.scope()``.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from .agent_proc import start_demo, unique_service
from .procs import CollectorProc, JaegerProc, jaeger_search, read_otlp_json_logs, wait_for


def _order_lines(log_dir: Path, order_id: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted(log_dir.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            rec = json.loads(line) if line.strip() else {}
            if rec.get("order_id") == order_id:
                out.append(rec)
    return out


@pytest.mark.integration
def test_an_orders_log_lines_are_on_its_trace_in_files_collector_and_jaeger(
    collector: CollectorProc, jaeger: JaegerProc, tmp_path: Path
) -> None:
    service = unique_service("order-logs")
    proc, base = start_demo(collector, tmp_path, service)
    request_trace = uuid.uuid4().hex
    traceparent = f"00-{request_trace}-{uuid.uuid4().hex[:16]}-01"
    try:
        req = urllib.request.Request(
            f"{base}/api/orders",
            data=json.dumps({"symbol": "AAPL", "side": "buy", "qty": 10}).encode(),
            headers={"content-type": "application/json", "traceparent": traceparent},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            body = json.loads(r.read())
        oid, order_trace = body["order_id"], body["order_trace_id"]
        assert order_trace and order_trace != request_trace

        # Jaeger: the order's trace, its root span `order`.
        [found] = wait_for(
            lambda: jaeger_search(jaeger.query_url, service, tags=f"order.id={oid}"),
            f"order {oid}'s trace in Jaeger",
            procs=(proc,),
        )
        assert found["traceID"] == order_trace
        [root] = [s for s in found["spans"] if s["operationName"] == "order"]

        # The JSON files: the signal (logged inside the HTTP request) and the venue's callbacks (inside the scope).
        def both_kinds() -> list[dict[str, Any]] | None:
            lines = _order_lines(tmp_path / "logs", oid)
            streams = {x["stream"] for x in lines}
            return lines if "strategy" in streams and "execution" in streams else None

        lines = wait_for(both_kinds, f"order {oid}'s signal and venue lines in the JSON logs", procs=(proc,))
        for line in lines:
            assert (line["trace_id"], line["span_id"]) == (order_trace, root["spanID"]), line

        # "Logs for this trace": the collector's records with the order's trace id are the order's lines.
        def for_the_trace() -> list[dict[str, Any]] | None:
            recs = [
                r
                for r in read_otlp_json_logs(collector.logs_file)
                if r["_resource"].get("service.name") == service and r.get("traceId") == order_trace
            ]
            return recs if len(recs) >= len(lines) else None

        recs = wait_for(for_the_trace, f"the order's {len(lines)} log records under its trace id", procs=(proc,))
        assert {r["_attributes"].get("order_id") for r in recs} == {oid}
        assert {r["spanId"] for r in recs} == {root["spanID"]}
        assert {r["body"]["stringValue"] for r in recs} >= {x["message"] for x in lines}
        # None of the order's lines is left on the request's trace.
        on_request = [
            r
            for r in read_otlp_json_logs(collector.logs_file)
            if r.get("traceId") == request_trace and r["_attributes"].get("order_id") == oid
        ]
        assert on_request == []
    finally:
        proc.stop()
    assert proc.popen.returncode == 0, proc.describe()
