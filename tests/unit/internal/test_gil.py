"""_internal.gil: background work offers the GIL after each BUDGET of work, not after each unit and not never."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tradeobs_agent._internal import gil
from tradeobs_agent.trading._journal import CHUNK, Journal


class _Clock:
    """A fake perf_counter that work advances; records every offer (sleep) and when it happened."""

    def __init__(self) -> None:
        self.now = 0.0
        self.offers: list[float] = []

    def perf(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds == gil.PAUSE
        self.offers.append(self.now)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Clock]:
    c = _Clock()
    monkeypatch.setattr(gil, "_perf", c.perf)
    monkeypatch.setattr(gil, "_sleep", c.sleep)
    yield c


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
