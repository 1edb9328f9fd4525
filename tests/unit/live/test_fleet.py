"""FleetView (the gateway's merge of instance frames) and fleet_delta; the publisher's frame extras."""

from __future__ import annotations

from typing import Any

from tradeobs_agent.live.fleet import FleetView, fleet_delta
from tradeobs_agent.live.frames import FrameBuilder, merged_quantile
from tradeobs_agent.live.nats import state_extras
from tradeobs_agent.metrics import Registry


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


def test_the_number_of_instances_is_bounded_and_what_is_left_out_is_counted() -> None:
    reg = Registry()
    view = FleetView(max_instances=2)
    assert view.update(_instance_frame(reg, "a", "1"), received=1.0)
    assert view.update(_instance_frame(reg, "a", "2"), received=1.0)
    assert not view.update(_instance_frame(reg, "a", "3"), received=1.0) and view.ignored == 1
    assert view.update(_instance_frame(reg, "a", "2", seq=2), received=2.0)  # known ones still update
    assert view.build(now=2.0)["services"]["a"]["instances"] == 2
