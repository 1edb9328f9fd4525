"""A market-data feed that sends only garbage prices, through the real pipeline:

    the agent (in this process) --OTLP--> otelcol-tradeobs --> Prometheus --> TradingMarketDataStale's expression

A tick whose price was NaN used to count as a tick and reset the symbol's staleness to 0: the feed read fresh in
Prometheus and the stale-data page could not fire (only TradeobsAgentInvalidInput, 10 minutes later). The agent's
clocks are moved on here (no waiting); the collector and Prometheus are real, and so is the rule's expression,
read from compose/prometheus/rules/trading.yml (its ``for: 1m`` is Prometheus' own timer, not the agent's).
"""

from __future__ import annotations

import math
import uuid

import pytest

from tradeobs_agent import trading

from .alerting import stale_rule_expr
from .procs import Stack, prometheus_query

pytestmark = pytest.mark.integration


def test_a_garbage_only_feed_is_what_the_stale_data_alert_selects(stack: Stack, clock: list[float]) -> None:
    service = f"garbage-feed-{uuid.uuid4().hex[:8]}"
    agent = stack.agent(service)
    tt = trading.TradingTelemetry(strategy="s", venue="v")
    tt.tick("GOOD", 100.0)
    for _ in range(7):  # 70 s of a feed whose every price is NaN, and a healthy one beside it
        tt.tick("NAN", math.nan)
        tt.tick("GOOD", 100.0)
        clock[0] += 10.0
        clock[1] += 10.0
    tt.tick("GOOD", 100.0)
    assert agent.force_flush()
    sel = f'{{job="{service}"}}'
    series = stack.wait_for(
        lambda: prometheus_query(stack.prometheus_url, f"trading_marketdata_staleness_seconds{sel}") or None,
        "the staleness in Prometheus",
    )
    staleness = {s["metric"]["symbol"]: float(s["value"][1]) for s in series}
    assert staleness == {"NAN": 70.0, "GOOD": 0.0}, staleness  # before: NAN read 0 s, fresh
    ticks = prometheus_query(stack.prometheus_url, f"trading_marketdata_ticks_total{sel}")
    assert {s["metric"]["symbol"]: float(s["value"][1]) for s in ticks} == {"NAN": 0.0, "GOOD": 9.0}
    firing = prometheus_query(stack.prometheus_url, f"({stale_rule_expr()})")
    assert [s["metric"]["symbol"] for s in firing if s["metric"].get("job") == service] == ["NAN"], firing
    tt.close()
