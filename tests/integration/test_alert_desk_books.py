"""Risk alerts name the strategy and venue, on a real pipeline: one process trading several books.

    agent_workload.py desk --OTLP--> otelcol-tradeobs (metrics) --> Prometheus (compose's scrape config, every
    shipped rule file time-compressed x10 as in test_alerts_real.py) --> Alertmanager (render.sh, its route
    timers / 10) --> webhook

One process, three books (``DESK_BOOKS``: strategy ``mm`` on venues X and Y, ``arb`` on X), each trading twice a
second. Healthy for HEALTHY_SECONDS: no trading alert for the service, pending included. Then, at once:

* an order of ``arb`` on X is filled 15 of 10 (an overfill): ``TradingOrderOverfilled`` for ``arb`` on X, its
  summary naming the symbol, and no overfill alert for ``mm``. Before, the only count was
  ``tradeobs_agent_measurements_invalid_total{reason="overfill"}``, per instance: the alert named the process.
* ``mm`` counts a breach on Y: ``TradingRiskLimitBreached`` for ``mm`` on Y only (the counter had no venue).
* the venue refuses 30 orders of ``mm`` on X within 2 s (20 s of rule time; a session drop): ``TradingOrderRejectBurst``
  for ``mm`` on X, notified through the critical route, then resolved once the burst is out of its window. Before,
  ``TradingOrderRejectRateHigh`` alone (5 minutes and a `for` of 5) could see a burst, and one shorter than that
  paged nobody.

No wall-clock time is asserted; waits are bounded only to end a broken run.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from .agent_proc import AgentWorkload, unique_service
from .agent_workload import DESK_BOOKS
from .alerting import (
    RULES_DIR,
    Timing,
    Webhook,
    load_rules,
    notify_within,
    prometheus_alerts,
    speed_up_rules,
    start_alertmanager,
    start_compose_like_prometheus,
    wait_notified,
)
from .procs import READY_TIMEOUT, free_port, http_ok, prometheus_query, start_collector, wait_for

pytestmark = pytest.mark.integration

FACTOR = 10
INTERVAL = 1.0
AGENT_EXPORT_INTERVAL = 1.0  # agent_proc.EXPORT_INTERVAL
HEALTHY_SECONDS = 15.0
NAMED = ("TradingOrderOverfilled", "TradingRiskLimitBreached", "TradingOrderRejectBurst")
BURST = 30


def test_overfill_breach_and_reject_burst_alerts_name_the_strategy_and_venue(tmp_path: Path) -> None:
    with ExitStack() as stack:
        webhook = Webhook()
        stack.callback(webhook.close)
        # Metrics only: the order traces go to a port nothing listens on (see test_alert_unacked.py).
        collector = stack.enter_context(start_collector(tmp_path / "collector", f"127.0.0.1:{free_port()}"))
        am_addr, am_config, am = start_alertmanager(tmp_path, webhook.url, factor=FACTOR)
        stack.callback(am.stop)
        rule_files = speed_up_rules(sorted(RULES_DIR.glob("*.yml")), tmp_path / "rules", FACTOR, INTERVAL)
        prom, _ = start_compose_like_prometheus(stack, tmp_path, collector, am_addr, rule_files, INTERVAL)
        running = [collector.proc, am, prom.proc]
        wait_for(
            lambda: http_ok(f"http://{am_addr}/-/ready"), "Alertmanager ready", READY_TIMEOUT, procs=tuple(running)
        )
        desk = stack.enter_context(AgentWorkload("desk", collector, tmp_path / "desk", unique_service("desk")))
        job = desk.service_name

        def alive() -> None:
            for p in running:
                p.check_alive()
            if desk.popen.poll() is not None:
                pytest.fail(f"agent workload exited with {desk.popen.returncode}" + desk.describe(), pytrace=False)

        def ours(state: str | None = None) -> list[dict[str, Any]]:
            return [
                a
                for a in prometheus_alerts(prom.url)
                if a["labels"].get("job") == job
                and a["labels"]["alertname"].startswith("Trading")
                and (state is None or a["state"] == state)
            ]

        def books_reporting() -> bool:
            got = prometheus_query(prom.url, f'trading_orders_submitted_total{{job="{job}"}}')
            return {(r["metric"]["strategy"], r["metric"]["venue"]) for r in got} == set(DESK_BOOKS)

        wait_for(books_reporting, "the orders of every book in Prometheus", procs=tuple(running))

        # ------------------------------------------------------------------ healthy
        healthy_until = time.time() + HEALTHY_SECONDS
        while time.time() < healthy_until:
            alive()
            assert ours() == [], f"healthy books, yet {ours()}"
            time.sleep(1)

        # ------------------------------------------------------------------ the faults, one book each
        for cmd in (
            {"cmd": "overfill", "strategy": "arb", "venue": "X", "symbol": "MSFT"},
            {"cmd": "breach", "strategy": "mm", "venue": "Y", "limit": "position", "symbol": "AAPL"},
        ):
            desk.send(cmd)
        sent = desk.send(
            {"cmd": "reject_burst", "strategy": "mm", "venue": "X", "n": BURST, "seconds": 2.0, "reason": "gone"}
        )
        fast_alerts, fast_records = load_rules(rule_files)
        timing = Timing(
            scrape_interval=INTERVAL,
            evaluation_interval=INTERVAL,
            agent_export_interval=AGENT_EXPORT_INTERVAL,
            agent_otlp_timeout=10.0,
            metric_expiration=0,
            am_config=am_config,
        )
        bound = notify_within("TradingOrderRejectBurst", fast_alerts, fast_records, timing)
        assert bound is not None
        at, burst = wait_notified(webhook, "TradingOrderRejectBurst", sent["t0"] + bound + 60, alive, job=job)
        print(f"\nTradingOrderRejectBurst: bound {bound:.1f} s, notified {at - sent['t0']:.1f} s after the burst began")
        assert (burst["labels"]["strategy"], burst["labels"]["venue"], burst["labels"]["severity"]) == (
            "mm",
            "X",
            "critical",
        ), burst
        assert "gone at venue" in burst["annotations"]["summary"], burst["annotations"]

        def all_named() -> dict[str, set[tuple[str, str]]] | None:
            got: dict[str, set[tuple[str, str]]] = {}
            for a in ours("firing"):
                lab = a["labels"]
                if lab["alertname"] in NAMED[:2]:
                    got.setdefault(lab["alertname"], set()).add((lab.get("strategy", ""), lab.get("venue", "")))
            return got if len(got) == 2 else None

        named = wait_for(all_named, "the overfill and breach alerts", 120, procs=tuple(running))
        assert named == {
            "TradingOrderOverfilled": {("arb", "X")},
            "TradingRiskLimitBreached": {("mm", "Y")},
        }, named
        (over,) = [a for a in ours("firing") if a["labels"]["alertname"] == "TradingOrderOverfilled"]
        assert "(strategy arb on X: MSFT)" in over["annotations"]["summary"], over["annotations"]
        bursts = {
            (a["labels"]["strategy"], a["labels"]["venue"])
            for _, a in webhook.notifications()
            if a["labels"]["alertname"] == "TradingOrderRejectBurst"
        }
        assert bursts == {("mm", "X")}, bursts

        # ------------------------------------------------------------------ the burst over: it resolves
        def resolved() -> bool:
            alive()
            return any(
                a["labels"]["alertname"] == "TradingOrderRejectBurst" and a["labels"].get("job") == job
                for _, a in webhook.notifications(status="resolved")
            )

        wait_for(resolved, "TradingOrderRejectBurst resolved", 120, procs=tuple(running))
        assert [a for a in ours() if a["labels"]["alertname"] == "TradingOrderRejectBurst"] == []
