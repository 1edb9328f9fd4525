"""_internal.gil: background work offers the GIL after each BUDGET of work, not after each unit and not never."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from tradeobs_agent._internal import gil
from tradeobs_agent.trading._journal import CHUNK, Journal


class _Clock:
    """A fake perf_counter that work advances; records every offer (sleep) and when it happened.

    An offer (the sleep) takes ``offer_takes`` seconds, during which the trading thread's CPU clock advances by
    ``trading_runs`` of that (1.0: it ran all along; 0.0: it waited too, another thread had the GIL).
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.offers: list[float] = []
        self.offer_takes = 0.0
        self.trading_runs = 0.0
        self.trading_cpu = 0.0

    def perf(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds == gil.PAUSE
        self.offers.append(self.now)
        self.now += self.offer_takes
        self.trading_cpu += self.offer_takes * self.trading_runs

    def cpu(self, clock: int) -> float:
        return self.trading_cpu  # whichever thread is watched (a test may watch its own)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Clock]:
    """Offers recorded, not slept; the watched trading thread is one that does not exist (so never idle, and
    never this test's thread, on which no offer is made), with a fake CPU clock."""
    c = _Clock()
    monkeypatch.setattr(gil, "_perf", c.perf)
    monkeypatch.setattr(gil, "_sleep", c.sleep)
    monkeypatch.setattr(gil, "_clock_gettime", c.cpu)
    monkeypatch.setattr(gil, "_switch_interval", lambda: 0.005)
    w = gil._watch
    saved = (w.tid, w.ident, w.opened, w.fd, w.clock, w.busy_until, w.idle)
    w.tid, w.ident, w.opened, w.fd, w.clock, w.busy_until = _NO_THREAD, _NO_THREAD, False, None, _TRADING_CLOCK, 0.0
    w.idle = None
    yield c
    w.tid, w.ident, w.opened, w.fd, w.clock, w.busy_until, w.idle = saved


_NO_THREAD = 2**22 + 7919
_TRADING_CLOCK = -7919


def test_no_offer_on_the_trading_thread_itself(clock: _Clock) -> None:
    """Code shared with background readers (a registry snapshot) may run on the trading thread: it never
    sleeps there, whatever that thread is doing; another thread offers."""
    import threading

    gil.watch_this_thread()
    gil.offer_gil()
    s = gil.Slices()
    for _ in range(5):
        clock.now += gil.BUDGET * 2
        s.offer()
    assert clock.offers == []
    t = threading.Thread(target=gil.offer_gil)
    t.start()
    t.join(10)
    assert len(clock.offers) == 1


@pytest.mark.parametrize("unit", [gil.BUDGET / 10.5, gil.BUDGET / 3.3, gil.BUDGET * 2])  # never a tie with it
def test_slices_offer_once_per_budget_of_work(clock: _Clock, unit: float) -> None:
    s = gil.Slices()
    for _ in range(100):
        clock.now += unit  # one unit of work
        s.offer()
    per_slice = int(gil.BUDGET // unit) + 1  # units done when a slice first passes the budget
    assert len(clock.offers) == 100 // per_slice
    gaps = [b - a for a, b in zip([0.0, *clock.offers], clock.offers, strict=False)]
    assert all(g <= gil.BUDGET + unit + 1e-12 for g in gaps), gaps  # never more than a budget plus one unit


def test_no_offer_for_work_shorter_than_the_budget(clock: _Clock) -> None:
    s = gil.Slices()
    for _ in range(10):
        clock.now += gil.BUDGET / 20
        s.offer()
    assert clock.offers == []


def test_offer_gil_sleeps_the_pause(clock: _Clock) -> None:
    gil.offer_gil()
    assert clock.offers == [0.0]


def _work(clock: _Clock, seconds: float) -> Any:
    def handler(target: list[int], entry: tuple[Any, ...]) -> None:
        clock.now += seconds
        target.append(entry[2])

    return handler


@pytest.mark.parametrize("per_entry", [gil.BUDGET / 41.5, gil.BUDGET / 2.5])  # never a tie with it
def test_a_background_flush_offers_the_gil_between_slices_and_applies_everything_in_order(
    clock: _Clock, per_entry: float
) -> None:
    j, seen = Journal(interval=None), []
    handler = _work(clock, per_entry)
    for i in range(400):
        j.put((handler, seen, i))
    assert j.flush_chunked() == 400
    assert seen == list(range(400))
    chunk_time = CHUNK * per_entry
    chunks_per_slice = int(gil.BUDGET // chunk_time) + 1
    chunks = 400 // CHUNK
    assert len(clock.offers) == (chunks - 1) // chunks_per_slice  # none after the last chunk
    gaps = [b - a for a, b in zip([0.0, *clock.offers], clock.offers, strict=False)]
    assert max(gaps) <= gil.BUDGET + chunk_time + 1e-12


def test_flush_on_the_callers_thread_never_offers(clock: _Clock) -> None:
    """``flush()`` is what readers on the trading thread call: it applies at once, never sleeps."""
    j, seen = Journal(interval=None), []
    handler = _work(clock, gil.BUDGET)
    for i in range(50):
        j.put((handler, seen, i))
    assert j.flush() == 50 and clock.offers == []


class _Busy(_Clock):
    """A fake clock where every reading of it stands for a tenth of a budget of work."""

    def perf(self) -> float:
        self.now += gil.BUDGET / 10
        return self.now


def test_a_registry_reader_applies_the_trading_journal_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scrapes, the metric reader and a group's publisher read the registry on their own threads: the journal's
    backlog is applied in slices with the GIL offered between them, and the read sees every value recorded."""
    from tradeobs_agent import trading
    from tradeobs_agent.testing import reset

    reset()
    try:
        tt = trading.TradingTelemetry()
        tt._journal.stop()  # no applier thread: the reader applies the whole backlog
        busy = _Busy()
        monkeypatch.setattr(gil, "_perf", busy.perf)
        monkeypatch.setattr(gil, "_sleep", busy.sleep)
        for i in range(CHUNK * 20):
            tt.tick("AAPL", 100.0 + i)
        got: list[float] = []

        def read() -> None:
            tt.registry.flush()
            ticks = tt.registry.get("trading.marketdata.ticks")
            assert ticks is not None
            got.extend(s.value for s in ticks.series())

        import threading

        reader = threading.Thread(target=read)
        reader.start()
        reader.join(10)
        assert got == [CHUNK * 20]
        assert busy.offers, "the backlog was applied in one piece"
    finally:
        reset()


# ---------------------------------------------------------------- offers only while the trading thread may wait


@pytest.fixture
def watch() -> Iterator[Any]:
    """The module's watched thread, restored after the test (a test may watch another thread)."""
    w = gil._watch
    saved = (w.tid, w.ident, w.opened, w.fd, w.clock, w.busy_until, w.idle)
    yield w
    w.tid, w.ident, w.opened, w.fd, w.clock, w.busy_until, w.idle = saved


def _on_thread(fn: Any) -> Any:
    import threading

    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    return t, out


def test_the_trading_thread_parked_in_its_event_loop_is_idle_and_waiting_on_a_lock_is_not(watch: Any) -> None:
    import os
    import select
    import threading
    import time

    assert watch.tid == threading.main_thread().native_id  # the main thread until init() says otherwise
    r, w = os.pipe()
    ep = select.epoll()
    ep.register(r, select.EPOLLIN)

    def blocked() -> bool:  # the main thread is in a system call, not running
        with open(f"/proc/self/task/{watch.tid}/syscall", "rb") as f:
            return f.read(8).split(b" ")[0].isdigit()

    def probe_while_parked() -> bool:
        deadline = time.monotonic() + 10  # the main thread may still be starting this thread (a futex wait)
        while not (idle := gil.loop_idle()) and time.monotonic() < deadline:
            time.sleep(0.001)
        os.write(w, b"x")  # wakes it
        return idle

    t, out = _on_thread(probe_while_parked)
    assert ep.poll(10)  # parked in epoll_wait until the probe has looked
    t.join()
    assert out == [True]

    lock = threading.Lock()
    lock.acquire()

    def probe_while_waiting() -> bool:
        deadline = time.monotonic() + 10
        while not blocked() and time.monotonic() < deadline:
            time.sleep(0.001)
        busy = gil.loop_idle()
        lock.release()
        return busy

    t, out = _on_thread(probe_while_waiting)
    assert lock.acquire(timeout=10)  # a futex wait, as for the GIL
    t.join()
    assert out == [False]
    assert gil.loop_idle() is False  # the thread asking is the trading thread itself: running
    ep.close()
    os.close(r)
    os.close(w)


class _Proc:
    """A fake trading thread for :func:`gil.loop_idle`: its CPU clock (ns) and the system call ``/proc`` shows.

    ``runs_after_read``: the thread runs (its clock moves on by that many ns) right after ``/proc`` was read, as a
    thread woken just then does."""

    def __init__(self) -> None:
        self.cpu = 1_000_000
        self.call = b"232"  # epoll_wait: parked
        self.reads = 0
        self.runs_after_read = 0

    def clock_ns(self, clock: int) -> int:
        return self.cpu

    def pread(self, fd: int, n: int, offset: int) -> bytes:
        self.reads += 1
        out = self.call + b" 0x5 0x7f0 0x1"
        self.cpu += self.runs_after_read
        return out


@pytest.fixture
def proc(watch: Any, clock: _Clock, monkeypatch: pytest.MonkeyPatch) -> _Proc:
    """``loop_idle`` reading a fake ``/proc`` file and CPU clock (the fake perf_counter of ``clock``)."""
    p = _Proc()
    monkeypatch.setattr(gil, "_pread", p.pread)
    monkeypatch.setattr(gil, "_clock_gettime_ns", p.clock_ns)
    watch.opened, watch.fd, watch.clock, watch.idle = True, 12345, _TRADING_CLOCK, None
    return p


def test_a_parked_loop_whose_cpu_clock_stood_still_is_not_read_again(proc: _Proc, clock: _Clock) -> None:
    """Seen parked, a thread whose CPU time has not moved has not run: still parked, without a read of /proc (9-12 us
    of CPU each in the demo's run) until IDLE_TRUST has passed; once its clock moves, /proc is read again."""
    assert [gil.loop_idle() for _ in range(10)] == [True] * 10
    assert proc.reads == 1
    clock.now += gil.IDLE_TRUST * 1.01  # trusted for IDLE_TRUST only
    assert gil.loop_idle() is True and proc.reads == 2
    proc.cpu += 1  # it ran (1 ns is enough) and now waits on a lock, as for the GIL
    proc.call = b"202"
    assert gil.loop_idle() is False and proc.reads == 3
    assert gil.loop_idle() is False and proc.reads == 4  # not parked: every look reads /proc
    proc.call = b"running"
    assert gil.loop_idle() is False and proc.reads == 5


def test_a_loop_woken_between_its_clock_and_proc_reads_is_read_again(proc: _Proc) -> None:
    """The clock kept is the one read before /proc: a thread that ran in between (woken, then waiting for the GIL
    with its clock still) does not match it, so the next look reads /proc and offers."""
    proc.runs_after_read = 7_000  # woken right after /proc showed it parked
    assert gil.loop_idle() is True
    proc.runs_after_read = 0
    proc.call = b"202"  # now waiting for the GIL; its clock stands still from here on
    assert gil.loop_idle() is False and proc.reads == 2
    assert gil.loop_idle() is False and proc.reads == 3


def test_another_watched_thread_with_the_same_cpu_time_is_read_again(proc: _Proc, watch: Any) -> None:
    """What was kept is for one thread's clock: another thread watched since (``init()`` on another thread) is read
    from /proc even if its CPU time happens to be the same number."""
    assert gil.loop_idle() is True and proc.reads == 1
    watch.clock = _TRADING_CLOCK - 1  # what a watched thread's change leaves, the thread's own reset aside
    proc.call = b"202"
    assert gil.loop_idle() is False and proc.reads == 2


def test_a_parked_loop_without_a_cpu_clock_is_read_every_time(proc: _Proc, watch: Any) -> None:
    """No CPU clock (the thread exited, or no pthread_getcpuclockid): /proc is read at every look, as before."""
    watch.clock = None
    assert [gil.loop_idle() for _ in range(3)] == [True] * 3 and proc.reads == 3


def test_a_real_parked_loop_is_read_once_and_seen_again_once_woken(watch: Any, clock: _Clock) -> None:
    """The same with the real /proc file and CPU clock (the fake perf_counter stands still, so the trust does not
    run out): parked in epoll_wait, one read for 20 looks; woken and waiting on a lock, it is not idle."""
    import os
    import select
    import threading
    import time

    gil.watch_this_thread()  # this test's thread is the trading loop
    reads = [0]
    real = gil._pread

    def counted(fd: int, n: int, offset: int) -> bytes:
        reads[0] += 1
        return real(fd, n, offset)

    gil._pread = counted  # restored below (monkeypatch would restore it only after the threads are done)
    r, w = os.pipe()
    ep = select.epoll()
    ep.register(r, select.EPOLLIN)
    lock = threading.Lock()
    lock.acquire()
    me = gil._watch.tid

    def probe() -> tuple[list[bool], int, bool]:
        deadline = time.monotonic() + 10
        while not gil.loop_idle() and time.monotonic() < deadline:  # until the trading thread is in epoll_wait
            time.sleep(0.001)
        reads[0] = 0
        looks = [gil.loop_idle() for _ in range(20)]
        n = reads[0]
        os.write(w, b"x")  # wakes it; it goes on to wait on the lock
        while time.monotonic() < deadline:
            with open(f"/proc/self/task/{me}/syscall", "rb") as f:
                if f.read(8).split(b" ")[0] == b"202":  # futex: waiting on the lock
                    break
        woken = gil.loop_idle()
        lock.release()
        return looks, n, woken

    try:
        t, out = _on_thread(probe)
        assert ep.poll(10)
        assert lock.acquire(timeout=10)
        t.join()
    finally:
        gil._pread = real
        ep.close()
        os.close(r)
        os.close(w)
    looks, n, woken = out[0]
    assert looks == [True] * 20 and n == 0  # the look that found it parked kept its clock: no read in 20 looks
    assert woken is False


def test_slices_skip_the_offer_while_the_trading_loop_is_parked(watch: Any, clock: _Clock) -> None:
    """The CPU an offer costs is saved when nobody can be waiting; the slices' length is unchanged."""
    import os
    import select
    import time

    gil.watch_this_thread()  # this test's thread is the trading loop, parked in epoll below
    r, w = os.pipe()
    ep = select.epoll()
    ep.register(r, select.EPOLLIN)

    def work() -> int:
        deadline = time.monotonic() + 10
        while not gil.loop_idle() and time.monotonic() < deadline:  # until the main thread is in epoll_wait
            time.sleep(0.001)
        s = gil.Slices()
        for _ in range(100):
            clock.now += gil.BUDGET / 3.3
            s.offer()
        os.write(w, b"x")
        return len(clock.offers)

    t, out = _on_thread(work)
    assert ep.poll(10)
    t.join()
    assert out == [0]
    ep.close()
    os.close(r)
    os.close(w)


def test_without_proc_every_slice_offers(watch: Any, clock: _Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not Linux, an unknown architecture, or /proc hidden: a slice offers as if the loop could be waiting."""
    watch.tid, watch.ident, watch.opened, watch.fd = _NO_THREAD, _NO_THREAD, False, None  # no such thread: no file
    assert gil.loop_idle() is False and watch.fd is None
    monkeypatch.setattr(gil, "_IDLE_CALLS", frozenset())
    watch.opened = False
    assert gil.loop_idle() is False
    s = gil.Slices()
    for _ in range(10):
        clock.now += gil.BUDGET * 2
        s.offer()
    assert len(clock.offers) == 10


def test_init_thread_is_watched_and_a_forked_child_watches_its_own_thread(watch: Any) -> None:
    import os
    import threading

    t, out = _on_thread(lambda: (gil.watch_this_thread(), gil._watch.tid)[1])
    t.join()
    assert out[0] != threading.main_thread().native_id and gil._watch.tid == out[0]
    assert gil._watch.ident == t.ident  # the same thread by its threading id (compared without a system call)
    gil.watch_this_thread()
    assert gil._watch.tid == threading.get_native_id() and gil._watch.ident == threading.get_ident()
    assert gil.loop_idle() is False  # opened for this thread (running), the other's descriptor retired
    pid = os.fork()
    if pid == 0:  # the child: its only thread is watched, through its own /proc file
        ok = gil._watch.tid == threading.get_native_id() and gil._watch.fd is None and gil.loop_idle() is False
        ok = ok and gil._watch.ident == threading.get_ident()
        ok = ok and gil._watch.fd is not None and not gil._retired and gil._watch.clock is not None
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_an_export_collection_and_a_scrape_give_the_gil_back_between_families(
    clock: _Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The metric reader's collection (bridge) and the Prometheus endpoint's render run on their own threads and
    offer the GIL between families (the render: between points), not once per whole read (milliseconds of Python
    at 1,000 symbols)."""
    import threading

    from tradeobs_agent._internal import bridge
    from tradeobs_agent._internal.prometheus import Renderer
    from tradeobs_agent.metrics import Registry

    reg = Registry()
    for i in range(20):
        reg.counter(f"c{i}").add(1, {"symbol": "AAPL"})
    series = type(reg.counter("c0").bind(symbol="AAPL"))
    real_point = series.point

    def slow_point(self: Any) -> Any:  # each family's one point is a budget of work
        clock.now += gil.BUDGET * 1.5
        return real_point(self)

    monkeypatch.setattr(series, "point", slow_point)
    for read in (lambda: bridge.collect(reg), lambda: Renderer(reg).render()):
        clock.offers.clear()
        t = threading.Thread(target=read)
        t.start()
        t.join(10)
        assert len(clock.offers) >= 20, "the read held the GIL through every family"


@pytest.mark.parametrize("behind", [False, True], ids=["keeping-up", "behind"])
def test_the_log_worker_stops_offering_while_it_is_behind(
    clock: _Clock, behind: bool, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trading thread that keeps the GIL busy takes it back for a whole switch interval at every offer: a log
    worker that kept offering got ~170 records/s through and the rest were dropped. With a backlog past an eighth
    of its queue, the worker works through its batch without offering; otherwise it offers per slice."""
    import tradeobs_agent
    from tradeobs_agent import LogOptions

    agent = tradeobs_agent.init(otlp=False, prometheus=False, live=False, logs=LogOptions(dir=str(tmp_path)))
    try:
        p = agent.logs
        assert p is not None and p._thread is not None
        p._abandon = True  # the worker thread leaves; this test drives _process itself
        p._wake.set()
        p._thread.join(5)
        w = gil._watch
        w.tid, w.ident, w.opened, w.fd = _NO_THREAD, _NO_THREAD, False, None  # init() watched this thread
        build = p.builder.build

        def slow_build(e: Any) -> Any:
            clock.now += gil.BUDGET / 4  # four records per slice
            return build(e)

        monkeypatch.setattr(p.builder, "build", slow_build)
        entry = _format_entry()
        backlog = int(p.queue.capacity / 8) + (1 if behind else -64)
        p.queue.dq.extend([entry] * backlog)  # what waits behind this batch
        p._process([entry] * 64)
        assert p.processed == 64
        assert (len(clock.offers) == 0) is behind, clock.offers
        p.queue.dq.clear()
    finally:
        tradeobs_agent.shutdown(timeout=2.0)


def _format_entry() -> Any:
    import logging
    import time

    from tradeobs_agent.logs._capture import capture

    return capture(time.time_ns(), logging.INFO, "tradeobs.execution", "order %s filled", ("c-1",))


# ---------------------------------------------------------------- a trading thread that never waits


def _slices_of_work(clock: _Clock, seconds: float) -> int:
    """Units of work (each just past the budget) for ``seconds`` of the fake clock; returns how many were done."""
    s = gil.Slices()
    end = clock.now + seconds
    units = 0
    while clock.now < end:
        clock.now += gil.BUDGET * 1.01  # one unit of work, just past the budget: every unit ends a slice
        s.offer()
        units += 1
    return units


def test_a_trading_thread_that_keeps_an_offered_gil_gets_longer_slices(clock: _Clock) -> None:
    """A loop that never waits takes every offer and keeps the GIL for a whole switch interval: offering every
    0.1 ms left a scrape one slice in 5 ms (5-11 s for 1,000 symbols, benchmarks/busy_loop.py). Seen busy, the
    slices are of BUSY_BUDGET for BUSY_HOLD; each offer looks again, and once it is no longer busy they are short
    again."""
    clock.offer_takes, clock.trading_runs = 0.005, 1.0
    _slices_of_work(clock, 0.5)
    gaps = [b - a for a, b in itertools.pairwise(clock.offers)]  # work since the last offer, and that offer's wait
    assert len(gaps) > 50 and all(g > gil.BUSY_BUDGET + 0.005 for g in gaps), gaps
    clock.offer_takes = 0.0  # the trading loop waits again: the next offer comes back at once
    n = len(clock.offers)
    _slices_of_work(clock, gil.BUSY_HOLD + 0.01)
    late = [b - a for a, b in itertools.pairwise(clock.offers[n:]) if a >= clock.offers[n] + gil.BUSY_HOLD]
    assert late and all(g < gil.BUDGET * 2.1 for g in late), late


@pytest.mark.parametrize(
    ("offer_takes", "trading_runs"),
    [
        (0.005, 0.0),  # late, but the trading thread did not run: another thread had the GIL
        (0.005, 0.5),  # late, the trading thread ran part of it (it woke up and went back to its loop's wait)
        (0.0005, 1.0),  # the trading loop took the GIL for a step of 0.5 ms and gave it back
    ],
)
def test_offers_go_on_unless_the_trading_thread_ran_through_a_whole_switch_interval(
    clock: _Clock, offer_takes: float, trading_runs: float
) -> None:
    clock.offer_takes, clock.trading_runs = offer_takes, trading_runs
    units = _slices_of_work(clock, 0.3)
    assert units >= 40 and len(clock.offers) == units


def test_the_cpu_clock_read_counts_the_trading_threads_running_not_its_waiting(watch: Any) -> None:
    """The assumption of the busy rule: the watched thread's clock (``pthread_getcpuclockid``) advances while it
    runs Python and stands still while it sleeps; once it has exited, the offers go on without the check."""
    import threading
    import time

    readings: dict[str, float] = {}
    ready, go = threading.Event(), threading.Event()

    def trading(kind: str) -> None:
        gil.watch_this_thread()
        ready.set()
        go.wait(10)
        c0 = time.clock_gettime(gil._watch.clock)
        if kind == "spins":
            deadline = time.monotonic() + 0.2
            while time.monotonic() < deadline:
                pass
        else:
            time.sleep(0.2)
        readings[kind] = time.clock_gettime(gil._watch.clock) - c0

    for kind in ("spins", "sleeps"):
        ready.clear()
        go.clear()
        t = threading.Thread(target=trading, args=(kind,))
        t.start()
        assert ready.wait(10) and gil._watch.clock is not None
        go.set()
        t.join(10)
    assert readings["spins"] > 10 * readings["sleeps"], readings
    import os

    gone = f"/proc/self/task/{gil._watch.tid}"  # join() returns before the system thread is gone: wait for that
    deadline = time.monotonic() + 10
    while os.path.exists(gone) and time.monotonic() < deadline:
        time.sleep(0.01)
    gil.offer_gil()  # the watched thread has exited: its clock cannot be read, and the offer is made anyway
    assert gil._watch.clock is None
