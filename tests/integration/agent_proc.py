"""Run the tradeobs agent in a fresh process pointed at a real collector.

>>> with AgentWorkload("orders", collector, tmp_path) as w:      # doctest: +SKIP
...     w.ready["orders"][0]["trace_id"]                           # what the workload printed
...     w.send({"cmd": "set", "value": 4.5})                       # -> {"t0": ...}

The process is ``tests/integration/agent_workload.py`` (see its docstring for
the scenarios and the stdin/stdout protocol). Its environment is what a
deployed service would set: the collector's OTLP/gRPC endpoint, a unique
``service.name`` (so PromQL and Jaeger queries select exactly this process's
data), a short metric export interval, the embedded Prometheus endpoint on any
free port and JSON log files in the work directory. Like the other processes
in ``procs.py`` it is always stopped, and if it dies or never answers the test
FAILS with its stderr tail.

Also :func:`agent_env` and :func:`start_demo` (the ``tradeobs demo`` CLI under
uvicorn on a free port) for tests that need the real web service.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from .procs import READY_TIMEOUT, CollectorProc, ManagedProcess, _clean_env, free_port, http_ok, wait_for

WORKLOAD = Path(__file__).resolve().parent / "agent_workload.py"
# Seconds between the agent's OTLP metric exports in these tests. The collector's
# prometheus exporter serves the last point it got and Prometheus scrapes every
# 1 s (procs.prometheus_config): exporting no faster than the scrape keeps every
# export visible.
EXPORT_INTERVAL = 1.0

__all__ = ["EXPORT_INTERVAL", "WORKLOAD", "AgentWorkload", "agent_env", "start_demo", "unique_service"]


def unique_service(prefix: str = "e2e") -> str:
    """A service.name no other test (or earlier run against the same stack) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def agent_env(
    collector: CollectorProc, workdir: Path, service_name: str, export_interval: float = EXPORT_INTERVAL
) -> dict[str, str]:
    """The environment of an agent process exporting to ``collector`` (no other TRADEOBS_*/OTEL_* leak in)."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{collector.otlp_grpc_endpoint}",
        "TRADEOBS_SERVICE_NAME": service_name,
        "TRADEOBS_ENVIRONMENT": "e2e",
        "TRADEOBS_TRADING_MODE": "paper",
        "TRADEOBS_METRIC_EXPORT_INTERVAL": str(export_interval),
        "TRADEOBS_PROMETHEUS_PORT": "0",
        "TRADEOBS_LOG_DIR": str(workdir / "logs"),
        "PYTHONUNBUFFERED": "1",
    }


class AgentWorkload:
    """``agent_workload.py <scenario>`` as a child process with a line protocol on stdin/stdout."""

    def __init__(
        self,
        scenario: str,
        collector: CollectorProc,
        workdir: Path,
        service_name: str | None = None,
        export_interval: float = EXPORT_INTERVAL,
        timeout: float = READY_TIMEOUT,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.scenario = scenario
        self.service_name = service_name or unique_service()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = workdir / f"workload-{scenario}.log"
        self._stderr = open(self.stderr_path, "ab")  # noqa: SIM115 - closed in stop()
        env = {**_clean_env(), **agent_env(collector, workdir, self.service_name, export_interval), **(extra_env or {})}
        self.popen = subprocess.Popen(
            [sys.executable, str(WORKLOAD), scenario],
            cwd=workdir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
        )
        self._buf = b""
        self._sel = selectors.DefaultSelector()
        assert self.popen.stdout is not None
        os.set_blocking(self.popen.stdout.fileno(), False)
        self._sel.register(self.popen.stdout, selectors.EVENT_READ)
        try:
            self.ready = self.read(timeout)
        except BaseException:
            self.stop()
            raise

    # ------------------------------------------------------------------ protocol
    def describe(self) -> str:
        try:
            tail = "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-40:])
        except OSError:
            tail = ""
        return f"\n--- agent workload {self.scenario!r} ({self.service_name}) stderr tail ---\n{tail}\n"

    def read(self, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        """The next ``E2E {json}`` line from the workload; fail on timeout or exit."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                if line.startswith(b"E2E "):
                    return dict(json.loads(line[4:]))
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"agent workload gave no answer within {timeout:.0f}s" + self.describe(), pytrace=False)
            if self._sel.select(min(left, 0.5)):
                assert self.popen.stdout is not None
                chunk = os.read(self.popen.stdout.fileno(), 65536)
                if chunk:
                    self._buf += chunk
                    continue
            if self.popen.poll() is not None and b"\n" not in self._buf:
                pytest.fail(f"agent workload exited with code {self.popen.returncode}" + self.describe(), pytrace=False)

    def send(self, cmd: dict[str, Any], timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        """Send one command, return its answer."""
        assert self.popen.stdin is not None
        try:
            self.popen.stdin.write((json.dumps(cmd) + "\n").encode())
            self.popen.stdin.flush()
        except BrokenPipeError:
            pytest.fail("agent workload is gone" + self.describe(), pytrace=False)
        return self.read(timeout)

    # ------------------------------------------------------------------ lifecycle
    def stop(self, timeout: float = 15.0) -> int:
        """Ask the agent to shut down (flushing its last export), then make sure it is gone. -> exit code."""
        if self.popen.poll() is None:
            try:
                assert self.popen.stdin is not None
                self.popen.stdin.write(b'{"cmd": "stop"}\n')
                self.popen.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.terminate()
                try:
                    self.popen.wait(5)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait()
        for f in (self.popen.stdin, self.popen.stdout):
            if f is not None and not f.closed:
                f.close()
        self._sel.close()
        if not self._stderr.closed:
            self._stderr.close()
        return self.popen.returncode

    def __enter__(self) -> AgentWorkload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_demo(
    collector: CollectorProc,
    workdir: Path,
    service_name: str,
    *,
    orders_hz: float = 0.0,
    symbols: int = 3,
    export_interval: float = EXPORT_INTERVAL,
    extra_env: dict[str, str] | None = None,
) -> tuple[ManagedProcess, str]:
    """``tradeobs demo`` (uvicorn, the real CLI) on a free port -> (process, base URL).

    By default no automatic orders (tests place them with ``POST /api/orders``)."""
    port = free_port()
    env = {**agent_env(collector, workdir, service_name, export_interval), **(extra_env or {})}
    argv = [sys.executable, "-m", "tradeobs_agent.cli", "demo", "--port", str(port)]
    argv += ["--symbols", str(symbols), "--tick-hz", "5", "--orders-hz", f"{orders_hz:g}", "--seed", "7"]
    workdir.mkdir(parents=True, exist_ok=True)
    proc = ManagedProcess("demo", argv, env, workdir)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_ok(f"{base}/readyz"), "the demo to become ready", timeout=READY_TIMEOUT, procs=(proc,))
    except BaseException:
        proc.stop()
        raise
    return proc, base
