"""Background work that gives the GIL back to the trading thread in short slices.

The agent's threads (the trading journal's applier, the log worker, the registry's readers such as
the Prometheus endpoint and the metric export's collection and encoder, a group's publisher, the NATS
publisher) run Python while the trading loop sleeps. When the loop wakes up (a market-data step, a
timer) and one of them holds the GIL, the loop waits until that thread lets go: at the end of its work
if it blocks then, or after the interpreter's switch interval (5 ms) if it does not. So the longest
stretch a background thread runs without letting go is added, at worst, to the trading loop's lag.

Measured on the demo loop (``benchmarks/overhead.py --against``, 1,000 ticks/s, 100 orders/s, fully
on, paired rounds): with the journal applied 64 entries at a time (stretches of 0.5 ms at the median,
1.4 ms at p99) the loop's lag p99 was 1.75x the agent-off figure; in slices of 0.25 ms, 1.41x, for
+0.27 points of a core. Shorter slices cut the lag a little more and cost more CPU (0.06 ms: about
1.2x, +0.9 points); ``docs/performance.md`` ("Background work in slices") has the table. Once a slice offers
only when the trading thread may be waiting (below), its end costs a ``pread`` rather than an offer, and
slices of 0.1 ms (this release) cut the lag against 0.25 ms (0.84x and 0.93x in two paired runs) for no
measurable CPU; 0.05 ms did no better than 0.1.

Letting go means sleeping briefly: ``sleep(0)`` releases the GIL too briefly for a waiter on another
core (this thread takes it back first). An offer costs CPU (the sleep and the thread switches: 38-55 µs of
CPU per offer measured on a 2-core VM), so :class:`Slices` offers only after ``BUDGET`` seconds of work,
not after every unit, and on Linux only when the trading thread may be waiting: past its budget, a slice
first reads what the trading thread is doing (``/proc/self/task/<tid>/syscall``, one ``pread`` of 1.6 µs).
If it is parked in the kernel's wait for events (``epoll_wait``, ``select``, ``poll``: an event loop
with nothing to do), it cannot be waiting for the GIL, and the slice goes on without offering. Anything
else (running, waiting on a lock, which is how a thread waits for the GIL) gets the offer. A loop that
wakes up meanwhile is seen at the next slice's end, so what it waits is still one slice at most.
That read cost 9-12 µs of CPU inside the demo's run (not the 1.6 µs of a tight loop), some 250 a second:
about 0.3 points of a core. So a slice first reads the trading thread's CPU clock (under 1 µs): a thread
seen parked whose CPU time has not moved since has not run since, so it is still in that same wait, and
the read of ``/proc`` is skipped (for at most ``IDLE_TRUST`` after the read that saw it parked).

A trading thread that never waits (a loop that always has work: a backtest, a strategy busy on the CPU)
takes an offered GIL and keeps it for the whole switch interval, so offering every slice would leave the
background work one slice in every 5 ms: a Prometheus scrape of 1,000 symbols took 5-11 s at the median
and up to 27 s instead of 0.1 s (Prometheus' scrape timeout is 10 s). So an offer also reads the trading
thread's CPU clock: when it came back a switch interval late and the trading thread was running all along,
that thread is busy, not waking up, and for ``BUSY_HOLD`` seconds the slices offer after ``BUSY_BUDGET`` of
work instead of ``BUDGET``: the busy thread keeps the GIL at least five sixths of the time (its 5 ms against
a slice's 1 ms) and the background work gets the rest (the scrape: about 0.5 s, prometheus_client's 0.65 s;
``benchmarks/busy_loop.py``). Each offer looks again; a loop that waits is not looked at, so the slices
stay long until the hold ends. The log worker also stops offering while its queue is behind
(``logs.pipeline``).

The trading thread is the one that called ``tradeobs_agent.init()`` (:func:`watch_this_thread`), the
main thread until then. Where ``/proc`` cannot be read (not Linux, a sandbox), every slice offers.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "BUDGET",
    "BUSY_BUDGET",
    "BUSY_HOLD",
    "IDLE_TRUST",
    "PAUSE",
    "ROOM_QUIET",
    "ROOM_WAIT",
    "QueueRoom",
    "Slices",
    "loop_idle",
    "offer_gil",
    "stopping",
    "watch_this_thread",
]

BUDGET = 0.0001
"""Seconds a background thread works before it offers the GIL (what a waking trading loop waits, at most)."""
PAUSE = 0.00005
"""Seconds slept to offer it: long enough for a thread waiting on another core to take it."""
BUSY_HOLD = 0.05
"""Seconds of ``BUSY_BUDGET`` slices once the trading thread was seen busy (an offer back a switch interval late,
the trading thread on the CPU all that time)."""
BUSY_BUDGET = 0.001
"""Seconds a background thread works before it offers the GIL while the trading thread is busy."""

IDLE_TRUST = 0.001
"""Seconds for which a trading thread seen parked (a read of ``/proc``), whose CPU clock has not moved since, is taken
as still parked without reading ``/proc`` again (:func:`loop_idle`). A thread cannot leave its wait without running,
and running moves its CPU clock; the bound covers a kernel whose scheduler clock is too coarse to show a short run."""

_perf = time.perf_counter
_sleep = time.sleep
_native_id = threading.get_native_id  # a system call (gettid) each time: compare get_ident with _watch.ident
_get_ident = threading.get_ident
_clock_gettime = time.clock_gettime
_clock_gettime_ns = time.clock_gettime_ns
_pread = os.pread
_switch_interval = sys.getswitchinterval


def _cpu_clock(ident: int | None) -> int | None:
    """The CPU-time clock of the thread ``ident`` (``threading.get_ident``), or None where there is none."""
    if ident is None or not hasattr(time, "pthread_getcpuclockid"):
        return None
    try:
        return time.pthread_getcpuclockid(ident)
    except OSError:  # the thread has exited
        return None


# The system calls in which a thread waits for events with the GIL released and nothing to run: an
# event loop's selector. Not sleeps (a thread sleeping in a loop may be the main thread of a service whose
# trading runs elsewhere), not futex (a thread waiting for the GIL waits there).
_IDLE_CALLS = {
    "x86_64": frozenset({7, 23, 232, 270, 271, 281, 441}),  # poll select epoll_wait pselect6 ppoll epoll_pwait(2)
    "aarch64": frozenset({22, 72, 73, 441}),  # epoll_pwait pselect6 ppoll epoll_pwait2
}.get(platform.machine(), frozenset())


class _Watch:
    """The trading thread's ``/proc`` syscall file, opened on first use; ``None`` when unreadable."""

    __slots__ = ("busy_until", "clock", "fd", "ident", "idle", "opened", "tid")

    def __init__(self) -> None:
        main = threading.main_thread()
        self.tid = main.native_id
        self.ident = main.ident  # the same thread's threading.get_ident(): no system call to compare with
        self.clock = _cpu_clock(main.ident)  # its CPU time: is it running while an offer waits (offer_gil)
        self.opened = False  # tried once per thread watched (and again in a forked child, see below)
        self.fd: int | None = None
        self.busy_until = 0.0  # slices of BUSY_BUDGET before this perf_counter time: the trading thread is busy
        # (its CPU clock's id, that clock in ns, a perf_counter time): seen parked with that CPU time, trusted until
        # then (loop_idle); one tuple, so that two threads storing it never leave one's clock with the other's time
        self.idle: tuple[int, int, float] | None = None

    def open(self) -> int | None:
        if self.opened:
            return self.fd
        with _lock:  # the applier and the log worker may both come first
            if not self.opened:
                fd = None
                if _IDLE_CALLS and self.tid is not None:
                    try:
                        fd = os.open(f"/proc/self/task/{self.tid}/syscall", os.O_RDONLY | os.O_CLOEXEC)
                    except OSError:  # no /proc, or a sandbox hides it: every slice offers
                        fd = None
                self.fd, self.opened = fd, True
        return self.fd


_lock = threading.Lock()
_watch = _Watch()
_retired: list[int] = []  # descriptors of a thread watched before: kept open, a slice may be reading one


def watch_this_thread() -> None:
    """Make the calling thread the trading thread whose idleness lets a slice skip its offer."""
    tid = _native_id()
    with _lock:
        if _watch.tid == tid:
            return
        if _watch.fd is not None:
            _retired.append(_watch.fd)
        _watch.tid, _watch.opened, _watch.fd = tid, False, None
        _watch.ident = threading.get_ident()
        _watch.clock, _watch.busy_until = _cpu_clock(threading.get_ident()), 0.0
        _watch.idle = None


def _after_fork_in_child() -> None:
    # The forking thread is the child's only thread and becomes the trading thread; the inherited
    # descriptors read the parent's threads, so they are closed (no other thread can be reading them).
    global _lock
    _lock = threading.Lock()
    fds = [fd for fd in (_watch.fd, *_retired) if fd is not None]
    _watch.fd, _watch.opened, _watch.tid = None, False, threading.get_native_id()
    _watch.ident = threading.get_ident()
    _watch.clock, _watch.busy_until = _cpu_clock(threading.get_ident()), 0.0
    _watch.idle = None
    _retired.clear()
    for fd in fds:
        try:
            os.close(fd)
        except OSError:  # closed by the application already (a daemon closing every descriptor)
            continue


os.register_at_fork(after_in_child=_after_fork_in_child)


def loop_idle() -> bool:
    """True if the trading thread is parked in its event loop's wait, so cannot be waiting for the GIL.

    Its CPU clock is read first: unchanged since a read of ``/proc`` saw it parked (within ``IDLE_TRUST``), the
    thread has not run since, so it is in that same wait, and ``/proc`` is not read again. The clock is read
    *before* ``/proc``: a thread that runs between the two reads has a later clock than the one kept, so the next
    look reads ``/proc`` again."""
    w = _watch
    fd = w.open()
    if fd is None:
        return False
    clock = w.clock
    cpu = None
    if clock is not None:
        try:
            cpu = _clock_gettime_ns(clock)
        except OSError:  # the thread has exited
            cpu = None
        else:
            seen = w.idle
            if seen is not None and seen[1] == cpu and seen[0] == clock and _perf() < seen[2]:
                return True
    try:
        head = _pread(fd, 8, 0).split(b" ", 1)[0]
    except OSError:  # the thread has exited: offer from now on
        return False
    if head.isdigit() and int(head) in _IDLE_CALLS:
        if cpu is not None and clock is not None:
            w.idle = (clock, cpu, _perf() + IDLE_TRUST)  # the clock's id too: the watched thread may change meanwhile
        return True
    return False


def _trading_cpu() -> float | None:
    """The trading thread's CPU time; None where there is no clock, or once that thread has exited (then offers go
    on without the busy check)."""
    clock = _watch.clock
    if clock is None:
        return None
    try:
        return _clock_gettime(clock)
    except OSError:  # the thread has exited
        _watch.clock = None
        return None


def offer_gil() -> None:
    """Let a thread waiting for the GIL (the trading loop, woken up) take it now; nothing to do while the
    trading thread is parked in its event loop (:func:`loop_idle`), nor on the trading thread itself (code
    shared with background readers, such as a registry snapshot, may run there too). An offer that finds the
    trading thread busy starts or extends ``BUSY_HOLD``."""
    w = _watch
    if _get_ident() == w.ident or loop_idle():
        return
    cpu = _trading_cpu()
    t0 = _perf()
    _sleep(PAUSE)
    if cpu is None:
        return
    waited = _perf() - t0
    if waited > max(0.8 * _switch_interval(), 0.001):  # another thread kept the GIL a whole switch interval
        after = _trading_cpu()
        if after is not None and after - cpu > 0.75 * waited:  # and it was the trading thread, running: busy
            w.busy_until = _perf() + BUSY_HOLD


class Slices:
    """Cuts one piece of background work into slices of at most ``BUDGET`` seconds.

    >>> s = Slices()
    >>> for item in range(3):
    ...     s.offer()   # between two units of work: after BUDGET seconds of work, offers the GIL
    """

    __slots__ = ("_since",)

    def __init__(self) -> None:
        self._since = _perf()

    def offer(self) -> None:
        """Call between two units of work: past the budget (``BUSY_BUDGET`` while the trading thread is busy),
        offer the GIL (unless the trading thread is parked in its event loop, see :func:`loop_idle`), then start a
        new slice."""
        now = _perf()
        spent = now - self._since
        if spent > BUDGET and (spent > BUSY_BUDGET or now >= _watch.busy_until):
            offer_gil()
            self._since = _perf()


ROOM_WAIT = 0.1  # longest a background thread waits for room in a full export queue, per item
ROOM_QUIET = 1.0  # after a wait that found no room, how long items are not waited for (a worker that does not drain)


_stopping = False  # the agent is shutting down: the trading loop is over, its thread may wait on the export too
_stop_until = 0.0  # _perf() time until which an item may wait for room while stopping (the shutdown's deadline)


def stopping(flag: bool, within: float = ROOM_WAIT) -> None:
    """Say that the agent's shutdown began (True) or that it runs again (False, ``init()``). While stopping, an item
    waits for room in a full export queue until ``within`` seconds from now (the shutdown's own deadline), with no
    quiet period: a worker that drains slowly (a loaded machine: 512 spans to the trace file took more than 0.1 s
    under 8 CPU burners on 2 cores) is not a stuck one, and the shutdown's last journal flush lost hundreds of order
    spans to the 1 s quiet period after one short wait, uncounted anywhere anyone saw."""
    global _stopping, _stop_until
    _stop_until = _perf() + max(0.0, within)
    _stopping = flag


class QueueRoom:
    """How long an item may wait for room in a full export queue (``otel_private.batch_put``): up to
    :data:`ROOM_WAIT` on a background thread; never on the trading thread (:func:`watch_this_thread`), which must
    not wait on the export, unless the agent is shutting down (:func:`stopping`: at exit, the last journal flush
    runs there); and not for :data:`ROOM_QUIET` seconds after a wait that found no room, so a queue that does not
    drain (its worker stuck or gone) costs one wait, not one per item."""

    __slots__ = ("_quiet_until",)

    def __init__(self) -> None:
        self._quiet_until = 0.0

    def wait(self) -> float:
        if _stopping:
            return max(0.0, _stop_until - _perf())
        if _get_ident() == _watch.ident or _perf() < self._quiet_until:
            return 0.0
        return ROOM_WAIT

    def missed(self) -> None:
        """A wait found no room (an item was dropped)."""
        self._quiet_until = _perf() + ROOM_QUIET

    def put(self, put: Callable[[Any, Any, float], bool], queue: Any, item: Any) -> bool:
        """``put(queue, item, wait)`` (``otel_private.batch_put``) with the wait this room allows now; False when the
        item could not go in all the same (the caller counts it)."""
        # self.wait(), inlined: every span and log record put into an export queue comes here
        if _stopping:
            wait = max(0.0, _stop_until - _perf())
        else:
            wait = 0.0 if _get_ident() == _watch.ident or _perf() < self._quiet_until else ROOM_WAIT
        if put(queue, item, wait):
            return True
        if wait:
            self.missed()
        return False
