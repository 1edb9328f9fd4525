"""A FastAPI app mounted in an instrumented one: each request one server span, one duration point, one log record
of an unhandled exception, its log lines on that span; under a real uvicorn, through the real collector to Jaeger.

FastAPI 0.165 and later trace and count every ``FastAPI()`` on their own once a global provider is set (``init()``
sets them); they stand aside for an app that ``instrument_app`` instrumented, but a FastAPI app mounted in it
(``app.mount("/admin", FastAPI())``) did not: before (measured 2026-12-07, FastAPI 0.165.0), each of its requests
was a second server span (``GET /items/{item_id}``, a sibling of ``GET /admin``, and a trace of its own when no
``traceparent`` came in) with three ``fastapi.*`` operation spans, a second ``http.server.request.duration`` point
(every ``sum()`` over it counted the request twice), the handler's log lines on that second span, and an unhandled
exception was two ERROR records with the traceback (FastAPI's ``Unhandled exception in FastAPI request`` and
uvicorn's); and the instrumented app's span and point were named by the mount's path (``GET /admin``,
``http_route="/admin"``) for every route of the mounted app. The service is ``mounted_app.py``.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from .agent_proc import agent_env, unique_service
from .procs import (
    READY_TIMEOUT,
    CollectorProc,
    JaegerProc,
    ManagedProcess,
    free_port,
    http_get,
    http_ok,
    jaeger_search,
    jaeger_trace,
    read_otlp_json_logs,
    span_tags,
    wait_for,
)

HERE = Path(__file__).resolve().parent
ITEMS = 3


def _duration_counts(collector: CollectorProc, service: str) -> dict[str, float]:
    """``http_server_request_duration_seconds_count`` of ``service`` on the collector's Prometheus page: each
    series (its labels) -> its count."""
    status, body = http_get(f"{collector.prometheus_exporter_url}/metrics")
    assert status == 200
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("http_server_request_duration_seconds_count{") and f'job="{service}"' in line:
            labels, _, value = line.rpartition(" ")
            out[labels] = float(value)
    return out


def _status(url: str, headers: dict[str, str]) -> int:
    return http_get(url, 10, headers)[0]


@pytest.mark.integration
def test_a_mounted_fastapi_app_is_one_span_one_point_and_one_error_record_per_request(
    collector: CollectorProc, jaeger: JaegerProc, tmp_path: Path
) -> None:
    service = unique_service("fastapi-mounted")
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--factory", "mounted_app:create_app", "--app-dir", str(HERE),
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    proc = ManagedProcess("uvicorn", argv, agent_env(collector, tmp_path, service), tmp_path)
    base = f"http://127.0.0.1:{port}"
    parent = uuid.uuid4().hex[:16]
    items = {uuid.uuid4().hex[:12]: uuid.uuid4().hex for _ in range(ITEMS)}  # item id -> the incoming trace id
    marker = uuid.uuid4().hex[:12]

    def error_records() -> list[dict[str, Any]]:
        return [
            r
            for r in read_otlp_json_logs(collector.logs_file)
            if r["_resource"].get("service.name") == service
            and f"admin boom {marker}" in str(r["_attributes"].get("exception.message", ""))
        ]

    def item_lines() -> dict[str, dict[str, Any]]:
        return {
            str(r["body"]["stringValue"]).removeprefix("admin item "): r
            for r in read_otlp_json_logs(collector.logs_file)
            if r["_resource"].get("service.name") == service
            and str(r.get("body", {}).get("stringValue", "")).startswith("admin item ")
        }

    try:
        wait_for(lambda: http_ok(f"{base}/ok"), "uvicorn to serve", timeout=READY_TIMEOUT, procs=(proc,))
        for item, trace_id in items.items():
            assert _status(f"{base}/admin/items/{item}", {"traceparent": f"00-{trace_id}-{parent}-01"}) == 200
        assert _status(f"{base}/admin/boom/{marker}", {}) == 500

        # Metrics: each request one point, on its route's template through the mount, once. (A second
        # point of the same request is recorded before the first, in the same collection.)
        def counted() -> dict[str, float] | None:
            counts = _duration_counts(collector, service)
            instrumented = [
                v for k, v in counts.items() if 'otel_scope_name="opentelemetry.instrumentation.fastapi"' in k
            ]
            return counts if sum(instrumented) >= ITEMS + 2 else None  # the items, the error and /ok

        counts = wait_for(counted, f"{ITEMS + 2} requests in http_server_request_duration_seconds_count", procs=(proc,))
        wait_for(error_records, "the exception's log record in the collector", procs=(proc,))
        wait_for(lambda: len(item_lines()) == ITEMS, f"{ITEMS} 'admin item' log lines in the collector", procs=(proc,))
    finally:
        proc.stop()
    assert proc.popen.returncode in (0, -15), proc.describe()

    assert sum(counts.values()) == ITEMS + 2, counts
    items_route = sum(v for k, v in counts.items() if 'http_route="/admin/items/{item_id}"' in k)
    boom_route = sum(v for k, v in counts.items() if 'http_route="/admin/boom/{marker}"' in k)
    assert (items_route, boom_route) == (ITEMS, 1), counts

    # The unhandled exception: one record with the traceback (uvicorn's), on the request's span.
    [record] = error_records()
    assert record["body"] == {"stringValue": "Exception in ASGI application\n"}, record
    assert len(record["traceId"]) == 32 and len(record["spanId"]) == 16

    # Traces: one server span per request, the instrumented app's, and the handler's log line on it.
    lines = item_lines()
    assert set(lines) == set(items), lines
    for item, trace_id in items.items():

        def server_span(trace_id: str = trace_id) -> dict[str, Any] | None:
            trace = jaeger_trace(jaeger.query_url, trace_id)
            spans = trace["spans"] if trace else []
            return next((s for s in spans if s["operationName"] == "GET /admin/items/{item_id}"), None)

        wait_for(server_span, f"the server span of trace {trace_id} in Jaeger")
        trace = jaeger_trace(jaeger.query_url, trace_id)
        assert trace is not None
        names = sorted(s["operationName"] for s in trace["spans"])
        assert names == ["GET /admin/items/{item_id}"], names
        [span] = trace["spans"]
        assert span_tags(span)["span.kind"] == "server" and span_tags(span)["http.route"] == "/admin/items/{item_id}"
        assert [(r["refType"], r["spanID"]) for r in span["references"]] == [("CHILD_OF", parent)]
        line = lines[item]
        assert (line["traceId"], line["spanId"]) == (trace_id, span["spanID"]), line


@pytest.mark.integration
def test_health_checks_and_the_live_view_stay_excluded_under_a_root_path(
    collector: CollectorProc, jaeger: JaegerProc, tmp_path: Path
) -> None:
    """Behind a proxy that strips a prefix (nginx ``location /api/ { proxy_pass http://app/; }``), uvicorn serves with
    ``--root-path /api`` and the path of each request begins with it (ASGI). The instrumentation matches its
    exclusions against the full URL: before (2026-12-07), ``/health`` and the live view's endpoints were traced and
    counted there (``GET /health``, ``http_route="/telemetry"``; a live stream an active request as long as it is
    open). The requests: health checks and a live-view snapshot first, then one order request, whose duration point
    is in the same collection as theirs would be."""
    service = unique_service("fastapi-root-path")
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--factory", "mounted_app:create_app", "--app-dir", str(HERE),
            "--root-path", "/api", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    proc = ManagedProcess("uvicorn", argv, agent_env(collector, tmp_path, service), tmp_path)
    base = f"http://127.0.0.1:{port}"
    trace_id = uuid.uuid4().hex
    try:
        wait_for(lambda: http_ok(f"{base}/ok"), "uvicorn to serve", timeout=READY_TIMEOUT, procs=(proc,))
        for _ in range(3):
            assert _status(f"{base}/health", {}) == 200
        assert _status(f"{base}/telemetry/snapshot", {}) == 200
        assert _status(f"{base}/orders/o-1", {"traceparent": f"00-{trace_id}-{'2' * 16}-01"}) == 200

        def counted() -> dict[str, float] | None:
            counts = _duration_counts(collector, service)
            return counts if any('http_route="/orders/{order_id}"' in k for k in counts) else None

        counts = wait_for(counted, "the order request's duration point in the collector", procs=(proc,))

        def order_trace() -> dict[str, Any] | None:
            return jaeger_trace(jaeger.query_url, trace_id)

        wait_for(order_trace, f"the order request's trace {trace_id} in Jaeger", procs=(proc,))
    finally:
        proc.stop()
    routes = sorted(k[k.index("http_route=") :].split(",")[0] for k in counts if "http_route=" in k)
    assert routes == ['http_route="/ok"', 'http_route="/orders/{order_id}"'], counts
    traces = jaeger_search(jaeger.query_url, service, limit=100)
    names = sorted(s["operationName"] for t in traces for s in t["spans"])
    assert names == ["GET /ok", "GET /orders/{order_id}"], names


@pytest.mark.integration
def test_a_starlette_apps_spans_and_points_are_named_by_the_route_template(
    collector: CollectorProc, jaeger: JaegerProc, tmp_path: Path
) -> None:
    """``instrument_app`` on a plain Starlette app (``starlette_app.py``): before (2026-12-07), the ASGI
    instrumentation named each server span by its raw path (``GET /orders/o-1``: one name per order id, and per
    made-up path a scanner tries) and gave its duration points no ``http_route``. Now as for FastAPI: the template,
    through mounts, and the method alone for a path no route matches."""
    service = unique_service("starlette-routes")
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "starlette_app:app", "--app-dir", str(HERE),
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    proc = ManagedProcess("uvicorn", argv, agent_env(collector, tmp_path, service), tmp_path)
    base = f"http://127.0.0.1:{port}"
    sent = {"/orders/o-1": 200, "/orders/o-2": 200, "/admin/items/i-1": 200, f"/scan/{uuid.uuid4().hex}": 404}
    traces = {path: uuid.uuid4().hex for path in sent}
    try:
        wait_for(lambda: http_ok(f"{base}/ok"), "uvicorn to serve", timeout=READY_TIMEOUT, procs=(proc,))
        for path, status in sent.items():
            assert _status(f"{base}{path}", {"traceparent": f"00-{traces[path]}-{'3' * 16}-01"}) == status

        def counted() -> dict[str, float] | None:
            counts = _duration_counts(collector, service)
            return counts if sum(counts.values()) >= len(sent) + 1 else None

        counts = wait_for(counted, f"{len(sent) + 1} duration points in the collector", procs=(proc,))
        names = {}
        for path, trace_id in traces.items():

            def server_span(trace_id: str = trace_id) -> str | None:
                trace = jaeger_trace(jaeger.query_url, trace_id)
                return trace["spans"][0]["operationName"] if trace and trace["spans"] else None

            names[path] = wait_for(server_span, f"the span of {path} in Jaeger", procs=(proc,))
    finally:
        proc.stop()
    scan = next(p for p in sent if p.startswith("/scan/"))
    assert names == {
        "/orders/o-1": "GET /orders/{order_id}",
        "/orders/o-2": "GET /orders/{order_id}",
        "/admin/items/i-1": "GET /admin/items/{item_id}",
        scan: "GET",
    }, names
    by_route: dict[str, float] = {}
    for labels, value in counts.items():
        route = labels.split('http_route="', 1)[1].split('"', 1)[0] if 'http_route="' in labels else None
        by_route[str(route)] = by_route.get(str(route), 0) + value
    assert by_route == {"/ok": 1, "/orders/{order_id}": 2, "/admin/items/{item_id}": 1, "None": 1}, counts
