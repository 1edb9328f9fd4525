"""The trader's view in the frame: desk totals, day P&L, reject rate, freshness, limits, working orders."""

from __future__ import annotations

import json
import re
import time
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from tradeobs_agent import events
from tradeobs_agent.live import frames
from tradeobs_agent.live.app import JAEGER_DATASOURCE_UID, ORDER_DASHBOARD_UID
from tradeobs_agent.live.frames import FrameBuilder, delta
from tradeobs_agent.live.hub import LiveHub
from tradeobs_agent.live.working import WorkingOrders
from tradeobs_agent.metrics import Registry
from tradeobs_agent.trading import TradingTelemetry

COMPOSE = Path(__file__).resolve().parents[3] / "compose" / "grafana"


@pytest.fixture()
def reg() -> Registry:
    return Registry()


def _order(oid: str, **kw: Any) -> dict[str, Any]:
    return {"order_id": oid, "symbol": "AAPL", "side": "buy", "qty": 100, "price": 10.0, "submitted_at": 5.0, **kw}


def test_account_adds_pnl_totals_and_exposure(reg: Registry) -> None:
    rp, up = reg.gauge("trading.pnl.realized"), reg.gauge("trading.pnl.unrealized")
    rp.bind(symbol="AAPL", strategy="a").set(-2500.5)
    up.bind(symbol="AAPL", strategy="a").set(100.25)
    rp.bind(symbol="MSFT", strategy="b").set(400.0)
    reg.gauge("trading.exposure.gross").bind(strategy="a").set(1000.0)
    reg.gauge("trading.exposure.gross").bind(strategy="b").set(500.0)
    reg.gauge("trading.exposure.net").bind(strategy="a").set(-300.0)
    b = FrameBuilder(reg)  # created with this P&L: "today" starts here
    up.bind(symbol="AAPL", strategy="a").set(-899.75)
    account = b.build()["account"]
    assert account["pnl"] == -3000.25 and account["rpnl"] == -2100.5 and account["upnl"] == -899.75
    assert account["pnl_day"] == -1000.0 and account["day_full"] is False
    assert account["gross"] == 1500.0 and account["net"] == -300.0
    assert "kill_switch" not in account  # only when the service reports it


def test_day_pnl_starts_again_at_local_midnight(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    rp = reg.gauge("trading.pnl.realized").bind(symbol="AAPL")
    rp.set(50.0)
    b = FrameBuilder(reg)
    rp.set(80.0)
    assert b.build()["account"]["pnl_day"] == 30.0
    midnight = time.mktime((*time.localtime(time.time() + 86_400)[:3], 0, 0, 0, 0, 0, -1))
    clock = [midnight - 0.5]  # frames up to midnight (a client watching)
    monkeypatch.setattr(frames.time, "time", lambda: clock[0])
    b.build()
    clock[0] = tomorrow = midnight + 0.1
    account = b.build()["account"]
    assert account["pnl_day"] == 0.0 and account["day_full"] is True and account["day_since"] == round(tomorrow, 3)
    rp.set(70.0)
    assert b.build()["account"]["pnl_day"] == -10.0


def test_a_day_without_frames_up_to_midnight_is_not_said_to_be_the_whole_day(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames are built while clients watch. The first client of a morning after a night without one got the P&L
    since that frame labelled the whole day's (``day_full``): the page said "P&L today" for the P&L since 09:00."""
    rp = reg.gauge("trading.pnl.realized").bind(symbol="AAPL")
    rp.set(50.0)
    # the evening's clock is fixed too: a run near midnight built the evening's frame on the next day (a full run
    # went through 00:00 UTC and failed here)
    evening = time.mktime((*time.localtime()[:3], 18, 0, 0, 0, 0, -1))
    monkeypatch.setattr(frames.time, "time", lambda: evening)
    b = FrameBuilder(reg)
    b.build()  # the last frame of the evening
    morning = time.mktime((*time.localtime(evening + 86_400)[:3], 9, 0, 0, 0, 0, -1))
    monkeypatch.setattr(frames.time, "time", lambda: morning)
    rp.set(65.0)
    account = b.build()["account"]
    assert account["pnl_day"] == 0.0 and account["day_full"] is False and account["day_since"] == round(morning, 3)


def test_pnl_reported_before_the_live_view_is_not_todays() -> None:
    """P&L reported through ``TradingTelemetry`` and still in the trading journal when the live view was made was
    read as 0 at its start, so the first frame counted it as the day's: pnl_day 105.0 of a P&L that had not moved."""
    from tradeobs_agent.metrics import get_registry

    tt = TradingTelemetry(strategy="s", venue="v")
    tt.pnl("AAPL", 100.0, 5.0)
    b = FrameBuilder(get_registry())
    tt.flush()
    account = b.build()["account"]
    assert account["pnl"] == 105.0 and account["pnl_day"] == 0.0
    tt.pnl("AAPL", 100.0, 7.5)
    tt.flush()
    assert b.build()["account"]["pnl_day"] == 2.5
    tt.close()


def test_in_a_worker_group_the_days_pnl_starts_at_the_first_merged_frame(reg: Registry) -> None:
    """A group's leader builds from every worker's snapshot merged; the day's start was its own registry's total
    (one worker's, at most), so the P&L of the others was today's: 4,993,596 of 4,995,000 that had not moved
    (two uvicorn workers, tests/integration/positions_app.py)."""
    reg.gauge("trading.pnl.unrealized").bind(symbol="AAPL", strategy="a").set(40.0)  # this worker's own
    b = FrameBuilder(reg)
    b.day_from_first_frame()
    merged = Registry()
    merged.gauge("trading.pnl.unrealized").bind(symbol="AAPL", strategy="a").set(100.0)  # both workers'
    account = b.build(snapshot=merged.snapshot())["account"]
    assert account["pnl"] == 100.0 and account["pnl_day"] == 0.0 and account["day_full"] is False
    merged.gauge("trading.pnl.unrealized").bind(symbol="AAPL", strategy="a").set(110.0)
    assert b.build(snapshot=merged.snapshot())["account"]["pnl_day"] == 10.0


def test_desk_counts_orders_fills_rejects_by_reason_and_limits(reg: Registry) -> None:
    reg.counter("trading.orders.submitted").bind(symbol="AAPL", side="buy").add(8)
    reg.counter("trading.orders.submitted").bind(symbol="MSFT", side="buy").add(2)
    reg.counter("trading.orders.filled").bind(symbol="AAPL", side="buy").add(6)
    reg.counter("trading.orders.partially_filled").bind(symbol="AAPL", side="buy").add(3)
    rej = reg.counter("trading.orders.rejected")
    rej.bind(symbol="AAPL", side="buy", reason="limit_position").add(1)
    rej.bind(symbol="MSFT", side="buy", reason="limit_position").add(2)
    rej.bind(symbol="MSFT", side="sell", reason="venue: throttled").add(1)
    reg.gauge("trading.orders.open").bind(strategy="a").set(3)
    reg.gauge("trading.orders.open").bind(strategy="b").set(1)
    lim = reg.gauge("trading.risk.limit.utilization")
    lim.bind(strategy="a", limit="position").set(0.5)
    desk = FrameBuilder(reg).build()["desk"]
    assert desk["orders"] == 10 and desk["fills"] == 9 and desk["rejects"] == 4 and desk["open"] == 4
    assert desk["reasons"] == {"limit_position": 3, "venue: throttled": 1}
    assert desk["limits"] == {"position": 0.5}
    lim.bind(strategy="b", limit="position").set(1.2)  # two strategies: each limit named with its strategy
    assert FrameBuilder(reg).build()["desk"]["limits"] == {"a/position": 0.5, "b/position": 1.2}


def test_desk_totals_and_reject_rate_count_the_orders_past_max_series() -> None:
    """1,000 symbols x 5 strategies x 3 venues with max_series at its default of 2,000: past the limit an order
    counter's new attribute sets go to its overflow series, which has no symbol. The desk summed the rows only: it
    showed 2,769 orders sent of 12,046, and a reject rate of 23% for 5% (every reject counted, a fifth of the
    orders). Each order's row stays as it is; the totals and the rate count the overflow series too."""
    reg = Registry(max_series=4)
    tt = TradingTelemetry(strategy="s", venue="v", registry=reg)
    direct = FrameBuilder(reg)  # made before the orders, as a service's live view: its reject rate covers them
    symbols = [f"S{i:02d}" for i in range(20)]
    for i, sym in enumerate(symbols):  # 20 orders, each in a symbol of its own; 2 rejected by the venue
        o = tt.order_signal(f"c{i}", sym, "buy", 10, 1.0)
        o.submitted()
        if i in (3, 11):
            o.rejected("throttled")
        else:
            o.fill(10, 1.0)
    tt.flush()
    built = direct.build()
    assert built["desk"]["reject_rate"] == pytest.approx(0.1)
    from_snapshot = FrameBuilder(reg).build(snapshot=reg.snapshot(frames.FRAME_INSTRUMENTS))  # a group's leader's
    for state in (built, from_snapshot):
        desk = state["desk"]
        assert (desk["orders"], desk["fills"], desk["rejects"]) == (20, 18, 2)
        assert sum(r.get("ord", 0) for r in state["symbols"].values()) < 20  # the rows hold what has a symbol


def test_reject_rate_is_over_the_last_five_minutes(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(frames.time, "monotonic", lambda: clock[0])
    sub = reg.counter("trading.orders.submitted").bind(symbol="AAPL")
    rej = reg.counter("trading.orders.rejected").bind(symbol="AAPL", reason="r")
    sub.add(100)
    rej.add(50)  # before the window: not counted
    b = FrameBuilder(reg)
    desk = b.build()["desk"]
    assert desk["reject_rate"] is None and desk["reject_window"] == 0  # nothing submitted in the window yet
    for _ in range(400):  # 400 s, one frame a second, 1 submitted and every 10th rejected
        clock[0] += 1.0
        sub.add(1)
        if int(clock[0]) % 10 == 0:
            rej.add(1)
        desk = b.build()["desk"]
    assert desk["reject_window"] == frames.REJECT_WINDOW
    assert desk["reject_rate"] == pytest.approx(0.1, abs=0.01)
    assert desk["orders"] == 500 and desk["rejects"] == 90  # the counts themselves are cumulative


def _decide(tt: TradingTelemetry, n: int, *, at_risk: int, at_venue: int) -> None:
    """``n`` orders: the first ``at_risk`` rejected by the risk check (never submitted), the next ``at_venue``
    submitted and rejected by the venue, the rest submitted and filled."""
    for i in range(n):
        o = tt.order_signal(f"o-{i}", "AAPL", "buy", 10, 10.0)
        if i < at_risk:
            o.risk_check(passed=False, reason="limit_position")
            continue
        o.risk_check(passed=True)
        o.submitted()
        if i < at_risk + at_venue:
            o.rejected("venue_throttled")
        else:
            o.fill(10, 10.0)
    tt.flush()


@pytest.mark.parametrize(
    ("at_risk", "at_venue", "rate"),
    [
        (0, 1, 0.1),  # venue rejects only: every reject was submitted
        (5, 0, 0.5),  # half rejected at risk: 5 / 10 decided (rejected / submitted said 5 / 5 = 100%)
        (10, 0, 1.0),  # every order rejected at risk: nothing submitted (it said nothing at all, or +Inf)
        (4, 1, 0.5),  # both stages
    ],
)
def test_reject_rate_counts_orders_rejected_at_risk_which_were_never_submitted(
    reg: Registry, monkeypatch: pytest.MonkeyPatch, at_risk: int, at_venue: int, rate: float
) -> None:
    """rejected / (submitted + rejected{stage="risk"}), as job:trading_order_reject_ratio:rate5m; the NATS publisher's
    window counts (desk.rw, merged by the fleet gateway) are the same orders decided and rejected."""
    clock = [1000.0]
    monkeypatch.setattr(frames.time, "monotonic", lambda: clock[0])
    tt = TradingTelemetry(strategy="s", venue="v", registry=reg)
    b = FrameBuilder(reg)
    b.build()
    _decide(tt, 10, at_risk=at_risk, at_venue=at_venue)
    clock[0] += 1.0
    desk = b.build()["desk"]
    assert desk["reject_rate"] == rate
    assert b.reject_counts == (10, at_risk + at_venue, 1)
    assert desk["orders"] == 10 - at_risk and desk["rejects"] == at_risk + at_venue  # the counts: as counted
    tt.close()


def test_the_first_frame_has_the_reject_rate_of_what_was_decided_since_the_live_view_was_made(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live view is made at start-up and builds its first frame when the first client comes. A bot that had
    rejected 84 of 247 orders by then showed reject_rate null, window 0, on that client's page and /snapshot (a
    user's review), while the Prometheus rule had the rate; now the first frame counts from the view's making.
    A group's leader builds from merged snapshots, whose totals are not its own registry's: no seed there."""
    clock = [1000.0]
    monkeypatch.setattr(frames.time, "monotonic", lambda: clock[0])
    tt = TradingTelemetry(strategy="s", venue="v", registry=reg)
    _decide(tt, 4, at_risk=1, at_venue=0)  # before the view was made: not in its window
    b, leader = FrameBuilder(reg), FrameBuilder(reg)
    clock[0] += 10.0
    for i in range(10):
        o = tt.order_signal(f"p-{i}", "MSFT", "sell", 1, 10.0)
        if i < 2:
            o.risk_check(passed=False, reason="limit_position")
            continue
        o.submitted()
        if i < 5:
            o.rejected("venue_throttled")
    tt.flush()
    clock[0] += 20.0
    desk = b.build()["desk"]
    assert desk["reject_rate"] == 0.5 and desk["reject_window"] == 30  # 5 of 10, over the 30 s since
    assert desk["orders"] == 11 and desk["rejects"] == 6  # the counts themselves: cumulative
    desk = leader.build(snapshot=reg.snapshot(frames.FRAME_INSTRUMENTS))["desk"]
    assert desk["reject_rate"] is None and desk["reject_window"] == 0  # as before: from its first frame
    tt.close()


def test_average_entry_price_is_weighted_by_position_over_strategies(reg: Registry) -> None:
    qty, avg = reg.gauge("trading.position.quantity"), reg.gauge("trading.position.avg_price")
    qty.bind(symbol="AAPL", strategy="a").set(100)
    avg.bind(symbol="AAPL", strategy="a").set(10.0)
    qty.bind(symbol="AAPL", strategy="b").set(300)
    avg.bind(symbol="AAPL", strategy="b").set(12.0)
    qty.bind(symbol="MSFT", strategy="a").set(-2)
    avg.bind(symbol="MSFT", strategy="a").set(400.0)  # one series: as reported
    qty.bind(symbol="IBM", strategy="a").set(0)
    avg.bind(symbol="IBM", strategy="a").set(150.0)  # flat: no average entry, whatever it last reported
    syms = FrameBuilder(reg).build()["symbols"]
    assert syms["AAPL"]["avg"] == 11.5 and syms["MSFT"]["avg"] == 400.0 and "avg" not in syms["IBM"]


def test_market_data_age_per_symbol_and_stale_count(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    last = reg.gauge("trading.marketdata.last_tick")
    now = time.time()
    monkeypatch.setattr(frames, "time", SimpleNamespace(time=lambda: now, monotonic=time.monotonic,
                                                        localtime=time.localtime))  # fmt: skip
    last.bind(symbol="AAPL").set(now - 0.3)
    last.bind(symbol="XOM").set(now - 12.5)
    state = FrameBuilder(reg).build()
    assert state["symbols"]["AAPL"]["age"] == 0 and state["symbols"]["XOM"]["age"] == 12
    assert 0.3 <= state["desk"]["md_age"] < 1.0 and state["desk"]["stale"] == 1


def test_an_unchanged_age_is_not_in_the_delta(reg: Registry) -> None:
    last = reg.gauge("trading.marketdata.last_tick").bind(symbol="AAPL")
    last.set(time.time())
    b = FrameBuilder(reg)
    s1 = b.build()
    last.set(time.time())  # a tick 0.0x s later: same whole-second age
    assert "AAPL" not in delta(s1, b.build())["symbols"]


def test_working_orders_follow_the_order_events() -> None:
    w = WorkingOrders()
    w.apply("order", _order("a", trace_id="t" * 32, strategy="s", venue="v"), 6.0)
    w.apply("order", _order("b"), 6.0)
    w.apply("order", _order("c"), 6.0)
    w.apply("order", _order("d"), 6.0)
    w.apply("fill", {"order_id": "a", "filled_qty": 40, "leaves": 60}, 7.0)
    w.apply("fill", {"order_id": "b", "filled_qty": 100, "leaves": 0.0}, 7.0)
    w.apply("reject", {"order_id": "c", "reason": "venue"}, 7.0)
    w.apply("done", {"order_id": "d", "reason": "expired"}, 7.0)
    w.apply("fill", {"order_id": "unknown", "filled_qty": 1, "leaves": 1}, 7.0)  # before this view started
    rows = w.frame(10)
    assert list(rows) == ["a"]
    assert rows["a"] == {
        "s": "AAPL", "sd": "buy", "q": 100, "f": 40, "p": 10.0, "t": 5.0, "tr": "t" * 32, "st": "s", "v": "v"
    }  # fmt: skip
    w.apply("cancel", {"order_id": "a"}, 8.0)
    assert len(w) == 0


def test_working_orders_are_bounded_and_the_frame_lists_the_oldest() -> None:
    w = WorkingOrders(capacity=3)
    for i in range(5):
        w.apply("order", _order(f"o{i}", submitted_at=float(i)), float(i))
    assert len(w) == 3 and w.dropped == 2
    assert list(w.frame(2)) == ["o2", "o3"]


def test_delta_sends_changed_working_rows_whole_and_removed_ones_as_null(reg: Registry) -> None:
    w = WorkingOrders()
    b = FrameBuilder(reg)
    w.apply("order", _order("a"), 1.0)
    w.apply("order", _order("b"), 1.0)
    s1 = b.build(None, w)
    w.apply("fill", {"order_id": "a", "filled_qty": 10, "leaves": 90}, 2.0)
    w.apply("cancel", {"order_id": "b"}, 2.0)
    w.apply("order", _order("c"), 2.0)
    d = delta(s1, b.build(None, w))
    assert d["working"] == {"a": {**s1["working"]["a"], "f": 10}, "b": None, "c": w.frame(9)["c"]}
    assert "working" not in delta(s1, s1)


def test_the_hub_lists_working_orders_from_the_real_trading_layer() -> None:
    tt = TradingTelemetry(strategy="momentum", venue="paper")
    hub = LiveHub()
    rest = tt.order_signal("rest", "AAPL", "buy", 100, price=10.0)
    rest.submitted()
    filled = tt.order_signal("filled", "MSFT", "sell", 10)
    filled.submitted()
    filled.fill(10, 400.0)
    tt.flush()
    hub._step()
    state = hub.snapshot()
    assert list(state["working"]) == ["rest"]
    row = state["working"]["rest"]
    assert row["s"] == "AAPL" and row["q"] == 100 and row["tr"] == rest.trace_id and row["st"] == "momentum"
    assert state["desk"]["working"] == 1 and state["desk"]["open"] == 1
    rest.cancelled("user")
    tt.flush()
    hub._step()
    assert hub.snapshot()["working"] == {} and hub.snapshot()["desk"]["open"] == 0
    tt.close()


def test_the_history_carries_the_total_pnl_for_the_chart(reg: Registry) -> None:
    reg.gauge("trading.pnl.realized").bind(symbol="AAPL").set(-12.5)
    hub = LiveHub(reg, events.EventBus())
    hub._step()
    assert json.loads(hub.history_json())["frames"][-1]["total"] == -12.5


def test_the_history_of_a_symbols_pnl_has_no_binary_noise(reg: Registry) -> None:
    """The chart's per-symbol P&L is realized + unrealized: 0.1 + 0.2 read 0.30000000000000004 in /history (a user
    reporting Decimal('0.1') and Decimal('0.2')), while /snapshot said 0.3."""
    reg.gauge("trading.pnl.realized").bind(symbol="AAPL", strategy="s").set(0.1)
    reg.gauge("trading.pnl.unrealized").bind(symbol="AAPL", strategy="s").set(0.2)
    hub = LiveHub(reg, events.EventBus())
    hub._step()
    point = json.loads(hub.history_json())["frames"][-1]
    assert point["pnl"] == {"AAPL": 0.3} and point["total"] == 0.3


def test_link_targets_are_the_ones_compose_provisions() -> None:
    """The page's links name the Jaeger datasource and the order dashboard by uid: they must exist in compose."""
    ds = yaml.safe_load((COMPOSE / "provisioning" / "datasources" / "datasources.yml").read_text())
    jaeger = [d for d in ds["datasources"] if d["uid"] == JAEGER_DATASOURCE_UID]
    assert len(jaeger) == 1 and jaeger[0]["type"] == "jaeger"
    dashboards = [json.loads(p.read_text()) for p in (COMPOSE / "dashboards").glob("*.json")]
    (order,) = [d for d in dashboards if d.get("uid") == ORDER_DASHBOARD_UID]
    variables = {v["name"] for v in order["templating"]["list"]}
    assert {"job", "order_id", "trace_id"} <= variables


def test_the_page_calls_only_every_fill_fills() -> None:
    """The header's "fills" is desk.fills, every fill (241 in a user's review); the positions, services and strategies
    tables' column of ``fill`` counts orders filled completely (133 there, summed over the rows) and was headed
    "fills" too, so the page showed two different numbers under one name."""
    page = (resources.files("tradeobs_agent.live") / "static" / "index.html").read_text()
    assert '<div class="kl" id="kpi-fills-label">fills</div>' in page  # "fills since 12:03:11" once a frame says
    assert re.search(r'<th data-sort="fill" title="orders filled completely[^"]*">filled</th>', page)
    for table in ("services", "strategies"):
        m = re.search(rf'<table id="{table}"[^>]*>(.*?)</thead>', page, re.S)
        assert m is not None and ">fills<" not in m.group(1) and ">filled</th>" in m.group(1), table


def test_desk_pnl_and_an_average_over_strategies_keep_their_cents_and_pips(reg: Registry) -> None:
    """The desk's P&L totals and an average entry over strategies were rounded to 6 significant digits: a book
    up 1,234,567.89 showed P&L 1,234,570 above rows that add up to the cent, and an EUR/USD average entry of
    1.101996 showed 1.102 (a user's review: the header's -1,066.97 under rows adding up to -1,066.9713). 12 digits
    keep both, and still drop a sum's binary noise. The fleet view keeps them too."""
    from tradeobs_agent.live.fleet import FleetView
    from tradeobs_agent.live.frames import FRAME_INSTRUMENTS

    tt = TradingTelemetry(strategy="a", venue="v", registry=reg)
    tt2 = TradingTelemetry(strategy="b", venue="v", registry=reg)
    tt.pnl("SPY", 1_234_000.0, 567.88)
    tt.pnl("QQQ", 0.0, 0.01)
    tt.position("EURUSD", 100_000, 1.1021, avg_price=1.101993)
    tt2.position("EURUSD", 300_000, 1.1021, avg_price=1.101997)
    tt.flush()
    tt2.flush()
    for state in (FrameBuilder(reg).build(), FrameBuilder(reg).build(snapshot=reg.snapshot(FRAME_INSTRUMENTS))):
        account = state["account"]
        assert (account["pnl"], account["rpnl"], account["upnl"]) == (1_234_567.89, 1_234_000.0, 567.89)
        assert state["symbols"]["EURUSD"]["avg"] == 1.101996
    view = FleetView()
    view.update(
        {"service": "s", "instance": "i", "seq": 1, "ts": 1.0, "state": FrameBuilder(reg).build()}, received=1.0
    )
    fleet = view.build(now=1.0)
    assert fleet["account"]["pnl"] == 1_234_567.89 and fleet["symbols"]["EURUSD"]["avg"] == 1.101996
    tt.close()
    tt2.close()


def test_a_wall_clock_stepped_back_across_midnight_keeps_the_days_pnl(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NTP steps the clock back 60 s at 00:00:30: the local day read 'yesterday' again. The day's P&L restarted at
    the step (the 20 made since midnight gone from "P&L today", ``day_since`` 23:59:30 of the day before) and once
    more at the next midnight. The day never goes back by a step of minutes."""
    rp = reg.gauge("trading.pnl.realized").bind(symbol="AAPL")
    rp.set(50.0)
    b = FrameBuilder(reg)
    midnight = time.mktime((*time.localtime(time.time() + 86_400)[:3], 0, 0, 0, 0, 0, -1))
    clock = [midnight - 0.5]
    monkeypatch.setattr(frames.time, "time", lambda: clock[0])
    b.build()
    clock[0] = midnight + 0.1
    b.build()  # the new day starts at 50
    clock[0] = midnight + 30
    rp.set(70.0)
    assert b.build()["account"]["pnl_day"] == 20.0
    clock[0] = midnight - 30  # stepped back 60 s
    account = b.build()["account"]
    assert account["pnl_day"] == 20.0 and account["day_full"] is True
    assert account["day_since"] == round(midnight + 0.1, 3)
    clock[0] = midnight + 1  # midnight again: not a new day
    rp.set(75.0)
    account = b.build()["account"]
    assert account["pnl_day"] == 25.0 and account["day_since"] == round(midnight + 0.1, 3)
    clock[0] = midnight + 86_400 + 0.2  # the next midnight is
    assert b.build()["account"]["pnl_day"] == 0.0


def test_a_clock_corrected_back_by_hours_restarts_the_day(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock a day ahead, corrected: the day read before was wrong, so the day's P&L starts again at the correction
    (kept, it would have counted two days' P&L as one until the wrong day's end)."""
    rp = reg.gauge("trading.pnl.realized").bind(symbol="AAPL")
    rp.set(50.0)
    b = FrameBuilder(reg)
    noon = time.mktime((*time.localtime(time.time() + 86_400)[:3], 12, 0, 0, 0, 0, -1))
    clock = [noon]
    monkeypatch.setattr(frames.time, "time", lambda: clock[0])
    b.build()
    rp.set(60.0)
    clock[0] = noon - 86_400
    account = b.build()["account"]
    assert account["pnl_day"] == 0.0 and account["day_since"] == round(noon - 86_400, 3)
