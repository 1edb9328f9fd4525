"""The time stamped on metric points never goes back when the wall clock is stepped back (NTP, an operator)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from tradeobs_agent.metrics import _clock, _series
from tradeobs_agent.testing import Capture, capture


@pytest.fixture
def cap() -> Iterator[Capture]:
    with capture(service_name="test-clock", logs=False) as c:
        yield c


class _Wall:
    """time.time_ns and time.monotonic_ns the test moves: ``tick(s)`` moves both, ``step(s)`` the wall clock only."""

    def __init__(self) -> None:
        self.wall = 1_800_000_000 * 10**9
        self.mono = 5_000 * 10**9

    def tick(self, s: float) -> None:
        self.wall += round(s * 1e9)
        self.mono += round(s * 1e9)

    def step(self, s: float) -> None:
        self.wall += round(s * 1e9)


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> _Wall:
    w = _Wall()
    monkeypatch.setattr(time, "time_ns", lambda: w.wall)
    monkeypatch.setattr(time, "monotonic_ns", lambda: w.mono)
    monkeypatch.setattr(_clock, "_time_ns", lambda: w.wall, raising=False)  # read at import
    monkeypatch.setattr(_clock, "_monotonic_ns", lambda: w.mono, raising=False)
    monkeypatch.setattr(_series, "_time_ns", lambda: w.wall, raising=False)  # read at import (before the fix)
    return w


def _times(cap: Capture, name: str) -> tuple[int, int, float]:
    (p,) = cap.metrics()[name]
    return p.start_time_unix_nano, p.time_unix_nano, p.value


def test_points_stamped_after_a_step_back_are_not_older_than_the_last(
    cap: Capture, wall: _Wall, caplog: pytest.LogCaptureFixture
) -> None:
    """The collector's Prometheus exporter keeps each series' latest point and drops older ones: after the clock was
    stepped back 10 minutes, the points of the next 10 minutes were older than the last kept, and the collector's
    /metrics showed a counter sent 5 times as 1 throughout (measured with otelcol-tradeobs)."""
    import tradeobs_agent

    c = tradeobs_agent.counter("clock.test.orders").bind(kind="x")
    c.add(1)
    start, t1, _ = _times(cap, "clock.test.orders")
    wall.tick(10)
    c.add(1)
    _, t2, _ = _times(cap, "clock.test.orders")
    assert t1 < t2 == wall.wall  # the wall clock's time
    wall.step(-600)
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        stamps = []
        for _ in range(4):
            wall.tick(10)
            c.add(1)
            stamps.append(_times(cap, "clock.test.orders")[1])
    # 1 ms after the last stamp, then on at half pace (5 s per 10 s): every one later than the one before
    assert stamps == [t2 + 10**6 + 5 * 10**9 * k for k in range(4)]
    assert start <= t1
    said = [r.getMessage() for r in caplog.records if "wall clock went back" in r.getMessage()]
    assert len(said) == 1 and "went back 590.0 s" in said[0]  # read at the first stamp after it, 10 s on
    # caught up: 1,200 s later the wall clock is past the stamps, which follow it again
    wall.tick(1200)
    c.add(1)
    assert _times(cap, "clock.test.orders")[1] == wall.wall


def test_a_series_made_just_before_a_step_back_starts_before_its_first_point(cap: Capture, wall: _Wall) -> None:
    """A series' start time came from the wall clock when it was made: made just before a step back, its first point
    was stamped 60 s before its start (OTLP receivers take such a point as a reset, or refuse it)."""
    import tradeobs_agent

    tradeobs_agent.counter("clock.test.a").bind(kind="x").add(1)
    cap.metrics()
    wall.tick(1)
    tradeobs_agent.counter("clock.test.b").bind(kind="x").add(1)
    wall.step(-60)
    wall.tick(1)
    start, t, _ = _times(cap, "clock.test.b")
    assert start <= t


def test_a_step_forward_is_followed_at_once(wall: _Wall) -> None:
    _clock.reset()
    a = _clock.points_ns()
    wall.step(3600)
    assert _clock.points_ns() == a + 3600 * 10**9


def test_exemplars_after_a_step_back_are_not_older_than_the_last(cap: Capture, wall: _Wall) -> None:
    """Prometheus's exemplar storage refuses an exemplar older than the series' newest ("out of order exemplar"):
    stamped by the wall clock, an exemplar recorded in the 10 minutes after a step back was older than those before
    it, so the latency panels' dots (the way from a slow fill to its trace) could be missing for that time."""
    from opentelemetry import trace

    import tradeobs_agent

    h = tradeobs_agent.histogram("clock.test.latency", unit="s").bind()
    tracer = trace.get_tracer("t")
    times = []
    for step in (0, -600):
        wall.step(step)
        wall.tick(1)
        with tracer.start_as_current_span("s") as span:
            h.record(0.002, exemplar=span)
        (p,) = cap.metrics()["clock.test.latency"]
        (ex,) = p.exemplars
        times.append(ex.time_unix_nano)
    assert times[1] > times[0]
