"""trading._scope: order.scope() and order.wrap() make the order current without making its span early.

What the log lines inside carry: tests/unit/logs/test_order_logs.py.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace

import tradeobs_agent
from tradeobs_agent.logs import current_correlation
from tradeobs_agent.testing import Capture, capture
from tradeobs_agent.trading import OrderScope, OrderTrace
from tradeobs_agent.trading._journal import get_journal
from tradeobs_agent.trading._scope import OrderSpan


@pytest.fixture
def cap() -> Iterator[Capture]:
    with capture() as c:
        yield c


def _root(cap: Capture, order_id: str) -> Any:
    [root] = [s for s in cap.spans() if s.name == "order" and s.attributes["order.id"] == order_id]
    return root


def test_in_a_scope_the_current_span_is_the_order_and_order_id_is_correlated(cap: Capture) -> None:
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
    o = tt.order_signal("c-1", "AAPL", "buy", 10, 100.0)
    outer = trace.get_current_span()
    scope = o.scope()
    assert isinstance(scope, OrderScope)
    with scope:
        current = trace.get_current_span()
        assert isinstance(current, OrderSpan)
        assert current.get_span_context() == o.span.get_span_context()
        assert current.is_recording()
        assert dict(current_correlation()) == {"order_id": "c-1"}
        current.set_attribute("my.note", "through the current span")
        current.add_event("my.event")
        with scope:  # the same scope object, nested
            assert trace.get_current_span() is current
        assert trace.get_current_span() is current
    assert trace.get_current_span() is outer and dict(current_correlation()) == {}
    o.done()
    root = _root(cap, "c-1")
    assert root.attributes["my.note"] == "through the current span"
    assert [e.name for e in root.events] == ["my.event"]


def test_an_exception_escaping_a_scope_is_recorded_on_the_order_once(cap: Capture) -> None:
    """A broker call that raises inside ``order.scope()`` or a wrapped callback marked nothing on the order (users had
    to call ``o.error(exc)``, which ``tracer.start_as_current_span`` does for its own span). Recorded once, through
    nested scopes and a wrapped callback; a cancellation is not an error; the order is not ended by it."""
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
    o = tt.order_signal("c-err", "AAPL", "buy", 10, 100.0)

    def broker_call() -> None:
        raise ConnectionError("venue down")

    with pytest.raises(ConnectionError), o.scope(), o.scope():
        o.wrap(broker_call)()
    with pytest.raises(asyncio.CancelledError), o.scope():
        raise asyncio.CancelledError
    assert not o.closed
    o.done()
    root = _root(cap, "c-err")
    assert [e.name for e in root.events] == ["exception"]
    assert root.events[0].attributes["exception.type"] == "ConnectionError"
    assert root.status.status_code == trace.StatusCode.ERROR and "venue down" in (root.status.description or "")


def test_entering_a_scope_does_not_apply_the_journal_and_a_span_started_inside_does() -> None:
    with capture() as cap:
        tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
        journal = get_journal()
        journal.stop()  # only readers apply it now
        try:
            o = tt.order_signal("c-2", "AAPL", "buy", 10, 100.0)
            with o.scope():
                assert o._sc is None  # entering cost two context variables, not the journal
                with cap.agent.tracer("mine").start_as_current_span("venue.call") as call:
                    pass  # the parent's ids were needed now: the journal was applied on this thread
                assert o._sc is not None
        finally:
            journal.start()
        o.done()
        root = _root(cap, "c-2")
    assert call.parent is not None and call.parent.span_id == root.context.span_id
    assert call.context.trace_id == root.context.trace_id


def test_ending_the_current_span_of_a_scope_ends_the_order_through_its_journal(cap: Capture) -> None:
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
    o = tt.order_signal("c-3", "AAPL", "buy", 10, 100.0)
    with o.scope():
        trace.get_current_span().end()
    assert o.closed
    assert tt.open_orders == 0
    assert "order.outcome" not in _root(cap, "c-3").attributes  # like done(): no outcome


def test_the_context_property_still_gives_the_roots_context(cap: Capture) -> None:
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
    o = tt.order_signal("c-4", "AAPL", "buy", 10, 100.0)
    assert trace.get_current_span(o.context) is o.span
    with cap.agent.tracer("mine").start_as_current_span("mine", context=o.context) as mine:
        pass
    o.done()
    assert mine.parent is not None and mine.parent.span_id == _root(cap, "c-4").context.span_id


def test_wrap_keeps_the_function_and_restores_the_context_when_it_raises(cap: Capture) -> None:
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
    o = tt.order_signal("c-5", "AAPL", "buy", 10, 100.0)

    def on_reject(reason: str) -> str:
        """Docstring kept."""
        assert dict(current_correlation()) == {"order_id": "c-5"}
        raise ValueError(reason)

    async def on_ack(venue_id: str) -> str:
        assert isinstance(trace.get_current_span(), OrderSpan)
        await asyncio.sleep(0)
        return venue_id

    wrapped = o.wrap(on_reject)
    assert wrapped.__name__ == "on_reject" and wrapped.__doc__ == "Docstring kept."
    with pytest.raises(ValueError, match="too big"):
        wrapped("too big")
    assert dict(current_correlation()) == {} and not isinstance(trace.get_current_span(), OrderSpan)
    assert inspect.iscoroutinefunction(o.wrap(on_ack))
    assert asyncio.run(o.wrap(on_ack)("v-1")) == "v-1"
    o.done()


def test_an_ended_order_is_freed_when_let_go_not_left_for_the_cyclic_collector(cap: Capture) -> None:
    """The order cached its scope's current span, which points back at the order: a cycle per order used in a
    scope, so every order (its span, steps and events) outlived the recent-orders window until a full collection of
    the cyclic garbage collector, which in a service with a large heap runs minutes apart: the soak's service
    held ~760 such orders after 90 s and its RSS grew 5% after the first minute."""
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for i in range(1100):  # past the book's window of recently closed orders (1024)
            o = tt.order_signal(f"c-{i}", "AAPL", "buy", 10, 100.0)
            with o.scope():
                o.submitted()
            o.fill(10, 100.0)
        del o
        tt.flush()
        gc.collect()
        orders = [g for g in gc.garbage if isinstance(g, OrderTrace)]
        kinds = Counter(type(g).__name__ for g in gc.garbage).most_common(5)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not orders, f"{len(orders)} orders left to the cyclic collector; its garbage: {kinds}"
