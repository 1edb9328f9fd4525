"""A collector restart loses nothing the agent was asked to send (issue 16), measured with real processes.

The agent (in this process, the real OTLP/gRPC exporters) keeps trading while our collector is killed with
SIGKILL, stays down (10 s, and 60 s), and is started again with the same ports and storage; every order trace
reaches Jaeger, every log record reaches the collector's log file, and the agent counted no drop (a failed
metrics export is not a drop: its points are cumulative). How soon delivery resumes after the restart, and the
5-minute outage, are measured by ``benchmarks/collector_outage.py``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import tradeobs_agent
from tests._util import dead_endpoint
from tradeobs_agent import LogOptions, OtlpOptions

from .procs import _clean_env, jaeger_search, read_otlp_json_logs, start_collector, start_jaeger, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _orders(tt: tradeobs_agent.TradingTelemetry, log: object, prefix: str, n: int, pause: float) -> list[str]:
    ids = []
    for i in range(n):
        oid = f"{prefix}-{i}"
        o = tt.order_signal(oid, "AAPL", "buy", 10, price=100.0)
        o.submitted()
        o.fill(10, 100.01)
        log.info("order %s filled", oid)  # type: ignore[attr-defined]
        ids.append(oid)
        time.sleep(pause)
    return ids


def _failed_exports(agent: tradeobs_agent.Agent) -> dict[str, float]:
    out: dict[str, float] = {}
    for series in agent.registry.self_metrics.exports_failed.series():
        signal_ = str(series.attributes["signal"])
        out[signal_] = out.get(signal_, 0.0) + series.value
    return out


@pytest.mark.parametrize("outage_s", [10.0, 60.0])
def test_a_collector_restart_loses_no_span_and_no_log_record(tmp_path: Path, outage_s: float) -> None:
    service = f"tradeobs-outage-{uuid.uuid4().hex[:8]}"
    with start_jaeger(tmp_path / "jaeger") as jaeger:
        col = start_collector(tmp_path / "collector", jaeger.otlp_grpc_endpoint)
        try:
            agent = tradeobs_agent.init(
                service_name=service,
                otlp=OtlpOptions(endpoint=f"http://{col.otlp_grpc_endpoint}"),
                prometheus=False,
                live=False,
                logs=LogOptions(dir=str(tmp_path / "logs")),
            )
            tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
            log = tradeobs_agent.get_logger("execution")
            ids = _orders(tt, log, "before", 10, 0.05)
            os.kill(col.proc.pid, signal.SIGKILL)  # not a graceful stop: nothing is flushed by the collector
            col.proc.popen.wait(10)
            outage_end = time.monotonic() + outage_s
            ids += _orders(tt, log, "during", 40, outage_s / 40)
            time.sleep(max(0.0, outage_end - time.monotonic()))
            col.stop()
            col = start_collector(tmp_path / "collector", jaeger.otlp_grpc_endpoint, env=col.env)
            failed_at_restart = _failed_exports(agent)
            assert set(failed_at_restart) >= {"traces", "logs"}, f"the outage was not seen: {failed_at_restart}"
            ids += _orders(tt, log, "after", 10, 0.05)
            assert agent.force_flush(timeout=60.0), "kept batches were not delivered after the collector came back"

            def all_traces() -> bool:
                traces = jaeger_search(jaeger.query_url, service, operation="order", limit=500)
                return len(traces) == len(ids)

            wait_for(all_traces, "every order trace in Jaeger", procs=(col.proc, jaeger.proc))

            def all_logs() -> bool:
                bodies = {r.get("body", {}).get("stringValue") for r in read_otlp_json_logs(col.logs_file)}
                return all(f"order {oid} filled" in bodies for oid in ids)

            wait_for(all_logs, "every log record in the collector's file", procs=(col.proc,))
            dropped = agent.registry.get("tradeobs.agent.items.dropped")
            lost = (
                {}
                if dropped is None
                else {tuple(sorted(s.attributes.items())): s.value for s in dropped.series() if s.value}
            )
            assert lost == {}, f"the agent counted drops: {lost}"
            tt.close()
        finally:
            tradeobs_agent.shutdown()
            col.stop()


_OUTAGE_SCRIPT = """
import sys, threading, time
import tradeobs_agent
from tradeobs_agent._internal import exporters

exporters._Counting.message_interval = 0.0  # every outage said: this test is about their pairs, not the rate limit
agent = tradeobs_agent.init(service_name="outages", prometheus=False, live=False)
tracer = agent.tracer()
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
while not stop.wait(0.05):
    with tracer.start_as_current_span("tick"):
        pass
tradeobs_agent.shutdown(timeout=5.0)
"""


def _system_log(path: Path, text: str) -> list[str]:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    messages = [json.loads(line).get("message", "") for line in lines if line.strip()]
    return [m for m in messages if text in m]


def _began(path: Path, signal: str) -> list[str]:
    """The beginnings said for ``signal``: a line may name several signals (``cannot export traces, logs and metrics
    to ...``: the outages of one collector's signals that began together are said as one line)."""
    out = []
    for m in _system_log(path, "cannot export "):
        named = re.match(r"tradeobs: cannot export (.+?) to ", m)
        if named and signal in re.split(r", | and ", named.group(1)):
            out.append(m)
    return out


def test_each_collector_outage_is_said_when_it_begins_and_when_it_ends(tmp_path: Path) -> None:
    """The collector stopped and started again twice under a process that exports: the system log has a beginning
    and an end for each outage (was: the beginning once per process, then only "recovered" lines), and the console
    sees the first outage (and its end) once. The test fails on the code before the fix."""
    col = start_collector(tmp_path / "collector", dead_endpoint().removeprefix("http://"))
    system_log = tmp_path / "logs" / "system.jsonl"
    env = {
        **_clean_env(),
        "TRADEOBS_OTLP_ENDPOINT": f"http://{col.otlp_grpc_endpoint}",
        "TRADEOBS_LOG_DIR": str(tmp_path / "logs"),
        "TRADEOBS_OTLP_TIMEOUT": "1",
        "TRADEOBS_INTERNAL_ERRORS": "raise",
    }
    stderr = tmp_path / "agent.stderr"
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", _OUTAGE_SCRIPT], env=env, stdin=subprocess.PIPE, stderr=err, text=True
        )
    try:
        for n in (1, 2):
            col.stop()
            wait_for(
                lambda n=n: len(_began(system_log, "traces")) >= n,
                f"outage {n} said in the system log",
                procs=(),
            )
            col = start_collector(tmp_path / "collector", "", env=col.env)
            wait_for(
                lambda n=n: len(_system_log(system_log, "traces export to")) >= n,
                f"the end of outage {n} said in the system log",
                procs=(col.proc,),
            )
        # Every signal's outage closed before the exit (the logs' gRPC channel reconnects on its own schedule, after
        # the traces'): an outage still open at the exit is said after the log pipeline stopped, on stderr.
        wait_for(
            lambda: all(
                len(_began(system_log, sig)) == len(_system_log(system_log, f"{sig} export to"))
                for sig in ("traces", "metrics", "logs")
            ),
            "every signal's outage to end before the exit",
            procs=(col.proc,),
        )
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(30) == 0, stderr.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        col.stop()
    began = _began(system_log, "traces")
    ended = _system_log(system_log, "traces export to")
    assert len(began) == 2 and len(ended) == 2, (began, ended)
    target = f"http://{col.otlp_grpc_endpoint}"
    assert all(m.startswith("tradeobs: cannot export traces") and f" to {target} (" in m for m in began), began
    assert all("an outage began" in m for m in began), began
    for m in ended:
        assert re.match(rf"tradeobs: traces export to {re.escape(target)} recovered: the outage that began at ", m), m
        assert re.search(r" began at \S+ lasted ", m), m
        assert re.search(r"\d+ failed export attempt\(s\), \d+ spans kept are being sent now, 0 spans dropped$", m), m
    console = [line for line in stderr.read_text().splitlines() if "outage" in line]
    # The first outage said in the process (any signal), and its end; what is said after the log pipeline stopped at
    # exit (another signal's end, when its kept records went out only then) reaches stderr too, never a new beginning.
    assert [line for line in console if "an outage began" in line] == console[:1], console
    assert console[0].startswith("tradeobs: cannot export ") and " recovered: " in console[1], console
    assert all(line.startswith("tradeobs: ") and " recovered: " in line for line in console[1:]), console
