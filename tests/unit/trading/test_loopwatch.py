"""trading.eventloop.stall (trading/_loopwatch.py): a loop blocked for good shows, read from another thread.

The lag monitor records trading.eventloop.lag only when its sleep returns: before, a loop blocked for good recorded
nothing at all, and every collection (the exporter's threads kept running) said the same as a healthy loop's.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import warnings
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from tradeobs_agent import TradingTelemetry, trading
from tradeobs_agent.testing import Capture

STALL = "trading.eventloop.stall"


@pytest.fixture
def tt(cap: Capture) -> Iterator[TradingTelemetry]:
    t = trading.TradingTelemetry(strategy="momentum", venue="paper")
    yield t
    t.close()


def _stall(cap: Capture) -> float | None:
    """The process's stall from one collection (on this thread, not the loop's); None: no series."""
    points = cap.metrics().get(STALL)
    if points is None:
        return None
    (point,) = points
    return float(point.value)


class _LoopThread:
    """``main()`` run by ``asyncio.run`` on its own thread, as a trading service's loop."""

    def __init__(self, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(main,), name="trading-loop")
        self.thread.start()

    def _run(self, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # re-raised on the test's thread by join()
            self.error = exc

    def join(self) -> None:
        self.thread.join(30)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def test_a_loop_blocked_before_its_monitor_ran_reads_stalled_and_growing_then_0_once_released(
    cap: Capture, tt: TradingTelemetry
) -> None:
    blocked, release, resumed, done = (threading.Event() for _ in range(4))
    started: list[float] = []

    async def main() -> None:
        started.append(time.monotonic())
        task = tt.event_loop_lag_monitor(interval=30.0)  # its next wake-up is 30 s after each one: 0 in between
        blocked.set()
        release.wait()  # a sync call that hangs, on the loop: the monitor's task never gets to run
        await asyncio.sleep(0.05)  # the monitor runs once and sleeps for 30 s: on time
        resumed.set()
        done.wait()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0.05)

    loop = _LoopThread(main)
    try:
        blocked.wait(30)
        time.sleep(0.2)
        mark = time.monotonic()
        first = _stall(cap)
        time.sleep(0.2)
        mark2 = time.monotonic()
        second = _stall(cap)
        assert first is not None and first >= mark - started[0]
        assert second is not None and second >= mark2 - started[0] and second > first
    finally:
        release.set()
    resumed.wait(30)
    assert _stall(cap) == 0.0
    done.set()
    loop.join()
    assert _stall(cap) is None  # cancelled: no series, not a stalled loop


def test_a_loop_blocked_for_good_after_its_monitor_ran_reads_stalled(cap: Capture, tt: TradingTelemetry) -> None:
    blocked, release = threading.Event(), threading.Event()
    at: list[float] = []
    lags_before: list[int] = []

    async def main() -> None:
        tt.event_loop_lag_monitor(interval=0.01)
        await asyncio.sleep(0.1)  # the monitor runs a few times
        at.append(time.monotonic())
        blocked.set()
        release.wait()  # time.sleep in a coroutine, for good

    loop = _LoopThread(main)
    try:
        blocked.wait(30)
        lags_before.append(cap.metrics()["trading.eventloop.lag"][0].count)
        time.sleep(0.3)
        mark = time.monotonic()
        stall = _stall(cap)
        lags = cap.metrics()["trading.eventloop.lag"][0].count
    finally:
        release.set()
        loop.join()
    # the monitor's last wake-up was before the block, due 0.01 s after it at the latest
    assert stall is not None and stall >= mark - at[0] - 0.01
    assert lags == lags_before[0]  # what the lag histogram alone showed meanwhile: nothing new


def test_close_from_another_thread_while_the_loop_is_blocked_is_no_stall(cap: Capture) -> None:
    tt = TradingTelemetry(strategy="s", venue="v")
    blocked, release = threading.Event(), threading.Event()

    async def main() -> None:
        tt.event_loop_lag_monitor(interval=0.01)
        await asyncio.sleep(0.05)
        blocked.set()
        release.wait()

    loop = _LoopThread(main)
    try:
        blocked.wait(30)
        time.sleep(0.1)
        assert (_stall(cap) or 0.0) > 0.0
        tt.close()  # the service shuts its telemetry down while the loop hangs
        assert _stall(cap) is None
    finally:
        release.set()
        loop.join()


def test_a_monitor_left_on_a_loop_that_stopped_is_no_stall(cap: Capture, tt: TradingTelemetry) -> None:
    """run_until_complete() returned with the monitor's task still pending: the loop runs nothing, blocked or not."""
    loop = asyncio.new_event_loop()

    async def start() -> None:
        tt.event_loop_lag_monitor(interval=0.01)
        await asyncio.sleep(0.05)

    try:
        loop.run_until_complete(start())
        time.sleep(0.1)
        assert _stall(cap) is None
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
    assert _stall(cap) is None


def test_two_monitors_show_the_worst_and_a_forked_worker_inherits_neither(cap: Capture, tt: TradingTelemetry) -> None:
    """Two loops in one process (two threads): the blocked one's stall. A worker forked meanwhile has its own loop
    (or none): the parent's monitors, whose loops no thread of the child runs, are not its stall."""
    other = TradingTelemetry(strategy="other", venue="v")
    blocked, release, stop = threading.Event(), threading.Event(), threading.Event()
    at: list[float] = []

    async def hangs() -> None:
        tt.event_loop_lag_monitor(interval=0.01)
        await asyncio.sleep(0.05)
        at.append(time.monotonic())
        blocked.set()
        release.wait()

    async def healthy() -> None:
        task = other.event_loop_lag_monitor(interval=30.0)
        while not stop.is_set():
            await asyncio.sleep(0.01)
        assert task is not None
        task.cancel()

    loops = [_LoopThread(hangs), _LoopThread(healthy)]
    try:
        blocked.wait(30)
        time.sleep(0.2)
        mark = time.monotonic()
        stall = _stall(cap)
        assert stall is not None and stall >= mark - at[0] - 0.01
        r, w = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork() of a process with threads
            pid = os.fork()
        if pid == 0:  # the child: its registry (the parent's copy) has no stall series after a collection
            try:
                names = {f.name for f in tt.registry.snapshot().families}
                os.write(w, b"none" if STALL not in names else b"stalled")
            finally:
                os._exit(0)
        os.close(w)
        _, status = os.waitpid(pid, 0)
        assert os.read(r, 16) == b"none" and status == 0
        os.close(r)
    finally:
        release.set()
        stop.set()
        for lt in loops:
            lt.join()
        other.close()
