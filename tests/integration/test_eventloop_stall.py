"""A trading loop blocked for good pages, on a real pipeline; a healthy one pages nothing.

    agent_workload.py alerts (orders, ticks, an asyncio loop watched by tt.event_loop_lag_monitor())
      --OTLP--> otelcol-tradeobs --> Debian Prometheus (the shipped trading rules, time-compressed x10 as in
      test_alerts_real.py, the stall limit too, scrapes and evaluations every second)

The stall limit (``tradeobs:limit_eventloop_stall:seconds``, 30 s shipped) is an age in seconds, compressed like a
``for`` (alerting.speed_up_rules, age_limits): 3 s here. The healthy span and the bound read it from the compressed
files this run loads.

1. Healthy (the limit + HEALTHY_MARGIN seconds, 10x that of rule time): the stall series is there, no trading alert
   is pending or firing at any evaluation, and the stall gauge stays under the limit.
2. The loop blocks for good ({"cmd": "hang_loop"}: a sync call that never returns, run on the loop): the process
   goes on exporting from its other threads. TradingEventLoopStalled must fire (firing in Prometheus, not yet
   notified), at its limit: at the first evaluation that reads a stall over the limit, by Prometheus's own record
   (the stall values over the limit stored before the alert's activeAt: alerting.over_the_limit_before), not by
   the test's clock. Before trading.eventloop.stall the lag monitor recorded nothing while blocked and nothing
   could fire.

Printed: the documented bound (alerting.notify_within) and the time observed, not asserted (a loaded machine).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from .agent_proc import AgentWorkload, unique_service
from .alerting import (
    AGE_LIMITS,
    OVER_THE_LIMIT_BEFORE_FIRING,
    RULES_DIR,
    Timing,
    load_rules,
    notify_within,
    over_the_limit_before,
    prometheus_alerts,
    rfc3339,
    speed_up_rules,
)
from .procs import free_port, prometheus_config, prometheus_query, start_collector, start_prometheus, wait_for

pytestmark = pytest.mark.integration

FACTOR = 10
INTERVAL = 1.0
HEALTHY_MARGIN = 15.0  # healthy for the stall limit + this: past the limit, with exports and evaluations to spare
AGENT_EXPORT_INTERVAL = 1.0  # agent_proc.EXPORT_INTERVAL
RULE_FILES = ("recording.yml", "limits.yml", "trading.yml")
ALERT = "TradingEventLoopStalled"
LIMIT = AGE_LIMITS[ALERT]


def test_a_loop_blocked_for_good_pages_within_its_bound_and_a_healthy_one_pages_nothing(tmp_path: Path) -> None:
    with ExitStack() as stack:
        # No trace store: the test reads metrics only (the collector's trace exporter retries to a closed port).
        collector = stack.enter_context(start_collector(tmp_path / "collector", f"127.0.0.1:{free_port()}"))
        rules = speed_up_rules(
            [RULES_DIR / n for n in RULE_FILES], tmp_path / "rules", FACTOR, INTERVAL, age_limits=[LIMIT]
        )
        alerts, records = load_rules(rules)
        limit = float(records[LIMIT].strip().removeprefix("vector(").removesuffix(")"))
        config = prometheus_config(
            collector.prometheus_exporter_target, collector.metrics_target, rule_files=[str(r) for r in rules]
        )
        prom = stack.enter_context(start_prometheus(tmp_path / "prometheus", config))
        job = unique_service("stall")
        trader = stack.enter_context(AgentWorkload("alerts", collector, tmp_path / "trader", job))

        def alive() -> None:
            collector.proc.check_alive()
            prom.proc.check_alive()
            if trader.popen.poll() is not None:
                pytest.fail(f"agent workload exited with {trader.popen.returncode}" + trader.describe(), pytrace=False)

        stall = f'trading_eventloop_stall_seconds{{job="{job}"}}'
        wait_for(lambda: prometheus_query(prom.url, stall), "the stall series in Prometheus", procs=(prom.proc,))

        # ------------------------------------------------------------------ 1. healthy
        seen: list[float] = []
        until = time.time() + limit + HEALTHY_MARGIN
        while time.time() < until:
            alive()
            active = [(a["labels"]["alertname"], a["state"]) for a in prometheus_alerts(prom.url)]
            assert active == [], f"a healthy service, yet {active}"
            seen += [float(r["value"][1]) for r in prometheus_query(prom.url, stall)]
            time.sleep(1)
        assert seen, "no stall series while the monitor ran"
        assert max(seen) < limit, f"a healthy loop's stall gauge reached {max(seen):g} s, the limit is {limit:g} s"

        # ------------------------------------------------------------------ 2. blocked for good
        timing = Timing(
            scrape_interval=INTERVAL,
            evaluation_interval=INTERVAL,
            agent_export_interval=AGENT_EXPORT_INTERVAL,
            agent_otlp_timeout=10.0,
            metric_expiration=0,
            am_config={"route": {"receiver": "firing", "group_wait": "0s"}},  # firing in Prometheus: no group_wait
        )
        bound = notify_within(ALERT, alerts, records, timing)
        assert bound is not None
        t0 = trader.send({"cmd": "hang_loop"})["t0"]
        while True:
            firing = [
                a
                for a in prometheus_alerts(prom.url)
                if a["labels"]["alertname"] == ALERT and a["labels"].get("job") == job and a["state"] == "firing"
            ]
            if firing:
                took = time.time() - t0
                break
            assert time.time() < t0 + bound + 60, f"{ALERT} not firing {bound + 60:.0f} s after the loop blocked"
            alive()
            time.sleep(0.2)
        (alert,) = firing
        assert alert["labels"]["severity"] == "critical"
        # the lag monitor records nothing while the loop is blocked: the blind spot the stall gauge covers
        lag = f'sum(trading_eventloop_lag_seconds_count{{job="{job}"}})'
        count = prometheus_query(prom.url, lag)[0]["value"][1]
        time.sleep(3 * (AGENT_EXPORT_INTERVAL + INTERVAL))
        assert prometheus_query(prom.url, lag)[0]["value"][1] == count
        assert float(prometheus_query(prom.url, stall)[0]["value"][1]) > float(alert["value"])  # still growing
        print(
            f"\n{ALERT}: limit {limit:g} s, healthy stall at most {max(seen):.3f} s; bound {bound:.1f} s, "
            f"observed {took:.1f} s (time-compressed x{FACTOR}, scrape/eval 1 s)"
        )
        over = over_the_limit_before(prom.url, stall, limit, rfc3339(alert["activeAt"]))
        print(f"stall values over the limit stored when it fired: {over}")
        # Fired at its limit: the stall values over the limit Prometheus stored until the evaluation that fired it
        # (no `for`: activeAt) are the one it read and at most two it could not have read earlier.
        assert over, f"{ALERT} fired with no stall over its limit {limit:g} s stored: {alert}"
        assert len(over) <= OVER_THE_LIMIT_BEFORE_FIRING, (
            f"{ALERT} fired after {len(over)} stall values over its limit {limit:g} s: {over}"
        )
