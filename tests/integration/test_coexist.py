"""tradeobs added to a FastAPI service that already has its own observability (``coexist_app.py``: its logging
``dictConfig``, its own OpenTelemetry providers and ``LoggingHandler``, prometheus_client on its own ``/metrics``),
under a real uvicorn, exporting to a real collector (its file exporter stands for Loki)."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from .agent_proc import agent_env, unique_service
from .procs import READY_TIMEOUT, CollectorProc, ManagedProcess, free_port, http_ok, read_otlp_json_logs, wait_for

HERE = Path(__file__).resolve().parent


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return bytes(r.read())


def _json_lines(log_dir: Path, stream: str) -> list[dict[str, Any]]:
    path = log_dir / f"{stream}.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.integration
def test_a_service_with_its_own_observability_keeps_it_and_each_log_line_reaches_the_collector_once(
    collector: CollectorProc, tmp_path: Path
) -> None:
    """Before: every line reached the collector twice (from the service's LoggingHandler and again from the agent's
    OTLP sink, through the logger provider it adopted), the agent's own lines said at init() (what it adopted) were
    lost to the service's dictConfig, and a second later the agent warned of a logging set-up "after init()"."""
    service = unique_service("coexist")
    port = free_port()
    env = agent_env(collector, tmp_path, service)
    argv = [sys.executable, "-m", "uvicorn", "coexist_app:app", "--app-dir", str(HERE),
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    proc = ManagedProcess("uvicorn", argv, env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    marker = uuid.uuid4().hex[:12]

    def mine() -> list[dict[str, Any]]:
        return [
            r
            for r in read_otlp_json_logs(collector.logs_file)
            if r["_resource"].get("service.name") == service and marker in str(r.get("body", {}).get("stringValue"))
        ]

    try:
        wait_for(lambda: http_ok(f"{base}/ok"), "uvicorn to serve", timeout=READY_TIMEOUT, procs=(proc,))
        ids = json.loads(_get(f"{base}/trade/{marker}"))
        assert b"shop_trades_total 1.0" in _get(f"{base}/metrics")  # the service's own prometheus_client route
        wait_for(lambda: len(mine()) >= 2, f"the service's lines in {collector.logs_file}", procs=(proc,))
    finally:
        proc.stop()
    # A clean stop on SIGTERM (uvicorn re-raises the signal once it has shut down: -15); everything it held was
    # flushed by then: counted after it.
    assert proc.popen.returncode in (0, -15), proc.describe()
    bodies = sorted(r["body"]["stringValue"] for r in mine())
    assert bodies == [f"app handling {marker}", f"order {marker} sent"]  # once each; no DEBUG, no silenced library
    by_body = {r["body"]["stringValue"]: r for r in mine()}
    assert by_body[f"app handling {marker}"]["traceId"] == ids["trace_id"]  # the request's trace
    assert by_body[f"order {marker} sent"]["traceId"] == ids["order_trace_id"]  # the order's
    assert by_body[f"order {marker} sent"]["_resource"]["team"] == "desk"  # the service's own resource

    logs = tmp_path / "logs"
    assert [x["message"] for x in _json_lines(logs, "service") if marker in x["message"]] == [f"app handling {marker}"]
    assert [x["message"] for x in _json_lines(logs, "execution") if marker in x["message"]] == [f"order {marker} sent"]
    system = [x["message"] for x in _json_lines(logs, "system")]
    assert any("adopting them for traces and metrics and logs" in m for m in system), system
    assert not [m for m in system if "configured again after init()" in m], system
    out = proc.log_path.read_text(errors="replace")
    assert f"APP DEBUG shop.api: app debug {marker}" in out  # the service's root level and handler are its own
    assert f"noisy {marker}" not in out


def _start_raw_otel_app(collector: CollectorProc, tmp_path: Path, marker: str) -> tuple[ManagedProcess, str, str]:
    service = unique_service("rawotel")
    port = free_port()
    env = {**agent_env(collector, tmp_path, service), "MARKER": marker}
    argv = [sys.executable, "-m", "uvicorn", "raw_otel_app:app", "--app-dir", str(HERE),
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    proc = ManagedProcess("uvicorn", argv, env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: http_ok(f"{base}/ok"), "uvicorn to serve", timeout=READY_TIMEOUT, procs=(proc,))
    return proc, base, service


@pytest.mark.integration
def test_an_adopted_meter_provider_keeps_the_trading_series_on_the_agents_prometheus_endpoint(
    collector: CollectorProc, tmp_path: Path
) -> None:
    """A service that set its own MeterProvider (an OTLP reader, no Prometheus reader) before init(): the agent
    adopts it and its Prometheus endpoint still serves the trading series. Before: no endpoint at all
    (``prometheus_url`` None), said only in an info line, so ``curl 127.0.0.1:9464/metrics`` (first-ten-minutes.md)
    and a Prometheus scraping the agent found nothing."""
    marker = uuid.uuid4().hex[:12]
    proc, base, service = _start_raw_otel_app(collector, tmp_path, marker)
    try:
        prometheus_url = json.loads(_get(f"{base}/trade/{marker}"))["prometheus"]
        assert prometheus_url is not None, proc.describe()
        body = _get(prometheus_url).decode()
        filled = [x for x in body.splitlines() if x.startswith("trading_orders_filled_total{")]
        assert len(filled) == 1 and filled[0].endswith(" 1.0") and 'symbol="AAPL"' in filled[0], body
        assert f'service_name="{service}"' in body  # target_info: the adopted provider's resource
        # and the application's own OTLP reader still exports them: through the collector's Prometheus exporter

        def exported() -> bool:
            text = _get(f"{collector.prometheus_exporter_url}/metrics").decode()
            lines = text.split("\n")
            return any(x.startswith("trading_orders_filled_total{") and f'job="{service}"' in x for x in lines)

        wait_for(exported, "the trading series through the application's own OTLP reader", procs=(proc,))
    finally:
        proc.stop()
    system = [x["message"] for x in _json_lines(tmp_path / "logs", "system")]
    said = [m for m in system if "adopting them for traces and metrics" in m]
    assert len(said) == 1 and prometheus_url in said[0], system


@pytest.mark.integration
def test_a_dictconfig_in_the_services_start_up_after_init_loses_no_line(
    collector: CollectorProc, tmp_path: Path
) -> None:
    """The service configures logging in its lifespan start-up, after init(), and logs that it started. Before: that
    dictConfig took the capture handler off the root logger and disabled the tradeobs loggers until the pipeline's
    next look, up to a second later, and the start-up line reached neither the JSON files nor the collector."""
    marker = uuid.uuid4().hex[:12]
    proc, base, service = _start_raw_otel_app(collector, tmp_path, marker)

    def mine() -> list[dict[str, Any]]:
        return [
            r
            for r in read_otlp_json_logs(collector.logs_file)
            if r["_resource"].get("service.name") == service and marker in str(r.get("body", {}).get("stringValue"))
        ]

    try:
        _get(f"{base}/trade/{marker}")
        wait_for(lambda: len(mine()) >= 2, f"the service's lines in {collector.logs_file}", procs=(proc,))
    finally:
        proc.stop()
    assert sorted(r["body"]["stringValue"] for r in mine()) == [f"shop started {marker}", f"traded {marker}"]
    service_lines = [x["message"] for x in _json_lines(tmp_path / "logs", "service") if marker in x["message"]]
    assert service_lines == [f"shop started {marker}", f"traded {marker}"]
    system = [x["message"] for x in _json_lines(tmp_path / "logs", "system")]
    said = [m for m in system if "after init()" in m]
    assert len(said) == 1 and said[0].startswith("tradeobs: logging.config.dictConfig() after init()"), system
    assert "no record was missed" in said[0]
    out = proc.log_path.read_text(errors="replace")
    assert f"APP INFO shop.api: shop started {marker}" in out  # the service's own console, as it configured it


@pytest.mark.integration
def test_an_adopted_meter_provider_in_a_gunicorn_worker_group_is_on_the_shared_endpoint(
    collector: CollectorProc, tmp_path: Path
) -> None:
    """The same service under gunicorn with 2 UvicornWorkers: each worker adopts its own meter provider, and the
    group's leader serves every worker's trading series, summed. Before: no worker served the endpoint."""
    marker = uuid.uuid4().hex[:12]
    port, prom_port = free_port(), free_port()
    (tmp_path / "shm").mkdir(mode=0o700)
    env = {
        **agent_env(collector, tmp_path, unique_service("rawotel-gunicorn")),
        "MARKER": marker,
        "TRADEOBS_PROMETHEUS_PORT": str(prom_port),
        "TRADEOBS_MULTIPROCESS_DIR": str(tmp_path / "shm"),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    argv = [sys.executable, "-m", "gunicorn", "-w", "2", "-k", "uvicorn_worker.UvicornWorker",
            "-b", f"127.0.0.1:{port}", "raw_otel_app:app"]  # fmt: skip
    proc = ManagedProcess("gunicorn", argv, env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_ok(f"{base}/ok"), "gunicorn to serve", timeout=READY_TIMEOUT, procs=(proc,))

        def lines(prefix: str) -> list[str]:
            body = _get(f"http://127.0.0.1:{prom_port}/metrics").decode()
            return [x for x in body.splitlines() if x.startswith(prefix)]

        members = "tradeobs_agent_workers_leader{"
        wait_for(lambda: len(lines(members)) == 2, "both workers in the group", timeout=READY_TIMEOUT, procs=(proc,))
        for i in range(6):
            _get(f"{base}/trade/{marker}-{i}")
        wait_for(
            lambda: [x.rsplit(" ", 1)[1] for x in lines("trading_orders_filled_total{")] == ["6.0"],
            "the 6 fills of the workers on the shared endpoint",
            procs=(proc,),
        )
    finally:
        proc.stop()
