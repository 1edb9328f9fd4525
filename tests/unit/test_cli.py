"""The tradeobs command: usage and help, config check, config docs, doctor, the demo as a process, loadtest wiring."""

from __future__ import annotations

import argparse
import base64
import http.client
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import tradeobs_agent
from tests._util import dead_endpoint, free_port, wait_for
from tradeobs_agent import PrometheusOptions
from tradeobs_agent._internal.workers import GroupKey, Store
from tradeobs_agent._internal.workers.detect import process_start
from tradeobs_agent.cli import build_parser, main
from tradeobs_agent.metrics import Registry


def test_config_check_ok_and_shows_sources(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "algo-7")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=hunter2")
    assert main(["config", "check"]) == 0
    out = capsys.readouterr().out
    assert "'algo-7'" in out and "OTEL_SERVICE_NAME" in out and "no problems" in out
    assert "hunter2" not in out and "<set>" in out


def test_config_check_masks_a_signature_or_key_in_the_endpoint_query(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``?key=`` and ``&sig=`` name nothing secret, so ``config check`` showed their values (an API key, a SAS
    signature); ``api_key=`` was masked."""
    monkeypatch.setenv("TRADEOBS_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("TRADEOBS_OTLP_ENDPOINT", "https://otlp.example:4318/v1?key=K3yValue99&sig=S1gValue99&region=us")
    assert main(["config", "check"]) == 0
    out = capsys.readouterr().out
    assert "K3yValue99" not in out and "S1gValue99" not in out, out
    assert "?key=[REDACTED]&sig=[REDACTED]&region=us" in out, out


def test_config_check_lists_problems_and_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "tradeobs.toml"
    cfg.write_text("live_hz = 1000\n")
    monkeypatch.setenv("TRADEOBS_LOG_QUEUE_POLICY", "sometimes")
    assert main(["config", "check", "--file", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert "2 problem(s)" in out and "live_hz" in out and "TRADEOBS_LOG_QUEUE_POLICY" in out


def test_config_docs_write_replaces_only_the_table(tmp_path: Path) -> None:
    doc = tmp_path / "c.md"
    doc.write_text("intro\n<!-- BEGIN settings: x -->\nstale-table\n<!-- END settings -->\noutro\n")
    assert main(["config", "docs", "--write", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "stale-table" not in text
    assert "`TRADEOBS_SERVICE_NAME`" in text


def _doctor_rows(out: str) -> dict[str, str]:
    """The doctor's table, by check name (everything before the target column)."""
    rows = {}
    for line in out.splitlines():
        if not line[:1].isalpha() or line.startswith("check "):
            continue
        name = line.split("  ")[0].strip()
        rows[name] = line
    return rows


def test_config_docs_write_to_a_file_that_is_not_there_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``tradeobs config docs --write nonexist.md`` ended in a FileNotFoundError traceback."""
    missing = tmp_path / "nonexist.md"
    assert main(["config", "docs", "--write", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err == f"tradeobs config docs: cannot update {missing}: No such file or directory\n", err
    assert not missing.exists()


def test_doctor_reports_each_check(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    agent = tradeobs_agent.init(otlp=False, live=False, logs=False, prometheus=PrometheusOptions(port=0))
    assert agent.prometheus_url
    urllib.request.urlopen(agent.prometheus_url, timeout=5).read()
    monkeypatch.setenv("TRADEOBS_PROMETHEUS_PORT", str(agent.prometheus.port if agent.prometheus else 0))
    dead = dead_endpoint()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", dead)
    code = main(["doctor", "--service-url", f"http://127.0.0.1:{free_port()}", "--timeout", "1"])
    out = capsys.readouterr().out
    assert code == 1  # the collector and the live stream are down
    rows = _doctor_rows(out)
    assert "OK" in rows["prometheus endpoint"]
    for sig in ("traces", "metrics", "logs"):
        row = rows[f"collector {sig} (grpc)"]
        assert " FAIL " in row and f"nothing listens on {dead.removeprefix('http://')} (connection refused)" in row
    assert "FAIL" in rows["live stream"]


@pytest.mark.parametrize(("bound", "ok"), [("0.0.0.0", True), ("127.0.0.1", False)])
def test_doctor_asks_the_prometheus_endpoint_as_its_setting_says_and_explains_a_refused_host(
    bound: str, ok: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With TRADEOBS_PROMETHEUS_HOST=0.0.0.0, doctor asks http://0.0.0.0:PORT (Host: 0.0.0.0, through loopback). A
    service listening there answers it (the name it listens by); one on 127.0.0.1 refuses it as a possible DNS
    rebinding, and doctor says which settings to look at instead of "is the service running?"."""
    agent = tradeobs_agent.init(otlp=False, live=False, logs=False, prometheus=PrometheusOptions(host=bound, port=0))
    assert agent.prometheus is not None
    monkeypatch.setenv("TRADEOBS_PROMETHEUS_HOST", "0.0.0.0")
    monkeypatch.setenv("TRADEOBS_PROMETHEUS_PORT", str(agent.prometheus.port))
    monkeypatch.setenv("TRADEOBS_OTLP_ENABLED", "false")
    monkeypatch.setenv("TRADEOBS_LIVE_ENABLED", "false")
    main(["doctor", "--timeout", "5"])
    row = _doctor_rows(capsys.readouterr().out)["prometheus endpoint"]
    if ok:
        assert " OK " in row, row
    else:
        assert " FAIL " in row and "403" in row and "TRADEOBS_PROMETHEUS_ALLOWED_HOSTS" in row, row
        assert "is the service running" not in row, row


@pytest.mark.parametrize(
    "given", ["http://127.0.0.1:{port}/telemetry/", "http://127.0.0.1:{port}/telemetry", "127.0.0.1:{port}"]
)
def test_doctor_takes_the_dashboard_url_the_demo_prints_and_an_address_without_http(
    given: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A newcomer pastes the URL ``tradeobs demo`` printed (``.../telemetry/``): doctor asked for
    ``/telemetry/telemetry/snapshot`` (404, "is the service running?"); ``127.0.0.1:8000`` was "unknown url type"."""
    asked: list[str] = []

    class Snapshot(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200 if self.path == "/telemetry/snapshot" else 404)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Snapshot)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("TRADEOBS_OTLP_ENABLED", "false")
        monkeypatch.setenv("TRADEOBS_PROMETHEUS_ENABLED", "false")
        code = main(["doctor", "--service-url", given.format(port=server.server_address[1]), "--timeout", "2"])
    finally:
        server.shutdown()
        server.server_close()
    out = capsys.readouterr().out
    assert asked == ["/telemetry/snapshot"], out
    assert " OK " in _doctor_rows(out)["live stream"], out
    assert code == 0, out


def test_doctor_says_which_setting_when_the_live_view_refuses_the_host_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A live view with no token on loopback answers 403 to a host name that is not a loopback one (DNS rebinding
    guard): e.g. the machine's own name in --service-url. Doctor said "is the service running?"; now it names the
    setting and the address that works."""
    from tradeobs_agent.live.app import host_refused

    class Refusing(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = host_refused(None).encode()
            self.send_response(403)
            self.send_header("content-type", "text/plain; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("TRADEOBS_OTLP_ENABLED", "false")
        monkeypatch.setenv("TRADEOBS_PROMETHEUS_ENABLED", "false")
        code = main(["doctor", "--service-url", f"127.0.0.1:{server.server_address[1]}", "--timeout", "2"])
    finally:
        server.shutdown()
        server.server_close()
    row = _doctor_rows(capsys.readouterr().out)["live stream"]
    assert " FAIL " in row and "403" in row, row
    assert "TRADEOBS_LIVE_ALLOWED_HOSTS=127.0.0.1" in row and "is the service running" not in row, row
    assert code == 1


@pytest.mark.integration
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_doctor_asks_the_collector_in_its_protocol_and_skips_a_live_stream_that_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], protocol: str
) -> None:
    """Our collector: an empty export of each signal is accepted (OK); with live_enabled=false the live stream is
    skipped, and the doctor exits 0. Was: a TCP connect only, and the live stream always checked (exit 1)."""
    from tests.integration.procs import start_collector

    with start_collector(tmp_path / "collector", dead_endpoint().removeprefix("http://")) as col:
        endpoint = "http://" + col.otlp_grpc_endpoint if protocol == "grpc" else col.otlp_http_endpoint
        monkeypatch.setenv("TRADEOBS_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("TRADEOBS_OTLP_PROTOCOL", protocol)
        monkeypatch.setenv("TRADEOBS_OTLP_HEADERS", "x-tenant=hunter2-secret")
        monkeypatch.setenv("TRADEOBS_PROMETHEUS_ENABLED", "false")
        monkeypatch.setenv("TRADEOBS_LIVE_ENABLED", "false")
        code = main(["doctor", "--service-url", f"http://127.0.0.1:{free_port()}", "--timeout", "2"])
    out = capsys.readouterr().out
    rows = _doctor_rows(out)
    assert code == 0, out
    kind = "OTLP/gRPC" if protocol == "grpc" else "OTLP/HTTP"
    for sig in ("traces", "metrics", "logs"):
        row = rows[f"collector {sig} ({protocol})"]
        assert f" OK      an {kind} receiver accepted an empty {sig} export" in row, row
    assert " SKIP " in rows["live stream"] and "skipped: live_enabled is false" in rows["live stream"]
    assert "hunter2" not in out  # header values may be secrets


class _NotOtlp(http.server.BaseHTTPRequestHandler):
    """A plain HTTP server, as Prometheus is: 404 for the OTLP paths."""

    def do_POST(self) -> None:
        self.send_response(404)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"404 page not found\n")

    do_GET = do_POST

    def log_message(self, format: str, *args: object) -> None:
        pass


class _BasicAuthOtlp(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver behind basic auth (user 'u', password 'p w'): 401 without it."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ok = self.headers.get("Authorization") == "Basic " + base64.b64encode(b"u:p w").decode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/x-protobuf" if ok else "text/plain")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_doctor_sends_an_endpoints_user_and_password_as_the_exporter_does(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An OTLP/HTTP endpoint with user:password@ (the exporter's client sends it as basic auth, and exports) was a
    FAIL in doctor: 'cannot resolve the host of ...', urllib taking the user:password for part of the host."""
    from tests._util import ended_spans
    from tradeobs_agent._internal.providers import _otlp_exporter
    from tradeobs_agent.config import resolve_settings

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BasicAuthOtlp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("TRADEOBS_OTLP_ENDPOINT", f"http://u:p%20w@127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("TRADEOBS_OTLP_PROTOCOL", "http/protobuf")
        monkeypatch.setenv("TRADEOBS_PROMETHEUS_ENABLED", "false")
        code = main(["doctor", "--timeout", "2"])
        exporter, _ = _otlp_exporter(resolve_settings()[0], "traces")  # what the doctor says is what exports do
        try:
            exported = exporter.export(ended_spans(1)).name
        finally:
            exporter.shutdown()
    finally:
        server.shutdown()
        server.server_close()
    out = capsys.readouterr().out
    assert code == 0 and exported == "SUCCESS", out
    rows = _doctor_rows(out)
    for sig in ("traces", "metrics", "logs"):
        assert " OK " in rows[f"collector {sig} (http/protobuf)"], out
    assert "p%20w" not in out and "<redacted>@127.0.0.1" in out


class _OtlpAtPaths(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver that answers only at ``/v1/<signal>`` (404 elsewhere, as the collector does) and
    records each request's path and query (``server.seen``)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        ok = self.path.split("?")[0] in ("/v1/traces", "/v1/metrics", "/v1/logs")
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/x-protobuf" if ok else "text/plain")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.parametrize("variable", ["TRADEOBS_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"])
def test_an_endpoint_with_a_query_string_exports_and_probes_at_the_signal_path_with_the_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str
) -> None:
    """``...:4318?api_key=...`` (a service that takes its key in the query) with http/protobuf: the agent and doctor
    sent to ``/?api_key=.../v1/metrics``, the signal path appended after the query (the collector: 404, every
    export lost). Now ``/v1/metrics?api_key=...`` for each signal, and the key is masked in doctor's table."""
    import logging

    from opentelemetry import metrics, trace

    from tradeobs_agent.testing import reset

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OtlpAtPaths)
    server.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv(variable, f"http://127.0.0.1:{server.server_address[1]}?api_key=qs-CANARY-9")
        monkeypatch.setenv("TRADEOBS_OTLP_PROTOCOL", "http/protobuf")
        monkeypatch.setenv("TRADEOBS_PROMETHEUS_ENABLED", "false")
        code = main(["doctor", "--timeout", "2"])
        out = capsys.readouterr().out
        probed = sorted(server.seen)
        server.seen.clear()  # type: ignore[attr-defined]
        tradeobs_agent.init(
            service_name="qs-endpoint", live=False, logs=tradeobs_agent.LogOptions(dir=str(tmp_path), console=False)
        )
        try:
            metrics.get_meter("qs").create_counter("qs_total").add(1)
            with trace.get_tracer("qs").start_as_current_span("qs-span"):
                logging.getLogger("qs").warning("qs-line")
            assert tradeobs_agent.shutdown(10)
        finally:
            reset()
    finally:
        server.shutdown()
        server.server_close()
    wanted = [f"/v1/{sig}?api_key=qs-CANARY-9" for sig in ("logs", "metrics", "traces")]
    assert probed == wanted, probed
    assert sorted(set(server.seen)) == wanted, server.seen  # type: ignore[attr-defined]
    assert code == 0, out
    rows = _doctor_rows(out)
    for sig in ("traces", "metrics", "logs"):
        assert " OK " in rows[f"collector {sig} (http/protobuf)"], out
    assert "CANARY" not in out and "api_key=[REDACTED]" in out


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_doctor_says_a_server_that_is_not_an_otlp_receiver_is_not_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], protocol: str
) -> None:
    """TRADEOBS_OTLP_ENDPOINT pointing at Prometheus (any HTTP server) was "OK, TCP connect ok"."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotOtlp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    where = f"127.0.0.1:{server.server_address[1]}"
    try:
        monkeypatch.setenv("TRADEOBS_OTLP_ENDPOINT", f"http://{where}")
        monkeypatch.setenv("TRADEOBS_OTLP_PROTOCOL", protocol)
        monkeypatch.setenv("TRADEOBS_PROMETHEUS_ENABLED", "false")
        code = main(["doctor", "--timeout", "2"])
    finally:
        server.shutdown()
        server.server_close()
    out = capsys.readouterr().out
    rows = _doctor_rows(out)
    assert code == 1, out
    for sig in ("traces", "metrics", "logs"):
        row = rows[f"collector {sig} ({protocol})"]
        assert " FAIL " in row, row
        if protocol == "grpc":
            assert f"something answers on {where} but it is not an OTLP/gRPC receiver: it does not speak HTTP/2" in row
        else:
            assert f"no OTLP/HTTP receiver for {sig} at /v1/{sig} on {where} (HTTP 404" in row
            assert "or not an OTLP receiver" in row
    # No --service-url: the live stream is not checked, and that is not a failure.
    assert " SKIP " in rows["live stream"] and "not checked: give the running service's base URL" in rows["live stream"]


def test_grpc_sent_to_an_http_server_is_said_with_its_cause_and_the_doctor_agrees(tmp_path: Path) -> None:
    """A newcomer's script with TRADEOBS_OTLP_ENDPOINT on an HTTP/1 server (an OTLP/HTTP port, here not even an OTLP
    receiver) and the default gRPC: the agent printed only "cannot export traces to ... (export failed): an outage
    began" (the exporter gave no reason), then a pointer to ``tradeobs doctor``. The message now says what answered
    and the fix itself, the exit gives the exporter up at once for that reason, and the doctor says the same; both
    run as the user would."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotOtlp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    where = f"127.0.0.1:{server.server_address[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_"))}
    env.update(
        TRADEOBS_OTLP_ENDPOINT=f"http://{where}",
        TRADEOBS_PROMETHEUS_ENABLED="false",
        TRADEOBS_LIVE_ENABLED="false",
        TRADEOBS_SHUTDOWN_TIMEOUT="2",
    )
    script = (
        "import tradeobs_agent\n"
        "tradeobs_agent.init(service_name='my-algo')\n"
        "tt = tradeobs_agent.TradingTelemetry(strategy='s', venue='v')\n"
        "o = tt.order_signal('my-1', 'MSFT', 'buy', 50, 410.0)\n"
        "o.submitted()\n"
        "o.fill(50, 410.02)\n"
    )
    try:
        ran = subprocess.run(
            [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        doctor = subprocess.run(
            [sys.executable, "-m", "tradeobs_agent", "doctor", "--timeout", "2"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert ran.returncode == 0, ran.stderr
    began = [line for line in ran.stderr.splitlines() if "an outage began" in line]
    assert began and f"to http://{where} (it answers in HTTP/1 only, as an OTLP/HTTP receiver does" in began[0], (
        ran.stderr
    )
    assert "Set TRADEOBS_OTLP_PROTOCOL=http/protobuf" in began[0], began[0]
    assert "(export failed)" not in ran.stderr, ran.stderr
    gave_up = [line for line in ran.stderr.splitlines() if "spans not delivered" in line]
    assert gave_up and "given up at once, it answers in HTTP/1 only" in gave_up[0], ran.stderr
    assert doctor.returncode == 1, doctor.stdout
    assert f"something answers on {where} but it is not an OTLP/gRPC receiver" in doctor.stdout, doctor.stdout
    assert "set TRADEOBS_OTLP_PROTOCOL=http/protobuf" in doctor.stdout, doctor.stdout


def test_doctor_with_nothing_listening_fails_and_without_a_service_url_does_not_check_the_live_stream(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = dead_endpoint()
    monkeypatch.setenv("TRADEOBS_OTLP_ENDPOINT", dead)
    monkeypatch.setenv("TRADEOBS_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("TRADEOBS_PROMETHEUS_ENABLED", "false")
    assert main(["doctor", "--timeout", "1"]) == 1
    rows = _doctor_rows(capsys.readouterr().out)
    for sig in ("traces", "metrics", "logs"):
        row = rows[f"collector {sig} (http/protobuf)"]
        assert " FAIL " in row and f"{dead}/v1/{sig}" in row and "(connection refused)" in row, row
    assert " SKIP " in rows["live stream"]
    # Only the live stream left to fail, and it is off: exit 0.
    monkeypatch.setenv("TRADEOBS_OTLP_ENABLED", "false")
    monkeypatch.setenv("TRADEOBS_LIVE_ENABLED", "false")
    assert main(["doctor", "--service-url", dead, "--timeout", "1"]) == 0
    assert "skipped: live_enabled is false" in capsys.readouterr().out


def test_config_check_and_doctor_mask_the_secrets_of_endpoint_urls(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An endpoint that carries its key in the query (``?api_key=``, ``?token=``), as some OTLP services take it,
    and a --service-url with a user and password or a token: the report and doctor's table, often pasted into a
    ticket, show them masked as the logs would (they showed them as typed; a user:password was already masked)."""
    dead = dead_endpoint()
    monkeypatch.setenv("TRADEOBS_OTLP_ENDPOINT", f"{dead}/?api_key=qs-CANARY-1")
    monkeypatch.setenv("TRADEOBS_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("TRADEOBS_OTLP_TRACES_ENDPOINT", f"{dead}/v1/traces?token=tr-CANARY-2")
    monkeypatch.setenv("TRADEOBS_PROMETHEUS_ENABLED", "false")
    main(["config", "check"])
    out = capsys.readouterr()
    assert "CANARY" not in out.out + out.err
    assert "api_key=[REDACTED]" in out.out and "token=[REDACTED]" in out.out
    service = dead.replace("http://", "http://desk:svc-CANARY-3@") + "/?token=tok-CANARY-4"
    assert main(["doctor", "--service-url", service, "--timeout", "1"]) == 1
    out = capsys.readouterr()
    assert "CANARY" not in out.out + out.err
    rows = _doctor_rows(out.out)
    assert "api_key=[REDACTED]" in rows["collector metrics (http/protobuf)"]
    assert "token=[REDACTED]" in rows["collector traces (http/protobuf)"]
    assert "<redacted>@" in rows["live stream"] and "token=[REDACTED]" in rows["live stream"], rows["live stream"]


def test_doctor_says_which_setting_names_the_prometheus_port_when_nothing_answers_there(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """first-ten-minutes.md moves the demo's endpoint with ``--prometheus-port 9465`` when 9464 is taken; doctor
    then checked 9464 and asked only "is the service running?" of a service that was."""
    monkeypatch.setenv("TRADEOBS_OTLP_ENABLED", "false")
    monkeypatch.setenv("TRADEOBS_PROMETHEUS_PORT", str(free_port()))
    assert main(["doctor", "--timeout", "1"]) == 1
    row = _doctor_rows(capsys.readouterr().out)["prometheus endpoint"]
    assert " FAIL " in row and "on another port: set TRADEOBS_PROMETHEUS_PORT" in row, row


def test_doctor_shows_the_running_worker_groups_and_a_directory_too_small_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """doctor said nothing of multi-process mode: not whether a service's workers formed a group, nor whether one leads,
    nor that /dev/shm was too small for their snapshots (a 1 MiB tmpfs: /metrics counted 278 of 1,500 orders)."""
    monkeypatch.setenv("TRADEOBS_OTLP_ENABLED", "false")
    monkeypatch.setenv("TRADEOBS_PROMETHEUS_ENABLED", "false")
    monkeypatch.setenv("TRADEOBS_MULTIPROCESS_DIR", str(tmp_path))
    root = tmp_path / f"tradeobs-{os.getuid()}"
    assert main(["doctor"]) == 0
    row = _doctor_rows(capsys.readouterr().out)["worker groups"]
    assert " OK " in row and "none running" in row, row

    key = GroupKey("setting", os.getpid(), process_start(os.getpid()))
    gone = Store.open(str(tmp_path), key, "stopped-service")
    gone.close()  # its files stay (a replacement would keep its counts); no process runs it
    a, b = Store.open(str(tmp_path), key, "algo-1"), Store.open(str(tmp_path), key, "algo-1")
    try:
        a.publish(Registry().snapshot())
        assert main(["doctor"]) == 0
        row = _doctor_rows(capsys.readouterr().out)["worker groups"]
        assert f" {root} " in row and " WARN " in row and "algo-1 (setting): 2 worker(s), NO leader" in row, row
        assert "stopped-service" not in row
        assert a.try_lead()
        assert main(["doctor"]) == 0
        row = _doctor_rows(capsys.readouterr().out)["worker groups"]
        assert " OK " in row and "algo-1 (setting): 2 worker(s), a leader" in row and f"free in {tmp_path}" in row, row

        class Full:
            f_bavail, f_frsize = 0, 4096

        monkeypatch.setattr(os, "statvfs", lambda path: Full())
        assert main(["doctor"]) == 0  # a doubt, not a failure
        row = _doctor_rows(capsys.readouterr().out)["worker groups"]
        assert " WARN " in row and "a worker's snapshot that does not fit is missing from /metrics" in row, row
        assert "--shm-size" in row
    finally:
        a.close()
        b.close()
    monkeypatch.setenv("TRADEOBS_MULTIPROCESS", "off")
    assert main(["doctor"]) == 0
    assert " SKIP " in _doctor_rows(capsys.readouterr().out)["worker groups"]


def test_loadtest_has_its_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    """Plain text for the user: it showed the docstring's reST markup ("``tradeobs loadtest``: how many ...") and
    the run's own processes as a required-looking "{serve,load}" argument, "(internal)" in the user's help."""
    with pytest.raises(SystemExit) as exc:
        main(["loadtest", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--clients" in out
    assert "``" not in out and "{serve,load}" not in out and "(internal)" not in out, out
    assert "tradeobs loadtest: how many live-stream clients this machine holds" in " ".join(out.split())
    with pytest.raises(SystemExit) as exc:  # still there for the processes a run starts
        main(["loadtest", "serve", "--help"])
    assert exc.value.code == 0
    assert "--max-clients" in capsys.readouterr().out


def test_loadtest_counts_a_frame_by_when_the_server_sent_it_and_what_a_client_missed() -> None:
    """``tradeobs loadtest --duration 2`` at 50 clients read 80% delivered on a loaded machine: a frame counted when
    the load generator read it inside the window, so a generator held off the CPU at the window's end lost that
    moment's frames (10% of a 2 s window per 0.2 s), and frames of before the window read late counted in it. A
    frame counts by its server timestamp now, and what the server sent a client that it did not get (a gap in the
    ids) is told apart from ticks the server itself skipped (the "sent" column). The window here ended a second
    before the frames are read: read late, as by a descheduled generator."""
    from tradeobs_agent.live import loadtest

    owner = loadtest._Load()
    now = time.time()
    owner.t0, owner.t1 = now - 3.0, now - 1.0

    def frame(n: int, ts: float) -> bytes:
        return b'id: b0-%d\nevent: frame\ndata: {"type":"delta","seq":%d,"ts":%.4f}\n\n' % (n, n, ts)

    data = (
        frame(1, now - 3.5)  # sent before the window
        + frame(2, now - 2.9)
        + b'id: b0-3\nevent: event\ndata: {"kind":"fill","ts":1.0}\n\n'
        + frame(4, now - 2.8)
        + frame(6, now - 2.6)  # 5 was skipped for this client
        + frame(7, now - 0.5)  # sent after the window
    )
    client = loadtest._SSE(owner)
    client.data_received(data[:70])  # cut inside a message
    client.data_received(data[70:])
    assert owner.frames == 3 and len(owner.lat) == 3
    assert (client.first, client.last, client.last - client.first + 1 - client.seen_at_last) == (2, 6, 1)
    baseline = loadtest._Load()  # the sse-starlette baseline's ids are bare numbers, one per frame
    baseline.t0, baseline.t1 = owner.t0, owner.t1
    loadtest._SSE(baseline).data_received(
        b'id: 9\nevent: frame\ndata: {"type": "full", "seq": 9, "ts": %.4f}\n\n' % (now - 2.0)
    )
    assert (baseline.frames, baseline.unnumbered) == (1, False)


@pytest.mark.parametrize("argv", [["loadtest", "--help"], ["loadtest", "--json", "rows.json", "--help"]])
def test_loadtest_help_shows_defaults_but_no_none(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """The options' help says each default; --json has none and said "(default: None)", which reads as a file
    named None (the formatter is shared with benchmarks/sse_fanout.py, checked below too)."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "None" not in out, out
    assert "--json FILE also write the rows as JSON here" in out and "(default: 12.0)" in out, out
    import argparse

    from tradeobs_agent.live import loadtest

    p = argparse.ArgumentParser()
    loadtest.add_arguments(p)  # as benchmarks/sse_fanout.py builds its parser
    p.add_argument("--baseline", default="250", help="baseline client counts")
    text = " ".join(p.format_help().split())
    assert "None" not in text and "(default: 250)" in text, text


def test_loadtest_names_what_to_install_when_psutil_is_missing() -> None:
    import subprocess
    import sys

    code = "import sys; sys.modules['psutil'] = None; from tradeobs_agent.cli import main; sys.exit(main(['loadtest']))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "pip install 'tradeobs[loadtest]'" in proc.stderr


def test_loadtest_help_works_without_psutil() -> None:
    import subprocess
    import sys

    code = "import sys; sys.modules['psutil'] = None; from tradeobs_agent.cli import main; main(['loadtest', '--help'])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--clients" in proc.stdout and "pip install 'tradeobs[loadtest]'" in proc.stdout


def test_loadtest_measures_a_real_live_stream() -> None:
    """A short real run: a tradeobs server process, two load-generator processes, a table with a delivered row."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "tradeobs_agent.cli", "loadtest", "--clients", "20", "--duration", "2"]
    cmd += ["--settle", "0.5", "--procs", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| tradeobs | 20 |"))
    delivered = float(row.split("|")[5].strip().rstrip("%"))
    assert delivered > 0  # frames arrived (the bounds of 'sustained' are the benchmark's business)


# --------------------------------------------------------------------------- usage, version, help


def test_version_matches_the_package(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.metadata

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    installed = importlib.metadata.version("tradeobs")  # pyproject.toml takes it from tradeobs_agent._version
    assert capsys.readouterr().out == f"tradeobs {tradeobs_agent.__version__}\n" == f"tradeobs {installed}\n"


@pytest.mark.parametrize(
    ("argv", "lists"),
    [([], ["demo", "config", "doctor", "loadtest", "live"]), (["config"], ["check", "docs"]), (["live"], ["gateway"])],
)
def test_a_command_alone_prints_its_usage_and_exits_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], lists: list[str]
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("usage: tradeobs")
    assert "required" not in err
    for command in lists:
        assert f"\n    {command} " in err, command


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_command_and_option_has_help_stating_its_default() -> None:
    """loadtest and collector have their own parsers and help (tradeobs loadtest --help; the collector
    parser's options: tests/unit/test_collector_tools.py)."""
    todo = [("tradeobs", build_parser())]
    seen = []
    while todo:
        name, parser = todo.pop()
        seen.append(name)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help, f"{name} {choice.dest}: no help"
                continue
            if isinstance(action, argparse._HelpAction | argparse._VersionAction):
                continue
            assert action.help and "(default: " in action.help, f"{name} {action.option_strings}: no default in help"
        for sub, subparser in _subparsers(parser).items():
            if sub not in ("loadtest", "collector"):
                todo.append((f"{name} {sub}", subparser))
    assert sorted(seen) == sorted(
        ["tradeobs", "tradeobs demo", "tradeobs config", "tradeobs config check", "tradeobs config docs",
         "tradeobs docs", "tradeobs doctor", "tradeobs live", "tradeobs live gateway"]
    )  # fmt: skip


def test_demo_help_says_symbols_is_a_count(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--symbols COUNT how many symbols to trade (a count, not names)" in out


# --------------------------------------------------------------------------- config check problems


def test_config_check_names_the_file_flag_not_an_environment_variable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--file", "no-such.toml"]) == 1
    out = capsys.readouterr().out
    assert "--file 'no-such.toml': no such file" in out and "TRADEOBS_CONFIG_FILE" not in out


def test_config_check_reports_unknown_names_and_live_values_create_app_refuses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADEOBS_SERVCE_NAME", "algo-1")
    monkeypatch.setenv("TRADEOBS_LIVE_CORS_ORIGINS", "*")
    assert main(["config", "check"]) == 1
    out = capsys.readouterr().out
    assert "2 problem(s)" in out
    assert "unknown environment variable TRADEOBS_SERVCE_NAME is ignored; did you mean TRADEOBS_SERVICE_NAME?" in out
    assert "TRADEOBS_LIVE_CORS_ORIGINS value '*' for live_cors_origins" in out


# --------------------------------------------------------------------------- the demo as a real process


def _demo_proc(*args: str, cwd: Path | None = None, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["tradeobs", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TRADEOBS_PROMETHEUS_PORT": "0", **env},
        cwd=cwd,
    )


def _finish(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """Its output once it exits; a process that does not exit in time is killed (and the test fails)."""
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_demo_on_a_port_in_use_exits_at_once_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _demo_proc("--port", str(port))
        out, err = _finish(proc, 60)
    assert proc.returncode == 1
    assert out == ""  # nothing started, no URLs printed
    assert err == (
        f"tradeobs demo: cannot listen on 127.0.0.1:{port}: address already in use; "
        "pick another port with --port N (0 picks any free port)\n"
    )


def test_demo_on_an_address_that_is_not_here_says_to_check_the_host() -> None:
    proc = _demo_proc("--host", "192.0.2.1", "--port", "0")  # TEST-NET-1: never a local address
    out, err = _finish(proc, 60)
    assert proc.returncode == 1 and out == ""
    assert err.startswith("tradeobs demo: cannot listen on 192.0.2.1:0: ") and err.endswith("; check --host\n"), err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_demo_stops_on_a_signal_without_a_traceback(sig: signal.Signals) -> None:
    port = free_port()
    proc = _demo_proc("--port", str(port))
    try:
        wait_for(lambda: _ready(proc, f"http://127.0.0.1:{port}/readyz"), "the demo to trade", limit=60)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert f"live dashboard   http://127.0.0.1:{port}/telemetry/" in out


def test_the_gateway_says_where_it_serves_even_on_port_0(tmp_path: Path) -> None:
    """``tradeobs live gateway --port 0`` ("0 picks any free port", its --help says) printed nothing about where it
    listened, so the page could not be found; with a port given it was silent too, where the demo prints its URLs.
    It serves without NATS (it keeps retrying), so none is needed to see it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_"))}
    nats_url = f"nats://127.0.0.1:{free_port()}"  # nothing there
    proc = subprocess.Popen(
        [sys.executable, "-m", "tradeobs_agent", "live", "gateway", "--port", "0", "--nats", nats_url],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # the first thing it says
        url = re.search(r"the fleet's live view at (http://127\.0\.0\.1:(\d+)/) \(Ctrl-C to stop\)$", line.strip())
        assert url and url.group(2) != "0", line
        wait_for(lambda: _ready(proc, url.group(1)), "the gateway's page", limit=60)
        with urllib.request.urlopen(url.group(1), timeout=10) as r:
            assert r.status == 200 and b"tradeobs live" in r.read()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err


def test_demo_stops_on_sigterm_with_a_live_client_connected() -> None:
    """Regression (issue 13, found by tests/faults/test_live.py): SIGTERM waited for the live stream's clients to
    hang up (the hub never saw the server exit), and a second signal then cancelled every stream with a traceback.
    Now the stream gets its terminating chunk and the demo exits 0."""
    port = free_port()
    proc = _demo_proc("--port", str(port))
    c = None
    try:
        wait_for(lambda: _ready(proc, f"http://127.0.0.1:{port}/readyz"), "the demo to trade", limit=60)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/telemetry/stream")
        r = c.getresponse()
        assert r.status == 200 and r.readline().startswith(b"retry:")
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30  # a failure deadline: heartbeats would keep a hung stream alive
        while r.readline():  # the stream ends with its chunked terminator
            assert time.monotonic() < deadline, "the live stream did not end after SIGTERM"
        _, err = proc.communicate(timeout=60)
    finally:
        if c is not None:
            c.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err


def test_demo_stops_on_sigterm_while_a_client_has_stopped_reading() -> None:
    """A client that stopped reading keeps its connection's buffers full: uvicorn's graceful stop waited for it to
    drain, so SIGTERM did not stop the demo until that client hung up. Now the stop gives up after _serve.GRACE."""
    import socket

    from tradeobs_agent._serve import GRACE

    port = free_port()
    proc = _demo_proc("--port", str(port), "--symbols", "1000")  # ~24 KB frames: buffers fill in seconds
    stalled = socket.socket()
    try:
        wait_for(lambda: _ready(proc, f"http://127.0.0.1:{port}/readyz"), "the demo to trade", limit=60)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        stalled.connect(("127.0.0.1", port))
        stalled.sendall(b"GET /telemetry/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # and never reads
        time.sleep(8.0)  # the frames fill loopback's buffers (a test of a stop, not of a speed)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=GRACE + 45)  # bounded, where it used to wait for the client forever
    finally:
        stalled.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err


def _ready(proc: subprocess.Popen[str], url: str) -> bool:
    assert proc.poll() is None, "the demo exited early"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def test_demo_duration_stops_it_cleanly_on_any_free_port() -> None:
    proc = _demo_proc("--port", "0", "--duration", "1", TRADEOBS_OTLP_ENABLED="false")
    out, err = _finish(proc, 120)
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert "live dashboard   http://127.0.0.1:" in out and ":0/" not in out  # the port it really got


def test_demo_says_it_stopped_and_where_its_files_stay(tmp_path: Path) -> None:
    """Ctrl-C (here --duration) ended the demo without a word: nothing said that it had stopped, nor that the logs/
    it wrote into the current directory (JSON logs, traces.jsonl) are kept. Its banner printed the JSON logs as
    "demo-logs/" (relative: usable only from the directory it was started in) beside an absolute traces.jsonl;
    both are full paths now, the same directory."""
    proc = _demo_proc(
        "--port", "0", "--duration", "1", cwd=tmp_path, TRADEOBS_OTLP_ENABLED="false", TRADEOBS_LOG_DIR="demo-logs"
    )
    out, err = _finish(proc, 120)
    assert proc.returncode == 0, err
    shown = dict(line.split(maxsplit=2)[1:] for line in out.splitlines() if line.startswith(("  JSON ", "  order ")))
    assert shown["logs"] == f"{tmp_path}/demo-logs/", out
    assert shown["traces"] == f"{tmp_path}/demo-logs/traces.jsonl (OTLP/JSON lines)", out
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"tradeobs demo: stopped after \d+ orders; its JSON logs and order traces stay in {re.escape(str(tmp_path))}"
        r"/demo-logs/",
        last,
    ), out
    assert (tmp_path / "demo-logs" / "traces.jsonl").exists()


def test_demo_with_a_collector_does_not_say_its_order_traces_stay_in_files_it_did_not_write(tmp_path: Path) -> None:
    """With a collector configured the order traces go there, not to logs/traces.jsonl (the banner has no "order
    traces" line then); the last line still said "its JSON logs and order traces stay in .../logs/" (2026-12-07)."""
    dead = dead_endpoint()
    proc = _demo_proc(
        "--port", "0", "--duration", "1", cwd=tmp_path, TRADEOBS_OTLP_ENDPOINT=dead, TRADEOBS_LOG_DIR="demo-logs"
    )
    out, err = _finish(proc, 120)
    assert proc.returncode == 0, err
    assert "  order traces" not in out, out
    assert not (tmp_path / "demo-logs" / "traces.jsonl").exists()
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"tradeobs demo: stopped after \d+ orders; its JSON logs stay in {re.escape(str(tmp_path))}/demo-logs/", last
    ), out


def test_ctrl_c_while_the_command_loads_exits_130_without_a_traceback(tmp_path: Path) -> None:
    """The console script's entry point (``tradeobs_cli:main``) as pip's script calls it, SIGINT arriving while it
    imports ``tradeobs_agent.cli`` (about a second of loading OpenTelemetry, before any of the command's code ran):
    the entry point was ``tradeobs_agent.cli:main`` and Ctrl-C then printed a KeyboardInterrupt traceback. The
    installed script itself: tests/integration/test_packaging.py."""
    script = (
        "import importlib.abc, os, signal, sys\n"
        "class Interrupt(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'tradeobs_agent.cli':\n"
        "            sys.meta_path.remove(self)\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "sys.argv = ['tradeobs', 'demo']\n"
        "from tradeobs_cli import main\n"
        "sys.exit(main())\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert (res.returncode, res.stdout, res.stderr) == (130, "", "")


# Sends the process SIGINT once, the first time the module named in TRADEOBS_TEST_INTERRUPT_AT is imported, and notes
# that it did (a moment that never came would leave the command to run and exit 0): Ctrl-C at a moment of the start
# that does not depend on the machine's speed.
_INTERRUPT_AT_AN_IMPORT = """
import importlib.abc, os, signal, sys

class _Interrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == os.environ["TRADEOBS_TEST_INTERRUPT_AT"]:
            sys.meta_path.remove(self)
            with open(os.environ["TRADEOBS_TEST_INTERRUPTED"], "w") as f:
                f.write(name)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, _Interrupt())
"""


@pytest.mark.parametrize(
    "moment",
    [
        "tradeobs_agent._otel_env",  # the package's first import
        "opentelemetry.sdk.metrics",  # OpenTelemetry loading, the bulk of the second
        "tradeobs_agent.instrumentation",  # the package's last imports
        "tradeobs_agent.__main__",  # runpy, between the package and its __main__
        "tradeobs_agent.cli",  # __main__ loading the command
        "tradeobs_agent.demo",  # the command running, before its server took the signal
    ],
)
def test_ctrl_c_while_python_m_tradeobs_agent_loads_exits_130_without_a_traceback(tmp_path: Path, moment: str) -> None:
    """``python -m tradeobs_agent demo`` and Ctrl-C at once: runpy imports the package (about a second of loading
    OpenTelemetry) before ``__main__`` runs, and the interrupt printed a KeyboardInterrupt traceback of importlib's and
    runpy's frames (exit -2), where the ``tradeobs`` script exits 130 without a word (the test above). A real process,
    a real SIGINT, at several moments of its start."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_INTERRUPT_AT_AN_IMPORT)
    marker = tmp_path / "interrupted"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(hook), *filter(None, [os.environ.get("PYTHONPATH")])]),
        TRADEOBS_TEST_INTERRUPT_AT=moment,
        TRADEOBS_TEST_INTERRUPTED=str(marker),
        TRADEOBS_OTLP_ENABLED="false",
        TRADEOBS_PROMETHEUS_PORT="0",
    )
    res = subprocess.run(
        [sys.executable, "-m", "tradeobs_agent", "demo", "--port", "0", "--duration", "1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert marker.read_text() == moment  # the interrupt came at that moment
    assert (res.returncode, res.stdout, res.stderr) == (130, "", "")
    assert not (tmp_path / "logs").exists()  # nothing started


def test_a_program_run_with_python_m_that_imports_tradeobs_agent_keeps_its_own_ctrl_c(tmp_path: Path) -> None:
    """The quiet exit is for ``python -m tradeobs_agent`` only: a user's module run with ``-m`` that imports the
    package still gets Python's KeyboardInterrupt, in the package's import too (its own code may catch it)."""
    (tmp_path / "mybot.py").write_text(
        "try:\n    import tradeobs_agent\nexcept KeyboardInterrupt:\n    print('caught')\n    raise SystemExit(7)\n"
    )
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_INTERRUPT_AT_AN_IMPORT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(hook), str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]),
        TRADEOBS_TEST_INTERRUPT_AT="opentelemetry.sdk.metrics",
        TRADEOBS_TEST_INTERRUPTED=str(tmp_path / "interrupted"),
    )
    res = subprocess.run(
        [sys.executable, "-m", "mybot", "tradeobs_agent"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert (res.returncode, res.stdout) == (7, "caught\n"), res.stderr


def test_demo_in_a_directory_it_cannot_write_says_so_and_not_that_its_files_stay(tmp_path: Path) -> None:
    """Started where it may not write (a read-only directory, another user's: here logs/ under a file, which refuses
    root too), the demo printed "JSON logs /.../logs/", then at Ctrl-C "its JSON logs and order traces stay in
    /.../logs/": nothing was written there (a newcomer's run from a read-only directory, 2026-12-07)."""
    (tmp_path / "ro").write_text("a file, not a directory\n")
    proc = _demo_proc(
        "--port", "0", "--duration", "1", cwd=tmp_path, TRADEOBS_OTLP_ENABLED="false", TRADEOBS_LOG_DIR="ro/logs"
    )
    out, err = _finish(proc, 120)
    assert proc.returncode == 0 and "Traceback" not in err, err
    logs = f"{tmp_path}/ro/logs/"
    why = f"cannot write {logs}: Not a directory"
    assert (
        f"  JSON logs        none: {why}; start the demo in a directory you can write to, or set TRADEOBS_LOG_DIR\n"
        in out
    )
    assert f"  order traces     none: {why}; set TRADEOBS_TRACES_FILE to a file you can write\n" in out
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"tradeobs demo: stopped after \d+ orders; no JSON logs or order traces were written "
        rf"\({re.escape(why)}\)",
        last,
    ), out
    assert "stay in" not in out


def test_demo_says_where_its_order_traces_stay_when_they_are_not_beside_its_logs(tmp_path: Path) -> None:
    """TRADEOBS_TRACES_FILE elsewhere: the last line said the order traces stay in the logs' directory."""
    proc = _demo_proc(
        "--port",
        "0",
        "--duration",
        "1",
        cwd=tmp_path,
        TRADEOBS_OTLP_ENABLED="false",
        TRADEOBS_LOG_DIR="demo-logs",
        TRADEOBS_TRACES_FILE="spans/orders.jsonl",
    )
    out, err = _finish(proc, 120)
    assert proc.returncode == 0, err
    last = out.strip().splitlines()[-1]
    assert last.endswith(
        f"; its JSON logs stay in {tmp_path}/demo-logs/ and its order traces stay in {tmp_path}/spans/orders.jsonl"
    ), out
    assert (tmp_path / "spans" / "orders.jsonl").exists()


def test_demo_warns_when_its_live_view_listens_beyond_this_machine_without_a_token() -> None:
    """The live view has no authentication without live_token (docs/live.md: "bind to loopback"): listening on every
    interface then shows the desk's positions, P&L and orders to anyone who can reach the port, and said nothing."""
    warned = {}
    for host, token in (("0.0.0.0", ""), ("127.0.0.1", ""), ("0.0.0.0", "a-live-signing-secret-for-the-test")):
        proc = _demo_proc(
            "--host", host, "--port", "0", "--duration", "1", TRADEOBS_OTLP_ENABLED="false", TRADEOBS_LIVE_TOKEN=token
        )
        out, err = _finish(proc, 120)
        assert proc.returncode == 0 and "Traceback" not in err, err
        warned[(host, bool(token))] = "no live_token" in err
        assert "a-live-signing-secret-for-the-test" not in out + err
    assert warned == {("0.0.0.0", False): True, ("127.0.0.1", False): False, ("0.0.0.0", True): False}


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_the_demo_on_every_interface_prints_a_dashboard_url_that_opens(host: str) -> None:
    """`tradeobs demo --host 0.0.0.0` printed http://0.0.0.0:PORT/telemetry/, and opening that exact URL got 403:
    the request reaches loopback with Host 0.0.0.0, which the DNS rebinding guard refuses with no live_token. It now
    prints this machine's loopback address, which is served."""
    if host == "::" and not socket.has_ipv6:
        pytest.fail("no IPv6 on this machine", pytrace=False)
    port = free_port()
    proc = _demo_proc("--host", host, "--port", str(port), TRADEOBS_OTLP_ENABLED="false", PYTHONUNBUFFERED="1")
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        url = lines[1].split()[-1]
        assert lines[1].startswith("  live dashboard") and url.endswith(f":{port}/telemetry/"), lines
        wait_for(lambda: _ready(proc, url), f"{url} to answer 200", limit=60)
        proc.send_signal(signal.SIGTERM)
        _finish(proc, 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0


_DEMO_AT_A_LOOPBACK_NAME = """
import socket, sys
real = socket.getaddrinfo
# desk-box.test: a name of this machine that resolves to loopback (as an /etc/hosts alias of its hostname does)
socket.getaddrinfo = lambda host, *a, **k: real("127.0.0.1" if host == "desk-box.test" else host, *a, **k)
from tradeobs_agent.cli import main
sys.exit(main(["demo", "--host", "desk-box.test", "--port", sys.argv[1]]))
"""


def test_the_demo_on_a_name_of_this_machine_serves_the_url_it_prints() -> None:
    """`tradeobs demo --host vm` (vm: this machine's hostname, 127.0.0.1 in /etc/hosts) printed
    http://vm:PORT/telemetry/, which answered 403 (the DNS rebinding guard refuses a Host that is not a loopback name),
    and warned that anyone who can reach the port sees the desk, though it listened on loopback only. The name given
    is now one the live view answers (other names are still refused), and the warning looks at the bound address."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _DEMO_AT_A_LOOPBACK_NAME, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TRADEOBS_PROMETHEUS_PORT": "0", "TRADEOBS_OTLP_ENABLED": "false", "PYTHONUNBUFFERED": "1"},
    )

    def status(host: str) -> int:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            c.request("GET", "/telemetry/snapshot", headers={"Host": f"{host}:{port}"})
            return c.getresponse().status
        finally:
            c.close()

    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        assert lines[1].split()[-1] == f"http://desk-box.test:{port}/telemetry/", lines
        wait_for(lambda: _ready(proc, f"http://127.0.0.1:{port}/readyz"), "the demo to trade", limit=60)
        assert status("desk-box.test") == 200
        assert status("rebind.attacker.example") == 403
        proc.send_signal(signal.SIGTERM)
        _, err = _finish(proc, 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "no live_token" not in err, err


@pytest.mark.parametrize(
    ("host", "warns"),
    [
        ("127.0.0.1", False),
        ("127.9.8.7", False),
        ("::1", False),
        ("[::1]", False),
        ("localhost", False),
        ("0.0.0.0", True),
        ("::", True),
        ("192.0.2.10", True),
        ("desk-7.internal", True),
        ("", True),
    ],
)
def test_the_live_exposure_warning_knows_loopback(host: str, warns: bool) -> None:
    from tradeobs_agent.live.auth import exposure_warning

    assert (exposure_warning(host, "") is not None) is warns
    assert exposure_warning(host, "a-secret") is None


def test_demo_says_when_the_prometheus_port_is_taken_and_takes_another() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _demo_proc(
            "--port", "0", "--duration", "1", TRADEOBS_OTLP_ENABLED="false", TRADEOBS_PROMETHEUS_PORT=str(port)
        )
        out, err = _finish(proc, 120)
        assert proc.returncode == 0, err
        assert f"Prometheus       not yet: 127.0.0.1:{port} is in use (tried again until it is free)" in out
        proc = _demo_proc("--port", "0", "--prometheus-port", "0", "--duration", "1", TRADEOBS_OTLP_ENABLED="false")
        out, err = _finish(proc, 120)
        assert proc.returncode == 0, err
        assert "Prometheus       http://127.0.0.1:" in out and f":{port}/" not in out


@pytest.mark.parametrize(
    ("argv", "option", "allowed"),
    [
        (["demo", "--port", "70000"], "--port", "0 to 65535"),  # getaddrinfo would wrap it to 4464
        (["demo", "--port", "-5"], "--port", "0 to 65535"),
        (["demo", "--port", "http"], "--port", "0 to 65535"),
        (["live", "gateway", "--port", "65536"], "--port", "0 to 65535"),
        (["demo", "--duration", "-1"], "--duration", "above 0"),
        (["demo", "--duration", "nan"], "--duration", "above 0"),
        (["doctor", "--timeout", "0"], "--timeout", "above 0"),
        (["demo", "--tick-hz", "0"], "--tick-hz", "from 0.1 up"),
        (["demo", "--symbols", "0"], "--symbols", "from 1 up"),
    ],
)
def test_a_bad_port_or_duration_is_a_usage_error_naming_option_value_and_range(
    argv: list[str], option: str, allowed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: must be" in err and allowed in err and repr(argv[-1]) in err, err


@pytest.mark.parametrize(("option", "value"), [("--orders-hz", "inf"), ("--tick-hz", "inf"), ("--tick-hz", "nan")])
def test_a_demo_rate_that_is_not_finite_is_a_usage_error(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--orders-hz inf`` was taken, and the demo then hung at full CPU, deaf to Ctrl-C and --duration (parsed
    here, not run: with the old parser the demo would start and never stop)."""
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["demo", option, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: must be a number per second from" in err and repr(value) in err, err


@pytest.mark.parametrize("argv", [["config", "check"], ["config", "docs"], ["--help"]])
def test_output_into_a_closed_pipe_stops_quietly(argv: list[str]) -> None:
    """``tradeobs config check | head -2``: the reader has gone; no traceback, as other command-line tools."""
    import sys

    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tradeobs_agent.cli", *argv],
            stdout=write,
            capture_output=False,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 1, 120), proc.returncode


def test_config_check_names_a_log_dir_that_is_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("TRADEOBS_LOG_DIR", str(tmp_path / "afile"))
    monkeypatch.setenv("TRADEOBS_MULTIPROCESS_DIR", str(tmp_path / "fine" / "new"))  # can be created: no problem
    assert main(["config", "check"]) == 1
    out = capsys.readouterr().out
    assert f"log_dir '{tmp_path / 'afile'}' (from TRADEOBS_LOG_DIR): it is not a directory" in out
    assert "multiprocess_dir" not in out.split("problem(s):")[1]


def test_python_dash_m_tradeobs_agent_is_the_tradeobs_command() -> None:
    """For an environment whose scripts are not on the PATH (it said: 'tradeobs_agent' is a package and cannot be
    directly executed)."""
    proc = subprocess.run(
        [sys.executable, "-m", "tradeobs_agent", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"tradeobs {tradeobs_agent.__version__}"


def test_doctor_checks_a_live_stream_that_asks_for_a_token_with_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With live_token set, the service's /telemetry answers 401 to a request without a token, so doctor said FAIL
    for a healthy service; it now signs a token of a minute with the same secret (the service's settings)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from tests._util import wait_for
    from tradeobs_agent import live

    secret = "doctor-live-secret"
    view = live.create_app(token=secret, hz=5)
    app = Starlette(routes=[Mount("/telemetry", view)])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, "server start")
        monkeypatch.setenv("TRADEOBS_LIVE_TOKEN", secret)
        monkeypatch.setenv("TRADEOBS_OTLP_ENABLED", "false")
        monkeypatch.setenv("TRADEOBS_PROMETHEUS_ENABLED", "false")
        code = main(["doctor", "--service-url", f"http://127.0.0.1:{port}", "--timeout", "2"])
    finally:
        view.state.hub.stop()
        server.should_exit = True
        thread.join(10)
    out = capsys.readouterr().out
    rows = _doctor_rows(out)
    assert " OK " in rows["live stream"], out
    assert code == 0, out
    assert secret not in out


# --------------------------------------------------------------------------- tradeobs docs


def _user_facing_strings() -> list[tuple[str, str]]:
    """(where, text) of every string the package can show a user: its string literals but docstrings (help texts,
    messages, log lines, the settings' help), and the live page's script but its comments."""
    import ast

    root = Path(tradeobs_agent.__file__).parent
    found: list[tuple[str, str]] = []
    for path in sorted([*root.rglob("*.py"), *root.parent.glob("tradeobs_*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                found.append((f"{path.name}:{node.lineno}", node.value))
    for path in sorted((root / "live" / "static").glob("*.js")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip().startswith("//"):
                found.append((f"{path.name}:{n}", line))
    return found


def test_every_page_a_help_text_or_message_names_is_one_tradeobs_docs_shows() -> None:
    """The help texts and messages pointed at docs/live.md and the like, which a user who installed the wheel does
    not have: they name pages as `tradeobs docs NAME` now, each a page the installed documentation holds."""
    from tradeobs_agent import _docs

    pages = _docs.pages()
    assert {"configuration", "live", "agent", "collector", "scaling", "first-ten-minutes"} <= set(pages)
    strings = _user_facing_strings()
    assert len(strings) > 1000  # the scan reads the package
    repo_paths = [(where, m) for where, text in strings for m in re.findall(r"\bdocs/[a-z-]+\.md", text)]
    assert repo_paths == []
    named = {(where, m) for where, text in strings for m in re.findall(r"`tradeobs docs ([a-z][a-z-]*)`", text)}
    assert len(named) >= 10
    assert {(where, m) for where, m in named if m not in pages} == set()
    helps = [build_parser().format_help(), *(a.format_help() for a in _every_subparser(build_parser()))]
    assert not any("docs/" in h and ".md" in h for h in helps)


def _every_subparser(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [p for sub in _subparsers(parser).values() for p in (sub, *_every_subparser(sub))]


def test_tradeobs_docs_lists_the_pages_and_prints_one(capsys: pytest.CaptureFixture[str]) -> None:
    from tradeobs_agent import _docs

    assert main(["docs"]) == 0
    out = capsys.readouterr().out
    assert f"in {_docs.directory()}/:" in out
    assert re.search(r"^  live +Live view: 10 Hz SSE stream and built-in dashboard$", out, re.M), out
    assert main(["docs", "configuration"]) == 0
    assert capsys.readouterr().out == (_docs.directory() / "configuration.md").read_text(encoding="utf-8")  # type: ignore[operator]
    assert main(["docs", "livee"]) == 2
    assert capsys.readouterr().err == "tradeobs docs: no page 'livee'; did you mean 'live'?\n"
