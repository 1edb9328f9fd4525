"""trading._journal: order, bounds, errors, the applier thread, fork; readers see exactly what was recorded."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import tradeobs_agent
from tests._util import otel_points, prom_samples, wait_for
from tradeobs_agent import _errors, events, trading
from tradeobs_agent.trading._journal import Journal, get_journal


class _Target:
    def __init__(self) -> None:
        self.seen: list[Any] = []


def _on_note(t: _Target, e: tuple[Any, ...]) -> None:
    _, _, value = e
    t.seen.append(value)


def _on_boom(t: _Target, e: tuple[Any, ...]) -> None:
    raise ValueError(e[2])


def _on_call(fn: Callable[[], None], e: tuple[Any, ...]) -> None:
    fn()


def test_entries_apply_in_order_and_a_bad_one_is_counted_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_errors.ENV_STRICT)
    monkeypatch.setattr(_errors, "_strict", False)  # as in production: a bug is counted, never raised
    j, t = Journal(interval=None), _Target()
    j.put((_on_note, t, 1))
    j.put((_on_boom, t, "bad"))
    j.put((_on_note, t, 2))
    assert t.seen == [] and len(j) == 3  # nothing happens at the call
    assert j.flush() == 3
    assert t.seen == [1, 2] and j.errors == 1 and len(j) == 0
    assert _errors.internal_error_counts() == {"trading.boom": 1}
    _errors.reset()  # seen and checked: not a failure of this test


def test_under_tests_a_handler_bug_raises() -> None:
    j, t = Journal(interval=None), _Target()
    j.put((_on_boom, t, "bad"))
    with pytest.raises(ValueError, match="bad"):
        j.flush()
    _errors.reset()


def test_past_the_limit_the_producer_applies_the_backlog_itself() -> None:
    j, t = Journal(limit=10, interval=None), _Target()
    for i in range(25):
        j.put((_on_note, t, i))
    assert len(j) <= 10  # memory stays bounded ...
    j.flush()
    assert t.seen == list(range(25))  # ... and nothing was dropped


def test_a_handler_that_records_again_does_not_deadlock() -> None:
    j = Journal(interval=None)
    seen: list[str] = []

    def again() -> None:
        seen.append("first")
        j.put((_on_call, lambda: seen.append("second")))
        assert j.flush() == 0  # we are the applier: later, not now

    j.put((_on_call, again))
    j.flush()
    assert seen == ["first", "second"]


def test_the_applier_thread_applies_without_any_reader() -> None:
    j, t = Journal(interval=0.05), _Target()
    j.start()
    try:
        for i in range(100):
            j.put((_on_note, t, i))
        wait_for(lambda: len(t.seen) == 100, "the applier thread")
        assert t.seen == list(range(100))
    finally:
        j.stop()
    assert j._thread is None


def test_the_applier_thread_yields_between_chunks() -> None:
    """A trading thread waiting for the GIL runs between chunks, not after the whole batch.

    The interpreter's switch interval is raised so that only the applier's own yield can let it in.
    """
    j = Journal(interval=0.05)
    order: list[str] = []
    gate = threading.Event()

    def slow() -> None:
        gate.set()
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.0005:  # CPU-bound, holds the GIL
            pass
        order.append("entry")

    for _ in range(2000):
        j.put((_on_call, slow))
    old = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    try:
        j.start()
        gate.wait(5)
        order.append("other thread")  # runs while the applier still has most of the batch to go
        wait_for(lambda: len(order) == 2001, "the whole batch", limit=60)
    finally:
        sys.setswitchinterval(old)
        j.stop()
    assert order.index("other thread") < 1000  # in the first half of the batch (typically after one chunk)


def test_fork_applies_first_and_the_child_starts_clean() -> None:
    j, t = Journal(interval=0.05), _Target()
    os.register_at_fork(before=j._before_fork, after_in_parent=j._after_fork_parent, after_in_child=j._after_fork_child)
    j.start()
    j.put((_on_note, t, "before fork"))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: nothing pending, a usable lock, its own applier thread
        try:
            ok = len(j) == 0 and t.seen == ["before fork"] and j._thread is not None and j._thread.is_alive()
            j.put((_on_note, t, "child"))
            ok = ok and j.flush() == 1 and t.seen[-1] == "child"
            os.write(w, b"ok" if ok else b"bad")
        finally:
            os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    assert os.read(r, 10) == b"ok" and status == 0
    assert t.seen == ["before fork"]  # the parent applied it before forking, once
    j.stop()


def test_tracing_never_draws_from_the_applications_random() -> None:
    """A seeded backtest stays reproducible: order spans (made on the applier thread) use their own ids."""
    with tradeobs_agent.testing.capture(logs=False):
        tt = trading.TradingTelemetry()
        random.seed(7)
        expected = [random.random() for _ in range(5)]
        random.seed(7)
        for i in range(50):
            o = tt.order_signal(f"r{i}", "AAPL", "buy", 1)
            o.submitted()
            o.fill(1, 1.0)
        tt.flush()
        assert [random.random() for _ in range(5)] == expected
        tt.close()


# --------------------------------------------------------------------------- exact through every reader


_ids = itertools.count()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    per_worker=st.lists(
        st.lists(st.tuples(st.sampled_from(["AAPL", "MSFT", "TSLA"]), st.integers(1, 3)), max_size=40),
        min_size=2,
        max_size=4,
    )
)
def test_trading_calls_from_threads_and_tasks_reach_every_reader_exactly(
    agent_with_readers: tuple[Any, InMemoryMetricReader], per_worker: list[list[Any]]
) -> None:
    """No flush() anywhere: each reader (OTel collection, Prometheus scrape, event bus) applies the journal."""
    agent, reader = agent_with_readers  # one agent for every example: each example has its own symbols
    example = next(_ids)
    tt = trading.TradingTelemetry(strategy=f"s{example}")
    seq0 = events.get_bus().last_seq

    def trade(symbol: str, fills: int, tag: str) -> None:
        tt.tick(f"{symbol}{example}", 100.0, exchange_ts=time.time())
        o = tt.order_signal(f"{example}-{tag}", f"{symbol}{example}", "buy", fills)
        o.submitted()
        for _ in range(fills):
            o.fill(1, 100.0)

    async def in_tasks(work: list[Any], w: int) -> None:
        async def one(i: int, sym: str, n: int) -> None:
            await asyncio.sleep(0)
            trade(sym, n, f"t{w}-{i}")

        await asyncio.gather(*(one(i, s, n) for i, (s, n) in enumerate(work)))

    threads = [
        threading.Thread(target=lambda w=w, work=work: [trade(s, n, f"w{w}-{i}") for i, (s, n) in enumerate(work)])
        for w, work in enumerate(per_worker[1:], start=1)
    ]
    threads.append(threading.Thread(target=lambda: asyncio.run(in_tasks(per_worker[0], 0))))
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    all_work = [x for w in per_worker for x in w]
    for base in ("AAPL", "MSFT", "TSLA"):
        sym = f"{base}{example}"
        n_orders = sum(1 for s, _ in all_work if s == base)
        n_fills = sum(f for s, f in all_work if s == base)
        m = otel_points(reader)
        ticks = [p.value for p in m.get("trading.marketdata.ticks", []) if p.attributes["symbol"] == sym]
        filled = [p.value for p in m.get("trading.orders.filled", []) if p.attributes.get("symbol") == sym]
        partial = [p.value for p in m.get("trading.orders.partially_filled", []) if p.attributes.get("symbol") == sym]
        assert sum(ticks) == n_orders and sum(filled) == n_orders
        assert sum(partial) == n_fills - n_orders
        prom = prom_samples(agent.prometheus_url)  # type: ignore[arg-type]
        got = sum(s.value for s in prom.get("trading_orders_filled_total", []) if s.labels["symbol"] == sym)
        assert got == n_orders
    fills = [e for e in events.get_bus().since(seq0) if e.kind == "fill"]
    assert len(fills) == sum(f for _, f in all_work)
    tt.close()


def test_the_process_journal_is_shared_and_started_by_trading_telemetry() -> None:
    tt = trading.TradingTelemetry()
    j = get_journal()
    assert tt._journal is j and j._thread is not None and j._thread.is_alive()
    tt.close()


def test_flush_chunked_applies_everything_in_order_and_not_from_inside_a_handler() -> None:
    j, t = Journal(interval=None), _Target()
    inner: list[int] = []
    j.put((_on_call, lambda: inner.append(j.flush_chunked()), 0))  # a handler asking again: later, not a deadlock
    for i in range(200):  # several chunks
        j.put((_on_note, t, i))
    assert j.flush_chunked() == 201
    assert t.seen == list(range(200)) and inner == [0] and len(j) == 0


def test_flush_chunked_returns_only_after_another_threads_chunk_is_applied() -> None:
    """A reader that finds the queue empty while another thread still applies the last entries waits for them."""
    j, t = Journal(interval=None), _Target()
    started, release = threading.Event(), threading.Event()

    def slow(target: _Target, e: tuple[Any, ...]) -> None:
        started.set()
        release.wait(10)
        target.seen.append("slow")

    j.put((slow, t, 0))
    other = threading.Thread(target=j.flush)  # pops the entry, then blocks inside its handler
    other.start()
    assert started.wait(10)
    done: list[int] = []
    reader = threading.Thread(target=lambda: done.append(j.flush_chunked()))
    reader.start()
    reader.join(0.3)
    assert reader.is_alive() and not done, "returned while the entry it should see was still being applied"
    release.set()
    reader.join(10)
    other.join(10)
    assert done == [0] and t.seen == ["slow"]
