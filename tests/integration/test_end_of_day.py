"""The dashboard's count of the day's orders is the day's, across a clean stop, a crash and a collector restart:

    three processes of one service, one after the other (tests/integration/agent_workload.py "tiers": orders on
    command, so what each one sent, filled and had rejected is known) --OTLP--> otelcol-tradeobs
    (collector/otel-collector.yaml) --> Debian Prometheus --> the trading overview's "Orders (time range)" stat,
    run as Grafana runs it (tests/integration/grafana_eval.py) over the trading day: from its start to now

The first process fills 17 orders before the day starts and 17 after, and stops cleanly; the collector is SIGKILLed
and started again; the second process fills 34 and is SIGKILLed once they are exported; the third fills 17. The day's
count is 68. The stat (then "Orders filled (time range)", filled orders only) read ``sum(increase(...[$__range]))``:
a restarted process is a new ``instance``, a new series whose first sample (an export and a scrape after it starts
trading) already holds its first fills, and increase() counts only from there; here, where each process fills in
one burst, it read 22.7 and 25.6 in two runs (about the first process's 17, extrapolated), none of the 51 the later
ones filled. Its range query's last point also lay up to a step (15 s) before the range's end. Now it counts each
series' last value less its value before the day's start (none for a process that started during the day), at the
range's end, for sent, filled, rejected and cancelled orders: what the processes themselves counted.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from .agent_proc import AgentWorkload, unique_service
from .alerting import RULES_DIR
from .grafana_eval import DATASOURCES, GRAFANA, Evaluator
from .procs import (
    CollectorProc,
    PrometheusProc,
    prometheus_config,
    prometheus_query,
    start_collector,
    start_jaeger,
    start_prometheus,
    wait_for,
)

pytestmark = pytest.mark.integration

PANEL = "Orders (time range): sent, filled, rejected, cancelled"
# agent_workload.TIER_KINDS: of every 20 orders, 18 are sent, 17 fill (15 at once, 1 slowly, 1 after an error), 2 are
# refused at risk (never sent), 1 at the venue; none is cancelled.
FILLED_PER_20 = 17
PER_20 = {"sent": 18, "filled": FILLED_PER_20, "rejected": 3, "cancelled": 0}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with ExitStack() as es:
        jaeger = es.enter_context(start_jaeger(tmp_path / "jaeger"))
        collector = start_collector(tmp_path / "collector", jaeger.otlp_grpc_endpoint)
        parts: dict[str, Any] = {"collector": collector, "jaeger": jaeger}
        es.callback(lambda: parts["collector"].stop())
        # the recording rules: the Total P&L stat reads job:trading_pnl_total:sum, what the loss limit alert reads
        config = prometheus_config(
            collector.prometheus_exporter_target,
            collector.metrics_target,
            rule_files=[str(RULES_DIR / "recording.yml")],
        )
        parts["prometheus"] = es.enter_context(start_prometheus(tmp_path / "prometheus", config))
        yield parts


def _filled(prom: PrometheusProc, job: str, instance: str) -> float | None:
    """The fills Prometheus holds for one process (its last value in the last 15 minutes)."""
    got = prometheus_query(
        prom.url, f'sum(last_over_time(trading_orders_filled_total{{job="{job}",instance="{instance}"}}[15m]))'
    )
    return float(got[0]["value"][1]) if got else None


def _orders(w: AgentWorkload, n: int, prefix: str) -> None:
    answer = w.send({"cmd": "orders", "n": n, "rate": 200, "slow_s": 0.2, "prefix": prefix}, timeout=120)
    assert answer["flushed"], answer


def _stat(ev: Evaluator, dash: dict[str, Any], job: str, start: float, end: float) -> dict[str, float | None]:
    """The stat's values over [start, end], as Grafana computes them (each target's lastNotNull, by its legend or
    refId); None: "No data"."""
    variables = ev.resolve_variables(dash, {"job": job}, start, end)
    values: dict[str, float | None] = {}
    for q in ev.queries(dash, variables, start, end):
        if q.panel != PANEL:
            continue
        series = ev.run(q)
        print(q.describe(), series)
        name = q.target.get("legendFormat") or q.ref
        if not series:
            values[name] = None
            continue
        assert len(series) == 1, (q.describe(), series)
        if "value" in series[0]:
            values[name] = round(float(series[0]["value"][1]), 6)
        else:
            values[name] = next(round(float(v), 6) for _, v in reversed(series[0]["values"]) if math.isfinite(float(v)))
    assert values, f"no panel {PANEL!r}"
    return values


def test_the_days_filled_orders_on_the_dashboard_count_every_process_of_the_day(
    tmp_path: Path, stack: dict[str, Any]
) -> None:
    prom: PrometheusProc = stack["prometheus"]
    job = unique_service("eod")
    dash = json.loads((GRAFANA / "dashboards" / "trading-overview.json").read_text())
    ev = Evaluator(prom.url, stack["jaeger"].query_url, DATASOURCES)

    def landed(instance: str, filled: float) -> None:
        wait_for(
            lambda: _filled(prom, job, instance) == filled or None,
            f"{instance}'s {filled:g} fills in Prometheus",
            120,
            procs=(stack["collector"].proc, prom.proc),
        )

    collector: CollectorProc = stack["collector"]
    a = AgentWorkload("tiers", collector, tmp_path / "a", job)
    a_id = a.ready["service_instance_id"]
    try:
        _orders(a, 20, "yesterday")  # before the day starts: not the day's
        landed(a_id, FILLED_PER_20)
        time.sleep(2)  # a sample of it strictly before the day's start
        day_start = time.time()
        _orders(a, 20, "a")
        landed(a_id, 2 * FILLED_PER_20)
    finally:
        assert a.stop() == 0, a.describe()  # a clean stop

    collector.proc.popen.send_signal(signal.SIGKILL)
    collector.proc.popen.wait(30)
    collector.proc.stop()
    collector = stack["collector"] = start_collector(tmp_path / "collector", "", env=collector.env)

    with AgentWorkload("tiers", collector, tmp_path / "b", job) as b:
        _orders(b, 40, "b")
        landed(b.ready["service_instance_id"], 2 * FILLED_PER_20)
        os.kill(b.popen.pid, signal.SIGKILL)  # a crash, after its fills were exported
        b.popen.wait(30)

    with AgentWorkload("tiers", collector, tmp_path / "c", job) as c:
        _orders(c, 20, "c")
        landed(c.ready["service_instance_id"], FILLED_PER_20)
        end = time.time()
        day = _stat(ev, dash, job, day_start, end)
        counted = {k: 4 * n for k, n in PER_20.items()}  # 20 + 40 + 20 orders in the day
        print(f"\nthe day's orders: the stat {day}, the processes {counted}")
        assert day == counted
        # before the day started only the first 20 orders: the range is the day's, not every count Prometheus has
        assert _stat(ev, dash, job, day_start - 600, day_start) == PER_20


def test_the_total_pnl_stat_is_the_pnl_at_the_ranges_end(tmp_path: Path, stack: dict[str, Any]) -> None:
    """The end of day's P&L on the dashboard is the service's last report, not the one of up to a step before.

    The "Total P&L" stat was a range query: its value, the last point, lies on the last multiple of the panel's step
    at or before the range's end, and the step of that 3-column stat over the default 6 hours is 120 s. At the
    end of a day on the demo it read 1,236.7 while the live page read -1,719.5 (the demo's marks move every 0.1 s).
    Here the book goes from -600 to -700 just after a step began: the stat read -600 for up to two minutes."""
    prom: PrometheusProc = stack["prometheus"]
    job = unique_service("eodpnl")
    dash = json.loads((GRAFANA / "dashboards" / "trading-overview.json").read_text())
    ev = Evaluator(prom.url, stack["jaeger"].query_url, DATASOURCES)
    (panel,) = (p for p in dash["panels"] if p["title"] == "Total P&L")
    procs = (stack["collector"].proc, prom.proc)

    def reported() -> float | None:
        # the service's total as recorded (the stat's series), once the rules have evaluated the new report
        got = prometheus_query(prom.url, f'job:trading_pnl_total:sum{{job="{job}"}}')
        return float(got[0]["value"][1]) if got else None

    def stat(end: float) -> float | None:
        start = end - 6 * 3600
        variables = ev.resolve_variables(dash, {"job": job}, start, end)
        (q,) = (q for q in ev.queries(dash, variables, start, end) if q.panel == "Total P&L")
        series = ev.run(q)
        if not series:
            return None
        if "value" in series[0]:
            return float(series[0]["value"][1])
        return next(float(v) for _, v in reversed(series[0]["values"]) if math.isfinite(float(v)))

    with AgentWorkload("alerts", stack["collector"], tmp_path / "svc", job) as w:
        book = -600.0
        w.send({"cmd": "pnl", "realized": book})
        wait_for(lambda: reported() == book or None, "the first P&L in Prometheus", 120, procs=procs)
        for _ in range(5):  # a try whose change and read fall in different steps proves nothing: try again
            step = ev.step(panel, time.time() - 6 * 3600, time.time())
            wait_for(lambda: time.time() % step < step / 4 or None, "the start of a step", step + 30)  # noqa: B023
            began = time.time() // step
            book -= 100
            w.send({"cmd": "pnl", "realized": book})
            wait_for(lambda: reported() == book or None, f"the P&L {book:g} in Prometheus", 120, procs=procs)  # noqa: B023
            end = time.time()
            if end // step == began:
                break
        else:
            pytest.fail("five tries, and never a change and its read within one step of the panel")
        print(f"\nTotal P&L: reported {book:g}, the stat {stat(end)} (step {step:g} s)")
        assert stat(end) == book
