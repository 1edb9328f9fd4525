"""An unhandled request exception reaches the agent's logs with its traceback and the request's trace id,
under a real uvicorn and a real gunicorn (``-k uvicorn_worker.UvicornWorker``), and is printed once.

uvicorn and gunicorn log it on their own error loggers (``uvicorn.error``, ``gunicorn.error``), which print
to stderr and do not propagate to the root logger, after the request's span has ended. The service is
``raising_app.py``; the agent exports to a real collector, whose file exporter stands for Loki.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from .agent_proc import agent_env, unique_service
from .procs import (
    READY_TIMEOUT,
    CollectorProc,
    ManagedProcess,
    free_port,
    http_get,
    http_ok,
    read_otlp_json_logs,
    wait_for,
)

HERE = Path(__file__).resolve().parent


def _argv(server: str, port: int) -> list[str]:
    if server == "uvicorn":
        return [sys.executable, "-m", "uvicorn", "raising_app:app", "--app-dir", str(HERE),
                "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    return [sys.executable, "-m", "gunicorn", "-k", "uvicorn_worker.UvicornWorker", "-w", "1",
            "-b", f"127.0.0.1:{port}", "--chdir", str(HERE), "raising_app:app"]  # fmt: skip


def _json_lines(log_dir: Path, marker: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted(log_dir.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if marker in line:
                out.append(json.loads(line))
    return out


@pytest.mark.integration
@pytest.mark.parametrize("server", ["uvicorn", "gunicorn"])
def test_an_unhandled_request_exception_reaches_the_logs_on_the_requests_trace(
    collector: CollectorProc, tmp_path: Path, server: str
) -> None:
    service = unique_service(f"{server}-errors")
    port = free_port()
    env = agent_env(collector, tmp_path, service)
    proc = ManagedProcess(server, _argv(server, port), env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    marker = uuid.uuid4().hex[:12]
    try:
        wait_for(lambda: http_ok(f"{base}/ok"), f"{server} to serve", timeout=READY_TIMEOUT, procs=(proc,))
        status, _ = http_get(f"{base}/boom/{marker}", 10, {"traceparent": f"00-{trace_id}-{parent_id}-01"})
        assert status == 500

        def in_collector() -> list[dict[str, Any]]:
            return [
                r
                for r in read_otlp_json_logs(collector.logs_file)
                if r["_resource"].get("service.name") == service
                and marker in str(r["_attributes"].get("exception.stacktrace", ""))
            ]

        wait_for(in_collector, f"the exception's log record from {server} in {collector.logs_file}", procs=(proc,))
        wait_for(lambda: _json_lines(tmp_path / "logs", marker), "the exception's line in the JSON logs", procs=(proc,))
    finally:
        proc.stop()
    # A clean stop on SIGTERM (uvicorn re-raises the signal once it has shut down: -15).
    assert proc.popen.returncode in (0, -15), proc.describe()

    # Exactly once each, after the process flushed everything at exit.
    [line] = _json_lines(tmp_path / "logs", marker)
    [record] = in_collector()
    assert line["logger"] == "uvicorn.error" and line["level"] == "ERROR"  # UvicornWorker logs there too
    assert line["message"].startswith("Exception in ASGI application")
    assert line["trace_id"] == trace_id and len(line["span_id"]) == 16
    assert line["exception.type"] == "RuntimeError" and line["exception.message"] == f"boom {marker}"
    assert "Traceback (most recent call last)" in line["exception.stacktrace"]
    assert 'raise RuntimeError(f"boom {marker}")' in line["exception.stacktrace"]
    assert record["traceId"] == trace_id and record["spanId"] == line["span_id"]
    assert record["severityText"] == "ERROR"
    assert record["_attributes"]["exception.stacktrace"] == line["exception.stacktrace"]
    # The server still prints the traceback on stderr, once; the agent adds no second copy.
    out = proc.log_path.read_text(errors="replace")
    assert out.count(f"RuntimeError: boom {marker}") == 1, out[-4000:]
    assert out.count("Exception in ASGI application") == 1, out[-4000:]
