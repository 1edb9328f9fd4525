"""Deliver span and log batches to the collector through outages: a bounded, ordered buffer and one sender.

>>> d = Delivery("traces", send=exporter_export, max_items=50_000, max_age=300.0, dropped=counter)   # doctest: +SKIP
>>> d.submit(batch)          # the batch processor's worker: never waits on the network
>>> d.flush(timeout=5.0)     # everything submitted so far delivered (or given up), within 5 s

Without this, an OTLP exporter that cannot reach the collector retries one
batch inside ``export()`` for up to its timeout, the SDK's batch processor
waits there meanwhile, its queue (2,048 spans) fills and new spans are dropped;
when the retries give up the batch is dropped too. A planned collector restart
of a few seconds lost spans and log records that way.

Here the batch processor hands each batch over and returns at once. One
``tradeobs-otlp-<signal>`` thread sends the oldest batch; while the collector
is unreachable it keeps the batches, in order, and tries again with back-off
(0.5 s doubling to 5 s), then sends everything once it answers. A collector that
refuses with a throttling hint (OTLP/HTTP ``Retry-After``, OTLP/gRPC ``RetryInfo``,
read by the exporter: ``not_before``) is not sent to again before the hint says,
for up to ``max_age`` seconds; kept batches meanwhile still expire on time, and a
flush or shutdown whose time ends before that gives up at once. What cannot be
kept is counted in ``tradeobs.agent.items.dropped{signal, reason}``, never lost
silently: ``retry_buffer_full`` past ``max_items`` (the oldest batches go),
``expired`` past ``max_age`` seconds, ``shutdown`` for what is still here when
the agent shuts down with the collector unreachable, and for a batch whose send
has not returned when the shutdown's time is up. Metrics need no buffer:
they are cumulative, so the next export after an outage carries every count.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from .._errors import internal_error

__all__ = ["Delivery"]

_BACKOFF_MIN = 0.5
_BACKOFF_MAX = 5.0


class _Batch:
    __slots__ = ("items", "since")

    def __init__(self, items: Sequence[Any]) -> None:
        self.items = items
        self.since = time.monotonic()


class Delivery:
    """A bounded, ordered buffer of batches between a batch processor and an exporter, drained by one thread."""

    def __init__(
        self,
        signal: str,
        send: Callable[[Sequence[Any]], bool],
        max_items: int,
        max_age: float,
        dropped: Callable[[str, int], None],
        queued: Callable[[int], object] | None = None,
        not_before: Callable[[], float] | None = None,
    ) -> None:
        if max_items < 1 or not max_age > 0:
            raise ValueError(f"delivery buffer needs max_items >= 1 and max_age > 0, got {max_items}, {max_age}")
        self.signal = signal
        self._send = send
        self.max_items = max_items
        self.max_age = max_age
        self._dropped = dropped
        self._queued = queued
        self._not_before = not_before  # the collector's hint: no attempt before this time.monotonic() value
        self._retry_at = 0.0  # while the sender waits to try again: when (time.monotonic())
        self._batches: deque[_Batch] = deque()
        self._items = 0
        self._cond = threading.Condition()
        self._closed = False
        self._idle = True  # no batch is being sent right now
        self._inflight: _Batch | None = None  # the batch being sent (always the oldest)
        self._thread: threading.Thread | None = None
        self._here = False  # no sender thread could start (interpreter exit): flush() sends on its caller's thread
        self.failing = False

    # -- the batch processor's side
    def submit(self, items: Sequence[Any]) -> None:
        """Keep ``items`` for the sender; past ``max_items`` the oldest batches are dropped (counted)."""
        if not items:
            return
        with self._cond:
            if self._closed:
                self._dropped("shutdown", len(items))
                return
            self._batches.append(_Batch(items))
            self._items += len(items)
            self._trim_locked()
            self._report_locked()
            self._cond.notify()
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._cond:
            if self._thread is not None or self._closed or self._here:
                return
            thread = threading.Thread(target=self._run, name=f"tradeobs-otlp-{self.signal}", daemon=True)
            try:
                thread.start()
            except RuntimeError:
                # "can't create new thread at interpreter shutdown" (Python 3.12+): a script whose first batch comes
                # with its exit's flush. Raised into the batch processor, its spans were never sent (counted as
                # dropped at shutdown). The exit's flush sends them on its own thread instead (_send_here).
                self._here = True
                return
            self._thread = thread

    def __len__(self) -> int:
        return self._items

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted so far was sent or given up; False when ``timeout`` ran out first."""
        deadline = time.monotonic() + max(0.0, timeout)
        if self._here:
            self._send_here(deadline)
            with self._cond:
                return not self._batches
        with self._cond:
            while self._batches or not self._idle:
                left = deadline - time.monotonic()
                if left <= 0 or (self._idle and self._retry_at > deadline):
                    return False  # out of time, or the next attempt comes after it: nothing more arrives by then
                self._cond.wait(min(left, 0.05))
        return True

    def close(self, timeout: float, deliver: bool = True) -> bool:
        """Stop the sender: first deliver what is kept (``deliver``, within ``timeout``), then count the rest as
        dropped (``shutdown``). Returns True when nothing was left behind."""
        done = self.flush(timeout) if deliver else False
        with self._cond:
            self._closed = True
            inflight = self._inflight
            # The batch being sent is counted by the sender when its send returns (it may still arrive).
            left = self._items - (len(inflight.items) if inflight is not None else 0)
            self._batches.clear()
            if inflight is not None:
                self._batches.append(inflight)
            self._items -= left
            self._report_locked()
            self._cond.notify_all()
        if left:
            self._dropped("shutdown", left)
        return done or (left == 0 and inflight is None)

    def settle(self, timeout: float) -> int:
        """After ``close``: wait up to ``timeout`` s for the batch in flight to come back; one still out then is
        counted as dropped (``shutdown``) now, since the process may exit before its send returns, and the
        sender does not count it again (if it arrives after all, it is also counted as exported). Returns the
        items counted here."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            if not self._closed:
                return 0
            while self._inflight is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.05))
            batch = self._inflight
            if batch is None or not (self._batches and self._batches[0] is batch):
                return 0
            self._batches.popleft()
            self._items -= len(batch.items)
            self._report_locked()
        self._dropped("shutdown", len(batch.items))
        return len(batch.items)

    def after_fork(self) -> None:
        """In a forked child: the parent's batches are the parent's; start empty, with a fresh lock."""
        self._batches = deque()
        self._items = 0
        self._cond = threading.Condition()
        self._idle = True
        self._inflight = None
        self._thread = None
        self._retry_at = 0.0

    def _send_here(self, deadline: float) -> None:
        """The sender's work on the caller's thread, until nothing is kept or ``deadline`` (time.monotonic()): for
        when no sender thread can start (see :meth:`_start`). A failed send is tried again after the back-off while
        time is left; what is still kept then is counted by :meth:`close`."""
        backoff = _BACKOFF_MIN
        while True:
            with self._cond:
                self._expire_locked()
                if self._closed or not self._batches:
                    return
                batch = self._inflight = self._batches[0]
                self._idle = False
            ok = self._attempt(batch)
            if not ok:
                if deadline - time.monotonic() <= backoff:
                    return
                time.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)

    def _attempt(self, batch: _Batch) -> bool:
        """Send ``batch`` (the oldest, marked in flight) once and settle it: gone when sent, or when the delivery was
        closed meanwhile (then counted as dropped if this last attempt failed: nothing will retry it)."""
        try:
            ok = self._send(batch.items)
        except Exception as exc:  # the send callable counts outcomes and never raises: a bug
            internal_error(f"delivery.{self.signal}", exc)
            ok = False
        with self._cond:
            self._inflight = None
            if (ok or self._closed) and self._batches and self._batches[0] is batch:
                self._batches.popleft()
                self._items -= len(batch.items)
                if not ok:
                    self._dropped("shutdown", len(batch.items))
            self._report_locked()
            self.failing = not ok
            self._idle = True
            self._cond.notify_all()
        return ok

    # -- the sender thread
    def _run(self) -> None:
        backoff = _BACKOFF_MIN
        while True:
            with self._cond:
                while not self._batches and not self._closed:
                    self._idle = True
                    self._cond.notify_all()
                    self._cond.wait()
                if self._closed:
                    self._idle = True
                    self._cond.notify_all()
                    return
                self._expire_locked()
                if not self._batches:
                    continue
                batch = self._inflight = self._batches[0]
                self._idle = False
            ok = self._attempt(batch)
            with self._cond:
                if ok:
                    backoff = _BACKOFF_MIN
                    continue
                now = time.monotonic()
                retry_at = now + backoff
                if self._not_before is not None:
                    # The collector asked for a pause: not before it ends (at most max_age: whatever is kept now
                    # has expired by then, and a hint of hours must not stop exporting for hours).
                    retry_at = max(retry_at, min(self._not_before(), now + self.max_age))
                self._retry_at = retry_at
                self._cond.notify_all()  # a flush whose time ends before retry_at gives up now
                while not self._closed:  # a close() wakes it early; new batches do not
                    now = time.monotonic()
                    left = retry_at - now
                    if left <= 0:
                        break
                    self._expire_locked()  # a long pause: kept batches still expire (counted) on time
                    if self._batches:
                        left = min(left, max(0.0, self._batches[0].since + self.max_age - now) + 0.001)
                    self._cond.wait(left)
                self._retry_at = 0.0
                backoff = min(backoff * 2, _BACKOFF_MAX)

    # -- bounds (called with the lock held)
    def _trim_locked(self) -> None:
        first = 1 if self._inflight is not None else 0  # never the batch being sent
        while self._items > self.max_items and len(self._batches) > first + 1:
            old = self._batches[first]
            del self._batches[first]
            self._items -= len(old.items)
            self._dropped("retry_buffer_full", len(old.items))

    def _expire_locked(self) -> None:
        limit = time.monotonic() - self.max_age
        expired = False
        while self._batches and self._batches[0].since < limit:
            old = self._batches.popleft()
            self._items -= len(old.items)
            self._dropped("expired", len(old.items))
            expired = True
        if expired:
            self._report_locked()
            self._cond.notify_all()

    def _report_locked(self) -> None:
        if self._queued is not None:
            self._queued(self._items)
