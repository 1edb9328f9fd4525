"""TradingTelemetry: one trace per order across threads and tasks, metrics, exemplars, events, bad input."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.trace import StatusCode

from tradeobs_agent import TradingTelemetry, events, trading
from tradeobs_agent.metrics import Registry
from tradeobs_agent.testing import Capture, capture


@pytest.fixture
def tt(cap: Capture) -> Iterator[TradingTelemetry]:
    t = trading.TradingTelemetry(strategy="momentum", venue="paper")
    yield t
    t.close()


def _spans_by_name(cap: Capture, order_id: str) -> dict[str, list[Any]]:
    spans = cap.spans()
    (root,) = [s for s in spans if s.name == "order" and s.attributes.get("order.id") == order_id]
    out: dict[str, list[Any]] = {"order": [root]}
    for s in spans:
        if s is not root and s.context.trace_id == root.context.trace_id:
            out.setdefault(s.name, []).append(s)
    return out


def _point(cap: Capture, name: str, **attrs: Any) -> Any:
    points = [p for p in cap.metrics().get(name, []) if all(p.attributes.get(k) == v for k, v in attrs.items())]
    assert len(points) == 1, (name, attrs, points)
    return points[0]


# --------------------------------------------------------------------------- order lifecycle


def test_full_lifecycle_is_one_trace_with_children_in_order(cap: Capture, tt: TradingTelemetry) -> None:
    o = tt.order_signal("c-1", "AAPL", "buy", 100, price=189.5, order_type="limit")
    o.risk_check(passed=True, checks={"max_position": 0.4})
    o.submitted()
    o.acked("v-1")
    o.fill(40, 189.52)
    assert not o.closed
    o.fill(60, 189.55)
    assert o.closed

    spans = _spans_by_name(cap, "c-1")
    root = spans["order"][0]
    assert [s.name for s in sorted(cap.spans(), key=lambda s: (s.start_time, s.end_time)) if s is not root] == [
        "risk_check",
        "submit",
        "ack",
        "fill",
        "fill",
    ]
    for name in ("risk_check", "submit", "ack", "fill"):
        for s in spans[name]:
            assert s.parent is not None and s.parent.span_id == root.context.span_id
    attrs = root.attributes
    assert (attrs["order.id"], attrs["symbol"], attrs["side"], attrs["order.qty"], attrs["order.price"]) == (
        "c-1",
        "AAPL",
        "buy",
        100.0,
        189.5,
    )
    assert attrs["order.outcome"] == "filled" and attrs["order.venue_order_id"] == "v-1"
    assert root.status.status_code == StatusCode.UNSET
    # each step covers the time since the previous one
    assert spans["ack"][0].start_time == spans["submit"][0].end_time

    order_attrs = {"symbol": "AAPL", "side": "buy", "order_type": "limit", "venue": "paper", "strategy": "momentum"}
    for counter in ("submitted", "acknowledged", "filled", "partially_filled"):
        assert _point(cap, f"trading.orders.{counter}", **order_attrs).value == 1
    for hist in ("signal_to_submit", "submit_to_ack", "submit_to_fill"):
        assert _point(cap, f"trading.order.{hist}.latency", **order_attrs).count == 1
    slip = _point(cap, "trading.order.slippage", **order_attrs)
    assert slip.count == 2
    assert slip.sum == pytest.approx((189.52 - 189.5) / 189.5 * 1e4 + (189.55 - 189.5) / 189.5 * 1e4)
    assert _point(cap, "trading.order.fill_ratio", **order_attrs).sum == 1.0


class _Clocks:
    """A wall clock and a monotonic clock the test moves: ``tick(s)`` moves both, ``step(s)`` the wall one only."""

    def __init__(self) -> None:
        self.wall_ns = 1_800_000_000 * 10**9
        self.mono = 5_000.0

    def tick(self, seconds: float) -> None:
        self.wall_ns += round(seconds * 1e9)
        self.mono += seconds

    def step(self, seconds: float) -> None:
        self.wall_ns += round(seconds * 1e9)


@pytest.fixture
def clocks(monkeypatch: pytest.MonkeyPatch) -> _Clocks:
    from tradeobs_agent.trading import orders, telemetry

    c = _Clocks()
    monkeypatch.setattr(telemetry, "_time_ns", lambda: c.wall_ns)
    for module in (orders, telemetry):
        monkeypatch.setattr(module, "_monotonic", lambda: c.mono)
    monkeypatch.setattr(telemetry, "_time", lambda: c.wall_ns / 1e9)
    return c


def test_a_tick_without_a_valid_price_leaves_the_symbol_stale(cap: Capture, clocks: _Clocks) -> None:
    """A feed sending only garbage (NaN, an infinity, text) read as fresh: each bad tick was dropped as bad input
    but still counted in trading.marketdata.ticks, recorded a feed lag and reset the staleness to 0, so
    TradingMarketDataStale never fired (only TradeobsAgentInvalidInput, 10 minutes later). The staleness is now the
    time since the last valid price; a symbol that never had one is stale from its first tick."""
    tt = trading.TradingTelemetry(strategy="momentum", venue="paper")
    tt.tick("AAPL", 189.5, exchange_ts=clocks.wall_ns / 1e9 - 0.01, seq=1)
    for i, bad in enumerate((math.nan, math.inf, "189.6", None)):
        clocks.tick(10.0)
        tt.tick("AAPL", bad, exchange_ts=clocks.wall_ns / 1e9 - 0.01, seq=2 + i)  # type: ignore[arg-type]
        tt.tick("GARB", bad, exchange_ts=clocks.wall_ns / 1e9 - 0.01)  # type: ignore[arg-type]
    assert _point(cap, "trading.marketdata.staleness", symbol="AAPL").value == pytest.approx(40.0)
    assert _point(cap, "trading.marketdata.staleness", symbol="GARB").value == pytest.approx(30.0)
    assert _point(cap, "trading.marketdata.price", symbol="AAPL").value == 189.5
    assert _point(cap, "trading.marketdata.ticks", symbol="AAPL").value == 1
    assert _point(cap, "trading.marketdata.feed.lag", symbol="AAPL").count == 1
    assert _point(cap, "trading.marketdata.ticks", symbol="GARB").value == 0
    assert not [p for p in cap.metrics().get("trading.marketdata.last_tick", []) if p.attributes["symbol"] == "GARB"]
    bad_prices = cap.agent.registry.self_metrics.invalid.bind(instrument="trading.marketdata.price", reason="value")
    assert bad_prices.value == 8
    tt.tick("AAPL", 190.0, seq=6)  # a valid price again: fresh, and the bad ticks kept their place in the sequence
    clocks.tick(0.5)
    assert _point(cap, "trading.marketdata.staleness", symbol="AAPL").value == pytest.approx(0.5)
    assert _point(cap, "trading.marketdata.ticks", symbol="AAPL").value == 2
    assert _point(cap, "trading.marketdata.gaps", symbol="AAPL").value == 0
    tt.close()


def test_a_garbage_only_feed_reads_stale_on_the_prometheus_endpoint(clocks: _Clocks) -> None:
    """What TradingMarketDataStale reads (``trading_marketdata_staleness_seconds > 5`` for a minute), served by the
    agent's own endpoint: a feed that sends only NaN prices for a minute reads 60 s stale, with no tick counted
    (it read 0 s and 7 ticks)."""
    import urllib.request

    from tradeobs_agent.options import PrometheusOptions

    with capture(prometheus=PrometheusOptions(host="127.0.0.1", port=0), logs=False) as c:
        tt = trading.TradingTelemetry(strategy="momentum", venue="paper")
        for _ in range(7):
            tt.tick("AAPL", math.nan)
            clocks.tick(10.0)
        url = c.agent.prometheus_url
        assert url is not None
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read().decode()
        tt.close()
    samples = {
        line.split("{")[0]: float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if 'symbol="AAPL"' in line and not line.startswith("#")
    }
    assert samples["trading_marketdata_staleness_seconds"] == pytest.approx(70.0), body
    assert samples["trading_marketdata_ticks_total"] == 0, body


@pytest.mark.parametrize("step", [3600.0, -60.0])
def test_order_latencies_do_not_follow_a_step_of_the_wall_clock(cap: Capture, clocks: _Clocks, step: float) -> None:
    """Across a step of the wall clock (NTP, a VM resumed), a fill 10 ms after its submit was a 3,600 s latency
    (a step forward) or 0 s (a step back)."""
    tt = trading.TradingTelemetry(strategy="momentum", venue="paper")
    o = tt.order_signal("c-step", "AAPL", "buy", 10, price=1.0)
    clocks.tick(0.002)
    o.submitted()
    clocks.tick(0.003)
    clocks.step(step)
    o.acked()
    clocks.tick(0.005)
    o.fill(10, 1.0)
    assert _point(cap, "trading.order.submit_to_fill.latency", symbol="AAPL").sum == pytest.approx(0.008)
    assert _point(cap, "trading.order.submit_to_ack.latency", symbol="AAPL").sum == pytest.approx(0.003)
    assert _point(cap, "trading.order.signal_to_submit.latency", symbol="AAPL").sum == pytest.approx(0.002)
    tt.close()


@pytest.mark.parametrize("child_spans", [True, False])
@pytest.mark.parametrize("step", [3600.0, -60.0])
def test_order_spans_do_not_follow_a_step_of_the_wall_clock(
    cap: Capture, clocks: _Clocks, step: float, child_spans: bool
) -> None:
    """The spans' times were the wall clock's at each step: NTP stepping it back 60 s between submit and ack made an
    ``ack`` span that ended 60 s before it started and an order of -60 s in Jaeger (forward 1 h: a 3,600 s ack of an
    order filled in 10 ms, while its latency said 3 ms). Now the signal's wall time plus the monotonic time since."""
    tt = trading.TradingTelemetry(strategy="momentum", venue="paper", child_spans=child_spans)
    t0 = clocks.wall_ns
    o = tt.order_signal("c-step", "AAPL", "buy", 10, price=1.0)
    clocks.tick(0.001)
    o.risk_check(passed=True)
    clocks.tick(0.001)
    o.submitted()
    clocks.tick(0.003)
    clocks.step(step)
    o.acked()
    clocks.tick(0.005)
    o.fill(10, 1.0)
    spans = _spans_by_name(cap, "c-step")
    root = spans["order"][0]
    assert (root.start_time, root.end_time) == (t0, t0 + 10_000_000)
    if child_spans:
        times = {name: (s[0].start_time - t0, s[0].end_time - t0) for name, s in spans.items() if name != "order"}
    else:
        times = {}
        last = 0
        for ev in root.events:
            times[ev.name] = (last, ev.timestamp - t0)
            last = ev.timestamp - t0
    assert times == {
        "risk_check": (0, 1_000_000),
        "submit": (1_000_000, 2_000_000),
        "ack": (2_000_000, 5_000_000),
        "fill": (5_000_000, 10_000_000),
    }
    tt.close()


def test_staleness_does_not_follow_a_step_of_the_wall_clock(cap: Capture, clocks: _Clocks) -> None:
    """A feed that died, then the wall clock stepped back 10 minutes: its staleness read 0 s for 10 minutes (the
    stale-data alert could not fire); a step forward read it stale by the step at once."""
    tt = trading.TradingTelemetry(strategy="momentum", venue="paper")
    tt.tick("AAPL", 1.0)
    clocks.tick(1.0)
    assert _point(cap, "trading.marketdata.staleness", symbol="AAPL").value == pytest.approx(1.0)
    clocks.tick(4.0)
    clocks.step(-600.0)
    assert _point(cap, "trading.marketdata.staleness", symbol="AAPL").value == pytest.approx(5.0)
    clocks.step(3600.0)
    clocks.tick(2.0)
    assert _point(cap, "trading.marketdata.staleness", symbol="AAPL").value == pytest.approx(7.0)
    tt.tick("AAPL", 1.0)  # ticking again: fresh
    clocks.tick(0.5)
    assert _point(cap, "trading.marketdata.staleness", symbol="AAPL").value == pytest.approx(0.5)
    tt.close()


def test_staleness_right_after_a_tick_does_not_follow_a_step_of_the_wall_clock(cap: Capture, clocks: _Clocks) -> None:
    """A tick, then the wall clock stepped forward 1 h before the next collection: the live feed read 3,600 s stale
    (the age of the tick on the wall clock); it is never more than the time since the previous collection."""
    tt = trading.TradingTelemetry(strategy="momentum", venue="paper")
    tt.tick("AAPL", 1.0)
    clocks.tick(0.5)
    assert _point(cap, "trading.marketdata.staleness", symbol="AAPL").value == pytest.approx(0.5)
    clocks.tick(0.25)
    tt.tick("AAPL", 1.0)
    clocks.step(3600)
    clocks.tick(0.25)
    assert _point(cap, "trading.marketdata.staleness", symbol="AAPL").value == pytest.approx(0.5)  # since the last
    clocks.tick(1.0)
    assert _point(cap, "trading.marketdata.staleness", symbol="AAPL").value == pytest.approx(1.5)
    tt.close()


def test_latency_exemplars_point_at_the_order_trace(cap: Capture, tt: TradingTelemetry) -> None:
    o = tt.order_signal("c-ex", "MSFT", "sell", 10, price=400.0)
    o.submitted()
    o.acked()
    o.fill(10, 399.9)
    trace_id = int(o.trace_id, 16)  # type: ignore[arg-type]
    for name in (
        "trading.order.signal_to_submit.latency",
        "trading.order.submit_to_ack.latency",
        "trading.order.submit_to_fill.latency",
        "trading.order.slippage",
        "trading.order.fill_ratio",
    ):
        (ex,) = _point(cap, name, symbol="MSFT").exemplars
        assert ex.trace_id == trace_id, name


def test_sell_slippage_is_positive_when_adverse(cap: Capture, tt: TradingTelemetry) -> None:
    o = tt.order_signal("c-s", "MSFT", "sell", 10, price=400.0)
    o.submitted()
    o.fill(10, 399.0)  # sold lower than expected: adverse
    assert _point(cap, "trading.order.slippage", symbol="MSFT").sum == pytest.approx(25.0)


def test_fix_side_codes_sign_slippage_as_their_side_and_are_not_misuse(cap: Capture, tt: TradingTelemetry) -> None:
    """A FIX engine's Side(54) codes ("1" buy, "2" sell, "5" sell short...) were counted as misuse and a sell's
    adverse fill recorded as favourable slippage (signed as a buy's)."""
    for i, (code, expected, fill) in enumerate((("2", 400.0, 399.0), ("5", 400.0, 399.0), ("1", 400.0, 401.0))):
        o = tt.order_signal(f"c-fix-{i}", f"FIX{i}", code, 10, price=expected)
        o.submitted()
        o.fill(10, fill)  # each adverse by 1.0 on 400: +25 bp
        assert _point(cap, "trading.order.slippage", symbol=f"FIX{i}").sum == pytest.approx(25.0), code
    assert cap.agent.registry.self_metrics.invalid.bind(instrument="trading", reason="side").value == 0


def test_interactive_brokers_short_sale_actions_sign_slippage_as_a_sell(cap: Capture, tt: TradingTelemetry) -> None:
    """IB's order action for a short sale is SSHORT (SLONG a sale of stock held); desks write "sell short" and "SS".
    They were unknown sides, signed as a buy's: a short sale filled at 399 for 400 (adverse, +25 bp) read -25 bp,
    favourable, and a cover "buy to cover" was counted as misuse."""
    sides = ("SSHORT", "SLONG", "sell short", "SS", "buy to cover")
    for i, side in enumerate(sides):
        buy = side == "buy to cover"
        o = tt.order_signal(f"c-ib-{i}", f"IB{i}", side, 10, price=400.0)
        o.submitted()
        o.fill(10, 401.0 if buy else 399.0)  # each adverse by 1.0 on 400: +25 bp
        assert _point(cap, "trading.order.slippage", symbol=f"IB{i}").sum == pytest.approx(25.0), side
    assert cap.agent.registry.self_metrics.invalid.bind(instrument="trading", reason="side").value == 0


def test_a_fill_at_the_expected_price_has_no_slippage_whatever_floats_say(cap: Capture, tt: TradingTelemetry) -> None:
    """A decision price computed in floats (0.1 + 0.2) and a fill price the venue sent as "0.3" are one price: the
    slippage is 0 bp, in the histogram's le=0 bucket, not 1.85e-12 bp in (0, 0.5] as adverse (a user's review). And
    190.019 against 190 is 1 bp, in the le=1 bucket (it was 1.0000000000002873 bp, in (1, 2])."""
    o = tt.order_signal("c-f", "EURUSD", "sell", 1000, 0.1 + 0.2, order_type="limit")
    o.submitted()
    o.fill(1000, 0.3)
    o = tt.order_signal("c-g", "AAPL", "buy", 30, 190.0, order_type="limit")
    o.submitted()
    o.fill(30, 190.019)
    for sym, bp in (("EURUSD", 0.0), ("AAPL", 1.0)):
        slip = _point(cap, "trading.order.slippage", symbol=sym)
        le = list(slip.explicit_bounds).index(bp)
        assert slip.bucket_counts[le] == 1 and slip.sum == bp, (sym, slip)
        (fill,) = [e for e in events.get_bus().since(0) if e.kind == "fill" and e.data["symbol"] == sym]
        assert fill.data["slippage_bps"] == bp
        assert math.copysign(1.0, fill.data["slippage_bps"]) == 1.0  # not -0.0
    fills = [s for s in cap.spans() if s.name == "fill"]
    assert sorted(s.attributes["fill.slippage_bps"] for s in fills) == [0.0, 1.0]


def test_slippage_sign_holds_for_prices_below_zero(cap: Capture, tt: TradingTelemetry) -> None:
    """A calendar spread (or WTI in April 2020) trades below zero. Buying at -4.9 what was decided at -5.0 paid
    0.1 more: adverse, +200 bp of |price|; it was -200 bp, favourable, and a sell the other way round."""
    o = tt.order_signal("c-neg-b", "CLK0-CLM0", "buy", 1, -5.0, order_type="limit")
    o.submitted()
    o.fill(1, -4.9)
    o = tt.order_signal("c-neg-s", "CLK0-CLM0", "sell", 1, -5.0, order_type="limit")
    o.submitted()
    o.fill(1, -5.1)  # sold 0.1 lower: adverse too
    for side in ("buy", "sell"):
        assert _point(cap, "trading.order.slippage", side=side).sum == pytest.approx(200.0), side
    slips = [e.data["slippage_bps"] for e in events.get_bus().since(0) if e.kind == "fill"]
    assert slips == [pytest.approx(200.0), pytest.approx(200.0)]


def test_an_unusable_expected_price_is_counted_not_silent(cap: Capture, tt: TradingTelemetry) -> None:
    """A NaN decision price (no quote yet), an infinite or a text one: the fill counts, without slippage, and the
    bad price is counted as any other bad input (instrument="trading", reason="expected_price"); it was dropped
    without a trace, so a desk's slippage missed fills and nothing said why (a user's review)."""
    for i, bad in enumerate((math.nan, math.inf, "abc")):
        o = tt.order_signal(f"c-ep{i}", "AAPL", "buy", 10, 100.0)
        o.submitted()
        o.fill(10, 100.5, expected_price=bad)  # type: ignore[arg-type]
    tt.flush()
    assert _point(cap, "trading.orders.filled", symbol="AAPL").value == 3
    assert not [p for p in cap.metrics().get("trading.order.slippage", []) if p.count]
    bad_prices = cap.agent.registry.self_metrics.invalid.bind(instrument="trading", reason="expected_price")
    assert bad_prices.value == 3


def test_a_zero_reference_price_is_counted_not_silent(
    cap: Capture, tt: TradingTelemetry, caplog: pytest.LogCaptureFixture
) -> None:
    """Slippage is in basis points of the reference price: of 0 there are none. A fill with expected_price=0, or of
    an order signalled with price 0 (a market order's placeholder), had no slippage and nothing counted or said
    why. Now it is bad input (reason="slippage_reference_zero"), said once; the fill counts. A negative reference
    (a spread) still gives slippage, signed by its magnitude."""
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        o = tt.order_signal("c-z1", "AAPL", "buy", 10, 100.0)
        o.submitted()
        o.fill(10, 100.5, expected_price=0)
        m = tt.order_signal("c-z2", "AAPL", "buy", 10, 0.0, "market")
        m.submitted()
        m.fill(10, 100.5)
        spread = tt.order_signal("c-z3", "AAPL", "buy", 10, -5.0)
        spread.submitted()
        spread.fill(10, -4.9)
        tt.flush()
    assert _point(cap, "trading.orders.filled", symbol="AAPL").value == 3
    slip = _point(cap, "trading.order.slippage", symbol="AAPL")
    assert slip.count == 1 and slip.sum == pytest.approx(200.0)
    zero = cap.agent.registry.self_metrics.invalid.bind(instrument="trading", reason="slippage_reference_zero")
    assert zero.value == 2
    said = [r.getMessage() for r in caplog.records if "slippage_reference_zero" in r.getMessage()]
    assert len(said) == 1 and "c-z1: expected_price 0" in said[0], said


def test_fill_from_another_thread_and_a_task_joins_the_trace(cap: Capture, tt: TradingTelemetry) -> None:
    o = tt.order_signal("c-2", "AAPL", "buy", 30)
    o.submitted()

    def venue_thread() -> None:
        found = tt.order("c-2")
        assert found is o
        found.acked()
        found.fill(10, 1.0)

    t = threading.Thread(target=venue_thread)
    t.start()
    t.join()

    async def later() -> None:
        await asyncio.sleep(0)
        tt.order("c-2").fill(20, 1.0)  # type: ignore[union-attr]

    asyncio.run(later())
    spans = _spans_by_name(cap, "c-2")
    assert len(spans["fill"]) == 2 and len(spans["ack"]) == 1
    assert spans["order"][0].attributes["order.outcome"] == "filled"


def test_concurrent_fills_of_one_order_count_exactly(cap: Capture, tt: TradingTelemetry) -> None:
    o = tt.order_signal("c-big", "AAPL", "buy", 400)
    o.submitted()
    threads = [threading.Thread(target=lambda: [o.fill(1, 10.0) for _ in range(100)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert o.filled_qty == 400 and o.closed
    assert _point(cap, "trading.orders.filled", symbol="AAPL").value == 1
    assert _point(cap, "trading.orders.partially_filled", symbol="AAPL").value == 399


def test_risk_reject_sets_error_status_counts_reason_and_ends(cap: Capture, tt: TradingTelemetry) -> None:
    o = tt.order_signal("c-3", "TSLA", "buy", 5, price=250.0)
    o.risk_check(passed=False, reason="max_notional")
    assert o.closed and tt.order("c-3") is o  # closed orders stay findable for late events
    spans = _spans_by_name(cap, "c-3")
    root = spans["order"][0]
    assert root.status.status_code == StatusCode.ERROR and root.status.description == "max_notional"
    assert spans["risk_check"][0].status.status_code == StatusCode.ERROR
    assert _point(cap, "trading.orders.rejected", symbol="TSLA", reason="max_notional", stage="risk").value == 1
    assert tt.open_orders == 0
    assert "trading.order.fill_ratio" not in cap.metrics()  # a rejected order was never working


def test_reject_stage_says_whether_the_order_was_submitted(cap: Capture, tt: TradingTelemetry) -> None:
    """``stage="risk"``: rejected before it was submitted (not in ``trading.orders.submitted``), ``venue`` after; the
    same reason at both stages is two series (the series cache is keyed by the stage too). So submitted +
    rejected{stage="risk"} counts every order that reached a decision, and the reject ratio is at most 1."""
    tt.order_signal("r-1", "AAPL", "buy", 5, 10.0).risk_check(passed=False, reason="dup")
    own = tt.order_signal("r-2", "AAPL", "buy", 5, 10.0)
    own.rejected("dup")  # the caller's own pre-trade check: never submitted either
    sent = tt.order_signal("r-3", "AAPL", "buy", 5, 10.0)
    sent.risk_check(passed=True)
    sent.submitted()
    sent.acked("V-3")
    sent.rejected("dup")
    assert _point(cap, "trading.orders.rejected", symbol="AAPL", reason="dup", stage="risk").value == 2
    assert _point(cap, "trading.orders.rejected", symbol="AAPL", reason="dup", stage="venue").value == 1
    submitted = _point(cap, "trading.orders.submitted", symbol="AAPL").value
    assert submitted == 1 and submitted + 2 == 3  # the three orders decided


def test_cancel_records_fill_ratio_of_partial_fills(cap: Capture, tt: TradingTelemetry) -> None:
    o = tt.order_signal("c-4", "AAPL", "buy", 100)
    o.submitted()
    o.fill(25, 10.0)
    o.cancelled("user")
    root = _spans_by_name(cap, "c-4")["order"][0]
    assert root.attributes["order.outcome"] == "cancelled" and root.attributes["order.cancel_reason"] == "user"
    assert _point(cap, "trading.order.fill_ratio", symbol="AAPL").sum == 0.25
    assert _point(cap, "trading.orders.cancelled", symbol="AAPL").value == 1
    o.done()  # idempotent
    assert len([s for s in cap.spans() if s.name == "order"]) == 1


def test_steps_after_an_order_ended_are_counted_as_repeats_not_again(cap: Capture, tt: TradingTelemetry) -> None:
    """A venue that resends an execution report must not count the order as filled twice."""
    o = tt.order_signal("c-r", "AAPL", "buy", 10, 5.0)
    o.submitted()
    o.fill(10, 5.0)
    o.acked("v-1")  # an ack that arrives after the fill still counts: its first time
    o.fill(10, 5.0)  # resent
    o.rejected("late")
    o.cancelled()
    o.submitted()
    o.acked("v-1")  # a status report again (IB's orderStatus at every change): no repeat, nothing counted
    for name in ("filled", "submitted", "acknowledged"):
        assert _point(cap, f"trading.orders.{name}", symbol="AAPL").value == 1, name
    for name in ("rejected", "cancelled"):
        assert sum(p.value for p in cap.metrics().get(f"trading.orders.{name}", [])) == 0, name
    repeats = cap.agent.registry.self_metrics.invalid.bind(instrument="trading", reason="order_closed")
    assert repeats.value == 4
    fills = [e for e in events.get_bus().since(0) if e.kind == "fill" and e.data["order_id"] == "c-r"]
    assert len(fills) == 1  # and the live view shows one fill


def test_a_fill_that_races_a_cancel_counts_and_joins_the_trace(cap: Capture, tt: TradingTelemetry) -> None:
    """The venue filled the rest of the order before our cancel reached it; its execution report came after the
    cancel's. That fill is real (the position moved by it), and metrics.md says it joins the order's trace; it was
    dropped as a repeat (reason="order_closed"): no fill count, no slippage, no event, no span (a user's review:
    the ledger's 10 filled against the agent's 4). A report resent after that, past the order's quantity, is one."""
    o = tt.order_signal("c-race", "AAPL", "buy", 10, 30.0, order_type="limit")
    o.submitted()
    o.acked("v-1")
    o.fill(4, 30.0)
    o.cancelled("user")
    late = tt.order("c-race")
    assert late is o
    late.fill(6, 30.03)  # after the cancel: the race the cancel lost
    late.fill(6, 30.03)  # the same report again: past the order's quantity, a repeat
    attrs = {"symbol": "AAPL", "side": "buy", "order_type": "limit"}
    for name, n in (("partially_filled", 1), ("cancelled", 1), ("filled", 1)):
        assert _point(cap, f"trading.orders.{name}", **attrs).value == n, name
    assert _point(cap, "trading.order.slippage", **attrs).count == 2
    fills = [e.data for e in events.get_bus().since(0) if e.kind == "fill" and e.data["order_id"] == "c-race"]
    assert [(f["qty"], f["filled_qty"], f["leaves"]) for f in fills] == [(4.0, 4.0, 6.0), (6.0, 10.0, 0.0)]
    assert len(_spans_by_name(cap, "c-race")["fill"]) == 2  # in the order's trace
    repeats = cap.agent.registry.self_metrics.invalid.bind(instrument="trading", reason="order_closed")
    assert repeats.value == 1
    r = tt.order_signal("c-rej", "AAPL", "buy", 10, 30.0, order_type="limit")
    r.submitted()
    r.rejected("venue_busy")
    r.fill(10, 30.0)  # after a reject: not a fill the order can have had
    tt.flush()
    assert repeats.value == 2


def test_an_overfill_is_recorded_counted_and_marked_on_its_spans(
    cap: Capture, tt: TradingTelemetry, caplog: pytest.LogCaptureFixture
) -> None:
    """A fill of 15 on a 10-lot order: the fill ratio said 1.0 (clamped) and nothing else did; only the trace's
    order.filled_qty showed 15 of 10 (a user's review). An overfill is a venue's or a bot's bug a trader must see:
    the fill is still recorded (it happened), it is counted as odd input (instrument="trading",
    reason="overfill", said once, as recorded, not dropped), and its fill span and the order's span say
    order.overfilled=true. A fill that only reaches the quantity, give or take float noise, is none."""
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        o = tt.order_signal("c-over", "AAPL", "buy", 10, 30.0, order_type="limit")
        o.submitted()
        o.fill(15, 30.0)
        p = tt.order_signal("c-over2", "AAPL", "buy", 10, 30.0, order_type="limit")
        p.submitted()
        p.fill(8, 30.0)
        p.fill(5, 30.0)  # 13 of 10
        ok = tt.order_signal("c-exact", "AAPL", "buy", 0.3, 30.0, order_type="limit")
        ok.submitted()
        ok.fill(0.1, 30.0)
        ok.fill(0.2, 30.0)  # 0.30000000000000004 of 0.3: filled, not overfilled
        r = tt.order_signal("c-race-over", "AAPL", "buy", 10, 30.0, order_type="limit")
        r.submitted()
        r.fill(4, 30.0)
        r.cancelled("user")
        r.fill(8, 30.0)  # after the cancel: the race it lost, and past the quantity
        tt.flush()
    overfills = cap.agent.registry.self_metrics.invalid.bind(instrument="trading", reason="overfill")
    assert overfills.value == 3
    attrs = {"symbol": "AAPL", "side": "buy", "order_type": "limit"}
    assert _point(cap, "trading.orders.filled", **attrs).value == 4  # every fill still counts
    fills = {e.data["order_id"]: e.data["filled_qty"] for e in events.get_bus().since(0) if e.kind == "fill"}
    assert fills == {"c-over": 15.0, "c-over2": 13.0, "c-exact": pytest.approx(0.3), "c-race-over": 12.0}
    for oid, n in (("c-over", 1), ("c-over2", 2), ("c-exact", 2), ("c-race-over", 2)):
        spans = _spans_by_name(cap, oid)
        marked = [f.attributes.get("order.overfilled") for f in spans["fill"]]
        want = [None] * (n - 1) + [None if oid == "c-exact" else True]
        assert marked == want, oid
        # The order's span says it too, unless it had ended (at the cancel) before the overfill came.
        root = spans["order"][0].attributes.get("order.overfilled")
        assert root is (True if oid in ("c-over", "c-over2") else None), oid
    assert _spans_by_name(cap, "c-over")["order"][0].attributes["order.filled_qty"] == 15.0
    said = [r.getMessage() for r in caplog.records if "overfill" in r.getMessage()]
    assert said == ["tradeobs trading telemetry: overfill c-over: 15 filled of 10 (recorded, and counted)"]
    one = TradingTelemetry(strategy="evt", venue="paper", child_spans=False)  # steps as events on the order's span
    e = one.order_signal("c-over-ev", "AAPL", "buy", 10)
    e.submitted()
    e.fill(11, 30.0)
    one.flush()
    (root,) = [s for s in cap.spans() if s.attributes.get("order.id") == "c-over-ev"]
    assert root.attributes["order.overfilled"] is True
    assert [ev.attributes.get("order.overfilled") for ev in root.events if ev.name == "fill"] == [True]
    assert overfills.value == 4
    one.close()


def test_an_overfill_is_counted_per_strategy_and_venue(cap: Capture) -> None:
    """tradeobs.agent.measurements.invalid{reason="overfill"} has no strategy or venue: with two strategies (or one
    on two venues) in a process, TradingOrderOverfilled said which process, not which book was past what it asked
    for. trading.orders.overfilled carries the order counters' labels: each overfilling fill counted on its
    strategy, venue, symbol, side and order type; an exact fill and the other strategy's orders count nothing."""
    mm = TradingTelemetry(strategy="mm", venue="nyse")
    arb_x = TradingTelemetry(strategy="arb", venue="x")
    arb_y = TradingTelemetry(strategy="arb", venue="y")
    o = arb_y.order_signal("o-1", "MSFT", "SELL", 10, 30.0, order_type="limit")
    o.submitted()
    o.fill(8, 30.0)
    o.fill(5, 30.0)  # 13 of 10: one overfill
    o.fill(exec_id="E9", qty=2, price=30.0)  # a new execution after the order filled: a second
    for t, oid in ((mm, "m-1"), (arb_x, "x-1")):
        ok = t.order_signal(oid, "MSFT", "sell", 10, 30.0, order_type="limit")
        ok.submitted()
        ok.fill(10, 30.0)
    for t in (mm, arb_x, arb_y):
        t.flush()
    points = cap.metrics().get("trading.orders.overfilled", [])
    assert [(dict(p.attributes), p.value) for p in points] == [
        ({"symbol": "MSFT", "side": "sell", "order_type": "limit", "venue": "y", "strategy": "arb"}, 2)
    ]
    assert cap.agent.registry.self_metrics.invalid.bind(instrument="trading", reason="overfill").value == 2
    for t in (mm, arb_x, arb_y):
        t.close()


def test_an_expired_orders_late_fill_still_counts(cap: Capture) -> None:
    tt = TradingTelemetry(order_ttl=30.0)
    o = tt.order_signal("slow", "AAPL", "buy", 1)
    o.submitted()
    o.created -= 31
    tt.order_signal("new", "AAPL", "buy", 1).done()  # expires "slow"
    assert o.closed
    o.fill(1, 5.0)  # the venue filled it after all: a real fill
    assert _point(cap, "trading.orders.filled", symbol="AAPL").value == 1
    tt.close()


def test_events_are_published_with_trace_ids(tt: TradingTelemetry) -> None:
    o = tt.order_signal("c-5", "AAPL", "buy", 10, price=5.0)
    o.submitted()
    o.fill(10, 5.01)
    r = tt.order_signal("c-6", "AAPL", "sell", 10)
    r.rejected("venue: no liquidity")
    c = tt.order_signal("c-7", "AAPL", "sell", 10)
    c.cancelled()
    tt.breach("gross", symbol="AAPL")
    tt.kill_switch(True, "drawdown")
    tt.kill_switch(True, "drawdown")  # no change: no second event
    tt.kill_switch(False)
    evs = events.get_bus().since(0)
    assert [e.kind for e in evs] == ["order", "fill", "reject", "cancel", "breach", "kill_switch", "kill_switch"]
    for e in evs[:4]:
        assert {"order_id", "symbol", "side", "qty", "price", "reason", "trace_id"} <= set(e.data)
        assert len(e.data["trace_id"]) == 32
    assert evs[0].data["trace_id"] == o.trace_id and evs[1].data["qty"] == 10.0
    assert evs[2].data["reason"] == "venue: no liquidity"
    assert evs[5].data["engaged"] is True and evs[6].data["engaged"] is False


def test_order_events_say_when_an_order_stops_working(tt: TradingTelemetry) -> None:
    """What a view of working orders needs: when each sent order started, what is left, and how it ended."""
    t0 = time.time()
    a = tt.order_signal("w-1", "AAPL", "buy", 100, price=5.0)
    a.submitted()
    a.fill(40, 5.0)
    a.fill(60, 5.01)
    b = tt.order_signal("w-2", "AAPL", "buy", 10)
    b.submitted()
    b.done()  # e.g. the strategy stops tracking it
    c = tt.order_signal("w-3", "AAPL", "sell", 10)
    c.submitted()
    never_sent = tt.order_signal("w-4", "AAPL", "sell", 10)
    never_sent.done()
    tt.close()  # ends w-3: closed
    evs = [(e.kind, e.data) for e in events.get_bus().since(0)]
    assert [(k, d["order_id"]) for k, d in evs] == [
        ("order", "w-1"),
        ("fill", "w-1"),
        ("fill", "w-1"),
        ("order", "w-2"),
        ("done", "w-2"),
        ("order", "w-3"),
        ("done", "w-3"),
    ]
    assert t0 <= evs[0][1]["submitted_at"] <= time.time()
    assert evs[1][1]["leaves"] == 60 and evs[2][1]["leaves"] == 0
    assert evs[4][1]["reason"] == "done" and evs[6][1]["reason"] == "closed"
    assert evs[4][1]["trace_id"] == b.trace_id and evs[4][1]["strategy"] == "momentum"


def test_expired_and_evicted_sent_orders_publish_done(cap: Capture) -> None:
    tt = TradingTelemetry(max_open_orders=2, order_ttl=30.0)
    old = tt.order_signal("old", "AAPL", "buy", 1)
    old.submitted()
    old.created -= 31  # as if signalled 31 s ago
    for i in range(3):
        tt.order_signal(f"n{i}", "AAPL", "buy", 1).submitted()
    done = {e.data["order_id"]: e.data["reason"] for e in events.get_bus().since(0) if e.kind == "done"}
    assert done == {"old": "expired", "n0": "evicted"}
    tt.close()


def test_open_orders_gauge_is_the_size_of_the_book(cap: Capture, tt: TradingTelemetry) -> None:
    a = tt.order_signal("g-1", "AAPL", "buy", 10)
    tt.order_signal("g-2", "AAPL", "buy", 10)
    assert _point(cap, "trading.orders.open", strategy="momentum").value == 2
    a.rejected("venue")
    assert _point(cap, "trading.orders.open", strategy="momentum").value == 1


def test_last_tick_and_average_entry_price(cap: Capture, tt: TradingTelemetry) -> None:
    before = time.time()
    tt.tick("AAPL", 189.5)
    tt.position("AAPL", 100, 190.0, avg_price=185.25)
    tt.position("MSFT", -10, 400.0)  # no average entry price reported: no series
    assert before <= _point(cap, "trading.marketdata.last_tick", symbol="AAPL").value <= time.time()
    assert _point(cap, "trading.position.avg_price", symbol="AAPL").value == 185.25
    assert "MSFT" not in {p.attributes["symbol"] for p in cap.metrics()["trading.position.avg_price"]}
    tt.position("AAPL", 100, 190.0, avg_price=math.nan)  # bad: counted, the last good value stays
    tt.flush()
    assert cap.agent.registry.self_metrics.invalid.bind(instrument="trading", reason="avg_price").value == 1
    assert _point(cap, "trading.position.avg_price", symbol="AAPL").value == 185.25


def test_a_flat_position_has_no_average_entry_price_at_the_endpoint_or_in_otlp(
    cap: Capture, tt: TradingTelemetry
) -> None:
    """A position that went flat kept its last average entry in trading_position_avg_price (99.0 at quantity 0,
    whether the bot reported 99.0, 0.0 or nothing), while the live view dropped it: a graph or an alert on the
    average read a number that meant nothing (a user's review). Flat, the series has no value: no sample at the
    Prometheus endpoint, no OTLP point, no ``avg`` in the live view; reopened, the new average is back. Nothing
    here is bad input."""
    from tradeobs_agent._internal.prometheus import Renderer
    from tradeobs_agent.live.frames import FrameBuilder

    reg = cap.agent.registry

    def avg() -> tuple[dict[str, float], dict[str, str], dict[str, float]]:
        tt.flush()
        otlp = {str(p.attributes["symbol"]): p.value for p in cap.metrics().get("trading.position.avg_price", [])}
        lines = Renderer(reg).render().decode().splitlines()
        prom = {ln.split('symbol="')[1].split('"')[0]: ln.rsplit(" ", 1)[1] for ln in lines if "avg_price{" in ln}
        live = {sym: row["avg"] for sym, row in FrameBuilder(reg).build()["symbols"].items() if "avg" in row}
        return otlp, prom, live

    tt.position("AAPL", 10, 100.0, avg_price=99.0)
    tt.position("MSFT", -5, 400.0, avg_price=401.5)
    assert avg() == ({"AAPL": 99.0, "MSFT": 401.5}, {"AAPL": "99.0", "MSFT": "401.5"}, {"AAPL": 99.0, "MSFT": 401.5})
    tt.position("AAPL", 0, 100.0, avg_price=99.0)  # flat, the last average given again (the review's bot)
    assert avg() == ({"MSFT": 401.5}, {"MSFT": "401.5"}, {"MSFT": 401.5})
    tt.position("AAPL", 3, 101.0, avg_price=101.0)  # reopened
    tt.position("MSFT", 0, 400.0, avg_price=0.0)  # flat, reported as 0.0 (the demo's portfolio)
    assert avg() == ({"AAPL": 101.0}, {"AAPL": "101.0"}, {"AAPL": 101.0})
    tt.position("AAPL", 0.0, 101.0)  # flat, no average given
    tt.position("MSFT", 0, 400.0, avg_price=math.nan)  # flat, "no average": not bad input, nothing to record
    assert avg() == ({}, {}, {})
    assert "trading_position_avg_price" not in Renderer(reg).render().decode()
    tt.position("MSFT", 2, 400.0)  # reopened, no average reported: none shown (not the one before the flat)
    assert avg() == ({}, {}, {})
    tt.position("MSFT", 2, 400.0, avg_price=399.0)
    assert avg()[0] == {"MSFT": 399.0}
    assert sum(p.value for p in reg.self_metrics.invalid.series() if p.attributes.get("instrument") == "trading") == 0


def test_one_strategy_on_two_venues_holding_one_symbol_keeps_both_books(cap: Capture) -> None:
    """docs/metrics.md, "A strategy on several venues": one TradingTelemetry per venue. Their position and P&L series
    were keyed by symbol and strategy only, so the two objects of strategy ``mom`` set one series each and the last
    report was the symbol's: AAPL long 100 at ibkr and long 300 at alpaca read 300 at 14 (or 100 at 10), its P&L the
    last venue's, and the other venue's book was missing from every sum (the desk, the loss limit). With the
    ``venue`` label they are two series (as the account gauges already were): the endpoint, OTLP and the live view
    add them up, and the live row's average is the cost over the quantity. One venue per strategy keeps one series
    per symbol."""
    from tradeobs_agent._internal.prometheus import Renderer
    from tradeobs_agent.live.frames import FrameBuilder

    ibkr = trading.TradingTelemetry(strategy="mom", venue="ibkr")
    alpaca = trading.TradingTelemetry(strategy="mom", venue="alpaca")
    try:
        for tt, qty, avg in ((ibkr, 100.0, 10.0), (alpaca, 300.0, 14.0)):
            tt.position("AAPL", qty, 15.0, avg_price=avg)
            tt.pnl("AAPL", 1.0, qty * (15.0 - avg))
            tt.flush()
        want = {("ibkr", 100.0, 10.0, 500.0), ("alpaca", 300.0, 14.0, 300.0)}

        def books(values: dict[str, dict[tuple[str, str], float]]) -> set[tuple[str, float, float, float]]:
            qty, avg, upnl = (values[n] for n in ("quantity", "avg", "upnl"))
            return {(v, qty[("AAPL", v)], avg[("AAPL", v)], upnl[("AAPL", v)]) for _, v in qty}

        otlp = {
            key: {(str(p.attributes["symbol"]), str(p.attributes["venue"])): p.value for p in cap.metrics()[name]}
            for key, name in (
                ("quantity", "trading.position.quantity"),
                ("avg", "trading.position.avg_price"),
                ("upnl", "trading.pnl.unrealized"),
            )
        }
        assert books(otlp) == want
        from prometheus_client.parser import text_string_to_metric_families

        text = Renderer(cap.agent.registry).render().decode()
        fams = {f.name: f.samples for f in text_string_to_metric_families(text)}
        prom = {
            key: {(x.labels["symbol"], x.labels["venue"]): x.value for x in fams[name] if x.labels["strategy"] == "mom"}
            for key, name in (
                ("quantity", "trading_position_quantity"),
                ("avg", "trading_position_avg_price"),
                ("upnl", "trading_pnl_unrealized"),
            )
        }
        assert books(prom) == want
        row = FrameBuilder(cap.agent.registry).build()["symbols"]["AAPL"]
        assert (row["pos"], row["avg"], row["upnl"], row["rpnl"]) == (400.0, 13.0, 800.0, 2.0)
    finally:
        ibkr.close()
        alpaca.close()


def test_duplicate_signal_returns_the_open_trace(tt: TradingTelemetry) -> None:
    o = tt.order_signal("dup", "AAPL", "buy", 1)
    assert tt.order_signal("dup", "AAPL", "buy", 1) is o


# --------------------------------------------------------------------------- bounded, expiring book


def test_open_orders_are_bounded_oldest_evicted_and_counted(cap: Capture) -> None:
    tt = TradingTelemetry(max_open_orders=3)
    orders = [tt.order_signal(f"o{i}", "AAPL", "buy", 1) for i in range(5)]
    assert tt.open_orders == 3
    assert orders[0].closed and orders[1].closed and not orders[2].closed
    roots = {s.attributes["order.id"]: s for s in cap.spans() if s.name == "order"}
    assert roots["o0"].attributes["order.outcome"] == "evicted"
    dropped = cap.agent.registry.self_metrics.items_dropped.bind(signal="traces", reason="order_evicted")
    assert dropped.value == 2
    tt.close()


def test_orders_expire_after_ttl_at_collection(cap: Capture) -> None:
    tt = TradingTelemetry(order_ttl=30.0)
    o = tt.order_signal("old", "AAPL", "buy", 1)
    o.created -= 31  # as if signalled 31 s ago
    tt.order_signal("new", "AAPL", "buy", 1).done()
    assert o.closed and tt.open_orders == 0
    root = next(s for s in cap.spans() if s.attributes.get("order.id") == "old")
    assert root.attributes["order.outcome"] == "expired"
    n = tt.order_signal("n2", "AAPL", "buy", 1)
    n.created -= 31
    cap.metrics()  # a collection expires it too
    assert n.closed
    tt.close()


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"max_open_orders": 0}, "max_open_orders"),
        ({"order_ttl": -1}, "order_ttl"),
        ({"max_symbols": "x"}, "max_symbols"),
        ({"max_symbols": True}, "max_symbols"),
        ({"order_ttl": "300"}, "order_ttl"),
        ({"child_spans": "no"}, "child_spans"),  # a truthy string: child spans on, silently
    ],
)
def test_bad_constructor_arguments_raise_config_errors(kwargs: dict[str, Any], setting: str) -> None:
    from tradeobs_agent import TradeObsConfigError

    with pytest.raises(TradeObsConfigError, match=setting):
        TradingTelemetry(**kwargs)


def test_constructor_numbers_from_numpy_or_decimal_are_numbers() -> None:
    """Settings read through pandas (numpy.int64) or a Decimal config were refused with a message that
    contradicted itself: "invalid setting max_open_orders=5000: expected an integer >= 1"."""
    tt = TradingTelemetry(
        registry=Registry(), max_open_orders=np.int64(5000), max_symbols=np.int64(50), order_ttl=Decimal("300")
    )
    assert tt.max_symbols == 50 and type(tt.max_symbols) is int
    assert tt._book.max_open == 5000 and tt._book.ttl == 300.0
    tt.close()


# --------------------------------------------------------------------------- market data, money, risk


def test_ticks_lag_staleness_and_gaps(cap: Capture, tt: TradingTelemetry) -> None:
    tt.tick("AAPL", 189.5, exchange_ts=time.time() - 0.5, seq=1)
    tt.tick("AAPL", 189.6, seq=2)
    tt.tick("AAPL", 189.7, seq=5)
    tt.tick("MSFT", 400.0)
    tt.flush()  # apply the journal, to reach into the symbol state below
    tt._syms["MSFT"].last -= 10  # as if MSFT ticked 10 s ago
    tt._refreshed -= 10  # (and the previous collection was before that: a tick's age is at most the time since it)
    tt.feed_reconnect("nasdaq")
    assert _point(cap, "trading.marketdata.ticks", symbol="AAPL").value == 3
    assert _point(cap, "trading.marketdata.price", symbol="AAPL").value == 189.7
    lag = _point(cap, "trading.marketdata.feed.lag", symbol="AAPL")
    assert lag.count == 1 and lag.sum >= 0.5
    assert _point(cap, "trading.marketdata.gaps", symbol="AAPL").value == 1
    assert _point(cap, "trading.marketdata.staleness", symbol="MSFT").value >= 10
    assert _point(cap, "trading.marketdata.reconnects", feed="nasdaq").value == 1


def test_a_tick_ahead_of_the_host_clock_is_counted_and_said_once(
    cap: Capture, tt: TradingTelemetry, caplog: pytest.LogCaptureFixture
) -> None:
    """An exchange time in the future of this host's clock (a host clock behind the venue's) gave a negative lag,
    recorded as 0 and counted nowhere: a skewed clock read as a perfect feed. Now each such tick is counted in
    trading.marketdata.feed.ahead_of_clock{symbol} (its lag still recorded as 0) and the first is said."""
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        tt.tick("AAPL", 189.5, exchange_ts=time.time() + 2.0)
        tt.tick("AAPL", 189.6, exchange_ts=time.time() + 1.0)
        tt.tick("MSFT", 400.0, exchange_ts=time.time() + 1.0)
        tt.tick("MSFT", 400.1, exchange_ts=time.time() - 0.5)
        tt.tick("IBM", 150.0, exchange_ts=time.time() - 0.5)
        tt.flush()
    assert _point(cap, "trading.marketdata.feed.ahead_of_clock", symbol="AAPL").value == 2
    assert _point(cap, "trading.marketdata.feed.ahead_of_clock", symbol="MSFT").value == 1
    assert "IBM" not in {p.attributes["symbol"] for p in cap.metrics()["trading.marketdata.feed.ahead_of_clock"]}
    lag = _point(cap, "trading.marketdata.feed.lag", symbol="AAPL")
    assert lag.count == 2 and lag.sum == 0.0
    assert _point(cap, "trading.marketdata.feed.lag", symbol="MSFT").count == 2
    said = [r.getMessage() for r in caplog.records if "ahead of" in r.getMessage()]
    assert len(said) == 1, said
    assert said[0].startswith("tradeobs trading telemetry: a tick of AAPL has an exchange time 2.0")
    assert "trading.marketdata.feed.ahead_of_clock" in said[0] and "clock" in said[0]


def test_ticks_take_sequence_numbers_and_times_from_a_dataframe_or_decimals(
    cap: Capture, tt: TradingTelemetry, caplog: pytest.LogCaptureFixture
) -> None:
    """A feed read through pandas hands numpy.int64 sequence numbers and numpy.float64 times; a Decimal pipeline
    Decimal times. They were dropped as bad input ('dropped invalid seq 3'), so gaps went uncounted and the
    feed lag unrecorded."""
    now = time.time()
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        tt.tick("AAPL", Decimal("189.50"), exchange_ts=Decimal(str(now - 0.5)), seq=np.int64(1))
        tt.tick("AAPL", 189.6, exchange_ts=np.float64(now - 0.25), seq=np.int64(2))
        tt.tick("AAPL", 189.7, exchange_ts=now, seq=np.int64(5))
        tt.tick("AAPL", 189.8, exchange_ts=True, seq=True)  # a bool is no time and no sequence number
        tt.flush()
    lag = _point(cap, "trading.marketdata.feed.lag", symbol="AAPL")
    assert lag.count == 3 and lag.sum >= 0.75
    assert _point(cap, "trading.marketdata.gaps", symbol="AAPL").value == 1
    said = sorted(r.getMessage() for r in caplog.records if "dropped invalid" in r.getMessage())
    assert said == [
        "tradeobs trading telemetry: dropped invalid exchange_ts True: exchange_ts is a time within a day of now (of "
        "the clock= a replay gives TradingTelemetry): epoch seconds, milliseconds, microseconds or nanoseconds, or a "
        "datetime with its time zone (no feed lag recorded)",
        "tradeobs trading telemetry: dropped invalid seq True: seq is an integer (no gap check for this tick)",
    ]


def test_positions_exposure_pnl_equity_drawdown(cap: Capture, tt: TradingTelemetry) -> None:
    tt.position("AAPL", 100, 10.0)
    tt.position("MSFT", -50, 20.0)
    tt.position("AAPL", 50, 10.0)  # replaces the AAPL position
    tt.pnl("AAPL", realized=12.5, unrealized=-3.0)
    tt.account(equity=1000.0)
    tt.account(equity=1200.0)
    tt.account(equity=900.0)
    m = cap.metrics()
    assert _point(cap, "trading.position.quantity", symbol="AAPL").value == 50
    assert _point(cap, "trading.position.notional", symbol="MSFT").value == -1000.0
    assert m["trading.exposure.gross"][0].value == 1500.0
    assert m["trading.exposure.net"][0].value == -500.0
    assert _point(cap, "trading.pnl.realized", symbol="AAPL").value == 12.5
    assert _point(cap, "trading.pnl.unrealized", symbol="AAPL").value == -3.0
    assert m["trading.equity"][0].value == 900.0
    assert m["trading.drawdown"][0].value == pytest.approx(0.25)  # from the 1200 peak
    tt.account(equity=900.0, drawdown=0.1)
    assert cap.metrics()["trading.drawdown"][0].value == 0.1


def test_risk_instruments(cap: Capture, tt: TradingTelemetry) -> None:
    tt.limit_utilization("gross", 0.75)
    tt.breach("gross")
    tt.breach("position", symbol="AAPL")
    tt.kill_switch(True, "manual")
    assert _point(cap, "trading.risk.limit.utilization", limit="gross").value == 0.75
    assert _point(cap, "trading.risk.breaches", limit="position", symbol="AAPL").value == 1
    # The venue of the object that counted it: a strategy's breach on one venue is told from its other venues'
    # (before, the series had no venue label; positions, limits and orders have it).
    assert dict(_point(cap, "trading.risk.breaches", limit="gross").attributes) == {
        "strategy": "momentum",
        "venue": "paper",
        "limit": "gross",
    }
    other = TradingTelemetry(strategy="momentum", venue="lse")
    other.breach("position", symbol="AAPL")
    other.flush()
    assert _point(cap, "trading.risk.breaches", limit="position", symbol="AAPL", venue="lse").value == 1
    assert _point(cap, "trading.risk.breaches", limit="position", symbol="AAPL", venue="paper").value == 1
    other.close()
    assert cap.metrics()["trading.risk.kill_switch.engaged"][0].value == 1
    tt.decision_time(0.0002, symbol="AAPL")
    assert _point(cap, "trading.strategy.decision.duration", symbol="AAPL").count == 1


async def test_event_loop_lag_monitor_records(cap: Capture, tt: TradingTelemetry) -> None:
    task = tt.event_loop_lag_monitor(interval=0.001)
    assert task is not None
    for _ in range(3):
        time.sleep(0.005)  # block the loop so there is lag to see
        await asyncio.sleep(0.002)
    task.cancel()
    point = cap.metrics()["trading.eventloop.lag"][0]
    assert point.count >= 1 and point.min >= 0


def test_event_loop_lag_monitor_outside_a_loop_returns_none(tt: TradingTelemetry) -> None:
    assert tt.event_loop_lag_monitor() is None


# --------------------------------------------------------------------------- never raise


_weird = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(),
    st.text(max_size=300),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(object()),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=st.lists(_weird, min_size=6, max_size=6))
def test_no_method_raises_on_any_input(tt: TradingTelemetry, args: list[Any]) -> None:
    a, b, c, d, e, f = args
    tt.tick(a, b, c, d)
    tt.tick("AAPL", b, c)
    tt.feed_reconnect(a)
    tt.decision_time(b, a)
    o = tt.order_signal(a, b, c, d, e, f)
    o.risk_check(a, b, {"x": c} if isinstance(c, int) else None)
    o.submitted()
    o.acked(a)
    o.fill(b, c, d)
    o.fill(1, 1.0, e)
    o.rejected(a)
    o.cancelled(b)
    o.error(ValueError("x"))
    o.done()
    tt.order(a)
    tt.position(a, b, c)
    tt.position("AAPL", 1, 1.0, d)
    tt.pnl(a, b, c)
    tt.account(a, b)
    tt.limit_utilization(a, b)
    tt.breach(a, b)
    tt.kill_switch(a, b)


def test_bad_values_are_counted_and_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    reg = Registry()
    tt = TradingTelemetry(registry=reg)
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        o = tt.order_signal("x", "AAPL", "buy", 10)
        o.fill(math.nan, 1.0)
        o.fill(-1, 1.0)
        tt.position("AAPL", math.inf, 1.0)
        tt.tick("AAPL", 1.0, exchange_ts=time.time() - 7 * 86_400)  # a week ago: no time of this feed
        tt.flush()  # validation happens as the journal is applied; no reader here does it for us
    invalid = reg.self_metrics.invalid
    assert invalid.bind(instrument="trading", reason="fill").value == 2
    assert invalid.bind(instrument="trading", reason="position").value == 1
    assert invalid.bind(instrument="trading", reason="exchange_ts").value == 1
    assert len([r for r in caplog.records if "invalid fill" in r.getMessage()]) == 1
    tt.close()


def test_misuse_is_said_with_the_argument_the_value_and_what_is_allowed(caplog: pytest.LogCaptureFixture) -> None:
    """A negative quantity read 'dropped invalid qty -5', and a fill whose price was None 'dropped invalid fill
    None': neither said what the argument may be, nor what became of the order or the fill."""
    tt = TradingTelemetry(registry=Registry())
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        o = tt.order_signal("neg", "AAPL", "buy", -5, 10.0)
        o.submitted()
        o.fill(1, None)  # type: ignore[arg-type]
        tt.position("AAPL", "ten", 10.0)  # type: ignore[arg-type]
        tt.flush()
    said = [r.getMessage() for r in caplog.records if "tradeobs trading telemetry" in r.getMessage()]
    assert said == [
        "tradeobs trading telemetry: dropped invalid qty -5: an order's qty is a finite number >= 0 (the order is "
        "kept, with quantity 0)",
        "tradeobs trading telemetry: dropped invalid fill None: a fill's qty is a finite number > 0 and its price a "
        "finite number (the fill is not recorded)",
        "tradeobs trading telemetry: dropped invalid position 'ten': a position's qty and price are finite numbers, "
        "and so is their product (the position is not recorded)",
    ]
    tt.close()


def test_an_unknown_side_is_recorded_and_said_once_with_the_sides_known(caplog: pytest.LogCaptureFixture) -> None:
    """order_signal(..., 'lonng', ...) or a code nobody maps ('7') were taken without a word, as a buy: the slippage
    of a sell recorded with the wrong sign, and a side label nobody meant. (FIX's codes are known sides: below.)"""
    reg = Registry()
    tt = TradingTelemetry(registry=reg)
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        for i, side in enumerate(("BUY", "Sell", "short", "b", "buy_to_cover", "lonng", "7", "2")):
            tt.order_signal(f"o-{i}", "AAPL", side, 1, 10.0)
        tt.flush()
    said = [r.getMessage() for r in caplog.records if "tradeobs trading telemetry" in r.getMessage()]
    assert said == [
        "tradeobs trading telemetry: side 'lonng' (recorded, and counted): a side is buy, b, long, buy_to_cover, "
        "buy to cover or cover (a buy) or sell, s, short, sell_short, sell short, ss, or Interactive Brokers' sshort "
        "and slong (a sell), in any case, or a FIX Side code (1 or 3 a buy, 2, 4, 5 or 6 a sell); another is kept as "
        "the order's side label and its slippage is signed as a buy's"
    ]
    assert reg.self_metrics.invalid.bind(instrument="trading", reason="side").value == 2
    assert tt.order("o-6") is not None and tt.order("o-6").side == "7"  # kept as given
    tt.close()


def test_an_unknown_side_is_said_once_on_the_terminal_quoted_with_the_sides_known(tmp_path: Path) -> None:
    """A script with no logging set-up placed orders with side "BUY " (a padded field from a CSV): the warning went
    only to logs/system.jsonl, so the developer at the terminal never saw it, and it read "side BUY  (recorded",
    the space that made it unknown invisible. Said once on stderr now, the value quoted; each order counted."""
    code = (
        "import tradeobs_agent\n"
        "tradeobs_agent.init(service_name='bot', otlp=False, prometheus=False, live=False)\n"
        "tt = tradeobs_agent.TradingTelemetry(strategy='s', venue='paper')\n"
        "for i, side in enumerate(['BUY ', 'buy', 'BUY ']):\n"
        "    tt.order_signal(f'o-{i}', 'AAPL', side, 1, 10.0)\n"
        "tt.flush()\n"
        "reg = tradeobs_agent.get_agent().registry\n"
        "print(reg.self_metrics.invalid.bind(instrument='trading', reason='side').value)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADEOBS_", "OTEL_"))}
    env["TRADEOBS_LOG_DIR"] = str(tmp_path / "logs")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["2"]  # both orders counted
    said = [line for line in proc.stderr.splitlines() if "side" in line]
    assert said == [
        "tradeobs trading telemetry: side 'BUY ' (recorded, and counted): a side is buy, b, long, buy_to_cover, "
        "buy to cover or cover (a buy) or sell, s, short, sell_short, sell short, ss, or Interactive Brokers' sshort "
        "and slong (a sell), in any case, or a FIX Side code (1 or 3 a buy, 2, 4, 5 or 6 a sell); another is kept as "
        "the order's side label and its slippage is signed as a buy's"
    ], proc.stderr
    system = (tmp_path / "logs" / "system.jsonl").read_text()
    assert system.count("side 'BUY '") == 1


def test_a_venue_resending_a_fill_is_said_in_the_log_only(capsys: pytest.CaptureFixture[str]) -> None:
    """A venue's resend is no mistake of the calling code: counted and said in the system log, not on stderr."""
    reg = Registry()
    tt = TradingTelemetry(registry=reg)
    o = tt.order_signal("r-1", "AAPL", "buy", 10, 10.0)
    o.submitted()
    o.fill(5, 10.0, exec_id="e-1")
    o.fill(5, 10.0, exec_id="e-1")
    tt.flush()
    assert reg.self_metrics.invalid.bind(instrument="trading", reason="duplicate_fill").value == 1
    assert "duplicate" not in capsys.readouterr().err
    tt.close()


def test_symbol_allowlist_folds_other_symbols_in_metrics_not_in_spans() -> None:
    from tradeobs_agent.options import MetricsOptions

    with capture(metrics=MetricsOptions(symbol_allowlist=["AAPL"])) as cap:
        tt = TradingTelemetry(strategy="s", venue="v")
        for sym in ("AAPL", "GME", "AMC"):
            tt.tick(sym, 1.0)
        o = tt.order_signal("o-gme", "GME", "buy", 1)
        o.submitted()
        o.fill(1, 1.0)
        ticks = cap.agent.registry.get("trading.marketdata.ticks")
        assert ticks is not None
        tt.flush()
        assert {s.attributes["symbol"]: s.value for s in ticks.series()} == {"AAPL": 1, "other": 2}
        assert cap.metric_value("trading.orders.filled", symbol="other") == 1
        roots = [s for s in cap.spans() if s.name == "order"]
        assert [s.attributes["symbol"] for s in roots] == ["GME"]  # spans keep the real symbol
        tt.close()


def test_works_without_an_agent_and_bounds_its_caches() -> None:
    reg = Registry(max_series=50)
    tt = TradingTelemetry(registry=reg, max_symbols=20)
    for i in range(200):
        tt.tick(f"S{i}", 1.0)
        tt.order_signal(f"o{i}", f"S{i}", "buy", 1).submitted()
    tt.flush()  # no reader here applies the journal for us
    assert len(tt._syms) == 20 and len(tt._orders) == 20
    ticks = reg.get("trading.marketdata.ticks")
    assert ticks is not None and len(ticks.series()) == 51  # 50 + overflow
    assert sum(s.value for s in ticks.series()) == 200
    tt.close()


def test_exposure_past_max_symbols_is_counted_not_silent(cap: Capture) -> None:
    tt = TradingTelemetry(max_symbols=3)
    for i in range(5):
        tt.position(f"S{i}", 1, 10.0)
    assert _point(cap, "trading.exposure.gross").value == 30.0  # the first three: bounded memory
    left_out = cap.agent.registry.self_metrics.invalid.bind(instrument="trading", reason="exposure_max_symbols")
    assert left_out.value == 2
    tt.close()


def test_market_session_sets_each_symbols_session_gauge() -> None:
    """TradingMarketDataStale skips a symbol whose session the app says is closed (trading_marketdata_session_open 0):
    before, there was no way to say it, and every symbol paged each night and weekend."""
    with capture() as cap:
        tt = TradingTelemetry()
        tt.tick("AAPL", 189.5)
        assert cap.metric_value("trading.marketdata.session.open") is None  # never said: no series (taken as open)
        tt.market_session("AAPL", "MSFT", open=False)
        assert cap.metric_value("trading.marketdata.session.open", symbol="AAPL") == 0
        assert cap.metric_value("trading.marketdata.session.open", symbol="MSFT") == 0
        tt.market_session("AAPL", open=True)
        assert cap.metric_value("trading.marketdata.session.open", symbol="AAPL") == 1
        assert cap.metric_value("trading.marketdata.session.open", symbol="MSFT") == 0


def test_the_quantity_and_value_filled_count_every_recorded_fill(cap: Capture, tt: TradingTelemetry) -> None:
    """The turnover (what a desk reconciles with the broker at the end of the day) had no instrument: filled
    orders count an order once, whatever its size. trading.fills.quantity and trading.fills.notional add each
    recorded fill's quantity and quantity * |price|: partial fills, an overfill (it happened), a spread's negative
    price by its magnitude; not a resent fill (same exec_id), not a fill of a bad price."""
    o = tt.order_signal("c-1", "AAPL", "buy", 100, price=10.0)
    o.submitted()
    o.fill(40, 10.0, exec_id="e1")
    o.fill(40, 10.0, exec_id="e1")  # the venue's resend: not again
    o.fill(60, 10.5, exec_id="e2")
    s = tt.order_signal("c-2", "CL-SPREAD", "sell", 3, price=-1.25)
    s.submitted()
    s.fill(3, -1.5)
    s.fill(1, -1.5)  # an overfill after the order completed: a repeat, not recorded
    b = tt.order_signal("c-3", "AAPL", "buy", 5, price=10.0)
    b.submitted()
    b.fill(5, float("nan"))  # no price: bad input, not recorded
    b.fill(np.int64(5), Decimal("10.25"))
    over = tt.order_signal("c-4", "MSFT", "buy", 10, price=400.0)
    over.submitted()
    over.fill(8, 400.0)
    over.fill(5, 400.0)  # 13 of 10: a venue's or a bot's bug, but it happened
    tt.flush()
    qty = {p.attributes["symbol"]: p.value for p in cap.metrics()["trading.fills.quantity"]}
    value = {p.attributes["symbol"]: p.value for p in cap.metrics()["trading.fills.notional"]}
    assert qty == {"AAPL": 105, "CL-SPREAD": 3, "MSFT": 13}
    assert value == {"AAPL": 40 * 10.0 + 60 * 10.5 + 5 * 10.25, "CL-SPREAD": 4.5, "MSFT": 13 * 400.0}
    assert _point(cap, "trading.fills.quantity", symbol="AAPL").attributes["side"] == "buy"


def test_a_side_or_order_type_in_another_case_is_the_same_series(cap: Capture, tt: TradingTelemetry) -> None:
    # One strategy writes "BUY"/"LIMIT" (a broker's enum), another "buy"/"limit": one series each, not two that a
    # sum by side would split and a dashboard's side="buy" filter would half miss.
    for i, (side, order_type) in enumerate((("BUY", "LIMIT"), ("buy", "limit"), ("Buy", "Limit"))):
        o = tt.order_signal(f"c-{i}", "AAPL", side, 10, price=100.0, order_type=order_type)
        o.risk_check(passed=True)
        o.submitted()
        o.cancelled()
    rejected_order = tt.order_signal("c-r", "AAPL", "SELL", 10, price=100.0, order_type="MARKET")
    rejected_order.risk_check(passed=False, reason="limit")
    tt.flush()
    assert _point(cap, "trading.orders.submitted", symbol="AAPL").attributes["side"] == "buy"
    assert _point(cap, "trading.orders.submitted", side="buy", order_type="limit").value == 3
    rejected = _point(cap, "trading.orders.rejected", symbol="AAPL")
    assert (rejected.attributes["side"], rejected.attributes["order_type"]) == ("sell", "market")
    # the order's own trace keeps what the strategy passed
    assert {s.attributes["side"] for s in cap.spans() if s.name == "order"} >= {"BUY", "buy", "Buy"}


def test_a_kill_switch_engaged_and_released_between_two_scrapes_is_counted(cap: Capture, tt: TradingTelemetry) -> None:
    # The 0/1 gauge shows only the state at a scrape: a switch engaged for 0.2 s between two scrapes left no trace
    # on /metrics or in Prometheus (only the live page's kill_switch event). The trips counter keeps it.
    tt.flush()
    assert "trading.risk.kill_switch.trips" not in cap.metrics()  # a strategy that never trips has no series
    tt.kill_switch(True, reason="drawdown")
    tt.kill_switch(True, reason="drawdown")  # still engaged: no new trip
    tt.kill_switch(False)
    tt.kill_switch(True, reason="rejects")
    tt.kill_switch(False)
    tt.flush()
    assert _point(cap, "trading.risk.kill_switch.engaged").value == 0
    trips = _point(cap, "trading.risk.kill_switch.trips")
    assert trips.value == 2
    assert trips.attributes == {"strategy": tt.strategy, "venue": tt.venue}
