"""What a real broker connection sends besides the happy path: reports for ids the process never signalled (a
restart), resent executions, cancel/replace, and orders still open when the process stops."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import tradeobs_agent
from tests._util import trading_invalid
from tradeobs_agent import TradingTelemetry, trading
from tradeobs_agent.testing import Capture, capture


@pytest.fixture
def tt(cap: Capture) -> Iterator[TradingTelemetry]:
    t = trading.TradingTelemetry(strategy="bot", venue="sock")
    yield t
    t.close()


def _value(cap: Capture, name: str, **attrs: Any) -> float:
    points = [p for p in cap.metrics().get(name, []) if all(p.attributes.get(k) == v for k, v in attrs.items())]
    return sum(p.value for p in points)


def _trace(cap: Capture, order_id: str) -> list[Any]:
    (root,) = [s for s in cap.spans() if s.name == "order" and s.attributes.get("order.id") == order_id]
    return [s for s in cap.spans() if s.context.trace_id == root.context.trace_id]


def test_a_report_for_an_order_id_never_signalled_is_counted_and_never_raises(
    cap: Capture, tt: TradingTelemetry, caplog: pytest.LogCaptureFixture
) -> None:
    """After a restart the venue reports fills of the previous process's orders. The docs' pattern,
    ``tt.order(cid).fill(...)`` on the broker's thread, raised AttributeError there (``order()`` is None), and
    the agent counted nothing. ``tt.execution(cid)`` is never None: an unknown id's steps are counted, said once."""
    errors: list[BaseException] = []

    def broker_thread() -> None:
        try:
            tt.execution("from-yesterday").acked("V-9")
            tt.execution("from-yesterday").fill(5, 1.0)
            tt.execution(12345).fill(5, 1.0)  # type: ignore[arg-type]  # an id that is no string
        except BaseException as exc:  # what the broker's thread would die of
            errors.append(exc)

    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        t = threading.Thread(target=broker_thread)
        t.start()
        t.join()
        tt.flush()
    assert errors == []
    assert trading_invalid(cap, "unknown_order") == 3
    said = [r.getMessage() for r in caplog.records if "unknown_order" in r.getMessage()]
    assert len(said) == 1 and "from-yesterday" in said[0], said
    assert _value(cap, "trading.orders.filled") == 0 and _value(cap, "trading.orders.partially_filled") == 0
    assert cap.spans() == []
    assert tt.execution("nope").trace_id is None and tt.order("nope") is None
    o = tt.order_signal("known", "AAPL", "buy", 1, 1.0)
    assert tt.execution("known") is o


def test_a_resent_partial_fill_with_its_exec_id_is_not_counted_twice(cap: Capture, tt: TradingTelemetry) -> None:
    """A 10-lot filled 5 (E1), the 5 resent (E1 again: a reconnect's replay), then 5 (E2). Counted by quantity
    alone, the resend completed the order: filled counted, trace ended, and the real last fill was then taken as
    a repeat and dropped. With exec_id the resend is counted as a duplicate and nothing else changes."""
    o = tt.order_signal("c-dup", "AAPL", "buy", 10, 30.0, "limit")
    o.submitted()
    o.fill(5, 30.0, exec_id="E1")
    o.fill(5, 30.0, exec_id="E1")
    assert not o.closed and o.filled_qty == 5
    o.fill(5, 30.1, exec_id="E2")
    o.fill(5, 30.1, exec_id="E2")  # resent after the order's end: a duplicate too
    tt.flush()
    assert o.closed and o.filled_qty == 10
    assert trading_invalid(cap, "duplicate_fill") == 2 and trading_invalid(cap, "order_closed") == 0
    assert trading_invalid(cap, "overfill") == 0
    assert _value(cap, "trading.orders.filled") == 1 and _value(cap, "trading.orders.partially_filled") == 1
    fills = [s for s in _trace(cap, "c-dup") if s.name == "fill"]
    assert [(f.attributes["fill.price"], f.attributes["fill.exec_id"]) for f in fills] == [(30.0, "E1"), (30.1, "E2")]


def test_exec_ids_kept_per_order_are_bounded() -> None:
    from tradeobs_agent.trading import orders

    with capture(service_name="test-exec-ids", logs=False):
        tt = TradingTelemetry()
        o = tt.order_signal("many", "AAPL", "buy", 1e9, 1.0)
        o.submitted()
        for i in range(orders._EXEC_IDS + 500):
            o.fill(1, 1.0, exec_id=f"E{i}")
        tt.flush()
        assert o._exec_ids is not None and len(o._exec_ids) == orders._EXEC_IDS
        tt.close()


def test_cancel_replace_keeps_one_trace_and_measures_fills_on_the_new_terms(cap: Capture, tt: TradingTelemetry) -> None:
    """An amend from 10 @ 30.0 to 15 @ 30.5 under a new client order id (FIX 35=G): the replace's reports name the
    new id. Before, there was no replace step: the new id was unknown (its fills lost), and fills past the first
    quantity were overfills with slippage against the old price."""
    o = tt.order_signal("c-amend", "AAPL", "buy", 10, 30.0, "limit")
    o.submitted()
    o.acked("V-1")
    o.fill(4, 30.0)
    o.replaced("c-amend-2", qty=15, price=30.5)
    assert tt.order("c-amend-2") is o and tt.execution("c-amend-2") is o
    tt.execution("c-amend-2").fill(11, 30.5)
    tt.flush()
    assert o.closed and o.filled_qty == 15
    assert trading_invalid(cap, "overfill") == 0 and trading_invalid(cap, "unknown_order") == 0
    spans = _trace(cap, "c-amend")
    names = sorted(s.name for s in spans)
    assert names == ["ack", "fill", "fill", "order", "replace", "submit"]
    root = next(s for s in spans if s.name == "order")
    assert root.attributes["order.outcome"] == "filled"
    assert (root.attributes["order.qty"], root.attributes["order.price"]) == (15, 30.5)
    assert root.attributes["order.replaced"] is True
    rep = next(s for s in spans if s.name == "replace")
    assert rep.parent.span_id == root.context.span_id
    assert rep.attributes["order.new_id"] == "c-amend-2" and rep.attributes["order.previous_qty"] == 10
    last = [s for s in spans if s.name == "fill"][-1]
    assert last.attributes["fill.slippage_bps"] == 0.0  # against 30.5, the replaced price
    assert _value(cap, "trading.orders.filled") == 1


def test_a_replace_down_to_the_filled_quantity_completes_the_order(cap: Capture, tt: TradingTelemetry) -> None:
    o = tt.order_signal("c-down", "AAPL", "buy", 10, 30.0)
    o.submitted()
    o.fill(6, 30.0)
    o.replaced(qty=6)
    tt.flush()
    assert o.closed
    root = next(s for s in _trace(cap, "c-down") if s.name == "order")
    assert root.attributes["order.outcome"] == "filled"
    assert _value(cap, "trading.orders.filled") == 1


def test_replaced_ids_leave_the_index_with_their_order() -> None:
    """The new ids a replace adds are forgotten when their order leaves the recently-closed window: the index
    stays bounded however many orders are amended."""
    from tradeobs_agent.trading import orders

    with capture(service_name="test-aliases", logs=False):
        tt = TradingTelemetry()
        for i in range(orders._RECENT + 300):
            o = tt.order_signal(f"o-{i}", "AAPL", "buy", 1, 1.0)
            o.replaced(f"o-{i}-r")
            o.cancelled()
        tt.flush()
        assert len(tt._book._by_id) == 2 * orders._RECENT
        assert tt.order("o-0-r") is None and tt.order(f"o-{orders._RECENT + 299}-r") is not None
        tt.close()


def test_orders_still_open_at_shutdown_end_and_are_exported(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An order the venue never answered was still open when the agent shut down: its root span was never ended,
    so never exported (its steps were, with a parent the trace store never got). Now shutdown ends it, closed."""
    from tradeobs_agent.testing import reset

    reset()
    path = tmp_path / "traces.jsonl"
    monkeypatch.setenv("TRADEOBS_TRACES_FILE", str(path))
    tradeobs_agent.init(service_name="test-open-at-exit", otlp=False, prometheus=False, logs=False)
    tt = TradingTelemetry()
    o = tt.order_signal("no-ack", "AAPL", "buy", 1, 1.0)
    o.submitted()
    trace_id = o.trace_id
    tradeobs_agent.shutdown()
    text = path.read_text()
    assert trace_id is not None and trace_id in text
    assert '"order.outcome"' in text and '"closed"' in text
    assert o.closed and tt.open_orders == 0
    reset()


def test_the_live_views_working_orders_follow_a_replace(cap: Capture, tt: TradingTelemetry) -> None:
    from tradeobs_agent import events
    from tradeobs_agent.live.working import WorkingOrders

    a = tt.order_signal("w-up", "AAPL", "buy", 10, 30.0)
    a.submitted()
    a.replaced(qty=15, price=30.5)
    b = tt.order_signal("w-down", "AAPL", "buy", 10, 30.0)
    b.submitted()
    b.fill(6, 30.0)
    b.replaced(qty=6)
    tt.flush()
    w = WorkingOrders()
    for e in events.get_bus().since(0):
        w.apply(e.kind, e.data, e.ts)
    frame = w.frame(10)
    assert list(frame) == ["w-up"] and (frame["w-up"]["q"], frame["w-up"]["p"]) == (15, 30.5)


def test_an_id_reused_while_its_order_is_still_open_is_a_new_order(cap: Capture) -> None:
    """Ids numbered from 1 again the next day, with an order_ttl long enough for resting orders: yesterday's
    order "1" (a GTC limit nobody ended) is still open when today's "1" is signalled. Today's order was given
    yesterday's trace, symbol and quantity (its fill of 50 on a 10-lot: an overfill of the wrong symbol), and only a
    warning said so, once. Now it is a new order; yesterday's ends (superseded); both are counted."""
    tt = TradingTelemetry(order_ttl=3 * 86400)
    old = tt.order_signal("1", "AAPL", "buy", 10, 30.0, "limit")
    old.submitted()
    again = tt.order_signal("1", "AAPL", "buy", 10, 30.0, "limit")  # the strategy's retry: the same order
    assert again is old
    new = tt.order_signal("1", "MSFT", "sell", 50, 400.0, "limit")
    assert new is not old and tt.order("1") is new and tt.execution("1") is new
    new.submitted()
    tt.execution("1").fill(50, 400.0)
    tt.flush()
    assert old.closed and new.closed and tt.open_orders == 0
    assert trading_invalid(cap, "duplicate_signal") == 1 and trading_invalid(cap, "order_id_reused") == 1
    assert trading_invalid(cap, "overfill") == 0
    roots = {s.attributes["symbol"]: s for s in cap.spans() if s.name == "order"}
    assert roots["AAPL"].attributes["order.outcome"] == "superseded"
    assert roots["MSFT"].attributes["order.outcome"] == "filled"
    assert roots["AAPL"].context.trace_id != roots["MSFT"].context.trace_id
    assert _value(cap, "trading.orders.filled", symbol="MSFT") == 1
    tt.close()


def test_a_fill_reported_before_the_strategy_marks_the_order_sent_leaves_no_working_order(
    cap: Capture, tt: TradingTelemetry
) -> None:
    """The broker's thread can report a fill before the strategy's task, back from ``await broker.send()``, calls
    ``submitted()``. The late submit published the order's ``order`` event after its fill: the live view listed
    the filled order as working for ever (until 10,000 others pushed it out)."""
    from tradeobs_agent import events
    from tradeobs_agent.live.working import WorkingOrders

    o = tt.order_signal("fast", "AAPL", "buy", 10, 30.0)
    t = threading.Thread(target=lambda: (o.acked("V"), o.fill(10, 30.0)))
    t.start()
    t.join()
    o.submitted()  # the strategy's task, after the venue already answered
    tt.flush()
    w = WorkingOrders()
    for e in events.get_bus().since(0):
        w.apply(e.kind, e.data, e.ts)
    assert len(w) == 0
    assert _value(cap, "trading.orders.submitted") == 1 and _value(cap, "trading.orders.filled") == 1


def test_a_forked_child_does_not_end_the_orders_it_inherited(cap: Capture, tt: TradingTelemetry) -> None:
    """A multiprocessing worker forked by the bot runs the agent's shutdown at its exit: it must not end and
    export the parent's open orders (the same root span twice in the trace store)."""
    from tradeobs_agent.trading.telemetry import end_open_orders

    o = tt.order_signal("parents", "AAPL", "buy", 10, 30.0)
    o.submitted()
    assert not o.closed
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            mine = tt.order_signal("childs", "AAPL", "buy", 1, 30.0)
            end_open_orders()
            os.write(w, f"{int(o.closed)}{int(mine.closed)}".encode())
        finally:
            os._exit(0)
    os.close(w)
    got = os.read(r, 16)
    os.waitpid(pid, 0)
    assert got == b"01"  # the parent's order left open in the child, the child's own ended
    assert not o.closed


def test_without_child_spans_a_fill_after_the_cancel_is_still_on_the_trace(
    cap: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    """child_spans=False puts the steps on the root span as events; a fill after the cancel came when the root had
    ended: the SDK dropped the event and warned ("Tried calling _add_event on an ended span"), the fill was counted
    but not on the trace. Now such a step is a child span of the ended root."""
    tt = TradingTelemetry(child_spans=False)
    o = tt.order_signal("late", "AAPL", "buy", 10, 1.0)
    o.submitted()
    o.cancelled("user")
    with caplog.at_level(logging.WARNING):
        o.fill(5, 1.0)
        tt.flush()
    assert not [r for r in caplog.records if "ended span" in r.getMessage()]
    spans = _trace(cap, "late")
    root = next(s for s in spans if s.name == "order")
    assert [e.name for e in root.events] == ["submit"]
    [fill] = [s for s in spans if s.name == "fill"]
    assert fill.parent.span_id == root.context.span_id and fill.attributes["fill.qty"] == 5
    tt.close()


def test_the_open_orders_description_names_every_way_an_order_ends(cap: Capture) -> None:
    """trading.orders.open counts orders "not yet done", and its description (docs/metrics.md's table too) lists
    what ends one. Reused ids (``superseded``) and ``tt.close()`` (``closed``) ended orders and were not listed: a
    reader of the gauge could not tell why it dropped. Each outcome is made here, the way it happens."""
    import re

    from tradeobs_agent.trading.instruments import SPECS

    tt = TradingTelemetry(max_open_orders=2, order_ttl=30.0)
    f = tt.order_signal("f", "AAPL", "buy", 1, 1.0)
    f.submitted()
    f.fill(1, 1.0)
    tt.order_signal("r", "AAPL", "buy", 1, 1.0).rejected("limit")
    c = tt.order_signal("c", "AAPL", "buy", 1, 1.0)
    c.submitted()
    c.cancelled()
    tt.order_signal("d", "AAPL", "buy", 1, 1.0).done()
    x = tt.order_signal("x", "AAPL", "buy", 1, 1.0)
    x.created -= 31  # as if signalled 31 s ago: the next signal expires it
    tt.order_signal("y", "AAPL", "buy", 1, 1.0)
    tt.order_signal("y", "MSFT", "sell", 5, 2.0)  # the id again, other terms, while open: supersedes it
    tt.order_signal("e1", "AAPL", "buy", 1, 1.0)
    tt.order_signal("e2", "AAPL", "buy", 1, 1.0)  # a third open order past max_open_orders=2: evicts the oldest
    tt.close()
    outcomes = {s.attributes.get("order.outcome", "done") for s in cap.spans() if s.name == "order"}
    assert outcomes == {"filled", "rejected", "cancelled", "done", "expired", "superseded", "evicted", "closed"}
    (spec,) = [s for s in SPECS if s.name == "trading.orders.open"]
    missing = [o for o in sorted(outcomes) if not re.search(rf"\b{o}\b", spec.description)]
    assert missing == [], spec.description


def test_an_order_signalled_with_an_integer_id_is_found_by_that_integer(cap: Capture, tt: TradingTelemetry) -> None:
    """Broker APIs that number orders (Interactive Brokers' orderId, a venue's integer ClOrdID, a DataFrame's numpy
    int64 column) report fills by that integer. ``order_signal`` keeps the id as text, and ``tt.order(7)`` looked the
    integer up as is: ``None``, so ``tt.execution(7).fill(...)`` went to an UnknownOrder and the fill was lost
    (counted as ``unknown_order``; the order stayed open, unfilled, until it expired)."""
    import numpy as np

    tt.order_signal(7, "AAPL", "buy", 10, 30.0, "limit").submitted()  # type: ignore[arg-type]
    tt.order_signal(np.int64(8), "AAPL", "buy", 10, 30.0, "limit").submitted()
    assert tt.order(7) is tt.order("7") is not None  # type: ignore[arg-type]
    tt.execution(7).acked("V-7")  # type: ignore[arg-type]
    tt.execution(7).fill(10, 30.0)  # type: ignore[arg-type]
    tt.execution(np.int64(8)).fill(10, 30.0)
    tt.flush()
    assert trading_invalid(cap, "unknown_order") == 0
    assert tt.order(7).closed and tt.order(7).filled_qty == 10  # type: ignore[arg-type, union-attr]
    assert tt.order(np.int64(8)).filled_qty == 10  # type: ignore[union-attr]
    assert _value(cap, "trading.fills.quantity") == 20 and _value(cap, "trading.orders.filled") == 2
    assert tt.open_orders == 0


def test_a_resent_fill_without_exec_id_is_told_by_its_cum_qty(cap: Capture, tt: TradingTelemetry) -> None:
    """A FIX resend without ExecID(17), or an adapter that has none: a 10-lot filled 4, the 4 resent, then the real
    3, a cancel, the 3 resent and a late 1. Without a key the resends are fills: 11 filled (an overfill), and the
    late 1, a real fill, dropped as a repeat. With the report's CumQty(14) as ``cum_qty`` the resend (cum 4 with 4
    filled) is a duplicate, and so is the report resent after the cancel (a fill after a cancel is otherwise
    counted: the race a cancel loses); 8 filled, as at the venue."""
    o = tt.order_signal("c-cum", "AAPL", "buy", 10, 30.0, "limit")
    o.submitted()
    o.acked("V-1")
    o.fill(4, 30.0, cum_qty=4)
    o.fill(4, 30.0, cum_qty=4)  # the resend
    assert o.filled_qty == 4 and not o.closed
    o.fill(3, 30.0, cum_qty=7)
    o.cancelled("rest cancelled")
    o.fill(3, 30.0, cum_qty=7)  # the last fill's report resent after the cancel
    o.fill(1, 30.0, cum_qty=8)  # a real fill that raced the cancel: recorded
    tt.flush()
    assert o.filled_qty == 8
    assert trading_invalid(cap, "duplicate_fill") == 2 and trading_invalid(cap, "overfill") == 0
    assert _value(cap, "trading.fills.quantity") == 8 and _value(cap, "trading.fills.notional") == 240.0
    assert _value(cap, "trading.orders.filled") == 0 and _value(cap, "trading.orders.partially_filled") == 3
    fills = [s for s in _trace(cap, "c-cum") if s.name == "fill"]
    assert [f.attributes["fill.qty"] for f in fills] == [4, 3, 1]


def test_a_fill_with_a_bad_cum_qty_is_recorded_and_counted(cap: Capture, tt: TradingTelemetry) -> None:
    o = tt.order_signal("c-badcum", "AAPL", "buy", 10, 30.0, "limit")
    o.submitted()
    o.fill(4, 30.0, cum_qty=float("nan"))
    o.fill(4, 30.0, cum_qty="four")  # type: ignore[arg-type]
    o.fill(2, 30.0, exec_id="E3", cum_qty=2)  # an exec_id is the key when there is one: a new execution
    assert o.filled_qty == 10 and o.closed
    assert trading_invalid(cap, "cum_qty") == 2 and trading_invalid(cap, "duplicate_fill") == 0


def test_one_broker_connection_for_several_strategies_reaches_each_order(cap: Capture) -> None:
    """One TradingTelemetry per strategy, one broker session whose callback hands every execution report to one of
    them (it knows the client order id, not the strategy). The other strategy's report was an unknown order: its
    fill not recorded, its order open until it expired. Now it joins that order (its trace, its strategy's series);
    an id both strategies used (each numbering from 1) is still nobody's."""
    mom = trading.TradingTelemetry(strategy="mom", venue="ib")
    mr = trading.TradingTelemetry(strategy="mr", venue="ib")
    try:
        mom.order_signal("mom-1", "AAPL", "buy", 100, 190.0, "limit").submitted()
        mr.order_signal("mr-1", "AAPL", "sell", 50, 190.5, "limit").submitted()
        mom.order_signal("1", "MSFT", "buy", 1, 400.0).submitted()
        mr.order_signal("1", "MSFT", "sell", 1, 400.0).submitted()
        on_report = mom.execution  # the session's one callback, bound to the first object
        on_report("mom-1").fill(100, 190.0)
        on_report("mr-1").acked("V-2")
        on_report("mr-1").fill(50, 190.4)
        on_report("1").fill(1, 400.0)  # mom's own "1": its own book first
        mr.execution("1").fill(1, 400.0)
        mom.flush()
        assert trading_invalid(cap, "unknown_order") == 0
        assert _value(cap, "trading.fills.quantity", strategy="mr", symbol="AAPL") == 50
        assert _value(cap, "trading.fills.quantity", strategy="mom", symbol="AAPL") == 100
        assert _value(cap, "trading.orders.acknowledged", strategy="mr") == 1
        assert mr.order("mr-1").closed  # type: ignore[union-attr]
        assert len([s for s in _trace(cap, "mr-1") if s.name == "fill"]) == 1
        third = trading.TradingTelemetry(strategy="arb", venue="ib")
        third.execution("1").fill(1, 400.0)  # known to mom and to mr: whose is it?
        third.flush()
        assert trading_invalid(cap, "unknown_order") == 1
        third.close()
    finally:
        mom.close()
        mr.close()


def test_a_new_execution_after_the_order_filled_is_an_overfill_not_a_resend(cap: Capture, tt: TradingTelemetry) -> None:
    """A 100-lot filled 60 (E1), cancelled, the other 40 (E2) raced the cancel, and then the venue filled 50 more
    (E3: an execution id the order never had). That last fill was taken as a resent report and dropped
    (reason="order_closed"): 100 filled on /metrics, no overfill counted, while the venue's position was 150 (a risk
    manager's run). A new exec_id, or a cum_qty past the filled quantity, after the order filled is a real
    execution: recorded, counted as an overfill, and the order still counted filled once. A resend (E3 again, or a
    cum_qty not past the filled) is still a duplicate, and a report with neither key still a repeat."""
    o = tt.order_signal("c-late-over", "META", "buy", 100, 500.0, "limit")
    o.submitted()
    o.acked("V-1")
    o.fill(60, 500.0, exec_id="E1")
    o.cancelled("user")
    o.fill(40, 500.0, exec_id="E2")  # the race the cancel lost: completes the order
    o.fill(50, 500.0, exec_id="E3")  # a new execution past the order's end
    o.fill(50, 500.0, exec_id="E3")  # its resend
    o.fill(50, 500.0)  # no key: cannot be told from a resend
    p = tt.order_signal("c-late-cum", "META", "buy", 10, 500.0, "limit")
    p.submitted()
    p.fill(10, 500.0, cum_qty=10)
    p.fill(3, 500.0, cum_qty=13)  # the venue's cumulative says 3 more
    p.fill(3, 500.0, cum_qty=13)  # resent
    tt.flush()
    assert o.filled_qty == 150 and p.filled_qty == 13
    assert _value(cap, "trading.fills.quantity", symbol="META") == 163
    assert _value(cap, "trading.fills.notional", symbol="META") == 163 * 500.0
    assert _value(cap, "trading.orders.filled", symbol="META") == 2  # each order once
    assert _value(cap, "trading.orders.partially_filled", symbol="META") == 1
    assert trading_invalid(cap, "overfill") == 2
    assert trading_invalid(cap, "duplicate_fill") == 2 and trading_invalid(cap, "order_closed") == 1
    fills = [s for s in _trace(cap, "c-late-over") if s.name == "fill"]
    assert [(f.attributes["fill.exec_id"], f.attributes.get("order.overfilled")) for f in fills] == [
        ("E1", None),
        ("E2", None),
        ("E3", True),
    ]
