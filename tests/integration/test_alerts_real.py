"""Every shipped rule file on a real pipeline, and real faults that page.

    tradeobs demo + agent processes --OTLP--> otelcol-tradeobs --> Jaeger (trace store)
    Prometheus (compose's scrape config and every rule file, time-compressed x10; scrapes the
    collector's two jobs, itself, Alertmanager and a node-exporter)
      --> Alertmanager (compose's config rendered by render.sh) --> a webhook in this test

1. Healthy run (HEALTHY_SECONDS, i.e. HEALTHY_SECONDS x 10 of rule time): every rule evaluates without
   error (/api/v1/rules and prometheus_rule_evaluation_failures_total), the pipeline recording rules
   have series, and nothing fires or is notified but the Watchdog. (The dashboards' queries run on real
   data in tests/integration/test_dashboards.py.)
2. Faults, caused for real, at the same time: the trace store stops (its queue grows), a scrape target
   dies, a trading service's orders get rejected and its fills slow down, its asyncio loop blocks and its
   feed loses messages, another engages its kill switch, uses up a risk limit and counts a breach, a third
   exports its traces to a dead endpoint. Then the collector stops. Each alert must reach
   the webhook, through the Alertmanager route whose group_wait the time docs/alerts.md states is computed
   with (alerting.notify_within, from this run's settings). Notifications carry the absolute runbook_url
   and not its base as a label.
3. The Watchdog heartbeat reached the dead-man's-switch URL, again and again, from a route that re-sends it at
   each group_interval (repeat_interval below group_interval: docs/alerts.md, "Watchdog heartbeat").

No wall-clock time is asserted (a loaded CI machine makes any reading late; a wait's limit only bounds a broken
run). Printed: the table of the documented bound vs the time observed, and the Watchdog intervals: figures.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from .agent_proc import AgentWorkload, start_demo, unique_service
from .alerting import (
    RULES_DIR,
    Timing,
    Webhook,
    load_rules,
    notify_within,
    prometheus_alerts,
    route_group_wait,
    route_of,
    seconds,
    speed_up_rules,
    start_alertmanager,
    start_compose_like_prometheus,
    wait_notified,
)
from .procs import (
    READY_TIMEOUT,
    ManagedProcess,
    find_binary,
    free_port,
    http_get,
    http_ok,
    prometheus_query,
    start_collector,
    start_jaeger,
    wait_for,
)

pytestmark = pytest.mark.integration

FACTOR = 10  # rule durations / 10
INTERVAL = 1.0  # scrape and evaluation interval (s)
HEALTHY_SECONDS = 150
RUNBOOK = "https://runbooks.example.test/tradeobs/docs/runbook.md"
FILL_LATENCY = 1.5  # the slow fills of the latency fault (s)
AGENT_EXPORT_INTERVAL = 1.0  # agent_proc.EXPORT_INTERVAL
AGENT_OTLP_TIMEOUT = 10.0  # the agent's default TRADEOBS_OTLP_TIMEOUT


def _query(url: str, promql: str) -> list[dict[str, Any]]:
    return prometheus_query(url, promql)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    w = Webhook()
    yield w
    w.close()


def test_shipped_alerting_on_a_real_pipeline(tmp_path: Path, webhook: Webhook) -> None:
    with ExitStack() as stack:
        # ------------------------------------------------------------------ the stack
        jaeger = stack.enter_context(start_jaeger(tmp_path / "jaeger"))
        collector = stack.enter_context(start_collector(tmp_path / "collector", jaeger.otlp_grpc_endpoint))

        node_addr = f"127.0.0.1:{free_port()}"
        (tmp_path / "textfile").mkdir()
        node = ManagedProcess(
            "node-exporter",
            [
                find_binary("prometheus-node-exporter"),
                f"--web.listen-address={node_addr}",
                # memory only: disk alerts on this shared host's disk would be about the host, not the pipeline
                "--collector.disable-defaults",
                "--collector.meminfo",
                "--collector.textfile",
                f"--collector.textfile.directory={tmp_path / 'textfile'}",
            ],
            {},
            tmp_path,
        )
        stack.callback(node.stop)

        am_addr, am_config, am = start_alertmanager(tmp_path, webhook.url)
        stack.callback(am.stop)

        rule_files = speed_up_rules(sorted(RULES_DIR.glob("*.yml")), tmp_path / "rules", FACTOR, INTERVAL)
        prom, targets = start_compose_like_prometheus(
            stack,
            tmp_path,
            collector,
            am_addr,
            rule_files,
            INTERVAL,
            extra_targets={"node": node_addr},
            env={"TRADEOBS_RUNBOOK_URL": RUNBOOK},
        )
        running = [collector.proc, jaeger.proc, node, am, prom.proc]
        wait_for(
            lambda: http_ok(f"http://{am_addr}/-/ready"), "Alertmanager ready", READY_TIMEOUT, procs=tuple(running)
        )

        # The demo streams market data (staleness, the live view) but places no orders: its random-walk
        # P&L swings by thousands within minutes (NVDA -12k in a 3-minute run) and would breach the
        # shipped loss limit (limits.yml, 1000): a correct TradingPnLLossLimitBreached, not a pipeline
        # fault. The order flow comes from the agent processes below, which report no P&L.
        demo_job = unique_service("demo")
        demo, _ = start_demo(collector, tmp_path / "demo", demo_job, orders_hz=0)
        stack.callback(demo.stop)
        running.append(demo)
        trader = stack.enter_context(AgentWorkload("alerts", collector, tmp_path / "trader", unique_service("trader")))
        kill = stack.enter_context(AgentWorkload("alerts", collector, tmp_path / "kill", unique_service("kill")))
        workloads = [trader, kill]

        def alive() -> None:
            for p in running:
                p.check_alive()
            for w in workloads:
                if w.popen.poll() is not None:
                    pytest.fail(f"agent workload exited with {w.popen.returncode}" + w.describe(), pytrace=False)

        def up() -> bool:
            got = {r["metric"]["job"]: r["value"][1] for r in _query(prom.url, "up")}
            jobs_ok = got == {job: "1" for job in targets}
            data = _query(prom.url, f'job:trading_orders_submitted:rate5m{{job="{trader.service_name}"}}')
            ticks = _query(prom.url, f'trading_marketdata_staleness_seconds{{job="{demo_job}"}}')
            return jobs_ok and len(data) == 1 and len(ticks) > 0

        wait_for(up, "every target up and trading data in Prometheus", procs=tuple(running))

        # ------------------------------------------------------------------ 1. healthy
        healthy_until = time.time() + HEALTHY_SECONDS
        while time.time() < healthy_until:
            alive()
            time.sleep(1)

        groups = json.loads(http_get(f"{prom.url}/api/v1/rules")[1])["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        shipped_alerts, shipped_records = load_rules(sorted(RULES_DIR.glob("*.yml")))
        assert len(rules) == len(shipped_alerts) + len(shipped_records), "not every shipped rule is loaded"
        broken = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
        assert broken == {}, f"rules failing on real data: {broken}"
        failures = _query(prom.url, 'sum(prometheus_rule_evaluation_failures_total{job="prometheus"})')
        assert failures and float(failures[0]["value"][1]) == 0, failures
        # the pipeline recording rules have real series to work on (the refusal counters share labels)
        for record in (
            "job_receiver:otelcol_receiver_refused:rate5m",
            "job_exporter:otelcol_exporter_sent:rate2m",
            "job_exporter:otelcol_exporter_queue_utilization:ratio",
            "job:trading_order_reject_ratio:rate5m",
            "job:trading_order_submit_to_fill_latency_seconds:p99_5m",
        ):
            assert _query(prom.url, record), f"{record} has no series on the real pipeline"
        firing = [a["labels"]["alertname"] for a in prometheus_alerts(prom.url) if a["state"] == "firing"]
        assert firing == ["Watchdog"], f"healthy pipeline, yet firing: {firing}"
        assert webhook.notifications("/alerts") == [], webhook.notifications("/alerts")
        assert webhook.notifications("/deadman"), "no Watchdog heartbeat"

        # ------------------------------------------------------------------ 2. faults
        timing = Timing(
            scrape_interval=INTERVAL,
            evaluation_interval=INTERVAL,
            agent_export_interval=AGENT_EXPORT_INTERVAL,
            agent_otlp_timeout=AGENT_OTLP_TIMEOUT,
            metric_expiration=0,  # TradingServiceTelemetryMissing is not provoked here
            am_config=am_config,
        )
        fast_alerts, fast_records = load_rules(rule_files)

        def bound(name: str) -> float:
            b = notify_within(name, fast_alerts, fast_records, timing)
            assert b is not None, name
            return b

        expected: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        t = time.time()
        running.remove(jaeger.proc)
        jaeger.stop()  # the trace store goes down; the demo and the agents keep sending spans
        expected[("OtelCollectorExportStalled", (("exporter", "otlp_grpc/traces"),))] = t
        t = time.time()
        running.remove(node)
        node.stop()
        expected[("TargetDown", (("job", "node"),))] = t
        t = trader.send({"cmd": "trade", "reject_ratio": 0.5, "fill_latency": FILL_LATENCY})["t0"]
        expected[("TradingOrderRejectRateHigh", (("job", trader.service_name),))] = t
        expected[("TradingFillLatencyP99High", (("job", trader.service_name),))] = t + FILL_LATENCY
        t = kill.send({"cmd": "kill_switch", "engaged": True})["t0"]
        expected[("TradingKillSwitchEngaged", (("job", kill.service_name),))] = t
        # A risk limit used up and a breach (the counter's first sample: a new series), on the same service;
        # the trader's asyncio loop blocked 0.3 s each second, its MSFT feed losing a message at each tick.
        t = kill.send({"cmd": "limit", "limit": "position", "ratio": 1.0})["t0"]
        expected[("TradingRiskLimitReached", (("job", kill.service_name), ("limit", "position")))] = t
        t = kill.send({"cmd": "breach", "limit": "position", "symbol": "AAPL"})["t0"]
        expected[("TradingRiskLimitBreached", (("job", kill.service_name), ("limit", "position")))] = t
        t = trader.send({"cmd": "block_loop", "seconds": 0.3})["t0"]
        expected[("TradingEventLoopLagHigh", (("job", trader.service_name),))] = t
        t = trader.send({"cmd": "gaps", "skip": 1})["t0"]
        expected[("TradingMarketDataGaps", (("job", trader.service_name),))] = t
        exp_job = unique_service("exports")
        t = time.time()
        failing = stack.enter_context(
            AgentWorkload(
                "alerts",
                collector,
                tmp_path / "failing",
                exp_job,
                # The rules are compressed, the agent is not: TradeobsAgentExportFailures holds while a
                # failure is counted in every window ([1m] / 10 = 6 s here), and by default the agent
                # counts one every ~12 s (an export retried for its 10 s timeout, then a 5 s backoff).
                # Without the retry buffer and with a 1 s timeout, every batch (one a second) fails on
                # its own: a failure every 1-2 s, as the shipped window sees the default pace.
                extra_env={
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{free_port()}",
                    "TRADEOBS_OTLP_TRACES_TIMEOUT": "1",
                    "TRADEOBS_OTLP_RETRY_ITEMS": "0",
                },
            )
        )
        expected[("TradeobsAgentExportFailures", (("job", exp_job), ("signal", "traces")))] = t
        workloads.append(failing)

        results: dict[str, tuple[float, float]] = {}
        routes: dict[str, tuple[str, set[str]]] = {}  # the receiver the formula's group_wait is of, the ones that sent
        for (name, labels), t0 in expected.items():
            b = bound(name)
            at, alert = wait_notified(webhook, name, t0 + b + 60, alive, **dict(labels))
            results[f"{name} {dict(labels)}"] = (b, at - t0)
            routes[f"{name} {dict(labels)}"] = (
                route_of(am_config, alert["labels"])[1],
                webhook.receivers(name, **dict(labels)),
            )

        t = time.time()
        running.remove(collector.proc)
        collector.stop()
        for job in ("otelcol", "otelcol-exporter"):
            b = bound("OtelCollectorDown")
            at, alert = wait_notified(webhook, "OtelCollectorDown", t + b + 60, alive, job=job)
            results[f"OtelCollectorDown {{'job': '{job}'}}"] = (b, at - t)
            routes[f"OtelCollectorDown {{'job': '{job}'}}"] = (
                route_of(am_config, alert["labels"])[1],
                webhook.receivers("OtelCollectorDown", job=job),
            )
        failing.stop()

        # ------------------------------------------------------------------ what it measured
        print("\nalert (time-compressed x10, scrape/eval 1 s)           bound s   observed s")
        for what, (b, took) in results.items():
            print(f"  {what:<70} {b:7.1f}  {took:9.1f}")
        beats = [at for at, a in webhook.notifications("/deadman") if a["labels"]["alertname"] == "Watchdog"]
        gaps = [b - a for a, b in itertools.pairwise(beats)]
        print(f"Watchdog heartbeats: {len(beats)}, intervals (s): {[round(g, 1) for g in gaps]}")

        # Each came through the route whose group_wait the documented time is computed with (and only that one).
        misrouted = {w: r for w, r in routes.items() if r[1] != {r[0]}}
        assert misrouted == {}, f"notified by another receiver than the route docs/alerts.md counts: {misrouted}"

        # notifications: absolute runbook links, no runbook_base_url label, nothing unexpected
        notified = webhook.notifications("/alerts")
        for _, alert in notified:
            name = alert["labels"]["alertname"]
            assert alert["annotations"]["runbook_url"] == f"{RUNBOOK}#{name.lower()}", alert["annotations"]
            assert "runbook_base_url" not in alert["labels"]
        allowed = {n for n, _ in expected} | {"OtelCollectorDown", "TradeobsAgentDroppingItems"}
        unexpected = {a["labels"]["alertname"] for _, a in notified} - allowed
        assert unexpected == set(), f"alerts nobody provoked: {unexpected}"

        # ------------------------------------------------------------------ 3. the heartbeat
        # Alertmanager re-sends an unchanged group at a group_interval tick only when its last send is older than
        # repeat_interval: the heartbeat comes every group_interval only with repeat_interval below it (at 1m both,
        # the last send was a few ms too recent at every other tick: every 2 minutes). The rendered route says so;
        # the intervals observed are printed above, not asserted.
        watchdog_route = next(r for r in am_config["route"]["routes"] if "Watchdog" in str(r["matchers"]))
        watchdog_interval = seconds(watchdog_route["group_interval"])
        assert seconds(watchdog_route["repeat_interval"]) < watchdog_interval, watchdog_route
        assert route_group_wait(am_config, {"alertname": "Watchdog", "severity": "none"}) == 0
        assert len(gaps) >= 3, beats
        deadman = {r.payload["receiver"] for r in webhook.received if r.path == "/deadman"}
        assert deadman == {route_of(am_config, {"alertname": "Watchdog", "severity": "none"})[1]}, deadman

        # no rule failed at any time of the run, faults included
        failures = _query(prom.url, 'sum(prometheus_rule_evaluation_failures_total{job="prometheus"})')
        assert float(failures[0]["value"][1]) == 0, failures
