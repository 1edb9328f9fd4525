"""Is the trading loop running at all? ``trading.eventloop.stall``, read at each collection on the reader's thread.

>>> import asyncio, time
>>> async def main() -> float | None:
...     w = LoopWatch(asyncio.get_running_loop(), 0.1)  # due at once: its monitor has not run yet
...     time.sleep(0.2)                                 # the loop blocked: read from any thread, it is late
...     return w.overdue(time.monotonic())
>>> asyncio.run(main()) >= 0.2
True

The lag monitor (``TradingTelemetry.event_loop_lag_monitor``) records ``trading.eventloop.lag`` when its sleep
returns. A loop blocked for good (a sync call that hangs, a deadlock, a ``time.sleep`` in a coroutine) never
returns it: no lag sample, so the lag alert could never fire while the process went on exporting from its other
threads. So each running monitor has a :class:`LoopWatch`: at each wake-up the monitor stores the loop time it has
just read (one attribute store, no other work on the loop), and every collection, on the reader's thread, sets
the gauge to how far past its due wake-up (``t0 + interval``) the monitor is now: the lag sample in progress.
0 while the loop runs on time; while it is blocked, how long it has been late, growing at every collection.

Not stalled (no watch, so no series once none is left): a monitor cancelled or finished (its task's done
callback), one of a closed ``TradingTelemetry`` (taken away by ``close()`` at once, whatever its loop is doing),
one whose loop is no longer running (``run_until_complete`` returned without cancelling it) or is closed. A
forked child inherits no watch: its copy of the parent's loop is run by no thread of its own (each worker's loop
is its own, and its series is the worker's: aggregation ``pid``).

The loop's clock need not be ``time.monotonic`` (uvloop's is libuv's, cached per loop iteration): the watch
keeps the difference between the two, taken when the monitor starts, and reads the loop time at collection as
``time.monotonic()`` minus it; the loop's own ``time()`` is never called from another thread.
"""

from __future__ import annotations

import asyncio
import os
import time

from ..metrics import BoundGauge

__all__ = ["LoopWatch", "refresh", "watches"]

_monotonic = time.monotonic


class LoopWatch:
    """One running lag monitor: its loop, its interval and the loop time of its last wake-up (``t0``)."""

    __slots__ = ("gauge", "interval", "loop", "offset", "owner", "t0")

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float, owner: object = None) -> None:
        self.loop = loop
        self.interval = interval
        self.owner = owner  # the TradingTelemetry whose close() ends it
        self.gauge: BoundGauge | None = None
        now = loop.time()
        self.offset = _monotonic() - now  # loop time = time.monotonic() - offset (0 for asyncio's own loops)
        # Due at once: the monitor's task is about to run its first step. A loop blocked before it ever ran
        # (a hang right after the monitor was started) reads as stalled from the start.
        self.t0 = now - interval

    def overdue(self, mono: float) -> float | None:
        """Seconds past the monitor's due wake-up at ``mono`` (``time.monotonic()``), 0 when not yet due; ``None``
        when its loop is not running (stopped or closed: no loop to be late)."""
        loop = self.loop
        if not loop.is_running() or loop.is_closed():
            return None
        late = mono - self.offset - self.t0 - self.interval
        return late if late > 0.0 else 0.0


_WATCHES: set[LoopWatch] = set()


def watches() -> list[LoopWatch]:
    """The process's running monitors' watches (a copy)."""
    return list(_WATCHES)


def add(watch: LoopWatch) -> None:
    _WATCHES.add(watch)


def discard(watch: LoopWatch) -> None:
    _WATCHES.discard(watch)


def refresh(gauge: BoundGauge) -> None:
    """Set ``gauge`` (``trading.eventloop.stall`` of one registry) to the worst of its running monitors, read now;
    no value when none runs. Called before each collection (``TradingTelemetry``'s collect hook) and by ``close()``."""
    mono = _monotonic()
    worst: float | None = None
    for w in list(_WATCHES):
        if w.gauge is gauge:
            late = w.overdue(mono)
            if late is not None and (worst is None or late > worst):
                worst = late
    if worst is None:
        gauge.unset()
    else:
        gauge.set(worst)


def _after_fork_in_child() -> None:
    _WATCHES.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
