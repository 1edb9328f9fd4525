"""Orders the venue never acknowledges: ``trading.orders.unacknowledged`` and
``trading.orders.oldest_unacknowledged.age`` (per strategy and venue, from the open book at each collection) and
``trading.orders.cancelled_unacknowledged`` (the bot's own ack-timeout cancel).

Before, an order stuck in "sent" (a hung venue gateway, a lost message) showed in no metric: the submit->ack
histogram records acked orders only, ``trading.orders.open`` mixes it with resting orders, and the bot's
ack-timeout cancel counted as any cancel.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from tradeobs_agent import trading
from tradeobs_agent.metrics import Part, merge
from tradeobs_agent.testing import Capture

from ..conftest import Mono, workers_with_orders_waiting

COUNT = "trading.orders.unacknowledged"
AGE = "trading.orders.oldest_unacknowledged.age"
CANCELS = "trading.orders.cancelled_unacknowledged"


def _points(cap: Capture, name: str) -> dict[tuple[str, str], Any]:
    return {(p.attributes["strategy"], p.attributes["venue"]): p.value for p in cap.metrics().get(name, [])}


def test_sent_and_never_acknowledged_orders_are_counted_with_the_oldest_ones_age(cap: Capture, mono: Mono) -> None:
    tt = trading.TradingTelemetry(strategy="mm", venue="X")
    tt.order_signal("not-sent", "AAPL", "buy", 10)  # signalled, not yet sent: not waiting for the venue
    hung = tt.order_signal("hung", "AAPL", "buy", 10)
    hung.submitted()  # sent at 5000, never answered
    mono.now += 5
    acked = tt.order_signal("acked", "AAPL", "buy", 10)
    acked.submitted()
    acked.acked("v-1")
    filled = tt.order_signal("filled-no-ack", "MSFT", "sell", 10)  # some venues send a fill and no ack
    filled.submitted()
    filled.fill(4, 400.0)  # partly filled, still open: the venue has it
    lost = tt.order_signal("lost", "MSFT", "sell", 10)
    lost.submitted()  # sent at 5005
    rejected = tt.order_signal("rejected", "MSFT", "sell", 10)
    rejected.submitted()
    rejected.rejected("venue says no")  # answered: not waiting
    mono.now += 25
    assert _points(cap, COUNT) == {("mm", "X"): 2}
    assert _points(cap, AGE) == {("mm", "X"): pytest.approx(30.0)}

    hung.acked("v-2")  # the oldest answered: the next one's age
    assert _points(cap, COUNT) == {("mm", "X"): 1}
    assert _points(cap, AGE) == {("mm", "X"): pytest.approx(25.0)}
    lost.done()
    assert _points(cap, COUNT) == {("mm", "X"): 0}
    assert _points(cap, AGE) == {("mm", "X"): 0.0}
    tt.close()


def test_each_strategy_and_venue_has_its_own_series_and_none_before_its_first_order(cap: Capture, mono: Mono) -> None:
    x = trading.TradingTelemetry(strategy="mm", venue="X")
    y = trading.TradingTelemetry(strategy="mm", venue="Y")
    assert _points(cap, COUNT) == {} and _points(cap, AGE) == {}  # no order: no series
    x.order_signal("a", "AAPL", "buy", 1).submitted()
    mono.now += 12
    y.order_signal("b", "AAPL", "buy", 1).submitted()
    mono.now += 3
    assert _points(cap, COUNT) == {("mm", "X"): 1, ("mm", "Y"): 1}
    assert _points(cap, AGE) == {("mm", "X"): pytest.approx(15.0), ("mm", "Y"): pytest.approx(3.0)}
    x.close()
    y.close()


def test_an_unacknowledged_order_leaves_the_gauges_when_it_expires(cap: Capture, mono: Mono) -> None:
    """The book's order_ttl bounds what the gauges can see: the alert's limit must stay below it (docs)."""
    tt = trading.TradingTelemetry(order_ttl=60.0)
    tt.order_signal("a", "AAPL", "buy", 1).submitted()
    mono.now += 59
    assert _points(cap, AGE) == {("default", "default"): pytest.approx(59.0)}
    mono.now += 2
    assert _points(cap, COUNT) == {("default", "default"): 0}
    tt.close()


def test_the_bots_ack_timeout_cancel_is_told_from_a_venue_cancel(cap: Capture, mono: Mono) -> None:
    tt = trading.TradingTelemetry(strategy="mm", venue="X")
    timed_out = tt.order_signal("t", "AAPL", "buy", 10)
    timed_out.submitted()
    timed_out.cancelled("ack timeout")  # the bot gave up waiting for the venue
    by_venue = tt.order_signal("v", "AAPL", "buy", 10)
    by_venue.submitted()
    by_venue.acked("v-1")
    by_venue.cancelled("venue: end of session")  # a venue cancels only what it accepted
    never_sent = tt.order_signal("n", "AAPL", "buy", 10)
    never_sent.cancelled("strategy changed its mind")  # cancelled before it was sent: no ack to wait for
    assert _points(cap, CANCELS) == {("mm", "X"): 1}
    order_attrs = {"symbol": "AAPL", "side": "buy", "order_type": "market", "venue": "X", "strategy": "mm"}
    (cancelled,) = [p for p in cap.metrics()["trading.orders.cancelled"] if dict(p.attributes) == order_attrs]
    assert cancelled.value == 3  # still every cancel
    roots = {s.attributes["order.id"]: s.attributes for s in cap.spans() if s.name == "order"}
    assert roots["t"].get("order.unacknowledged") is True and roots["t"]["order.cancel_reason"] == "ack timeout"
    assert "order.unacknowledged" not in roots["v"] and "order.unacknowledged" not in roots["n"]
    tt.close()


def test_worker_processes_sum_the_count_and_keep_the_oldest_age(mono: Mono) -> None:
    regs = workers_with_orders_waiting(mono)
    merged = merge([Part(reg.snapshot(prepare=False), pid, True) for pid, reg in enumerate(regs, 1)])
    values = {n: [p.value for p in merged.numbers(n)] for n in (COUNT, AGE)}
    assert values == {COUNT: [4], AGE: [pytest.approx(40.0)]}


EXPIRED = "trading.orders.expired"


def _expired(cap: Capture) -> dict[tuple[str, str, str], Any]:
    return {
        (p.attributes["strategy"], p.attributes["venue"], p.attributes["state"]): p.value
        for p in cap.metrics().get(EXPIRED, [])
    }


def test_an_order_never_acknowledged_until_it_expires_is_counted_and_its_span_ends_in_error(
    cap: Capture, mono: Mono
) -> None:
    """Before, an unanswered order reaching order_ttl left the book and the gauges (the alert resolved) and was
    counted nowhere but tradeobs.agent.items.dropped (no strategy, no venue, not told from a resting order); its span
    ended like a resting order's, status unset."""
    tt = trading.TradingTelemetry(strategy="mm", venue="X", order_ttl=60.0)
    hung = tt.order_signal("hung", "AAPL", "buy", 10)
    hung.submitted()  # never answered
    resting = tt.order_signal("resting", "AAPL", "buy", 10)
    resting.submitted()
    resting.acked("v-1")  # rests at the venue past the ttl: the agent stops following it, nothing wrong
    part = tt.order_signal("part", "AAPL", "sell", 10)
    part.submitted()
    part.fill(3, 100.0)  # the venue has it (no ack, a fill)
    tt.order_signal("unsent", "AAPL", "buy", 10)  # signalled, never sent: not the venue's
    mono.now += 30
    assert _points(cap, COUNT) == {("mm", "X"): 1}
    assert _expired(cap) == {("mm", "X", "unacknowledged"): 0}  # the series exists before the first expiry
    mono.now += 31  # past the ttl: all four leave the book
    assert _points(cap, COUNT) == {("mm", "X"): 0}
    assert _points(cap, AGE) == {("mm", "X"): 0.0}
    assert _points(cap, "trading.orders.open") == {("mm", "X"): 0}
    assert _expired(cap) == {
        ("mm", "X", "unacknowledged"): 1,
        ("mm", "X", "acknowledged"): 2,
        ("mm", "X", "unsent"): 1,
    }
    roots = {s.attributes["order.id"]: s for s in cap.spans() if s.name == "order"}
    assert set(roots) == {"hung", "resting", "part", "unsent"}  # every root span ended, so exported
    h = roots["hung"]
    assert h.attributes["order.outcome"] == "expired" and h.attributes["order.unacknowledged"] is True
    assert h.status.status_code is StatusCode.ERROR
    assert h.status.description == "unacknowledged: no ack or fill from the venue before order_ttl=60s passed"
    for oid in ("resting", "part", "unsent"):
        assert roots[oid].attributes["order.outcome"] == "expired"
        assert "order.unacknowledged" not in roots[oid].attributes
        assert roots[oid].status.status_code is StatusCode.UNSET
    # a late ack still finds the order (recently closed) and changes nothing counted
    hung.acked("v-9")
    assert _expired(cap)[("mm", "X", "unacknowledged")] == 1
    tt.close()


def test_an_unacknowledged_order_evicted_by_max_open_orders_is_counted_too(cap: Capture, mono: Mono) -> None:
    tt = trading.TradingTelemetry(strategy="mm", venue="X", max_open_orders=2)
    tt.order_signal("a", "AAPL", "buy", 1).submitted()  # the oldest, never answered: evicted by the third
    b = tt.order_signal("b", "AAPL", "buy", 1)
    b.submitted()
    b.acked("v-b")
    c = tt.order_signal("c", "AAPL", "buy", 1)
    c.submitted()
    c.acked("v-c")
    assert _expired(cap) == {("mm", "X", "unacknowledged"): 1}
    assert _points(cap, COUNT) == {("mm", "X"): 0}
    (a,) = [s for s in cap.spans() if s.name == "order" and s.attributes["order.id"] == "a"]
    assert a.attributes["order.outcome"] == "evicted" and a.attributes["order.unacknowledged"] is True
    assert a.status.status_code is StatusCode.ERROR
    assert a.status.description == "unacknowledged: no ack or fill from the venue before max_open_orders=2 evicted it"
    tt.close()


def test_no_expired_series_before_the_first_order(cap: Capture, mono: Mono) -> None:
    tt = trading.TradingTelemetry(strategy="mm", venue="X")
    assert _expired(cap) == {}  # one series per TradingTelemetry once it has orders, none before
    tt.order_signal("a", "AAPL", "buy", 1)
    assert _expired(cap) == {("mm", "X", "unacknowledged"): 0}
    tt.close()


def test_an_order_still_unanswered_at_close_is_marked_but_not_counted(cap: Capture, mono: Mono) -> None:
    tt = trading.TradingTelemetry(strategy="mm", venue="X")
    tt.order_signal("hung", "AAPL", "buy", 1).submitted()
    acked = tt.order_signal("acked", "AAPL", "buy", 1)
    acked.submitted()
    acked.acked("v-1")
    tt.close()  # as the agent's shutdown (end_open_orders): outcome "closed"
    roots = {s.attributes["order.id"]: s for s in cap.spans() if s.name == "order"}
    assert roots["hung"].attributes["order.outcome"] == "closed"
    assert roots["hung"].attributes["order.unacknowledged"] is True
    assert roots["hung"].status.status_code is StatusCode.UNSET  # a planned stop is no error
    assert "order.unacknowledged" not in roots["acked"].attributes
    assert _expired(cap).get(("mm", "X", "unacknowledged"), 0) == 0
