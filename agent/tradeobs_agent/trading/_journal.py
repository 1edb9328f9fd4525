"""The trading journal: the hot path appends one tuple, a batch applies it later.

>>> Note: TypeAlias = tuple[Apply, list[str], str]   # (handler, target, text)
>>> def on_note(target: list[str], e: Note) -> None:
...     _, _, text = e
...     target.append(text)
>>> j = Journal(interval=None)                       # tests: no applier thread
>>> seen: list[str] = []
>>> j.put((on_note, seen, "tick"))
>>> j.flush(); seen
['tick']

Why: a trading loop is idle most of the time and wakes for a few hundred
microseconds per market-data step. On a shared machine its caches are cold at
every wake, so what a telemetry call costs there is set by how much code and
data it touches, not by its instruction count: a bound-histogram record that
takes 1 us in a tight loop took 7-60 us right after a 1-10 ms sleep
(``benchmarks/overhead.py`` shows the effect on the demo loop). So every
``TradingTelemetry`` / ``OrderTrace`` call does only what must happen at the
call (read the clock and :meth:`Journal.put` one record), and everything with trading meaning
(series updates, validation, spans, exemplars, live events) runs in
:meth:`Journal.flush`, in order, in batches that run warm.

Who flushes: an applier thread every ``interval`` seconds (0.2 s), every
reader before it reads (OTel collection and the Prometheus endpoint through
``Registry.run_collect_hooks``, each live frame, ``Agent.force_flush`` and
``shutdown``), the read-your-writes accessors (``OrderTrace.closed``,
``filled_qty``, ``span``, ``trace_id``, ``TradingTelemetry.open_orders``,
``flush()``), and a producer that finds more than ``limit`` entries waiting
(memory stays bounded and nothing is dropped: past the limit the producer
pays for the batch itself). So every reader sees exactly the values recorded
before it read; what is recorded concurrently with a read shows in the next.
Readers on background threads (the applier, the log worker, the registry's
readers) use :meth:`Journal.flush_chunked`, which offers the GIL between slices
of ``gil.BUDGET`` (0.1 ms); the trading thread's own reads use :meth:`Journal.flush`.

One journal per process. Entries from one thread keep their order; across
threads, the order in which they were appended. Before ``fork()`` the journal
is flushed with its lock held, so a child starts with nothing pending and a
usable lock (and its own applier thread).

This deliberately differs from the OTel SDK, which runs span processors'
``on_start``/``on_end`` on the calling thread at the call: here they run on the
flushing thread, up to ``interval`` seconds later, with the timestamps taken at
the call. Span start/end times, parents and attributes are unchanged; the
parent context the SDK sees is the explicit one it always was (see
``orders.py``), never the ambient one.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .._errors import internal_error
from .._internal.gil import Slices

__all__ = ["Apply", "Entry", "Journal", "get_journal"]

LIMIT = 20_000  # waiting entries before a producer applies them itself (hot paths compare len() with this)
# Seconds between the applier thread's batches. Each wake-up of a thread costs ~130 us of CPU on this kind of
# machine before it does anything, and a bigger batch runs warmer: 0.2 s, the log worker's poll too.
INTERVAL = 0.2
# Entries applied under one take of the lock; between two, a background flush offers the GIL once it has
# worked for ``gil.BUDGET`` (0.1 ms): a trading loop waking up waits about that long at most, not for the batch.
CHUNK = 8
Apply = Callable[[Any, Any], None]
"""A record's handler: ``handler(target, record)`` applies it."""
Entry = tuple[Any, ...]
"""What a call puts: a typed record, ``(handler, target, *fields)``.

Each kind of record is a precisely typed tuple alias (``Tick: TypeAlias = tuple[Apply, "TradingTelemetry",
object, float, ...]``) documented with its field names, built at the call and unpacked into named locals in
the first line of its one handler; mypy checks both ends against the alias. Why not a ``NamedTuple`` or a
slotted class: measured on the demo workload, building one at the call cost ~0.45 us per call on a trading
loop that wakes with cold caches (a tick went from 1.7 to 2.2 us right after a 2 ms sleep: a tuple subclass is
allocated outside the tuple free lists), and making one on the applier cost ~0.2 us per entry (a tick applied
in 0.69 instead of 0.47 us): +0.2 points of a core for the whole agent. A plain tuple costs neither."""


class Journal:
    """A deque of pending trading entries and the one lock that applies them."""

    def __init__(self, limit: int = LIMIT, interval: float | None = INTERVAL) -> None:
        if limit < 1:
            raise ValueError(f"journal limit must be >= 1, got {limit}")
        self._q: deque[Entry] = deque()
        self.limit = limit
        self.interval = interval
        self._lock = threading.Lock()
        self._owner = 0  # thread id applying now (a handler that records again must not wait for itself)
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stopping = False
        self.applied = 0
        self.errors = 0

    # -- producers
    def put(self, entry: Entry) -> None:
        """Append ``entry``; past ``limit`` waiting entries, apply them now (on this thread)."""
        q = self._q
        q.append(entry)
        if len(q) > self.limit:
            self.flush()

    @property
    def queue(self) -> deque[Entry]:
        """The deque itself, for hot paths that inline :meth:`put` (append, then check ``len`` against ``limit``)."""
        return self._q

    def __len__(self) -> int:
        return len(self._q)

    # -- the applier
    def flush(self) -> int:
        """Apply every waiting entry, in order; returns how many. Never raises."""
        me = threading.get_ident()
        if self._owner == me:  # called from a handler (e.g. a span processor recording again): later
            return 0
        with self._lock:
            self._owner = me
            try:
                return self._apply()
            finally:
                self._owner = 0

    def _apply(self, most: int = -1) -> int:
        popleft = self._q.popleft
        n = 0
        while n != most:
            try:
                entry = popleft()
            except IndexError:
                break
            n += 1
            try:
                entry[0](entry[1], entry)
            except Exception as exc:  # a handler validates its input: anything raised is a bug of ours
                self.errors += 1
                internal_error(f"trading.{getattr(entry[0], '__name__', 'entry').removeprefix('_on_')}", exc)
        self.applied += n
        return n

    # -- the applier thread
    def start(self) -> None:
        """Start the applier thread (idempotent; nothing when ``interval`` is None)."""
        if self.interval is None or (self._thread is not None and self._thread.is_alive()):
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            t = threading.Thread(target=self._run, name="tradeobs-trading", daemon=True)
            t.start()
            self._thread = t

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the applier thread, then apply what is left."""
        self._stopping = True
        self._wake.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
        self._thread = None
        self.flush()

    def wake(self) -> None:
        """Have the applier thread apply what is waiting now instead of at its next interval.

        For readers on a latency-sensitive thread (the live stream's producer runs on the trading
        event loop): the work happens on the applier thread, in slices, and the reader sees it next time.
        """
        self._wake.set()

    def _run(self) -> None:
        interval = self.interval or INTERVAL
        wake = self._wake
        while True:
            wake.wait(interval)
            wake.clear()
            if self._stopping:
                return
            try:
                self.flush_chunked()
            except Exception as exc:  # flush never raises by itself: a bug, or the interpreter shutting down
                internal_error("trading.applier", exc)

    def flush_chunked(self) -> int:
        """Like :meth:`flush`, in slices of at most ``gil.BUDGET`` seconds with the GIL offered in between.

        For readers on a background thread (the applier thread, the log worker, the registry's readers), so
        that a trading thread waking up meanwhile waits for one slice at most, not for the whole backlog.
        Returns how many.
        """
        me = threading.get_ident()
        if self._owner == me:  # called from a handler: later, as flush() does
            return 0
        q = self._q
        n = 0
        slices = Slices()
        while q:
            with self._lock:
                self._owner = me
                try:
                    n += self._apply(CHUNK)
                finally:
                    self._owner = 0
            if q:
                slices.offer()  # past its budget, let a thread waiting for the GIL (the trading loop) take it
        with self._lock:  # another thread may still be applying the last entries it took: the caller reads them
            pass
        return n

    # -- fork: nothing pending and the lock free in the child
    def _before_fork(self) -> None:
        self._lock.acquire()
        try:
            self._owner = threading.get_ident()
            self._apply()
        finally:
            self._owner = 0

    def _after_fork_parent(self) -> None:
        self._lock.release()

    def _after_fork_child(self) -> None:
        self._lock = threading.Lock()
        self._owner = 0
        self._wake = threading.Event()
        running, self._thread = self._thread is not None, None
        if running:
            self.start()


_JOURNAL = Journal()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_JOURNAL._before_fork,
        after_in_parent=_JOURNAL._after_fork_parent,
        after_in_child=_JOURNAL._after_fork_child,
    )


def get_journal() -> Journal:
    """The process's journal (every ``TradingTelemetry`` records into it)."""
    return _JOURNAL
