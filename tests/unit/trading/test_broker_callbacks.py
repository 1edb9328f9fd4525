"""A bot on an Interactive Brokers style API (``ibapi``) or a FIX engine: the strategy places orders on its thread,
and every report (orderStatus, openOrder, execDetails) arrives on the API's reader thread, in the broker's order.

What such a broker does that the happy path does not: a status report at every change of the order (an ack again and
again), and a reconnect that numbers orders from 1 again and then replays the day's executions under those ids.
"""

from __future__ import annotations

import linecache
import queue
import random
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests._util import trading_invalid
from tradeobs_agent import TradingTelemetry, trading
from tradeobs_agent.testing import Capture, capture
from tradeobs_agent.trading import orders


@pytest.fixture
def tt(cap: Capture) -> Iterator[TradingTelemetry]:
    t = trading.TradingTelemetry(strategy="ib", venue="ibkr")
    yield t
    t.close()


@pytest.mark.parametrize("old_state", ["filled", "open"])
def test_an_execution_replayed_under_an_order_id_reused_after_a_reconnect_is_not_the_new_orders_fill(
    cap: Capture, tt: TradingTelemetry, old_state: str
) -> None:
    """Order 7 of the first session filled 100 (E1, its last 50 E2 when it filled completely). The connection drops;
    the next session numbers orders from 1 again and order 7 is another order (MSFT, 30). Then the broker replays the
    day's executions under their order ids: E1 (and E2) name order 7. By id alone they were fills of the new order:
    its 30 read as 100 filled, an overfill, completed and ended, and the MSFT series counted AAPL's shares. Each
    execution id names one execution: a replay of another order's is a duplicate, whatever id it comes under."""
    old = tt.order_signal(7, "AAPL", "buy", 100, 190.0, "LMT")  # type: ignore[arg-type]  # IB's orderId is an int
    old.submitted()
    tt.execution(7).acked("perm-1")  # type: ignore[arg-type]
    tt.execution(7).fill(50, 190.0, exec_id="0001.01.01", cum_qty=50)  # type: ignore[arg-type]
    if old_state == "filled":
        tt.execution(7).fill(50, 190.0, exec_id="0001.02.01", cum_qty=100)  # type: ignore[arg-type]
    # the next session: order id 7 again, other terms
    new = tt.order_signal(7, "MSFT", "sell", 30, 410.0, "LMT")  # type: ignore[arg-type]
    new.submitted()
    tt.execution(7).acked("perm-2")  # type: ignore[arg-type]
    # the replay (reqExecutions after the reconnect): the old order's executions, under id 7
    tt.execution(7).fill(50, 190.0, exec_id="0001.01.01", cum_qty=50)  # type: ignore[arg-type]
    if old_state == "filled":
        tt.execution(7).fill(50, 190.0, exec_id="0001.02.01", cum_qty=100)  # type: ignore[arg-type]
    tt.flush()
    assert new is not old and not new.closed and new.filled_qty == 0
    assert old.filled_qty == (100 if old_state == "filled" else 50)
    assert trading_invalid(cap, "duplicate_fill") == (2 if old_state == "filled" else 1)
    assert trading_invalid(cap, "overfill") == 0
    assert cap.metric_value("trading.fills.quantity", symbol="MSFT") is None
    assert cap.metric_value("trading.fills.quantity", symbol="AAPL") == (100 if old_state == "filled" else 50)
    assert cap.metric_value("trading.orders.filled", symbol="MSFT") is None
    assert tt.open_orders == 1  # the new order, still working
    # its own execution is its fill
    tt.execution(7).fill(30, 410.0, exec_id="0002.01.01", cum_qty=30)  # type: ignore[arg-type]
    tt.flush()
    assert new.closed and new.filled_qty == 30 and tt.open_orders == 0
    assert cap.metric_value("trading.orders.filled", symbol="MSFT") == 1
    trace_id = new.span.get_span_context().trace_id
    fills = [s.attributes["fill.exec_id"] for s in cap.spans("fill") if s.context.trace_id == trace_id]
    assert fills == ["0002.01.01"]


def test_execution_ids_kept_per_telemetry_are_bounded(
    cap: Capture, tt: TradingTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradeobs_agent.trading import telemetry

    assert telemetry.EXECUTIONS == orders.EXECUTIONS == 65_536
    monkeypatch.setattr(telemetry, "EXECUTIONS", 1000)
    for i in range(1100):
        o = tt.order_signal(f"o{i}", "AAPL", "buy", 1, 1.0)
        o.submitted()
        o.fill(1, 1.0, exec_id=f"E{i}")
    tt.flush()
    assert len(tt._executions) == 1000 and "E99" not in tt._executions and "E100" in tt._executions
    assert cap.metric_value("trading.fills.quantity") == 1100


def test_a_replayed_execution_of_an_order_forgotten_since_is_a_duplicate_not_an_unknown_order(
    cap: Capture, tt: TradingTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reconnect late in the day replays every execution of the day; the orders of the morning are past the
    recently-closed window (1,024 orders), so their ids are unknown again. Their executions were counted (their ids
    are kept, 65,536 per object): duplicates. Counted as unknown orders, the runbook sent the operator looking for
    a restart or a second process on the account (a simulated IB day of 5,000 orders: 40 such per replay)."""
    monkeypatch.setattr(orders, "_RECENT", 4)  # the window, small
    first = tt.order_signal("am-1", "AAPL", "buy", 10, 1.0)
    first.submitted()
    tt.execution("am-1").fill(10, 1.0, exec_id="AM-E1")
    for i in range(5):
        o = tt.order_signal(f"later-{i}", "AAPL", "buy", 1, 1.0)
        o.submitted()
        o.cancelled()
    tt.flush()
    assert tt.order("am-1") is None  # forgotten
    tt.execution("am-1").fill(10, 1.0, exec_id="AM-E1")  # the replay
    tt.execution("from-yesterday").fill(5, 1.0, exec_id="Y-E1")  # an order of another process: unknown
    tt.flush()
    assert trading_invalid(cap, "duplicate_fill") == 1 and trading_invalid(cap, "unknown_order") == 1
    assert cap.metric_value("trading.fills.quantity") == 10


def test_a_status_report_at_every_change_acknowledges_the_order_once(cap: Capture, tt: TradingTelemetry) -> None:
    """IB calls orderStatus("Submitted") when the order rests, again after each partial fill and after each modify;
    a FIX engine sends ExecType=New again after a replace. A bot that calls ``acked()`` on each (the docs' pattern)
    counted the order acknowledged each time, one ack latency each (the time to each status report), one ack span
    each: 2,123 acknowledged of 2,000 orders in a simulated session. An order is acknowledged once."""
    o = tt.order_signal(11, "AAPL", "buy", 100, 190.0, "LMT")  # type: ignore[arg-type]
    o.submitted()
    reader = tt.execution(11)  # type: ignore[arg-type]
    reader.acked()  # PreSubmitted, without the permId yet
    reader.acked("perm-11")  # Submitted
    reader.fill(40, 190.0, exec_id="E1", cum_qty=40)
    reader.acked("perm-11")  # Submitted, filled 40, remaining 60
    reader.replaced(qty=120, price=190.5)  # a modify in place: same order id, new terms (openOrder)
    reader.acked("perm-11")  # Submitted again, after the modify
    reader.fill(80, 190.5, exec_id="E2", cum_qty=120)
    reader.acked("perm-11")  # a status that was overtaken by the fill (the order has ended)
    tt.flush()
    assert o.closed and o.filled_qty == 120
    assert cap.metric_value("trading.orders.acknowledged") == 1
    ack = cap.histogram("trading.order.submit_to_ack.latency")
    assert ack is not None and ack.count == 1
    steps = [s.name for s in cap.spans() if s.context.trace_id == o.span.get_span_context().trace_id]
    assert sorted(steps) == ["ack", "fill", "fill", "order", "replace", "submit"], steps
    (root,) = cap.spans("order")
    assert root.attributes["order.venue_order_id"] == "perm-11"  # the first id the venue gave, kept
    assert trading_invalid(cap, "order_closed") == 0
    assert cap.metric_value("trading.orders.filled") == 1


def test_an_ack_that_comes_after_the_fill_is_counted_once() -> None:
    """execDetails before orderStatus: the fill ends the order, the ack still counts (first time), once."""
    with capture(service_name="test-ack-after-fill", logs=False) as cap:
        tt = TradingTelemetry(strategy="ib", venue="ibkr")
        o = tt.order_signal("f-1", "AAPL", "buy", 10, 1.0)
        o.submitted()
        tt.execution("f-1").fill(10, 1.0, exec_id="E1")
        tt.execution("f-1").acked("p-1")
        tt.execution("f-1").acked("p-1")
        tt.flush()
        assert cap.metric_value("trading.orders.acknowledged") == 1
        assert trading_invalid(cap, "order_closed") == 0
        tt.close()


class _Broker(threading.Thread):
    """A broker: takes requests on a queue, answers in its own order on the reader's queue. Seeded."""

    def __init__(self, seed: int, out: queue.Queue[tuple[Any, ...]]) -> None:
        super().__init__(name="broker", daemon=True)
        self.rng = random.Random(seed)
        self.requests: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self.out = out
        self.orders: dict[int, dict[str, Any]] = {}
        self.executions: list[tuple[Any, ...]] = []
        self.done: Counter[str] = Counter()
        self.session = 0

    def _execute(self, oid: int, o: dict[str, Any], qty: float) -> None:
        o["filled"] += qty
        e = ("exec", oid, f"{self.session:04x}.{len(self.executions):08x}.01.01", qty, o["price"], o["filled"])
        self.executions.append(e)
        self.out.put(e)
        if self.rng.random() < 0.2:
            self.out.put(e)  # delivered twice
        if o["filled"] < o["qty"] and self.rng.random() < 0.5:
            self.out.put(("status", oid, "Submitted"))

    def run(self) -> None:
        r = self.rng
        while True:
            req = self.requests.get()
            if req[0] == "stop":
                self.out.put(("stop",))
                return
            if req[0] == "place":
                _, oid, qty, price = req
                if r.random() < 0.05:
                    self.out.put(("reject", oid))
                    self.done["rejected"] += 1
                    continue
                o = self.orders[oid] = {"qty": qty, "price": price, "filled": 0.0}
                fill_first = r.random() < 0.2  # execDetails before orderStatus
                if not fill_first:
                    self.out.put(("status", oid, "Submitted"))
                if r.random() < 0.7:
                    self._execute(oid, o, r.choice([qty, qty / 2]))
                if fill_first:
                    self.out.put(("status", oid, "Submitted"))
                if o["filled"] >= qty:
                    self.done["filled"] += 1
                    del self.orders[oid]
            elif req[0] == "disconnect":  # cancel on disconnect, then the reader has everything (nextValidId)
                for oid in list(self.orders):
                    self.out.put(("status", oid, "Cancelled"))
                    self.done["cancelled"] += 1
                self.orders.clear()
                self.session += 1
                self.out.put(("sync", req[1]))
            elif req[0] == "replay":  # reqExecutions: the day's executions, under their order ids
                for e in list(self.executions):
                    self.out.put(e)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_strategy_thread_and_a_reader_thread_with_reconnects_count_every_execution_once(
    cap: Capture, tt: TradingTelemetry, seed: int
) -> None:
    """2,000 orders: placed on the strategy thread, every report on the reader thread; orders numbered from 1 again
    after each of three reconnects, each followed by a replay of the day's executions; executions delivered twice,
    fills before acks, a status at every change. The figures are the broker's, whatever the interleaving."""
    out: queue.Queue[tuple[Any, ...]] = queue.Queue()
    broker = _Broker(seed, out)
    errors: list[BaseException] = []

    def reader() -> None:
        while True:
            m = out.get()
            try:
                if m[0] == "stop":
                    return
                if m[0] == "sync":
                    m[1].set()
                elif m[0] == "status":
                    o = tt.execution(m[1])
                    o.cancelled("disconnect") if m[2] == "Cancelled" else o.acked(f"perm-{m[1]}")
                elif m[0] == "exec":
                    _, oid, xid, qty, price, cum = m
                    tt.execution(oid).fill(qty, price, exec_id=xid, cum_qty=cum)
                elif m[0] == "reject":
                    tt.execution(m[1]).rejected("margin")
            except BaseException as exc:  # what would kill the reader thread
                errors.append(exc)

    rt = threading.Thread(target=reader, name="reader")
    broker.start()
    rt.start()
    rng = random.Random(seed)
    next_id = 1
    for i in range(2000):
        if i and i % 500 == 0:
            synced = threading.Event()
            broker.requests.put(("disconnect", synced))
            assert synced.wait(60)
            next_id = 1
            broker.requests.put(("replay",))
        qty = float(rng.choice([100, 200]))
        o = tt.order_signal(next_id, "AAPL", "buy", qty, 190.0, "LMT")  # type: ignore[arg-type]
        o.submitted()
        broker.requests.put(("place", next_id, qty, 190.0))
        if rng.random() < 0.3:
            o.replaced(price=190.01)  # the strategy amends while the reader fills (the price only: fills stay fills)
        next_id += 1
    synced = threading.Event()
    broker.requests.put(("disconnect", synced))
    assert synced.wait(60)
    broker.requests.put(("stop",))
    rt.join(60)
    broker.join(60)
    assert not rt.is_alive() and errors == []
    tt.flush()
    unique = {e[2]: e[3] for e in broker.executions}
    assert cap.metric_value("trading.fills.quantity") == sum(unique.values())
    assert cap.metric_value("trading.orders.filled") == broker.done["filled"]
    assert cap.metric_value("trading.orders.cancelled") == broker.done["cancelled"]
    assert cap.metric_value("trading.orders.rejected") == broker.done["rejected"]
    assert cap.metric_value("trading.orders.acknowledged") == 2000 - broker.done["rejected"]
    slip = cap.histogram("trading.order.slippage")
    assert slip is not None and slip.count == len(unique)
    assert cap.metric_value("trading.orders.overfilled") is None and trading_invalid(cap, "overfill") == 0
    assert tt.open_orders == 0 and cap.metric_value("trading.orders.open") == 0
    assert cap.metric_value("tradeobs.agent.internal_errors") is None
    assert len(cap.spans("order")) == 2000


def test_an_ib_execution_correction_is_a_duplicate_with_the_execution_id_docs_metrics_md_passes(
    cap: Capture, tt: TradingTelemetry
) -> None:
    """docs/metrics.md's execDetails row: IB sends a correction of execution ``...01.01`` as ``...01.02``; passed
    without the digits after the last period, it is the same execution (with the whole id: a second fill)."""
    o = tt.order_signal(3, "AAPL", "buy", 10, 190.0)  # type: ignore[arg-type]
    o.submitted()
    for exec_id, price in (("0000e0d5.6581b2a1.01.01", 190.0), ("0000e0d5.6581b2a1.01.02", 190.01)):
        tt.execution(3).fill(10, price, exec_id=exec_id.rsplit(".", 1)[0], cum_qty=10)  # type: ignore[arg-type]
    tt.flush()
    assert o.filled_qty == 10 and trading_invalid(cap, "duplicate_fill") == 1 and trading_invalid(cap, "overfill") == 0


def test_an_order_of_the_previous_run_resumed_after_a_restart_counts_its_new_fills_once(cap: Capture) -> None:
    """The bot restarted with order 42 working at the venue, 40 of 100 filled before the restart (counted by the
    previous run). IB reports it at the connection (openOrder, orderStatus filled=40), then replays the day's
    executions (the 40, under an execId this process never saw), then fills the rest. Before, every report of it was
    an unknown order's: its 60 filled after the restart were in no trading.fills counter of either run."""
    tt = TradingTelemetry(strategy="ib", venue="ibkr")
    o = tt.resume(42, "AAPL", "buy", 100, 190.0, "LMT", filled_qty=40, venue_order_id="perm-42")  # type: ignore[arg-type]
    tt.execution(42).acked("perm-42")  # type: ignore[arg-type]  # its orderStatus: acknowledged by the last run
    assert tt.open_orders == 1 and o.filled_qty == 40
    assert cap.metric_value("trading.orders.unacknowledged") == 0
    tt.execution(42).fill(40, 190.0, exec_id="R1-E1", cum_qty=40)  # type: ignore[arg-type]  # the replay
    tt.execution(42).fill(60, 190.02, exec_id="R2-E1", cum_qty=100)  # type: ignore[arg-type]
    tt.flush()
    assert o.closed and o.filled_qty == 100 and tt.open_orders == 0
    assert cap.metric_value("trading.fills.quantity") == 60
    assert cap.metric_value("trading.orders.filled") == 1
    assert trading_invalid(cap, "duplicate_fill") == 1 and trading_invalid(cap, "unknown_order") == 0
    assert trading_invalid(cap, "overfill") == 0
    for counted_by_the_previous_run in ("trading.orders.submitted", "trading.orders.acknowledged"):
        assert cap.metric_value(counted_by_the_previous_run) is None, counted_by_the_previous_run
    for latency in ("signal_to_submit", "submit_to_ack", "submit_to_fill"):
        assert cap.histogram(f"trading.order.{latency}.latency") is None, latency
    (root,) = cap.spans("order")
    assert root.attributes["order.resumed"] is True and root.attributes["order.outcome"] == "filled"
    assert root.attributes["order.venue_order_id"] == "perm-42"
    steps = sorted(s.name for s in cap.spans() if s.context.trace_id == root.context.trace_id)
    assert steps == ["fill", "order", "resume"]
    tt.close()


def test_a_resumed_order_cancelled_or_resumed_twice(cap: Capture, tt: TradingTelemetry) -> None:
    o = tt.resume("r-1", "MSFT", "sell", 10, 410.0, filled_qty=0)
    tt.execution("r-1").cancelled("eod")
    again = tt.resume("r-2", "MSFT", "sell", 10, 410.0, filled_qty=float("nan"))  # bad: taken as 0, counted
    again._resume(0, None)  # a second resume of one order: counted, nothing else
    tt.flush()
    assert o.closed and cap.metric_value("trading.orders.cancelled") == 1
    assert trading_invalid(cap, "resume") == 2 and again.filled_qty == 0 and not again.closed
    assert cap.metric_value("trading.orders.cancelled_unacknowledged") is None  # the venue had it


def test_the_reader_threads_lookup_of_an_unknown_id_never_raises_while_another_thread_makes_a_telemetry(
    cap: Capture, tt: TradingTelemetry
) -> None:
    """``tt.execution(id)`` for an id its object does not know asks every other live object. It iterated the set of
    live objects in Python, item by item, and another thread making a ``TradingTelemetry`` meanwhile (a backtest per
    run, a strategy started later) changed the set under it: ``RuntimeError: Set changed size during iteration``
    on the broker's reader thread (294 calls in, measured with a thread making objects). Here the other thread's
    moment is made exact: a trace function makes the object whenever the lookup runs Python code of ``weakref``'s
    set, between two of its items."""
    others = [trading.TradingTelemetry(strategy=f"other-{i}", venue="ibkr") for i in range(3)]
    made: list[TradingTelemetry] = []

    def meanwhile(frame: Any, event: str, arg: Any) -> Any:
        if (
            event == "line"
            and frame.f_code.co_filename.endswith("_weakrefset.py")
            and "yield" in linecache.getline(frame.f_code.co_filename, frame.f_lineno)
        ):
            made.append(trading.TradingTelemetry(strategy=f"made-{len(made)}", venue="ibkr"))
        return meanwhile

    sys.settrace(meanwhile)
    try:
        found = tt.execution("not-anyones")
    finally:
        sys.settrace(None)
    assert isinstance(found, orders.UnknownOrder)
    for t in (*others, *made):
        t.close()


def test_an_order_whose_id_a_later_order_took_is_forgotten_with_its_replace_ids(
    cap: Capture, tt: TradingTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids numbered again each day (or after a reconnect) and cancel/replace chains (FIX ClOrdID): the closed orders
    were kept by id, so a later order under the same id replaced its namesake there, and the namesake was never
    forgotten: its replace's id stayed findable, the order and its span alive, for the life of the process
    (measured: 600 ids of 3 days of 300 amended orders, still there after 1,100 later orders)."""
    monkeypatch.setattr(orders, "_RECENT", 4)  # the recently-closed window, small
    first = tt.order_signal("c-1", "AAPL", "buy", 10, 1.0)
    first.submitted()
    first.replaced("c-1-amend", qty=10, price=1.01)
    first.cancelled()
    again = tt.order_signal("c-1", "MSFT", "sell", 5, 2.0)  # the next session's order 'c-1'
    again.cancelled()
    tt.flush()
    assert tt.order("c-1-amend") is first and tt.order("c-1") is again  # both findable for a while
    for i in range(4):
        o = tt.order_signal(f"later-{i}", "AAPL", "buy", 1, 1.0)
        o.cancelled()
    tt.flush()
    assert tt.order("c-1-amend") is None and tt.order("c-1") is None
    assert not tt._book._by_id.keys() & {"c-1", "c-1-amend"}
