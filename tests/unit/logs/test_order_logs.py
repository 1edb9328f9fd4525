"""Log lines written inside an order carry the order's trace: correlate(order_id=...), order.scope(), order.wrap().

The order's trace id, and the span id of the order's root span ``order`` (or of a span of yours started
inside its scope): what Jaeger shows for the order, and what Grafana's "logs for this trace" filters on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace

import tradeobs_agent
from tests.unit.logs._logs_helpers import Env
from tradeobs_agent.logs import correlate, get_logger
from tradeobs_agent.trading._journal import get_journal
from tradeobs_agent.trading.orders import NullOrder

log = get_logger("execution")


def _root(env: Env, order_id: str) -> Any:
    """The exported ``order`` span of ``order_id`` (the agent applies the journal and flushes first)."""
    env.agent.force_flush()
    roots = [s for s in env.spans.get_finished_spans() if s.name == "order" and s.attributes["order.id"] == order_id]
    assert len(roots) == 1, roots
    return roots[0]


def _ids(span: Any) -> tuple[str, str]:
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


def _by_message(env: Env, *streams: str) -> dict[str, dict[str, Any]]:
    env.flush()
    return {r["message"]: r for s in streams for r in env.lines(s)}


def _otlp(env: Env) -> dict[str, tuple[str, str]]:
    return {r.body: (f"{r.trace_id:032x}", f"{r.span_id:016x}") for r in env.otlp_records()}


@pytest.fixture
def no_applier(env: Env) -> Iterator[tradeobs_agent.TradingTelemetry]:
    """A TradingTelemetry whose journal is applied only by whoever reads (the applier thread stopped)."""
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
    journal = get_journal()
    journal.stop()
    try:
        yield tt
    finally:
        journal.start()


def test_correlate_with_a_known_order_id_puts_lines_on_the_order(env: Env) -> None:
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
    o = tt.order_signal("c-1", "AAPL", "buy", 10, 100.0)
    request = env.agent.tracer("http")
    log.info("before any order")
    with correlate(order_id="c-1"):
        log.info("stream logger")
        logging.getLogger("broker.sdk").warning("stdlib logger")  # the root handler's path
    with request.start_as_current_span("POST /orders") as req:  # e.g. the HTTP request that placed the order
        with correlate(order_id="c-1"):
            log.info("in a request, in the order")
        with correlate(order_id="unknown"):
            log.info("in a request, an id no TradingTelemetry knows")
        log.info("in a request only")
    o.submitted()
    o.fill(10, 100.0)
    root = _root(env, "c-1")
    order_ids = _ids(root)
    req_ids = _ids(req)
    assert o.trace_id == order_ids[0]
    lines = _by_message(env, "execution", "service")
    for msg in ("stream logger", "stdlib logger", "in a request, in the order"):
        assert (lines[msg]["trace_id"], lines[msg]["span_id"]) == order_ids, msg
        assert lines[msg]["order_id"] == "c-1"
    for msg in ("in a request, an id no TradingTelemetry knows", "in a request only"):
        assert (lines[msg]["trace_id"], lines[msg]["span_id"]) == req_ids, msg
    assert "trace_id" not in lines["before any order"]
    otlp = _otlp(env)
    assert otlp["stream logger"] == otlp["stdlib logger"] == otlp["in a request, in the order"] == order_ids
    assert otlp["in a request only"] == req_ids


def test_the_worker_applies_the_journal_when_the_signal_is_still_waiting(
    env: Env, no_applier: tradeobs_agent.TradingTelemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = get_journal()
    appliers: list[tuple[str, str]] = []
    for name in ("flush", "flush_chunked"):
        real = getattr(journal, name)

        def spy(real: Any = real, name: str = name) -> int:
            appliers.append((name, threading.current_thread().name))
            return int(real())

        monkeypatch.setattr(journal, name, spy)
    o = no_applier.order_signal("c-2", "MSFT", "sell", 5, 300.0)
    assert o._sc is None  # the signal waits in the journal: the order has no span yet
    with correlate(order_id="c-2"):
        log.info("logged before the order's span exists")
    with o.scope():
        log.info("in its scope, too")
    assert appliers == []  # logging, entering the scope: nothing applied on this thread
    lines = _by_message(env, "execution")  # only the log worker reads: it applies the journal itself
    assert o._sc is not None
    # On the worker, a chunk at a time with the GIL offered in between, as the applier thread does.
    assert appliers[0] == ("flush_chunked", "tradeobs-logs") and {a[1] for a in appliers} == {"tradeobs-logs"}
    o.done()
    root_ids = _ids(_root(env, "c-2"))
    for msg in ("logged before the order's span exists", "in its scope, too"):
        assert (lines[msg]["trace_id"], lines[msg]["span_id"]) == root_ids


def test_scope_makes_the_order_current_for_lines_and_your_spans(env: Env) -> None:
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
    o = tt.order_signal("c-3", "AAPL", "buy", 10, 100.0)
    mine = env.agent.tracer("mine")
    with o.scope() as scoped:
        assert scoped is o
        log.info("in the scope")
        logging.getLogger("broker.sdk").info("stdlib, in the scope")
        with mine.start_as_current_span("venue.call") as call:
            log.info("in my span inside the scope")
    log.info("after the scope")
    o.cancelled("user")
    root = _root(env, "c-3")
    lines = _by_message(env, "execution", "service")
    for msg in ("in the scope", "stdlib, in the scope"):
        assert (lines[msg]["trace_id"], lines[msg]["span_id"]) == _ids(root)
        assert lines[msg]["order_id"] == "c-3"
    assert call.parent is not None and call.parent.span_id == root.context.span_id  # my span: a child of the order
    assert (lines["in my span inside the scope"]["trace_id"], lines["in my span inside the scope"]["span_id"]) == _ids(
        call
    )
    assert "trace_id" not in lines["after the scope"] and "order_id" not in lines["after the scope"]


def test_asyncio_tasks_and_callbacks_started_in_a_scope_inherit_it(env: Env) -> None:
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
    o = tt.order_signal("c-4", "AAPL", "buy", 10, 100.0)

    async def worker(what: str) -> None:
        await asyncio.sleep(0)
        log.info(what)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        outside = loop.create_task(worker("task started outside"))
        with o.scope():
            inside = loop.create_task(worker("task started inside"))
            loop.call_soon(log.info, "call_soon inside")
        await asyncio.gather(inside, outside)
        await asyncio.sleep(0)

    asyncio.run(main())
    o.done()
    ids = _ids(_root(env, "c-4"))
    lines = _by_message(env, "execution")
    for msg in ("task started inside", "call_soon inside"):
        assert (lines[msg]["trace_id"], lines[msg]["span_id"]) == ids
    assert "trace_id" not in lines["task started outside"]


def test_wrap_runs_a_callback_on_the_order_from_any_thread_or_task(env: Env) -> None:
    """A broker calls back on its own thread or task: the wrapped callback, and what it calls, log on the order."""
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
    o = tt.order_signal("c-5", "AAPL", "buy", 10, 100.0)

    def book_fill(qty: float) -> None:  # code called from the callback
        log.info("booked %s", qty)

    def on_fill(qty: float) -> float:
        log.info("fill %s", qty)
        book_fill(qty)
        return qty * 2

    async def on_ack(venue_id: str) -> str:
        log.info("ack %s", venue_id)
        return venue_id

    results: list[Any] = []
    wrapped = o.wrap(on_fill)
    assert wrapped.__name__ == "on_fill"
    for target in (lambda: results.append(wrapped(4.0)), lambda: on_fill(6.0)):  # the second: not wrapped
        t = threading.Thread(target=target, name="broker-thread")
        t.start()
        t.join()
    results.append(asyncio.run(o.wrap(on_ack)("v-1")))
    o.done()
    assert results == [8.0, "v-1"]
    ids = _ids(_root(env, "c-5"))
    lines = _by_message(env, "execution")
    for msg in ("fill 4.0", "booked 4.0", "ack v-1"):
        assert (lines[msg]["trace_id"], lines[msg]["span_id"]) == ids, msg
        assert lines[msg]["order_id"] == "c-5"
    assert lines["fill 4.0"]["thread"] == "broker-thread"
    assert "trace_id" not in lines["fill 6.0"] and "trace_id" not in lines["booked 6.0"]


def test_the_innermost_order_wins(env: Env) -> None:
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
    a = tt.order_signal("a", "AAPL", "buy", 1, 1.0)
    b = tt.order_signal("b", "AAPL", "sell", 1, 1.0)
    with a.scope():
        with correlate(order_id="b"):
            log.info("correlate b in scope a")
        with b.scope():
            log.info("scope b in scope a")
        log.info("back in a")
    a.done()
    b.done()
    ra, rb = _ids(_root(env, "a")), _ids(_root(env, "b"))
    lines = _by_message(env, "execution")
    assert (lines["correlate b in scope a"]["trace_id"], lines["correlate b in scope a"]["span_id"]) == rb
    assert (lines["scope b in scope a"]["trace_id"], lines["scope b in scope a"]["span_id"]) == rb
    assert (lines["back in a"]["trace_id"], lines["back in a"]["span_id"]) == ra


def test_an_id_two_strategies_use(env: Env) -> None:
    """scope() names the exact order; correlate(order_id=...) alone takes the most recently signalled one."""
    t1 = tradeobs_agent.TradingTelemetry(strategy="s1", venue="v")
    t2 = tradeobs_agent.TradingTelemetry(strategy="s2", venue="v")
    o1 = t1.order_signal("1", "AAPL", "buy", 1, 1.0)
    o2 = t2.order_signal("1", "MSFT", "buy", 1, 1.0)
    with o1.scope():
        log.info("scope of the first")
    with correlate(order_id="1"):
        log.info("the id alone")
    o1.done()
    o2.done()
    env.agent.force_flush()
    roots = {s.attributes["strategy"]: _ids(s) for s in env.spans.get_finished_spans() if s.name == "order"}
    lines = _by_message(env, "execution")
    assert (lines["scope of the first"]["trace_id"], lines["scope of the first"]["span_id"]) == roots["s1"]
    assert (lines["the id alone"]["trace_id"], lines["the id alone"]["span_id"]) == roots["s2"]


def test_a_closed_order_still_names_its_trace(env: Env) -> None:
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
    o = tt.order_signal("c-6", "AAPL", "buy", 10, 100.0)
    o.fill(10, 100.0)
    assert o.closed
    with correlate(order_id="c-6"):
        log.info("settled")
    lines = _by_message(env, "execution")
    assert (lines["settled"]["trace_id"], lines["settled"]["span_id"]) == _ids(_root(env, "c-6"))


def test_a_null_orders_scope_lands_on_no_other_order(env: Env) -> None:
    """What ``order_signal`` returns when it failed has no id of its own: lines in its scope carry no order and no
    trace. Its scope correlated its empty id, so a line landed on whichever order another TradingTelemetry had booked
    under "" (seen as a test that failed only after another test's telemetry booked one)."""
    other = tradeobs_agent.TradingTelemetry(strategy="other", venue="v")
    booked = other.order_signal("", "AAPL", "buy", 10, 100.0)
    booked.submitted()
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
    with NullOrder(tt).scope() as null:
        log.info("inside a null order's scope")
    NullOrder(tt).wrap(lambda: log.info("in a null order's wrapped callback"))()
    assert null.client_order_id == ""
    env.agent.force_flush()
    lines = _by_message(env, "execution")
    for msg in ("inside a null order's scope", "in a null order's wrapped callback"):
        assert "trace_id" not in lines[msg] and "order_id" not in lines[msg], lines[msg]


def test_without_tracing_lines_keep_the_order_id_and_nothing_breaks(env: Env) -> None:
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v", tracer_provider=trace.NoOpTracerProvider())
    o = tt.order_signal("c-7", "AAPL", "buy", 10, 100.0)
    with o.scope():
        log.info("untraced order, scope")
    with correlate(order_id="c-7"):
        log.info("untraced order, correlate")
    with NullOrder(tt).scope():  # what order_signal returns if it failed: harmless
        log.info("null order")
    o.done()
    lines = _by_message(env, "execution")
    assert o.trace_id is None
    for msg in ("untraced order, scope", "untraced order, correlate"):
        assert "trace_id" not in lines[msg] and lines[msg]["order_id"] == "c-7"
    assert "trace_id" not in lines["null order"]


@pytest.mark.parametrize("child_spans", [True, False], ids=["child_spans", "events"])
def test_a_line_of_an_order_carries_the_venues_id_and_the_amended_id(env: Env, child_spans: bool) -> None:
    """A broker's report names an order by the venue's id (what acked() was given) or, after a cancel/replace, by
    its new client order id: the order's lines logged after those calls carry them (``venue_order_id``,
    ``new_order_id``: the last replace's), in the file and in OTLP (Loki's structured metadata), in either way of
    tracing the steps, so the drill-down's log panels find them by either id. They carried only ``order_id``.
    (The ids are the order's when the worker writes the line, so the test lets the worker write each step's lines
    before the next step: a line logged just before a call may carry its id too.)"""
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v", child_spans=child_spans)
    o = tt.order_signal("c-8", "AAPL", "buy", 10, 100.0)
    other = tt.order_signal("c-9", "AAPL", "buy", 10, 100.0)
    with o.scope():
        o.submitted()
        log.info("sent")
        env.flush()
        o.acked("V-8")
        log.info("acked")
    with correlate(order_id="c-8"):
        log.info("by correlate")
    env.flush()
    o.replaced("c-8b", qty=20)
    o.wrap(lambda: log.info("replaced once"))()
    env.flush()
    o.replaced("c-8c", price=101.0)
    broker = threading.Thread(target=o.wrap(lambda: log.info("replaced twice, on a thread")))
    broker.start()
    broker.join()
    with correlate(order_id="c-8", venue_order_id="the caller's"):
        log.info("own id")
    with other.scope():
        log.info("another order")
    env.flush()
    o.done()
    other.done()
    lines = _by_message(env, "execution")
    ids = {m: (r.get("venue_order_id"), r.get("new_order_id")) for m, r in lines.items()}
    assert ids == {
        "sent": (None, None),
        "acked": ("V-8", None),
        "by correlate": ("V-8", None),
        "replaced once": ("V-8", "c-8b"),
        "replaced twice, on a thread": ("V-8", "c-8c"),
        "own id": ("the caller's", "c-8c"),
        "another order": (None, None),
    }, ids
    assert {r["order_id"] for m, r in lines.items() if m != "another order"} == {"c-8"}
    root = _ids(_root(env, "c-8"))
    assert {(r["trace_id"], r["span_id"]) for m, r in lines.items() if m != "another order"} == {root}
    otlp = {r.body: dict(r.attributes or {}) for r in env.otlp_records()}
    assert (otlp["replaced once"]["venue_order_id"], otlp["replaced once"]["new_order_id"]) == ("V-8", "c-8b")
    assert "venue_order_id" not in otlp["sent"] and "venue_order_id" not in otlp["another order"]
