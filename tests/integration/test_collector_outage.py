"""A collector restart loses nothing the agent was asked to send (issue 16), measured with real processes.

The agent (in this process, the real OTLP/gRPC exporters) keeps trading while our collector is killed with
SIGKILL, stays down (10 s, and 60 s), and is started again with the same ports and storage; every order trace
reaches Jaeger, every log record reaches the collector's log file, and the agent counted no drop (a failed
metrics export is not a drop: its points are cumulative). How soon delivery resumes after the restart, and the
5-minute outage, are measured by ``benchmarks/collector_outage.py``.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest

import tradeobs_agent
from tradeobs_agent import LogOptions, OtlpOptions

from .procs import jaeger_search, read_otlp_json_logs, start_collector, start_jaeger, wait_for

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
