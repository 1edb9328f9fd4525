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
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests._util import prom_samples

from .agent_proc import agent_env, start_demo, unique_service
from .procs import CollectorProc, ManagedProcess, _clean_env, free_port, http_get, wait_for

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


_SCRIPT = """
import sys
import tradeobs_agent

tradeobs_agent.init()
tradeobs_agent.TradingTelemetry(strategy="s", venue="v").tick("AAPL", 100.0)
if sys.argv[1] == "raise":
    raise RuntimeError("the strategy's start-up failed")
if sys.argv[1] == "sys.exit(1)":
    sys.exit(1)
"""


@pytest.mark.parametrize(("how", "stopped"), [("exit", ["1"]), ("raise", []), ("sys.exit(1)", ["1"])])
def test_an_uncaught_exception_is_a_crash_and_a_normal_exit_a_clean_stop(
    collector: CollectorProc, tmp_path: Path, how: str, stopped: list[str]
) -> None:
    """Before, a process ended by an uncaught exception ran the agent's shutdown at exit like a normal exit, sent
    ``tradeobs_agent_stopped 1``, and TradingServiceTelemetryMissing left the dead service alone.
    ``sys.exit(1)`` is a clean stop: Python tells the agent no exit status at exit (docs/agent.md, "A clean stop or
    a crash"), and this pins what that page says."""
    job = unique_service("exit")
    env = {**_clean_env(), **agent_env(collector, tmp_path, job)}
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, how], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == (0 if how == "exit" else 1), proc.stderr
    lines = _exporter_lines(collector, job)  # the last export was flushed before the process ended
    assert any(line.startswith("target_info{") for line in lines), "\n".join(lines)
    got = [line.rsplit(" ", 1)[1] for line in lines if line.startswith("tradeobs_agent_stopped{")]
    assert got == stopped, "\n".join(lines)


def test_gunicorn_recycling_its_workers_sends_a_clean_stop_for_each(collector: CollectorProc, tmp_path: Path) -> None:
    """gunicorn's ``--max-requests`` replaces its workers routinely. ServiceCrashLooping counted each replacement as
    a crash (a new instance); it now leaves out a start that follows a fresh clean stop, which this shows each
    recycled worker sends (promtool: compose/prometheus/tests/pipeline_test.yml, job "recycled")."""
    job = unique_service("recycle")
    port = free_port()
    env = {
        **agent_env(collector, tmp_path, job),
        "TRADEOBS_MULTIPROCESS_DIR": str(tmp_path / "mp"),
        "TRADEOBS_DEMO_ORDERS_HZ": "0",
    }
    argv = [sys.executable, "-m", "gunicorn", "-w", "2", "-k", "uvicorn_worker.UvicornWorker", "--max-requests", "3"]
    # --timeout 120: on a loaded machine a worker late with its heartbeat is killed (SIGKILL: a crash, rightly no
    # clean stop); this test is about the recycling
    argv += [
        "--timeout",
        "120",
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "tradeobs_agent.demo:create_app()",
    ]
    (tmp_path / "mp").mkdir(mode=0o700)  # the workers' group, as a deployment sets it up (a missing one is refused)
    proc = ManagedProcess("gunicorn", argv, env, tmp_path)

    def instances() -> tuple[dict[str, str], set[str], list[str]]:
        """instance -> its process id, the instances that sent their clean stop, and the samples (for a failure)."""
        samples = prom_samples(f"{collector.prometheus_exporter_url}/metrics")
        mine = [s for name in ("target_info", "tradeobs_agent_stopped") for s in samples.get(name, [])]
        mine = [s for s in mine if s.labels.get("job") == job]
        pids = {s.labels["instance"]: s.labels["process_pid"] for s in mine if s.name == "target_info"}
        stopped = {s.labels["instance"] for s in mine if s.name == "tradeobs_agent_stopped"}
        assert all(s.value == 1 for s in mine if s.name == "tradeobs_agent_stopped"), mine
        return pids, stopped, [str(s) for s in mine]

    def ask() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False  # a worker between two lives

    def workers() -> set[str]:
        """The pids of gunicorn's live workers (its children)."""
        path = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        return set(path.read_text().split()) if path.exists() else set()

    try:
        wait_for(lambda: len(instances()[0]) == 2 or None, "2 gunicorn workers in the collector", procs=(proc,))
        # Requests until gunicorn has replaced 2 workers (4 pids seen). A fixed count did not do it: uvicorn checks its
        # request limit on a 0.1 s tick, so one worker can answer a burst of them before it leaves (a CI run's 12
        # requests replaced one worker only, and the other never reached its 3).
        seen = workers()

        def two_replaced() -> bool:
            ask()
            seen.update(workers())
            return len(seen) >= 4

        wait_for(two_replaced, "gunicorn to replace 2 workers", timeout=120, procs=(proc,))

        def replaced() -> tuple[dict[str, str], set[str], list[str]] | None:
            pids, stopped, lines = instances()
            gone = {i for i, pid in pids.items() if pid not in workers()}
            if len(pids) >= 4 and len(gone) >= 2 and gone <= stopped:
                return pids, stopped, lines
            raise ValueError(f"instances (pids) {pids}, gone {gone}, stopped {stopped}, live workers {workers()}")

        pids, stopped, lines = wait_for(
            replaced, "each replaced worker's clean stop in the collector", timeout=120, procs=(proc,)
        )
    finally:
        proc.stop()
    assert len(pids) >= 4 and stopped < set(pids), "\n".join(lines)
