"""A crashed process's P&L stops counting beside its successor's, on the real pipeline:

    two agent processes of one service --OTLP--> otelcol-tradeobs (collector/otel-collector.yaml)
        --> Prometheus with compose's recording rules, limits and trading alerts (not time-compressed)

The first process reports a book at -600 and is SIGKILLed (no clean-stop marker); its successor, a new
``service.instance.id``, reports the same book, at -700 by now (so the total says whose P&L it holds: -600 the dead
one's alone, -1300 both, -700 the successor's alone). The collector serves the dead process's last values for its
``metric_expiration`` (5 minutes) and ``last_over_time`` kept them 5 more: the service's recorded P&L read both
books for 10 minutes after each crash and restart, and ``TradingPnLLossLimitBreached`` (limit 1000) paged. Now the
dead agent's count of metric exports stops rising, and once its successor (a new instance) has exported twice in
30 s the dead one is gone from the totals, while the collector still serves its series: that is what this test
checks (on the old rules the total was -1300 until the collector dropped them, and 5 minutes beyond).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests._util import prom_samples

from .agent_proc import AgentWorkload, unique_service
from .alerting import RULES_DIR
from .procs import prometheus_config, prometheus_query, start_collector, start_jaeger, start_prometheus, wait_for

pytestmark = pytest.mark.integration

RULE_FILES = ("recording.yml", "limits.yml", "trading.yml")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    with ExitStack() as es:
        jaeger = es.enter_context(start_jaeger(tmp_path / "jaeger"))
        collector = es.enter_context(start_collector(tmp_path / "collector", jaeger.otlp_grpc_endpoint))
        config = prometheus_config(
            collector.prometheus_exporter_target,
            collector.metrics_target,
            rule_files=[str(RULES_DIR / n) for n in RULE_FILES],
        )
        prom = es.enter_context(start_prometheus(tmp_path / "prometheus", config))
        yield collector, prom


def _in_collector(collector: Any, job: str) -> set[str]:
    """The instances of ``job`` whose target_info the collector's exporter serves now."""
    samples = prom_samples(f"{collector.prometheus_exporter_url}/metrics")
    return {s.labels["instance"] for s in samples.get("target_info", []) if s.labels.get("job") == job}


def test_a_crashed_instance_leaves_the_desk_pnl_while_the_collector_still_serves_it(
    tmp_path: Path, stack: tuple[Any, Any]
) -> None:
    collector, prom = stack
    job = unique_service("crash")
    procs = (collector.proc, prom.proc)

    def total() -> float | None:
        got = prometheus_query(prom.url, f'job:trading_pnl_total:sum{{job="{job}"}}')
        return float(got[0]["value"][1]) if got else None

    with ExitStack() as es:
        old = es.enter_context(AgentWorkload("alerts", collector, tmp_path / "old", job))
        old.send({"cmd": "pnl", "realized": -600})
        wait_for(lambda: total() == -600 or None, "the first process's P&L recorded", 120, procs=procs)
        (old_instance,) = _in_collector(collector, job)

        os.kill(old.popen.pid, signal.SIGKILL)  # no shutdown, no stop marker: a crash
        assert old.popen.wait(30) == -signal.SIGKILL
        killed = time.monotonic()
        new = es.enter_context(AgentWorkload("alerts", collector, tmp_path / "new", job))
        new.send({"cmd": "pnl", "realized": -700})  # the successor reports the same book

        def only_the_successor_counts() -> float | None:
            served = _in_collector(collector, job)
            if old_instance not in served:
                # the collector dropped it (metric_expiration): leaving it out of the totals now proves nothing
                pytest.fail(f"the crashed instance expired from the collector while the desk P&L read {total()}")
            if len(served) != 2:
                return None  # the successor's first export is still to come
            return time.monotonic() - killed if total() == -700 else None

        after = wait_for(only_the_successor_counts, "the desk P&L without the crashed instance", 400, procs=procs)
        print(f"the crashed instance stopped counting {after:.0f} s after its SIGKILL")
        gone = prometheus_query(prom.url, f'job_instance:tradeobs_agent:gone{{job="{job}"}}')
        assert [g["metric"]["instance"] for g in gone] == [old_instance], gone
        # its successor took the book over: not a crash to warn about (TradingInstanceCrashed), nothing held
        assert prometheus_query(prom.url, f'job_instance:tradeobs_agent:crashed{{job="{job}"}}') == []
        # the double count lasted about 30 s, less than the loss limit alert's `for: 1m`: it never fired
        firing = f'ALERTS{{job="{job}", alertname="TradingPnLLossLimitBreached", alertstate="firing"}}'
        assert prometheus_query(prom.url, firing) == []


def test_a_collector_outage_leaves_every_live_instance_in_the_desk_pnl(tmp_path: Path, stack: tuple[Any, Any]) -> None:
    """What must not read as a crash: the collector SIGKILLed for 40 s and started again (its exporter empty, each
    agent exporting again when it answers), with a new instance of the service exporting from then on (a successor
    to no one). The export counts of the live instances have a gap where the value of 30 s before is looked up: no
    instance is ever gone, and the desk P&L is every instance's throughout (last_over_time over the outage)."""
    collector, prom = stack
    job = unique_service("outage")
    seen: set[float | None] = set()

    def total() -> float | None:
        got = prometheus_query(prom.url, f'job:trading_pnl_total:sum{{job="{job}"}}')
        return float(got[0]["value"][1]) if got else None

    def watch(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            seen.add(total())
            time.sleep(1)

    with ExitStack() as es:
        a = es.enter_context(AgentWorkload("alerts", collector, tmp_path / "a", job))
        a.send({"cmd": "pnl", "realized": -300})
        b = es.enter_context(AgentWorkload("alerts", collector, tmp_path / "b", job))
        b.send({"cmd": "pnl", "realized": -500})
        procs = (collector.proc, prom.proc)
        wait_for(lambda: total() == -800 or None, "both instances' P&L recorded", 120, procs=procs)
        watch(35)  # long enough for a comparison over 30 s before the outage
        os.kill(collector.proc.pid, signal.SIGKILL)
        collector.proc.popen.wait(30)
        watch(40)
        back = es.enter_context(start_collector(tmp_path / "collector", "", env=collector.env))
        c = es.enter_context(AgentWorkload("alerts", back, tmp_path / "c", job))
        c.send({"cmd": "pnl", "realized": -100})
        wait_for(lambda: total() == -900 or None, "the new instance's P&L recorded", 120, procs=(back.proc, prom.proc))
        watch(45)  # past 30 s of comparisons after the collector came back, the new instance exporting meanwhile
        assert seen == {-800.0, -900.0}, seen
        gone = prometheus_query(prom.url, f'count_over_time(job_instance:tradeobs_agent:gone{{job="{job}"}}[10m])')
        assert gone == [], gone
