"""FleetView (the gateway's merge of instance frames) and fleet_delta; the publisher's frame extras."""

from __future__ import annotations

from typing import Any

import pytest

from tests._util import apply_frame, without_nulls
from tradeobs_agent.live.fleet import FleetView, fleet_delta
from tradeobs_agent.live.frames import WORKING_IN_FRAME, FrameBuilder, merged_quantile
from tradeobs_agent.live.nats import desk_extras, state_extras
from tradeobs_agent.metrics import Registry
from tradeobs_agent.trading import TradingTelemetry


def _instance_frame(reg: Registry, service: str, instance: str, seq: int = 1, ts: float = 100.0) -> dict[str, Any]:
    """What an agent publishes (the frame and the extras from one snapshot), built from a real registry."""
    snap = reg.snapshot(prepare=False)
    hist, strategies = state_extras(snap)
    return {
        "service": service,
        "instance": instance,
        "seq": seq,
        "ts": ts,
        "state": FrameBuilder(reg).build({"export": "ok"}),
        "hist": hist,
        "strategies": strategies,
        "pub": {"dropped_frames": 2, "dropped_events": 1},
    }


def _trading(reg: Registry, strategy: str, fills: int, pos: float, lat: list[float], equity: float) -> None:
    reg.gauge("trading.marketdata.price").bind(symbol="AAPL").set(190.0)
    reg.gauge("trading.position.quantity").bind(symbol="AAPL", strategy=strategy).set(pos)
    reg.gauge("trading.pnl.realized").bind(symbol="AAPL", strategy=strategy).set(10.1)
    reg.counter("trading.orders.filled").bind(symbol="AAPL", side="buy", strategy=strategy).add(fills)
    reg.gauge("trading.equity").bind(strategy=strategy).set(equity)
    reg.gauge("trading.drawdown").bind(strategy=strategy).set(0.02 if strategy == "b" else 0.01)
    h = reg.histogram("trading.order.submit_to_fill.latency", unit="s", bounds=[0.001, 0.01, 0.1])
    for v in lat:
        h.bind(symbol="AAPL", strategy=strategy).record(v)


def test_totals_add_up_over_instances_and_services() -> None:
    a, b, c = Registry(), Registry(), Registry()
    _trading(a, "a", 3, 100, [0.002] * 10, 1e6)
    _trading(b, "b", 2, -40, [0.05] * 10, 5e5)
    _trading(c, "a", 1, 10, [0.002], 2e5)
    view = FleetView()
    assert view.update(_instance_frame(a, "alpha", "i1"), received=100.0)
    assert view.update(_instance_frame(b, "alpha", "i2"), received=100.0)
    assert view.update(_instance_frame(c, "beta", "i3"), received=100.0)
    view.gateway = {"clients": 7, "nats": 1}  # the gateway's own stream clients, not the agents' own streams'
    st = view.build(now=100.5)
    assert st["health"]["clients"] == 7 and st["health"]["gateway"] == {"clients": 7, "nats": 1}
    assert st["symbols"]["AAPL"]["fill"] == 6 and st["symbols"]["AAPL"]["pos"] == 70
    assert st["symbols"]["AAPL"]["rpnl"] == 30.3  # 10.1 * 3 without binary noise
    assert st["account"]["equity"] == 1.7e6 and st["account"]["drawdown"] == 0.02  # the worst, not a sum
    alpha, beta = st["services"]["alpha"], st["services"]["beta"]
    assert (alpha["instances"], alpha["fill"], alpha["equity"], alpha["dropped"]) == (2, 5, 1.5e6, 6)
    assert (beta["instances"], beta["fill"]) == (1, 1)
    assert st["strategies"]["alpha/a"]["fill"] == 3 and st["strategies"]["alpha/b"]["fill"] == 2
    assert st["strategies"]["beta/a"]["fill"] == 1
    assert st["health"]["services"] == 2 and st["health"]["instances"] == 3 and st["health"]["export"] == "ok"


def test_fleet_latency_is_exact_from_merged_buckets() -> None:
    a, b = Registry(), Registry()
    _trading(a, "a", 1, 1, [0.002] * 90, 1.0)
    _trading(b, "b", 1, 1, [0.05] * 10, 1.0)
    view = FleetView()
    view.update(_instance_frame(a, "alpha", "i1"), received=1.0)
    view.update(_instance_frame(b, "beta", "i2"), received=1.0)
    st = view.build(now=1.0)
    counts = [0, 90, 10, 0]  # the two instances' buckets, added
    expect = merged_quantile((0.001, 0.01, 0.1), counts, 0.002, 0.05, 0.99)
    assert st["latency"]["submit_to_fill"]["p99"] == float(f"{expect:.6g}")
    assert st["services"]["beta"]["p99"] == 0.05 and st["services"]["alpha"]["p99"] == 0.002


def test_an_older_frame_is_ignored_a_silent_instance_goes_stale_then_leaves() -> None:
    reg = Registry()
    _trading(reg, "a", 1, 1, [0.002], 1.0)
    view = FleetView(stale_after=5.0, expire_after=60.0)
    assert view.update(_instance_frame(reg, "alpha", "i1", seq=5), received=10.0)
    assert not view.update(_instance_frame(reg, "alpha", "i1", seq=4), received=11.0)  # re-delivered
    assert not view.update({"service": "x"}, received=11.0) and view.ignored == 1  # malformed: counted
    assert view.build(now=12.0)["services"]["alpha"]["stale"] == 0
    st = view.build(now=16.0)
    assert st["services"]["alpha"]["stale"] == 1 and st["health"]["stale"] == 1
    assert view.build(now=71.0)["services"] == {} and view.instances == 0


def test_data_ts_is_the_oldest_new_frame_and_stays_until_newer_ones() -> None:
    reg = Registry()
    view = FleetView()
    view.update(_instance_frame(reg, "a", "1", ts=100.2), received=100.25)
    view.update(_instance_frame(reg, "b", "2", ts=100.1), received=100.25)
    view.build(now=100.3)
    assert view.data_ts == 100.1
    view.build(now=100.4)
    assert view.data_ts == 100.1  # nothing new: the data is as old as it was


def test_fleet_delta_sends_changed_fields_of_rows_and_removed_rows_as_null() -> None:
    prev = {"symbols": {}, "services": {"a": {"ord": 1, "fill": 1}, "b": {"ord": 2}}, "strategies": {}}
    cur = {"symbols": {}, "services": {"a": {"ord": 2, "fill": 1}, "c": {"ord": 0}}, "strategies": {}}
    d = fleet_delta(prev, cur)
    assert d["services"] == {"a": {"ord": 2}, "c": {"ord": 0}, "b": None}
    assert "strategies" not in d
    assert FleetView.delta(cur, cur) == {"symbols": {}}


def test_an_expired_instance_takes_its_symbols_and_fields_out_of_the_next_delta() -> None:
    """The gateway's delta says what left with an instance past ``expire_after``: a symbol only it traded, a field
    only it reported (the other instance reports no average entry), a service row's field, as ``null``; a client
    that applies the delta then has the gateway's state, not the expired instance's values until the next full
    frame."""
    a, b = Registry(), Registry()
    _trading(a, "a", 3, 100, [0.002], 1e6)
    _trading(b, "b", 2, 50, [0.002], 5e5)
    b.gauge("trading.position.avg_price").bind(symbol="AAPL", strategy="b").set(187.5)
    b.gauge("trading.marketdata.price").bind(symbol="TSLA").set(250.0)
    b.gauge("trading.risk.kill_switch.engaged").bind(strategy="b").set(0)
    view = FleetView(stale_after=5.0, expire_after=60.0)
    view.update(_instance_frame(a, "alpha", "i1"), received=10.0)
    view.update(_instance_frame(b, "alpha", "i2"), received=0.0)  # i2 is silent from here on
    view.update(_instance_frame(a, "alpha", "i1", seq=2), received=55.0)
    s1 = view.build(now=59.0)
    assert sorted(s1["symbols"]) == ["AAPL", "TSLA"] and s1["symbols"]["AAPL"]["avg"] == 187.5
    assert s1["services"]["alpha"]["kill_switch"] == 0
    client = apply_frame(None, {"type": "full", **s1})
    s2 = view.build(now=61.0)  # i2 has expired
    d = fleet_delta(s1, s2)
    assert d["symbols"]["TSLA"] is None
    assert d["symbols"]["AAPL"]["avg"] is None and d["symbols"]["AAPL"]["pos"] == 100
    assert d["services"]["alpha"]["kill_switch"] is None and d["strategies"]["alpha/b"] is None
    client = apply_frame(client, {"type": "delta", **d})
    assert without_nulls(client) == without_nulls(s2)
    assert "TSLA" not in client["symbols"] and "avg" not in client["symbols"]["AAPL"]


def test_the_number_of_instances_is_bounded_and_what_is_left_out_is_counted() -> None:
    reg = Registry()
    view = FleetView(max_instances=2)
    assert view.update(_instance_frame(reg, "a", "1"), received=1.0)
    assert view.update(_instance_frame(reg, "a", "2"), received=1.0)
    assert not view.update(_instance_frame(reg, "a", "3"), received=1.0) and view.ignored == 1
    assert view.update(_instance_frame(reg, "a", "2", seq=2), received=2.0)  # known ones still update
    assert view.build(now=2.0)["services"]["a"]["instances"] == 2


def _frame(service: str, instance: str, state: dict[str, Any], desk: dict[str, Any], seq: int = 1) -> dict[str, Any]:
    """An instance frame with known values (what an agent publishes: its state and the publisher's desk extras)."""
    return {"service": service, "instance": instance, "seq": seq, "ts": 100.0, "state": state, "desk": desk}


def _order(t: float, sym: str = "AAPL") -> dict[str, Any]:
    return {"s": sym, "sd": "buy", "q": 10, "f": 0, "p": 100.0, "t": t, "tr": None, "st": "s", "v": "paper"}


_ALPHA = {
    "symbols": {"AAPL": {"pos": 100, "avg": 10.0, "age": 1}, "MSFT": {"pos": -50, "avg": 20.0, "age": 7}},
    "account": {"pnl": 100.0, "rpnl": 60.0, "upnl": 40.0, "pnl_day": 30.0, "day_since": 1000.0, "day_full": True}
    | {"gross": 5000.0, "net": 1000.0},
    "desk": {"open": 3, "orders": 1000, "fills": 990, "rejects": 10, "reasons": {"limit": 6, "price": 4}}
    | {"counts_since": 900.0}
    | {"reject_rate": 0.01, "reject_window": 300, "md_age": 0.4, "stale": 1, "working": 2, "limits": {"gross": 0.5}},
    "working": {"c-1": _order(50.0), "c-2": _order(52.0, "MSFT")},
}
_BETA = {
    "symbols": {"AAPL": {"pos": -300, "avg": 12.0, "age": 6}, "NVDA": {"pos": 0, "avg": 5.0, "age": 9}},
    "account": {"pnl": -20.0, "rpnl": -5.0, "upnl": -15.0, "pnl_day": -10.0, "day_since": 2000.0, "day_full": False}
    | {"gross": 3000.0, "net": -2000.0},
    "desk": {"open": 1, "orders": 10, "fills": 5, "rejects": 5, "reasons": {"limit": 1, "venue": 4}}
    | {"counts_since": 1900.0}
    | {"reject_rate": 0.5, "reject_window": 120, "md_age": 6.0, "stale": 2, "working": 1, "limits": {"gross": 0.9}},
    "working": {"c-1": _order(51.0)},  # the same client order id as alpha's first order
}


def _two_services() -> FleetView:
    view = FleetView()
    a_desk = {"rw": [1000, 10, 300], "limits": {"gross": 0.5}, "gross": {"AAPL": 100, "MSFT": 50}}
    b_desk = {"rw": [10, 5, 120], "limits": {"gross": 0.9}, "gross": {"AAPL": 300, "NVDA": 0}}
    assert view.update(_frame("alpha", "i1", _ALPHA, a_desk), received=100.0)
    assert view.update(_frame("beta", "i2", _BETA, b_desk), received=100.0)
    return view


def test_account_and_desk_of_two_services_merge_to_exact_fleet_values() -> None:
    st = _two_services().build(now=100.1)
    assert st["account"] == {
        "pnl": 80.0,
        "rpnl": 55.0,
        "upnl": 25.0,
        "pnl_day": 20.0,
        "day_since": 2000.0,  # the latest start: the summed day P&L covers at least this
        "day_full": False,
        "gross": 8000.0,
        "net": -1000.0,
    }
    desk = st["desk"]
    assert (desk["open"], desk["orders"], desk["fills"], desk["rejects"], desk["working"]) == (4, 1010, 995, 15, 3)
    assert desk["reasons"] == {"limit": 7, "price": 4, "venue": 4}
    assert (desk["counts_since"], desk["counts_since_last"]) == (900.0, 1900.0)  # the earliest start, and the latest
    assert desk["limits"] == {"alpha/gross": 0.5, "beta/gross": 0.9}  # the same limit name, two services
    assert desk["md_age"] == 6.0  # the worst feed
    assert desk["stale"] == 3  # alpha's MSFT, beta's AAPL and NVDA: the union
    syms = st["symbols"]
    # alpha long 100 at 10, beta short 300 at 12: the net short 200 has no single entry price (which of the fills
    # offset which is the broker's matching); before, 11.5 = (10 * 100 + 12 * 300) / 400, weighted by |position|
    assert "avg" not in syms["AAPL"] and syms["AAPL"]["pos"] == -200
    assert syms["MSFT"]["avg"] == 20.0 and syms["NVDA"]["avg"] == 5.0  # one instance each: as reported
    assert syms["AAPL"]["age"] == 1 and syms["NVDA"]["age"] == 9  # the freshest


def test_the_fleet_reject_rate_is_recomputed_from_counts_not_averaged() -> None:
    desk = _two_services().build(now=100.1)["desk"]
    # 15 rejected of 1,010 sent over the fleet; the mean of the two rates (0.01, 0.5) would say 25.5%.
    assert desk["reject_rate"] == float(f"{15 / 1010:.6g}") and desk["reject_rate"] < 0.015
    assert desk["reject_window"] == 300
    quiet = FleetView()  # nothing sent in any window: no rate, as an agent shows it
    quiet.update(_frame("alpha", "i1", _ALPHA, {"rw": [0, 0, 30]}), received=1.0)
    assert quiet.build(now=1.0)["desk"]["reject_rate"] is None


def test_the_fleets_counts_say_since_when_and_that_an_instance_started_later() -> None:
    """Each instance's counts are its own since it started (``desk.counts_since``); the fleet's sums hold nothing
    before the earliest start (``counts_since``), and an instance that restarted at noon has none of its morning in
    them, which ``counts_since_last`` says. One instance, or instances started together: no ``counts_since_last``."""
    early, late = Registry(), Registry()
    late.start_ns = early.start_ns + 3 * 3600 * 10**9  # restarted three hours after the other started
    for reg, strategy in ((early, "a"), (late, "b")):
        _trading(reg, strategy, 2, 10, [0.002], 1e5)
    view = FleetView()
    assert view.update(_instance_frame(early, "alpha", "i1"), received=100.0)
    alone = view.build(now=100.0)["desk"]
    assert alone["counts_since"] == round(early.start_ns / 1e9, 3) and "counts_since_last" not in alone
    assert view.update(_instance_frame(late, "beta", "i2"), received=100.0)
    desk = view.build(now=100.0)["desk"]
    assert desk["fills"] == 4
    assert (desk["counts_since"], desk["counts_since_last"]) == (
        round(early.start_ns / 1e9, 3),
        round(late.start_ns / 1e9, 3),
    )


def test_the_fleet_reject_rate_counts_orders_rejected_at_risk_which_were_never_submitted() -> None:
    """Through what agents publish (their frame builders' window counts, desk.rw): alpha sent 10 orders, 1 rejected by
    the venue; beta's 10 were all rejected by its risk check, none submitted. The fleet rejected 11 of 20 decided
    (rejected / submitted said 11 / 10, above 100%), and beta alone is 100%, not "nothing sent"."""
    frames_, states = [], []
    for svc, at_risk, at_venue in (("alpha", 0, 1), ("beta", 10, 0)):
        reg = Registry()
        tt = TradingTelemetry(strategy="s", venue="v", registry=reg)
        builder = FrameBuilder(reg)
        builder.build()  # the window starts before any order
        for i in range(10):
            o = tt.order_signal(f"{svc}-{i}", "AAPL", "buy", 10, 10.0)
            if i < at_risk:
                o.risk_check(passed=False, reason="kill_switch")
                continue
            o.submitted()
            if i < at_venue:
                o.rejected("venue_throttled")
            else:
                o.fill(10, 10.0)
        tt.flush()
        state = builder.build()
        states.append(state)
        frames_.append(_frame(svc, "i1", state, desk_extras(reg.snapshot(prepare=False), builder)))
        tt.close()
    assert [s["desk"]["reject_rate"] for s in states] == [0.1, 1.0]
    assert [f["desk"]["rw"][:2] for f in frames_] == [[10, 1], [10, 10]]
    view = FleetView()
    for f in frames_:
        view.update(f, received=1.0)
    desk = view.build(now=1.0)["desk"]
    assert desk["reject_rate"] == float(f"{11 / 20:.6g}")
    assert desk["orders"] == 10 and desk["rejects"] == 11


def test_working_orders_of_two_services_with_the_same_id_do_not_collide() -> None:
    working = _two_services().build(now=100.1)["working"]
    assert list(working) == ["alpha/i1/c-1", "beta/i2/c-1", "alpha/i1/c-2"]  # oldest first
    assert working["alpha/i1/c-1"]["id"] == working["beta/i2/c-1"]["id"] == "c-1"
    assert (working["alpha/i1/c-1"]["sv"], working["beta/i2/c-1"]["sv"]) == ("alpha", "beta")
    assert working["alpha/i1/c-2"]["s"] == "MSFT"


def test_working_orders_are_the_oldest_n_and_a_removed_one_is_sent_as_null() -> None:
    def state(orders: dict[str, Any]) -> dict[str, Any]:
        return {"symbols": {}, "desk": {"working": len(orders)}, "working": orders}

    a = {f"a{i}": _order(float(2 * i)) for i in range(150)}
    b = {f"b{i}": _order(float(2 * i + 1)) for i in range(150)}
    view = FleetView()
    view.update(_frame("alpha", "i1", state(a), {}), received=1.0)
    view.update(_frame("beta", "i2", state(b), {}), received=1.0)
    st1 = view.build(now=1.0)
    assert len(st1["working"]) == WORKING_IN_FRAME and st1["desk"]["working"] == 300
    assert [r["t"] for r in st1["working"].values()] == [float(t) for t in range(WORKING_IN_FRAME)]
    del a["a0"]  # alpha's oldest order filled
    view.update(_frame("alpha", "i1", state(a), {}, seq=2), received=1.1)
    st2 = view.build(now=1.1)
    d = fleet_delta(st1, st2)
    assert d["working"] == {"alpha/i1/a0": None, "alpha/i1/a100": st2["working"]["alpha/i1/a100"]}
    assert d["desk"] == {"working": 299}


@pytest.mark.parametrize("rev", [100, -100])
def test_published_desk_extras_key_limits_by_strategy_and_weigh_avg_over_strategies(rev: int) -> None:
    a, b = Registry(), Registry()
    for reg, strategy, pos, avg in ((a, "mom", 100, 10.0), (a, "rev", rev, 14.0), (b, "mom", 200, 11.0)):
        reg.gauge("trading.position.quantity").bind(symbol="AAPL", strategy=strategy).set(pos)
        reg.gauge("trading.position.avg_price").bind(symbol="AAPL", strategy=strategy).set(avg)
        reg.gauge("trading.risk.limit.utilization").bind(strategy=strategy, limit="gross").set(abs(pos) / 1000)
    frames = []
    for reg, svc in ((a, "alpha"), (b, "beta")):
        builder = FrameBuilder(reg)
        state = builder.build()
        frames.append(_frame(svc, "i", state, desk_extras(reg.snapshot(prepare=False), builder)))
    assert frames[1]["state"]["desk"]["limits"] == {"gross": 0.2}  # one strategy: the agent's own key drops it
    view = FleetView()
    for f in frames:
        view.update(f, received=1.0)
    st = view.build(now=1.0)
    assert st["desk"]["limits"] == {"alpha/mom/gross": 0.1, "alpha/rev/gross": 0.1, "beta/mom/gross": 0.2}
    if rev > 0:  # alpha's avg is 12 over 200 shares, beta's 11 over 200: as one agent with all three strategies
        assert st["symbols"]["AAPL"]["avg"] == (10.0 * 100 + 14.0 * 100 + 11.0 * 200) / 400
    else:  # alpha long 100 and short 100 (no avg of its own, net 0): as one agent with all three, none (before: 11.5)
        assert "avg" not in st["symbols"]["AAPL"] and st["symbols"]["AAPL"]["pos"] == 200


def test_an_instance_that_stopped_is_stale_whatever_the_gateways_wall_clock_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ages were read on the gateway's wall clock: stepped back 10 minutes, an instance that had stopped sending
    read as live for 10 more minutes; stepped forward, every instance read as stale (or was dropped) at once."""
    from types import SimpleNamespace

    from tradeobs_agent.live import fleet

    clock = {"wall": 1_800_000_000.0, "mono": 5_000.0}
    monkeypatch.setattr(fleet, "time", SimpleNamespace(time=lambda: clock["wall"], monotonic=lambda: clock["mono"]))
    view = FleetView(stale_after=5.0, expire_after=60.0)
    view.update({"service": "a", "instance": "1", "seq": 1, "ts": clock["wall"], "state": {"symbols": {}}})
    view.update({"service": "b", "instance": "1", "seq": 1, "ts": clock["wall"], "state": {"symbols": {}}})
    clock["wall"] -= 600  # NTP steps the gateway's clock back; "a" has stopped, "b" goes on
    for _ in range(10):
        clock["wall"] += 1
        clock["mono"] += 1
        view.update({"service": "b", "instance": "1", "seq": _ + 2, "ts": clock["wall"], "state": {"symbols": {}}})
    services = view.build()["services"]
    assert services["a"]["stale"] == 1 and services["a"]["age"] == 10
    assert services["b"]["stale"] == 0
    assert not view.complete(clock["wall"] + 1) and view.complete(clock["wall"])  # "a" stale: not waited for
    clock["wall"] += 3600  # forward: "b" still sends, is neither stale nor dropped
    clock["mono"] += 1
    view.update({"service": "b", "instance": "1", "seq": 99, "ts": clock["wall"], "state": {"symbols": {}}})
    clock["mono"] += 1
    services = view.build()["services"]
    assert services["b"]["stale"] == 0 and "a" in services


def test_the_fleet_adds_up_the_instances_notionals_multiplied_by_their_contracts() -> None:
    """Two instances of a futures service, each declaring ES (50) and CL (1,000) as its start-up code does: one
    long 2 ES and 1 CL (marked below zero), one short 3 ES. The gateway adds what each publishes, the notionals
    their agents multiplied: ES -1 x 5,000 x 50 = -250,000 (before: -5,000) and a desk gross of 1,287,630 (before:
    25,037.63)."""
    a, b = Registry(), Registry()
    ta = TradingTelemetry(strategy="index", venue="cme", registry=a)
    tb = TradingTelemetry(strategy="index", venue="cme", registry=b)
    for tt in (ta, tb):
        tt.instrument("ESZ6", multiplier=50)
        tt.instrument("CLK0", multiplier=1000)
    ta.position("ESZ6", 2, 5000.0, 4990.0)
    ta.position("CLK0", 1, -37.63, 18.27)
    tb.position("ESZ6", -3, 5000.0, 5010.0)
    ta.flush()
    view = FleetView()
    assert view.update(_instance_frame(a, "futures", "i1"), received=100.0)
    assert view.update(_instance_frame(b, "futures", "i2"), received=100.0)
    st = view.build(now=100.5)
    cl = 1 * -37.63 * 1000
    assert st["symbols"]["ESZ6"]["ntl"] == -250_000.0 and st["symbols"]["CLK0"]["ntl"] == cl
    assert st["account"]["gross"] == 500_000.0 - cl + 750_000.0
    assert st["account"]["net"] == 500_000.0 + cl - 750_000.0
    assert st["strategies"]["futures/index"]["ntl"] == -250_000.0 + cl
    for tt in (ta, tb):
        tt.close()
