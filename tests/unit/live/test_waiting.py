"""The live frame's orders waiting for the venue and the trading loop's stall (``desk.unacked``, ``unacked_age``,
``stall``, ``stall_pid``; the fleet's ``stall_at``).

Before, ``trading.orders.unacknowledged``, ``trading.orders.oldest_unacknowledged.age`` and
``trading.eventloop.stall`` showed in Prometheus, the alerts and the runbook only: the live page, where the trader
looks during the day, said nothing of an order stuck in "sent" or of a loop that had stopped. The frame reads the
same gauges the other readers read, and a one-process hub collects once a second (COLLECT_EVERY), so it does not
show the last scrape's values (10 s and more old, or none at all without a scrape).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from tradeobs_agent import trading
from tradeobs_agent.live import frames
from tradeobs_agent.live.fleet import FleetView
from tradeobs_agent.live.frames import FrameBuilder
from tradeobs_agent.live.hub import LiveHub
from tradeobs_agent.metrics import Part, Registry, merge

from ..conftest import Mono, workers_with_orders_waiting


def _desk(hub: LiveHub, second_on: bool = True) -> dict[str, Any]:
    """The next frame's desk; ``second_on``: a second after the hub's last collection (it collects for this one)."""
    if second_on:
        hub._collected_at -= frames.COLLECT_EVERY
    hub._step()
    assert hub._state is not None
    return hub._state["desk"]


def test_a_one_process_hub_shows_orders_waiting_for_the_venue_without_a_scrape(mono: Mono) -> None:
    reg = Registry()
    tt = trading.TradingTelemetry(strategy="mm", venue="X", registry=reg)
    hub = LiveHub(reg)
    assert "unacked" not in _desk(hub)  # no order yet: no series, nothing said
    hung = tt.order_signal("hung", "AAPL", "buy", 10)
    hung.submitted()  # sent at 5000, never answered
    mono.now += 12
    lost = tt.order_signal("lost", "MSFT", "sell", 5)
    lost.submitted()
    mono.now += 30
    desk = _desk(hub)
    assert (desk["unacked"], desk["unacked_age"]) == (2, 42.0)  # no Prometheus, no export ran
    hung.acked("v-1")
    mono.now += 1
    desk = _desk(hub)
    assert (desk["unacked"], desk["unacked_age"]) == (1, 31.0)  # the oldest answered: the next one's age
    lost.done()
    desk = _desk(hub)
    assert (desk["unacked"], desk["unacked_age"]) == (0, 0.0)
    tt.close()
    hub.stop()


def test_a_worker_group_sums_the_count_keeps_the_oldest_age_and_the_most_stalled_worker(mono: Mono) -> None:
    regs = workers_with_orders_waiting(mono)
    # each worker's own loop: the gauge as its collect hook sets it (the loop watch itself: test_loopwatch.py)
    regs[0].gauge("trading.eventloop.stall", aggregation="pid").bind().set(0.0)
    regs[1].gauge("trading.eventloop.stall", aggregation="pid").bind().set(47.26)
    merged = merge([Part(reg.snapshot(prepare=False), pid, True) for pid, reg in zip((4101, 4102), regs, strict=True)])
    b = FrameBuilder(Registry())
    b.day_from_first_frame()
    desk = b.build(snapshot=merged)["desk"]
    assert desk["unacked"] == 4 and desk["unacked_age"] == 40.0
    assert desk["stall"] == 47.3 and str(desk["stall_pid"]) == "4102"


def test_a_loop_stalled_on_another_thread_shows_in_the_frames_of_a_hub_on_its_own() -> None:
    """The live server on a thread of its own (not the trading loop's): the frames go on, and say the loop is late."""
    reg = Registry()
    tt = trading.TradingTelemetry(registry=reg)
    blocked, release = threading.Event(), threading.Event()

    async def main() -> None:
        tt.event_loop_lag_monitor(interval=0.01)
        await asyncio.sleep(0.1)
        blocked.set()
        release.wait()  # a sync call that hangs, on the trading loop

    loop = threading.Thread(target=asyncio.run, args=(main(),), name="trading-loop")
    loop.start()
    hub = LiveHub(reg)
    try:
        assert blocked.wait(30)
        time.sleep(0.3)
        desk = _desk(hub)
    finally:
        release.set()
        loop.join(30)
    assert desk["stall"] >= 0.2
    assert "stall_pid" not in desk  # one process: its series has no pid
    assert "stall" not in _desk(hub)  # no monitor running: not a stalled loop, nothing said
    tt.close()
    hub.stop()


def test_the_fleet_adds_up_waiting_orders_and_keeps_the_worst_age_and_stall() -> None:
    view = FleetView()
    for i, (inst, desk) in enumerate(
        (
            ("a", {"unacked": 2, "unacked_age": 12.5, "stall": 0.0}),
            ("b", {"unacked": 1, "unacked_age": 41.0, "stall": 35.2, "stall_pid": 77}),
            ("c", {}),  # an agent without these gauges (or an older one)
        )
    ):
        frame = {"service": "mm", "instance": inst, "seq": 1, "ts": 1.0 + i, "state": {"desk": desk}}
        assert view.update(frame, received=1.0)
    desk = view.build(now=1.0)["desk"]
    assert (desk["unacked"], desk["unacked_age"], desk["stall"], desk["stall_at"]) == (3, 41.0, 35.2, "mm/b")
    assert "stall_pid" not in desk  # a pid is no one's in a fleet: stall_at says which instance


def test_frames_of_a_process_without_trading_telemetry_say_nothing_of_it() -> None:
    desk = FrameBuilder(Registry()).build()["desk"]
    assert not {"unacked", "unacked_age", "stall", "stall_pid"} & desk.keys()
