"""`tradeobs collector check | reload | migrate-queue` against the real otelcol-tradeobs.

- check: the real binary validates in the deployment's environment (native or compose) and prints the
  effective config; its lints catch configs that `otelcol-tradeobs validate` passes.
- reload: a valid edit is applied by SIGHUP in the same process, with the disk queue intact (queued spans
  are delivered afterwards); an invalid edit is refused and the collector never gets the signal, while a
  raw `kill -HUP` with the same file makes the collector exit.
- migrate-queue: spans queued under the old exporter name (otlp/traces) survive the rename to
  otlp_grpc/traces and are delivered; check reports the stranded queue until the migration ran.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from .procs import (
    COLLECTOR_CONFIG,
    REPO,
    CollectorProc,
    _clean_env,
    find_binary,
    free_port,
    http_get,
    http_ok,
    jaeger_trace,
    start_collector,
    start_jaeger,
    wait_for,
)

pytestmark = pytest.mark.integration

# How configs written before the rename named the queued exporters.
LEGACY_NAMES = {"otlp_grpc/traces": "otlp/traces", "otlp_http/logs": "otlphttp/logs"}


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """The real `tradeobs collector ...` command, in a fresh process."""
    full_env = {**_clean_env(), "TRADEOBS_COLLECTOR_BIN": find_binary("otelcol-tradeobs"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tradeobs_agent.cli", "collector", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def validate(config: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_binary("otelcol-tradeobs"), "validate", "--config", f"file:{config}"],
        env={**_clean_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def send_spans(collector: CollectorProc, n: int = 3) -> list[str]:
    tp = TracerProvider(resource=Resource.create({"service.name": f"tools-{uuid.uuid4().hex[:8]}"}))
    tp.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"http://{collector.otlp_grpc_endpoint}", insecure=True))
    )
    ids = []
    for i in range(n):
        with tp.get_tracer("tools").start_as_current_span(f"queued-{i}") as span:
            ids.append(format(span.get_span_context().trace_id, "032x"))
    assert tp.force_flush()
    tp.shutdown()
    return ids


def wait_queued(collector: CollectorProc, exporter: str) -> None:
    """Until the exporter holds data in its sending queue (the trace store is down)."""

    def queued() -> bool:
        status, body = http_get(f"{collector.metrics_url}/metrics")
        pattern = rf'otelcol_exporter_queue_size\{{[^}}]*exporter="{re.escape(exporter)}"[^}}]*\}} [1-9]'
        return status == 200 and re.search(pattern.encode(), body) is not None

    wait_for(queued, f"spans queued in {exporter}", procs=(collector.proc,))


def test_check_passes_the_shipped_config_natively_and_for_compose() -> None:
    native = cli("check")
    assert native.returncode == 0, native.stdout + native.stderr
    assert "validate: ok" in native.stdout and "0 error(s), 0 warning(s)" in native.stdout
    # the effective config, as the binary resolved it: defaults filled in, env resolved
    assert "otlp_grpc/traces:" in native.stdout and "max_elapsed_time: 1h0m0s" in native.stdout
    assert "endpoint: 127.0.0.1:14317" in native.stdout

    compose = cli("check", "--env", "compose", "--env-file", str(REPO / "compose" / ".env.example"))
    assert compose.returncode == 0, compose.stdout + compose.stderr
    assert "compose: compose/docker-compose.yml service otel-collector" in compose.stdout
    assert "endpoint: jaeger:4317" in compose.stdout and "directory: /var/lib/otelcol/queue" in compose.stdout
    # what a native shell sets does not leak into the compose check
    leak = cli("check", "--env", "compose", env={"TRADEOBS_TRACES_EXPORTERS": "[no_such]"})
    assert leak.returncode == 0, leak.stdout + leak.stderr


def test_check_fails_what_validate_fails(tmp_path: Path) -> None:
    res = cli("check", "--no-print-config", env={"TRADEOBS_LOGS_EXPORTERS": "[no_such_exporter]"})
    assert res.returncode == 1
    assert "validate: FAILED" in res.stdout and "no_such_exporter" in res.stdout


def _edited(tmp_path: Path, old: str, new: str, count: int = 1) -> Path:
    text = COLLECTOR_CONFIG.read_text()
    assert text.count(old) >= count, old
    path = tmp_path / "otel-collector.yaml"
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        pytest.param(
            "transform/redact, attributes/redact, resource",
            "attributes/redact, resource",
            "error    unused-processor             redaction processor transform/redact is defined but in no pipeline",
            id="redaction-in-no-pipeline",
        ),
        pytest.param(
            "processors: [memory_limiter, transform/redact, attributes/redact, resource]\n"
            "      exporters: ${env:TRADEOBS_LOGS_EXPORTERS",
            "processors: [memory_limiter, resource]\n      exporters: ${env:TRADEOBS_LOGS_EXPORTERS",
            "error    pipeline-without-redaction   pipeline logs does not run attributes/redact, transform/redact",
            id="pipeline-skips-redaction",
        ),
        pytest.param(
            "processors: [memory_limiter, transform/redact, attributes/redact, resource]\n"
            "      exporters: ${env:TRADEOBS_LOGS_EXPORTERS",
            "processors: [memory_limiter, attributes/redact, transform/redact, resource]\n"
            "      exporters: ${env:TRADEOBS_LOGS_EXPORTERS",
            "error    redaction-out-of-order       pipeline logs runs attributes/redact before transform/redact",
            id="redaction-out-of-order",
        ),
        pytest.param(
            "- pattern: '(?i)(api[._-]?key|",
            "- pattern: '(?i)(api[._-]?key|pin|",
            "error    redaction-out-of-sync        2 different secret-key regexes",
            id="regexes-out-of-sync",
        ),
    ],
)
def test_check_catches_what_validate_misses(tmp_path: Path, old: str, new: str, message: str) -> None:
    config = _edited(tmp_path, old, new, count=1)
    assert validate(config).returncode == 0  # the collector itself accepts it
    res = cli("check", str(config), "--no-print-config")
    assert res.returncode == 1, res.stdout
    assert message in res.stdout, res.stdout


def _pid_file(collector: CollectorProc, tmp_path: Path) -> Path:
    pid_file = tmp_path / "otelcol.pid"
    pid_file.write_text(f"{collector.proc.pid}\n")
    return pid_file


def test_reload_applies_a_valid_edit_in_place_and_keeps_the_queue(tmp_path: Path) -> None:
    config = tmp_path / "otel-collector.yaml"
    config.write_text(COLLECTOR_CONFIG.read_text())
    store_port = free_port()  # the trace store is down until the end
    with start_collector(tmp_path / "col", f"127.0.0.1:{store_port}", config=config) as col:
        trace_ids = send_spans(col)
        wait_queued(col, "otlp_grpc/traces")
        # a valid edit: a larger batch timeout
        config.write_text(config.read_text().replace("    timeout: 1s\n", "    timeout: 2s\n", 1))
        res = cli("reload", "--pid-file", str(_pid_file(col, tmp_path)))
        assert res.returncode == 0, res.stdout + res.stderr
        assert re.search(rf"reloaded pid {col.proc.pid}: running the new config after \d+ ms", res.stdout)
        log = col.proc.log_path.read_text()
        assert "Config updated, restart service" in log
        col.proc.check_alive()  # same process: a reload, not a restart
        assert http_ok(col.health_url)
        # the spans queued before the reload are still there and go out once the store is back
        with start_jaeger(tmp_path / "jaeger", otlp_grpc_port=store_port) as jaeger:
            for tid in trace_ids:
                wait_for(lambda t=tid: jaeger_trace(jaeger.query_url, t), f"queued trace {tid}", procs=(col.proc,))


def test_reload_never_signals_a_collector_with_an_invalid_config(tmp_path: Path) -> None:
    config = tmp_path / "otel-collector.yaml"
    config.write_text(COLLECTOR_CONFIG.read_text())
    with start_collector(tmp_path / "col", "127.0.0.1:1", config=config) as col:
        pid_file = _pid_file(col, tmp_path)
        config.write_text(
            config.read_text().replace("limit_mib: ${env:TRADEOBS_MEMORY_LIMIT_MIB:-512}", "limit_mib: lots")
        )
        res = cli("reload", "--pid-file", str(pid_file))
        assert res.returncode == 1
        assert "validate: FAILED" in res.stdout and "limit_mib" in res.stdout
        assert f"NOT reloaded: fix the errors above (pid {col.proc.pid} keeps running its current config)" in res.stdout
        col.proc.check_alive()
        assert "Received signal from OS" not in col.proc.log_path.read_text()
        assert http_ok(col.health_url)

        # Why it matters: the same file with a plain `kill -HUP` takes the collector down.
        os.kill(col.proc.pid, signal.SIGHUP)
        col.proc.popen.wait(30)
        assert col.proc.popen.returncode != 0
        assert "Received signal from OS" in col.proc.log_path.read_text()


def test_reload_refuses_a_lint_error(tmp_path: Path) -> None:
    """validate passes, but the edit would send logs unredacted: no signal either."""
    config = tmp_path / "otel-collector.yaml"
    config.write_text(COLLECTOR_CONFIG.read_text())
    with start_collector(tmp_path / "col", "127.0.0.1:1", config=config) as col:
        config.write_text(config.read_text().replace("transform/redact, attributes/redact, resource", "resource"))
        res = cli("reload", "--pid", str(col.proc.pid))
        assert res.returncode == 1 and "NOT reloaded" in res.stdout
        assert "redaction processor attributes/redact is defined but in no pipeline" in res.stdout
        assert "Received signal from OS" not in col.proc.log_path.read_text()


def _legacy_config(tmp_path: Path) -> Path:
    text = COLLECTOR_CONFIG.read_text()
    for new, old in LEGACY_NAMES.items():
        text = text.replace(new, old)
    path = tmp_path / "legacy.yaml"
    path.write_text(text)
    return path


def test_queue_survives_the_exporter_rename_with_migrate_queue(tmp_path: Path) -> None:
    store_port = free_port()
    workdir = tmp_path / "col"
    legacy = _legacy_config(tmp_path)
    old = start_collector(workdir, f"127.0.0.1:{store_port}", config=legacy)
    try:
        trace_ids = send_spans(old)
        wait_queued(old, "otlp/traces")
        # the old config itself warns about the deprecated names and what a rename does
        res = cli("check", str(legacy), "--no-print-config", env=old.env, cwd=workdir)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "deprecated-exporter-type     exporter otlp/traces uses the deprecated type 'otlp'" in res.stdout
        # a running collector holds its queue file: the migration refuses to touch it
        res = cli("migrate-queue", str(COLLECTOR_CONFIG), env=old.env, cwd=workdir)
        assert res.returncode == 1 and "is open in a running collector: stop it first" in res.stdout
    finally:
        old.stop()
    queue_dir = old.storage_dir
    assert (queue_dir / "exporter_otlp_traces_traces").exists()

    # the renamed config would not read the old queue: check says so (and reload would refuse)
    res = cli("check", str(COLLECTOR_CONFIG), "--no-print-config", env=old.env, cwd=workdir)
    assert res.returncode == 1
    assert "stranded-queue" in res.stdout and "exporter_otlp_traces_traces" in res.stdout

    res = cli("migrate-queue", str(COLLECTOR_CONFIG), "--dry-run", env=old.env, cwd=workdir)
    assert res.returncode == 0 and "would rename exporter_otlp_traces_traces -> exporter_otlp_grpc_traces_traces" in (
        res.stdout
    )
    res = cli("migrate-queue", str(COLLECTOR_CONFIG), env=old.env, cwd=workdir)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "renamed exporter_otlp_traces_traces -> exporter_otlp_grpc_traces_traces" in res.stdout
    assert cli("check", str(COLLECTOR_CONFIG), "--no-print-config", env=old.env, cwd=workdir).returncode == 0

    with (
        start_jaeger(tmp_path / "jaeger", otlp_grpc_port=store_port) as jaeger,
        start_collector(workdir, jaeger.otlp_grpc_endpoint, env=old.env) as new,
    ):
        for tid in trace_ids:
            wait_for(lambda t=tid: jaeger_trace(jaeger.query_url, t), f"migrated trace {tid}", procs=(new.proc,))


def test_a_drained_queue_keeps_its_size_until_a_reload_compacts_it(tmp_path: Path) -> None:
    """docs/runbook.md (HostDiskSpaceLow): the queue file does not shrink when it drains; a reload does it."""
    config = tmp_path / "otel-collector.yaml"
    config.write_text(COLLECTOR_CONFIG.read_text())
    store_port = free_port()
    with start_collector(tmp_path / "col", f"127.0.0.1:{store_port}", config=config) as col:
        tp = TracerProvider(resource=Resource.create({"service.name": f"tools-{uuid.uuid4().hex[:8]}"}))
        tp.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"http://{col.otlp_grpc_endpoint}", insecure=True))
        )
        padding = "x" * 4096
        for i in range(3000):
            with tp.get_tracer("tools").start_as_current_span(f"big-{i}", attributes={"padding": padding}):
                pass
        assert tp.force_flush()
        tp.shutdown()
        queue_file = col.storage_dir / "exporter_otlp_grpc_traces_traces"

        def queued_size() -> int | None:
            size = queue_file.stat().st_size
            return size if size > 8 * 2**20 else None

        grown = wait_for(queued_size, "the queue file to grow past 8 MiB", procs=(col.proc,))

        def drained() -> bool:
            status, body = http_get(f"{col.metrics_url}/metrics")
            return (
                status == 200
                and re.search(rb"otelcol_exporter_queue_size\{[^}]*otlp_grpc/traces[^}]*\} 0\n", body) is not None
            )

        with start_jaeger(tmp_path / "jaeger", otlp_grpc_port=store_port):
            wait_for(drained, "the queue to drain into the store", procs=(col.proc,))
            after_drain = queue_file.stat().st_size
            res = cli("reload", "--pid", str(col.proc.pid))
            assert res.returncode == 0, res.stdout + res.stderr
            compacted = queue_file.stat().st_size
        print(f"\nqueue file: {grown / 2**20:.1f} MiB queued, {after_drain / 2**20:.1f} MiB drained, "
              f"{compacted / 2**20:.2f} MiB after the reload")  # fmt: skip
        assert after_drain >= grown  # bbolt keeps its pages
        assert compacted < after_drain / 4
