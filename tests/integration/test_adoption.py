"""tradeobs added to a service that already has OpenTelemetry, prometheus_client, a logging dictConfig and structlog
(``adopt_app.py``), as docs/agent.md's "Adding tradeobs to a service that already has ..." says, under a real uvicorn,
exporting to the real collector, Jaeger and Prometheus."""

from __future__ import annotations

import json
import sys
import urllib.request
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
    PrometheusProc,
    free_port,
    http_ok,
    jaeger_trace,
    prometheus_config,
    prometheus_query,
    read_otlp_json_logs,
    start_prometheus,
    wait_for,
)

HERE = Path(__file__).resolve().parent
# opentelemetry-instrument, by its module (the console script may belong to another interpreter on PATH)
INSTRUMENT = [sys.executable, "-c", "from opentelemetry.instrumentation.auto_instrumentation import run; run()"]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _start(
    collector: CollectorProc, tmp_path: Path, name: str, env: dict[str, str], prefix: tuple[str, ...] = ()
) -> tuple[ManagedProcess, str]:
    port = free_port()
    argv = [*prefix, sys.executable, "-m", "uvicorn", "adopt_app:app", "--app-dir", str(HERE),
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    proc = ManagedProcess(name, argv, env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_ok(f"{base}/ok"), f"{name} to serve", timeout=READY_TIMEOUT, procs=(proc,))
    return proc, base


def _base_env(collector: CollectorProc, tmp_path: Path, service: str, name: str) -> dict[str, str]:
    env = agent_env(collector, tmp_path / name, service)
    del env["TRADEOBS_SERVICE_NAME"]  # the service names itself, as it did before tradeobs
    env.update({"APP_LOG_FILE": str(tmp_path / f"{name}-app.log"), "APP_PROM_PORT": str(free_port())})
    return env


def _logs(collector: CollectorProc, marker: str) -> list[dict[str, Any]]:
    return [r for r in read_otlp_json_logs(collector.logs_file) if marker in str(r.get("body", {}).get("stringValue"))]


def _series(prometheus: PrometheusProc, promql: str) -> list[dict[str, str]]:
    return [r["metric"] for r in prometheus_query(prometheus.url, promql)]


@pytest.mark.integration
def test_a_service_named_by_its_own_tracer_provider_has_its_metrics_and_logs_under_that_name(
    collector: CollectorProc, jaeger: JaegerProc, prometheus: PrometheusProc, tmp_path: Path
) -> None:
    """The service set its own TracerProvider (``Resource.create({"service.name": ..., "team": "desk"})``) before
    init(): the agent adopts it for traces and builds its meter and logger providers. Before: those were built with the
    agent's own resource, read before adoption: the trading series reached Prometheus as job="tradeobs-service" and
    the log records as service.name "tradeobs-service", each with another service.instance.id than the spans, so
    nothing joined the service's traces to its metrics and logs."""
    service, marker = unique_service("adopt-own"), uuid.uuid4().hex[:12]
    env = {**_base_env(collector, tmp_path, service, "own"), "OWN_OTEL": "1", "SHOP_NAME": service}
    proc, base = _start(collector, tmp_path, "own", env)
    try:
        ids = _get(f"{base}/order/{marker}")
        filled = f'trading_orders_filled_total{{job="{service}"}}'
        [series] = wait_for(lambda: _series(prometheus, filled), f"{filled} in Prometheus", procs=(proc,))
        wait_for(lambda: len(_logs(collector, marker)) >= 2, "the service's lines at the collector", procs=(proc,))
        spans = wait_for(lambda: jaeger_trace(jaeger.query_url, ids["trace_id"]), "the request's trace in Jaeger")
    finally:
        proc.stop()
    [process] = [p for p in spans["processes"].values() if p["serviceName"] == service]
    tags = {t["key"]: t["value"] for t in process["tags"]}
    instance = tags["service.instance.id"]
    assert tags["team"] == "desk"
    assert series["instance"] == instance, series  # the metrics: the service's name and instance, as the spans
    assert series["trading_mode"] == "paper", series  # and the agent's trading.mode, which the resource did not have
    records = _logs(collector, marker)
    assert sorted(r["body"]["stringValue"] for r in records)[0] == f"placing {marker}", records
    for r in records:  # the logs: the same
        res = r["_resource"]
        assert (res["service.name"], res["service.instance.id"], res["team"]) == (service, instance, "desk"), res
        assert r["traceId"] == ids["trace_id"]


@pytest.mark.integration
def test_the_port_of_the_services_own_prometheus_client_is_told_and_the_series_can_share_it(
    collector: CollectorProc, tmp_path: Path
) -> None:
    """The agent given the port the service's prometheus_client ``start_http_server`` already serves. Before: the
    warning said "a process that is not this user's (or is in another container) holds it: no process of this user
    does ... Stop the duplicate" (the process itself was left out of the search), and the way to have the trading
    series on that endpoint was an ``_internal`` class. Now it says that this process serves the port, and
    ``agent.prometheus_collector()`` registered in the service's registry puts them there: a real Prometheus scrapes
    the service's own series, prometheus_client's process and gc collectors and the trading series from one target."""
    service, marker = unique_service("adopt-port"), uuid.uuid4().hex[:12]
    env = _base_env(collector, tmp_path, service, "busy")
    env["TRADEOBS_PROMETHEUS_PORT"] = env["APP_PROM_PORT"]
    proc, _ = _start(collector, tmp_path, "busy", env)
    proc.stop()
    out = proc.log_path.read_text(errors="replace")
    [said] = [x for x in out.splitlines() if "cannot serve the Prometheus endpoint" in x]
    assert "this process itself listens on it" in said and "no process of this user does" not in said, said
    assert "prometheus_client.REGISTRY.register(agent.prometheus_collector())" in said, said
    assert "TRADEOBS_PROMETHEUS_ENABLED=false" in said and "Stop the duplicate" not in said, said

    env = _base_env(collector, tmp_path, service, "shared")
    env.update({"SHARE_PROM": "1", "TRADEOBS_PROMETHEUS_ENABLED": "false"})
    target = f"127.0.0.1:{env['APP_PROM_PORT']}"
    config = prometheus_config(collector.prometheus_exporter_target, collector.metrics_target)
    config += f"  - job_name: shop\n    static_configs:\n      - targets: ['{target}']\n"
    proc, base = _start(collector, tmp_path, "shared", env)
    try:
        with start_prometheus(tmp_path / "prometheus", config) as prometheus:
            for i in range(3):
                _get(f"{base}/order/{marker}-{i}")

            def scraped() -> dict[str, list[dict[str, str]]] | None:
                found = {
                    name: _series(prometheus, f'{name}{{job="shop"}}')
                    for name in ("shop_orders_total", "python_gc_collections_total", "trading_orders_filled_total")
                }
                return found if all(found.values()) and found["trading_orders_filled_total"] else None

            found = wait_for(scraped, f"the service's, prometheus_client's and the trading series from {target}")
            value = prometheus_query(prometheus.url, 'trading_orders_filled_total{job="shop"}')[0]["value"][1]
            assert value == "3", found
    finally:
        proc.stop()
    assert "cannot serve the Prometheus endpoint" not in proc.log_path.read_text(errors="replace")


@pytest.mark.integration
def test_under_opentelemetry_instrument_each_span_and_line_arrives_once_and_a_missing_trading_mode_is_said(
    collector: CollectorProc, jaeger: JaegerProc, prometheus: PrometheusProc, tmp_path: Path
) -> None:
    """The service run under ``opentelemetry-instrument`` (opentelemetry-distro: OTLP for traces, metrics and logs,
    the SDK's logging handler) with tradeobs added. Before: nothing said that the providers the agent adopts have no
    ``trading.mode``, so the trading series and order traces reached the collector without the ``trading_mode`` label
    (a backtest's paged as the live book's: the rules leave out only ``trading_mode="backtest"``). Now a warning names
    the variable to set; set, the series carry it. And through the real collector, Jaeger and Prometheus: one server
    span per request (the agent's instrumentation replaces the zero-code one), each log line once, with the trace id
    the service's own file shows, all flushed by uvicorn's SIGTERM shutdown."""
    service, marker = unique_service("adopt-zc"), uuid.uuid4().hex[:12]
    otel = {
        "OTEL_SERVICE_NAME": service,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true",
    }
    env = {**_base_env(collector, tmp_path, service, "zc"), **otel}
    proc, _ = _start(collector, tmp_path, "zc", env, tuple(INSTRUMENT))
    proc.stop()
    out = proc.log_path.read_text(errors="replace")
    [said] = [x for x in out.splitlines() if "have no trading.mode in their resource" in x]
    assert "OTEL_RESOURCE_ATTRIBUTES=trading.mode=paper" in said, said

    env = {**_base_env(collector, tmp_path, service, "zc2"), **otel, "OTEL_RESOURCE_ATTRIBUTES": "trading.mode=paper"}
    proc, base = _start(collector, tmp_path, "zc2", env, tuple(INSTRUMENT))
    try:
        ids = [_get(f"{base}/order/{marker}-{i}") for i in range(3)]
    finally:
        proc.stop()  # SIGTERM straight after the requests: uvicorn's shutdown and the agent's flush send the rest
    out = proc.log_path.read_text(errors="replace")
    assert "trading.mode in their resource" not in out, out
    filled = f'trading_orders_filled_total{{job="{service}",trading_mode="paper"}}'
    wait_for(lambda: _series(prometheus, filled), f"{filled} in Prometheus")
    wait_for(lambda: len(_logs(collector, marker)) >= 6, "the service's lines at the collector")
    bodies = sorted(r["body"]["stringValue"] for r in _logs(collector, marker))
    assert [b for b in bodies if b.startswith("placing")] == [f"placing {marker}-{i}" for i in range(3)]  # once each
    assert len([b for b in bodies if '"struct placing"' in b]) == 3, bodies
    file_lines = (tmp_path / "zc2-app.log").read_text().splitlines()
    for i, got in enumerate(ids):
        trace_doc = wait_for(lambda got=got: jaeger_trace(jaeger.query_url, got["trace_id"]), "the request's trace")
        names = sorted(s["operationName"] for s in trace_doc["spans"])
        assert names == ["GET /order/{n}", "place-order"], names  # one server span, no per-message spans
        order_doc = wait_for(lambda got=got: jaeger_trace(jaeger.query_url, got["order_trace_id"]), "the order")
        assert "order" in [s["operationName"] for s in order_doc["spans"]]
        assert f"INFO shop.api trace_id={got['trace_id']} placing {marker}-{i}" in file_lines, file_lines
        [record] = [r for r in _logs(collector, marker) if r["body"]["stringValue"] == f"placing {marker}-{i}"]
        assert record["traceId"] == got["trace_id"]
