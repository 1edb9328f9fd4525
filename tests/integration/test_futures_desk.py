"""A futures desk's notional and a contract roll, through the real pipeline:

    the agent (in this process) --OTLP--> otelcol-tradeobs --> Prometheus --> the Trading overview's exposure and
    positions queries, the desk's netted gross of docs/metrics.md, and TradingMarketDataStale's expression

2 ES at 5,000 are 500,000 USD of index (50 USD a point): with ``trading.instrument("ESZ6", multiplier=50)`` that is
what Prometheus holds as the notional and the exposure (before, 10,000: qty * price). Then the desk rolls ESZ6 into
ESH7 and retires ESZ6, which never ticks again: 70 s later the stale-data alert's expression (read from
compose/prometheus/rules/trading.yml) selects nothing for it; before ``tt.retire``, the old contract's staleness
grew with every export and the alert paged at every roll. The agent's clocks are moved on here (no waiting); the
collector and Prometheus are real.
"""

from __future__ import annotations

import uuid

import pytest

from tradeobs_agent import trading

from .alerting import stale_rule_expr
from .procs import Stack, prometheus_query

pytestmark = pytest.mark.integration


def _by_symbol(stack: Stack, query: str, want: dict[str, float]) -> dict[str, float]:
    """The query's value per symbol once Prometheus has scraped ``want`` (the last export), else what it had."""

    def probe() -> dict[str, float] | None:
        got = {
            s["metric"].get("symbol", ""): float(s["value"][1]) for s in prometheus_query(stack.prometheus_url, query)
        }
        return got if got == want else None

    try:
        return stack.wait_for(probe, query)
    except BaseException:  # pytest's Failed: say what Prometheus had
        print(f"{query}: {prometheus_query(stack.prometheus_url, query)} (wanted {want})")
        raise


CL = 1 * -37.63 * 1000  # as the agent computes it: qty * price * multiplier


def test_a_futures_desks_notional_and_roll_in_prometheus(stack: Stack, clock: list[float]) -> None:
    service = f"futures-desk-{uuid.uuid4().hex[:8]}"
    sel = f'job="{service}"'
    agent = stack.agent(service)
    trading.instrument("ESZ6", multiplier=50)
    trading.instrument("CLK0", multiplier=1000)
    tt = trading.TradingTelemetry(strategy="index", venue="cme")
    tt.tick("ESZ6", 5000.0)
    tt.tick("CLK0", -37.63)
    tt.position("ESZ6", 2, 5000.0, 4990.0)
    tt.position("CLK0", 1, -37.63, 18.27)  # long crude below zero: a notional below zero
    assert agent.force_flush()
    _by_symbol(stack, f"trading_position_notional{{{sel}}}", {"ESZ6": 500_000.0, "CLK0": CL})
    # the Trading overview's exposure panel and the desk's gross after netting (docs/metrics.md)
    _by_symbol(stack, f"sum by (job) (trading_exposure_gross{{{sel}}})", {"": 500_000.0 - CL})
    _by_symbol(
        stack, f"sum by (job) (abs(sum by (job, symbol) (trading_position_notional{{{sel}}})))", {"": 500_000.0 - CL}
    )

    # The roll: out of December (flat), into March, and December retired. Its market data never comes again.
    trading.instrument("ESH7", multiplier=50)
    tt.position("ESZ6", 0, 5002.5)
    tt.tick("ESH7", 5040.0)
    tt.position("ESH7", 2, 5040.0, 5040.0)
    tt.pnl("ESZ6", 2 * 12.5 * 50, 0.0)
    tt.retire("ESZ6")
    for _ in range(7):  # 70 s of ticks for March and crude, none for December
        clock[0] += 10.0
        clock[1] += 10.0
        tt.tick("ESH7", 5040.0)
        tt.tick("CLK0", -37.63)
    assert agent.force_flush()
    _by_symbol(stack, f"trading_position_notional{{{sel}}}", {"ESZ6": 0.0, "ESH7": 504_000.0, "CLK0": CL})
    _by_symbol(stack, f"sum by (job) (trading_exposure_gross{{{sel}}})", {"": 504_000.0 - CL})
    # December's last staleness is the one exported before the roll (the collector serves a series it no longer
    # receives for its metric_expiration, 5 minutes): it does not grow, and the alert's expression leaves it out
    _by_symbol(stack, f"trading_marketdata_staleness_seconds{{{sel}}}", {"ESZ6": 0.0, "ESH7": 0.0, "CLK0": 0.0})
    firing = prometheus_query(stack.prometheus_url, f"({stale_rule_expr()})")
    assert [s["metric"]["symbol"] for s in firing if s["metric"].get("job") == service] == [], firing
    _by_symbol(stack, f"trading_pnl_realized{{{sel}}}", {"ESZ6": 1250.0})
    tt.close()
