"""A backtest replaying a bad day under a paper service's name, on the real pipeline: it pages nothing and is not
summed into the service's aggregates, and its traces and logs can be told apart.

    agent workloads --OTLP--> otelcol-tradeobs (collector/otel-collector.yaml) --> Prometheus (compose's trading
    rules, recording rules and limits, time-compressed x10) / Jaeger / the collector's log file

Three processes: ``algo`` in paper mode trading healthily, ``algo`` again in backtest mode
(``TRADEOBS_TRADING_MODE=backtest``) replaying a bad day (half its orders rejected, 1.5 s fills, kill switch
engaged, -5000 P&L), and a control ``control`` in paper mode with the same bad day. Once every trading alert the
bad day raises fires for the control, ``algo`` has none (pending included), and its recorded P&L and rejects are
the paper book's, the backtest's a series of its own (``trading_mode="backtest"``).

Before, ``trading.mode`` reached Prometheus in ``target_info`` only (the collector's prometheus exporter keeps
resource attributes off the series), and the rules aggregate by ``job``: the backtest's kill switch, rejects and
fill latency fired for ``algo``, and its -5000 was ``algo``'s P&L.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from .agent_proc import AgentWorkload, unique_service
from .alerting import RULES_DIR, speed_up_rules
from .procs import (
    http_get,
    jaeger_search,
    prometheus_config,
    prometheus_query,
    read_otlp_json_logs,
    start_collector,
    start_jaeger,
    start_prometheus,
    wait_for,
)
from .tiers import start_agent_collector, start_gateway

pytestmark = pytest.mark.integration

FACTOR = 10  # rule durations / 10: the 5m `for` of the reject and latency alerts is 30 s
INTERVAL = 1.0
RULE_FILES = ("recording.yml", "limits.yml", "trading.yml")
# 8 orders/s, half rejected: 4 rejects/s, 24 in the reject burst's compressed minute (6 s), well past its count (10)
BAD_DAY = {"cmd": "trade", "rate": 8, "reject_ratio": 0.5, "fill_latency": 1.5}
# What the bad day raises (the control proves it): kill switch at once, the P&L after 1m/10, the reject ratio
# and the fill p99 after 5m/10 over 5m/10 windows, the reject burst (at least 10 rejects and a quarter of the
# orders in 1m/10) at once.
ALERTS = {
    "TradingKillSwitchEngaged",
    "TradingPnLLossLimitBreached",
    "TradingOrderRejectRateHigh",
    "TradingOrderRejectBurst",
    "TradingFillLatencyP99High",
    # a risk limit used up (after 1m/10), a breach (at once), the asyncio loop blocked and the feed losing
    # messages (after 5m/10 over 5m/10 windows)
    "TradingRiskLimitReached",
    "TradingRiskLimitBreached",
    "TradingEventLoopLagHigh",
    "TradingMarketDataGaps",
}
RISK_AND_FEED = (
    {"cmd": "limit", "limit": "position", "ratio": 1.0},
    {"cmd": "breach", "limit": "position", "symbol": "AAPL"},
    {"cmd": "block_loop", "seconds": 0.3},
    {"cmd": "gaps", "skip": 1},
)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Any, Any, Any]]:
    with ExitStack() as es:
        jaeger = es.enter_context(start_jaeger(tmp_path / "jaeger"))
        collector = es.enter_context(start_collector(tmp_path / "collector", jaeger.otlp_grpc_endpoint))
        rules = speed_up_rules([RULES_DIR / n for n in RULE_FILES], tmp_path / "rules", FACTOR, INTERVAL)
        config = prometheus_config(
            collector.prometheus_exporter_target, collector.metrics_target, rule_files=[str(r) for r in rules]
        )
        prom = es.enter_context(start_prometheus(tmp_path / "prometheus", config))
        yield jaeger, collector, prom


def _by_mode(url: str, promql: str) -> dict[str, float]:
    return {r["metric"].get("trading_mode", ""): float(r["value"][1]) for r in prometheus_query(url, promql)}


def test_a_backtest_under_a_paper_services_name_pages_nothing_and_stays_out_of_its_aggregates(
    tmp_path: Path, stack: tuple[Any, Any, Any]
) -> None:
    jaeger, collector, prom = stack
    algo, control = unique_service("algo"), unique_service("control")
    with ExitStack() as es:
        paper = es.enter_context(AgentWorkload("alerts", collector, tmp_path / "paper", algo))
        backtest = es.enter_context(
            AgentWorkload(
                "alerts", collector, tmp_path / "backtest", algo, extra_env={"TRADEOBS_TRADING_MODE": "backtest"}
            )
        )
        ctrl = es.enter_context(AgentWorkload("alerts", collector, tmp_path / "control", control))
        paper.send({"cmd": "pnl", "realized": 200})
        for w in (backtest, ctrl):
            w.send(BAD_DAY)
            w.send({"cmd": "pnl", "realized": -5000})
            w.send({"cmd": "kill_switch", "engaged": True})
            for cmd in RISK_AND_FEED:
                w.send(cmd)
        procs = (collector.proc, jaeger.proc, prom.proc)

        def control_fired() -> set[str] | None:
            got = {
                r["metric"]["alertname"]
                for r in prometheus_query(prom.url, f'ALERTS{{job="{control}", alertstate="firing"}}')
            }
            return got if got >= ALERTS else None

        fired = wait_for(control_fired, "the control's bad day to fire its trading alerts", 300, procs=procs)
        assert fired == ALERTS, fired  # nothing else: the drawdown and market data alerts have no input here

        # the same bad day as a backtest under algo's name: not even pending
        algo_alerts = prometheus_query(prom.url, f'ALERTS{{job="{algo}"}}')
        assert algo_alerts == [], [r["metric"] for r in algo_alerts]
        # the mode reaches every series, not only target_info (the collector's transform/trading_mode)
        assert _by_mode(prom.url, f'count by (trading_mode) (trading_orders_submitted_total{{job="{algo}"}})') == {
            "paper": 1.0,
            "backtest": 1.0,
        }
        # recorded per mode: algo's P&L is the paper book's, the backtest's -5000 a series of its own
        assert _by_mode(prom.url, f'job:trading_pnl_total:sum{{job="{algo}"}}') == {"paper": 200.0, "backtest": -5000.0}
        rejects = _by_mode(prom.url, f'job:trading_orders_rejected:rate5m{{job="{algo}"}}')
        assert set(rejects) == {"backtest"} and rejects["backtest"] > 0, rejects  # the paper book has no reject
        ratio = _by_mode(prom.url, f'job:trading_order_reject_ratio:rate5m{{job="{algo}"}}')
        assert ratio["paper"] == 0.0 and ratio["backtest"] > 0.05, ratio

        # traces: Jaeger's search by the resource tag tells the two runs of one service name apart
        for mode in ("backtest", "paper"):

            def search(mode: str = mode) -> list[dict[str, Any]] | None:
                return jaeger_search(jaeger.query_url, algo, tags=f"trading.mode={mode}") or None

            traces = wait_for(search, f"{mode} traces of {algo} in Jaeger", 60, procs=procs)
            modes = {
                {tag["key"]: tag["value"] for tag in t.get("tags", [])}.get("trading.mode")
                for trace in traces
                for t in trace["processes"].values()
            }
            assert modes == {mode}, (mode, modes)

        # logs: the backtest's carry trading.mode=backtest on their resource (Loki: structured metadata trading_mode)
        def risk_logs() -> list[dict[str, Any]] | None:
            recs = [
                r
                for r in read_otlp_json_logs(collector.logs_file)
                if r["_resource"].get("service.name") == algo and "kill switch engaged" in str(r.get("body"))
            ]
            return recs or None

        logs = wait_for(risk_logs, f"the backtest's log line of {algo}", 60, procs=procs)
        assert {r["_resource"].get("trading.mode") for r in logs} == {"backtest"}


def test_through_the_collector_tiers_every_series_also_says_its_mode(tmp_path: Path) -> None:
    """The tier gateway (collector/otel-collector-gateway.yaml) serves the Prometheus page in a tiered deployment:
    it runs transform/trading_mode too, so a paper and a backtest process of one service name reach Prometheus as
    series told apart by trading_mode (before: the same label sets but instance, the mode in target_info only)."""
    algo = unique_service("algo")
    with ExitStack() as es:
        jaeger = es.enter_context(start_jaeger(tmp_path / "jaeger"))
        gateway = es.enter_context(start_gateway(tmp_path / "gateway", jaeger.otlp_grpc_endpoint))
        agent = es.enter_context(start_agent_collector(tmp_path / "agent", static=[gateway.otlp_grpc_endpoint]))
        es.enter_context(AgentWorkload("alerts", agent, tmp_path / "paper", algo))
        es.enter_context(
            AgentWorkload("alerts", agent, tmp_path / "backtest", algo, extra_env={"TRADEOBS_TRADING_MODE": "backtest"})
        )

        def modes() -> set[str] | None:
            page = http_get(f"{gateway.prometheus_exporter_url}/metrics")[1].decode()
            lines = [
                line
                for line in page.splitlines()
                if line.startswith("trading_orders_submitted_total{") and f'job="{algo}"' in line
            ]
            if len(lines) < 2:
                return None
            return {m.group(1) if (m := re.search(r'trading_mode="(\w+)"', line)) else "" for line in lines}

        got = wait_for(modes, f"{algo}'s two processes on the gateway's Prometheus page", 60, procs=(gateway.proc,))
        assert got == {"paper", "backtest"}
