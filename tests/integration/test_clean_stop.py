"""A planned stop is told apart from a crash on the real pipeline (TradingServiceTelemetryMissing).

    `tradeobs demo` --OTLP/gRPC--> otelcol-tradeobs --> its prometheus exporter page

Before, a SIGTERM (the end-of-day stop) and a SIGKILL left the same thing in the collector: the
instance's target_info, aging out after metric_expiration, and the alert paged 10 minutes after
either. Now the agent's shutdown sets ``tradeobs.agent.stopped`` and its last export carries it:
the collector has ``tradeobs_agent_stopped 1`` for the instance once the process has exited (the
series the rule reads, kept as long as target_info), and a killed process never sends it.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from .agent_proc import start_demo, unique_service
from .procs import CollectorProc, http_get, wait_for

pytestmark = pytest.mark.integration


def _exporter_lines(collector: CollectorProc, job: str) -> list[str]:
    status, body = http_get(f"{collector.prometheus_exporter_url}/metrics")
    assert status == 200
    return [line for line in body.decode().splitlines() if f'job="{job}"' in line]


def _stop_and_read(collector: CollectorProc, tmp_path: Path, sig: signal.Signals, rc_after: int) -> list[str]:
    job = unique_service("stop")
    proc, _ = start_demo(collector, tmp_path / job, job)
    try:
        wait_for(
            lambda: any(line.startswith("target_info{") for line in _exporter_lines(collector, job)),
            f"{job}'s target_info in the collector",
            procs=(collector.proc, proc),
        )
        proc.popen.send_signal(sig)
        rc = proc.popen.wait(30)
    finally:
        proc.stop()
    assert rc == rc_after, proc.describe()
    # The process is gone: nothing more can arrive from it; what the collector holds is what it sent.
    return _exporter_lines(collector, job)


def test_sigterm_leaves_the_stopped_series_in_the_collector(collector: CollectorProc, tmp_path: Path) -> None:
    lines = _stop_and_read(collector, tmp_path, signal.SIGTERM, 0)  # uvicorn's handler: a clean exit
    stopped = [line for line in lines if line.startswith("tradeobs_agent_stopped{")]
    assert stopped and all(line.rsplit(" ", 1)[1] == "1" for line in stopped), "\n".join(lines)


def test_sigkill_leaves_no_stopped_series(collector: CollectorProc, tmp_path: Path) -> None:
    lines = _stop_and_read(collector, tmp_path, signal.SIGKILL, -signal.SIGKILL)
    assert any(line.startswith("target_info{") for line in lines)
    assert not [line for line in lines if line.startswith("tradeobs_agent_stopped")], "\n".join(lines)
