"""Background work that gives the GIL back to the trading thread in short slices.

The agent's threads (the trading journal's applier, the log worker, the registry's readers such as
the Prometheus endpoint, a group's publisher, the NATS publisher) run Python while the trading loop
sleeps. When the loop wakes up (a market-data step, a timer) and one of them holds the GIL, the loop
waits until that thread lets go: at the end of its work if it blocks then, or after the interpreter's
switch interval (5 ms) if it does not. So the longest stretch a background thread runs without
letting go is added, at worst, to the trading loop's lag.

Measured on the demo loop (``benchmarks/overhead.py --against``, 1,000 ticks/s, 100 orders/s, fully
on, paired rounds): with the journal applied 64 entries at a time (stretches of 0.5 ms at the median,
1.4 ms at p99) the loop's lag p99 was 1.75x the agent-off figure; in slices of 0.25 ms, 1.41x, for
+0.27 points of a core. Shorter slices cut the lag a little more and cost more CPU (0.06 ms: about
1.2x, +0.9 points); ``docs/metrics.md`` ("Background work in slices") has the table.

Letting go means sleeping briefly: ``sleep(0)`` releases the GIL too briefly for a waiter on another
core (this thread takes it back first). An offer costs CPU (the sleep and the thread switches), so
:class:`Slices` offers only after ``BUDGET`` seconds of work, not after every unit.
"""

from __future__ import annotations

import time

__all__ = ["BUDGET", "PAUSE", "Slices", "offer_gil"]

BUDGET = 0.00025
"""Seconds a background thread works before it offers the GIL (what a waking trading loop waits, at most)."""
PAUSE = 0.00005
"""Seconds slept to offer it: long enough for a thread waiting on another core to take it."""

_perf = time.perf_counter
_sleep = time.sleep


def offer_gil() -> None:
    """Let a thread waiting for the GIL (the trading loop, woken up) take it now."""
    _sleep(PAUSE)


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
        """Call between two units of work: past the budget, offer the GIL, then start a new slice."""
        if _perf() - self._since > BUDGET:
            _sleep(PAUSE)
            self._since = _perf()
