"""The time the registry stamps on its points (OTLP ``time_unix_nano``, a series' start time): the wall clock, except
that it never goes back.

The collector's Prometheus exporter keeps, per series, the point with the latest time and drops any older one: after
NTP (or an operator) stepped a host's clock back 10 minutes, every point the agent sent for the next 10 minutes was
older than the last one kept, and the collector's ``/metrics`` showed the values from before the step (a counter sent
5 times read 1 throughout, measured with otelcol-tradeobs). A backend that stores the points' times (Prometheus's
OTLP receiver) refuses them as out of order. So once the wall clock reads a time before one already stamped, the
stamps go on from the last one at half the real pace (never stopping, never repeating a millisecond between two
exports) until the wall clock is past them again: a step back of 10 minutes is absorbed in 20. A step forward is
followed at once (nothing refuses a point because it is late).
"""

from __future__ import annotations

import threading
import time

from .._errors import warn_once

__all__ = ["points_ns", "reset"]

_SLEW = 2  # after a step back, the stamps advance at 1/_SLEW of the monotonic clock's pace

_lock = threading.Lock()
_last = 0  # the last stamp given
_last_mono = 0  # time.monotonic_ns() at the last stamp given after a step back (0: the last came from the wall clock)
_time_ns = time.time_ns
_monotonic_ns = time.monotonic_ns


def points_ns() -> int:
    """Now, as epoch nanoseconds, never before a time this function returned earlier in this process.

    The wall clock ahead of the last stamp (always, but after a step back) costs one clock read and a compare, no
    lock: exemplars are stamped with it. Two threads crossing there can give two stamps out of order by the time
    between their two readings (nanoseconds), not by a step."""
    global _last, _last_mono
    wall = _time_ns()
    if wall > _last:
        _last = wall
        _last_mono = 0
        return wall
    mono = _monotonic_ns()
    with _lock:
        if wall > _last:  # another thread's stamp, not a step
            _last, _last_mono = wall, 0
            return wall
        behind = _last - wall
        # the first stamp after the step: 1 ms on (a backend keeping milliseconds sees a new time), then half pace
        _last += max(1, (mono - _last_mono) // _SLEW) if _last_mono else 1_000_000
        _last_mono = mono
        stamp = _last
    if behind > 1_000_000_000:  # more than a second: a step of the clock, not two threads' readings crossing
        warn_once(
            "metrics:clock_back",
            "the wall clock went back %.1f s (NTP, chrony or an operator stepped it): the metrics' timestamps go on "
            "from the last one at half pace until the clock catches up, so that no collector or backend drops the "
            "points as older than the last (said once a process)",
            behind / 1e9,
        )
    return stamp


def reset() -> None:
    """Forget the stamps given (tests)."""
    global _last, _last_mono
    with _lock:
        _last = _last_mono = 0
