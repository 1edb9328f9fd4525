"""The same strategy code live, in a replay of a past day and in a backtest: exchange timestamps in the forms venues
send them, a replay's clock, and many runs in one process."""

from __future__ import annotations

import datetime
import gc
import logging
import time
import weakref
import zoneinfo
from typing import Any

import pytest

from tests._util import trading_invalid
from tradeobs_agent import trading
from tradeobs_agent.exceptions import TradeObsConfigError
from tradeobs_agent.metrics import get_registry
from tradeobs_agent.testing import Capture

NY = zoneinfo.ZoneInfo("America/New_York")


class _HostileZone(datetime.tzinfo):
    def utcoffset(self, dt: datetime.datetime | None) -> datetime.timedelta:
        raise RuntimeError("no offset")


def _lag(cap: Capture, symbol: str) -> Any:
    (point,) = [p for p in cap.metrics()["trading.marketdata.feed.lag"] if p.attributes["symbol"] == symbol]
    return point


def test_exchange_timestamps_in_every_unit_and_aware_datetimes_give_the_same_lag(
    cap: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    """A venue's int milliseconds or nanoseconds, or a timezone-aware datetime, were each dropped as bad input
    ("dropped invalid exchange_ts 1796487380528: ... not milliseconds"): no feed lag at all, and one
    tradeobs.agent.measurements.invalid per tick, which TradeobsAgentInvalidInput pages on after 10 minutes."""
    tt = trading.TradingTelemetry(strategy="s", venue="v")
    now = time.time()
    ago = 0.25  # each form says the tick left the exchange 0.25 s ago
    forms: dict[str, float | datetime.datetime] = {
        "S": now - ago,
        "MS": int((now - ago) * 1e3),
        "US": int((now - ago) * 1e6),
        "NS": time.time_ns() - int(ago * 1e9),
        "UTC": datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=ago),
        "NY": datetime.datetime.now(NY) - datetime.timedelta(seconds=ago),  # an exchange's local time, DST known
    }
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        for symbol, ts in forms.items():
            tt.tick(symbol, 100.0, exchange_ts=ts)
        tt.tick("NAIVE", 100.0, exchange_ts=datetime.datetime.now())  # local or UTC? no instant: refused
        tt.tick("NAIVE", 100.0, exchange_ts=datetime.datetime(2026, 12, 5, tzinfo=_HostileZone()))
        tt.tick("AHEAD", 100.0, exchange_ts=now + 0.5)  # the exchange's clock ahead of ours: 0, as documented
        tt.flush()
    for symbol in forms:
        lag = _lag(cap, symbol)
        assert lag.count == 1 and ago - 0.001 <= lag.sum < ago + 5, (symbol, lag.sum)
    assert _lag(cap, "AHEAD").count == 1 and _lag(cap, "AHEAD").sum == 0.0
    assert _lag(cap, "NAIVE").count == 0
    assert trading_invalid(cap, "exchange_ts") == 2
    said = [r.getMessage() for r in caplog.records if "dropped invalid exchange_ts" in r.getMessage()]
    # each said once: the naive one with its own fix (a time zone), the other with what a time may be
    assert len(said) == 2 and "a datetime with its time zone" in said[1]
    assert "naive" in said[0] and "tz_localize('UTC')" in said[0] and ".to_numpy()" in said[0]
    tt.close()


def test_a_replay_with_its_clock_records_the_historical_feed_lag_and_nothingtrading_invalid(cap: Capture) -> None:
    """A replay of a past day, 50x faster than real time: with no way to say so, ticks of 3 hours ago read as a feed
    lag of 3 hours (the +Inf bucket: p99 off any chart) and ticks of 2 days ago as bad input, one count each (2,557
    in 3 s of replay: TradeobsAgentInvalidInput fires after 10 minutes of it). With the replay's clock the lag is
    the recorded one, 2 ms here."""
    for days_ago in (0.125, 2.0):
        day0 = time.time() - days_ago * 86_400
        replayed = [day0]  # the replay's clock: the time of the tick being replayed, plus the recorded lag

        def clock(now: list[float] = replayed) -> float:
            return now[0]

        tt = trading.TradingTelemetry(strategy="s", venue="replay", clock=clock)
        symbol = f"R{days_ago}"
        for i in range(100):
            exchange = day0 + i * 0.5  # every replayed 0.5 s
            replayed[0] = exchange + 0.002  # received 2 ms later, in the recording
            tt.tick(symbol, 100.0 + i * 0.01, exchange_ts=exchange, seq=i)
        tt.flush()
        lag = _lag(cap, symbol)
        assert lag.count == 100 and lag.sum == pytest.approx(0.2, abs=1e-4)
        tt.close()
    assert trading_invalid(cap, "exchange_ts") == 0 and trading_invalid(cap, "clock") == 0


def test_a_replay_clock_may_read_as_exchange_ts_does_across_a_dst_change(cap: Capture) -> None:
    """1:30 in New York happens twice on 2026-11-01: the replay's clock after the change (fold=1) and a tick stamped
    before it (fold=0) are an hour and 2 ms apart, however both are written."""
    first = datetime.datetime(2026, 11, 1, 1, 30, tzinfo=NY)
    second = datetime.datetime(2026, 11, 1, 1, 30, 0, 2000, tzinfo=NY, fold=1)  # (adding a timedelta drops fold)
    clocks: list[object] = [second, int(second.timestamp() * 1000)]
    tt = trading.TradingTelemetry(strategy="s", venue="replay", clock=lambda: clocks[0])
    tt.tick("DST", 1.0, exchange_ts=first)
    clocks.pop(0)
    tt.tick("DST", 1.0, exchange_ts=int(first.timestamp() * 1e9))
    tt.flush()
    lag = _lag(cap, "DST")
    assert lag.count == 2 and lag.sum == pytest.approx(2 * 3600.002, abs=1e-5)
    tt.close()


def test_a_clock_that_fails_is_bad_input_never_raised_into_the_loop(cap: Capture) -> None:
    def broken() -> float:
        raise RuntimeError("replay clock not started")

    tt = trading.TradingTelemetry(strategy="s", venue="replay", clock=broken)
    tt.tick("X", 1.0, exchange_ts=time.time())
    tt.tick("X", 1.0)  # no exchange_ts: no lag, the clock is not needed
    tt.flush()
    assert trading_invalid(cap, "clock") == 1 and _lag(cap, "X").count == 0
    assert cap.metric_value("trading.marketdata.ticks", symbol="X") == 2
    tt.close()
    with pytest.raises(TradeObsConfigError, match="clock"):
        trading.TradingTelemetry(clock=1_700_000_000.0)  # type: ignore[arg-type]


def test_backtest_runs_that_never_close_their_telemetry_leave_no_collect_hook_behind(cap: Capture) -> None:
    """A notebook that made a TradingTelemetry per backtest run and never closed it kept one dead collect hook per
    run, each called at every collection: 2,000 runs, 2,000 hooks (about 0.8 KiB each)."""
    registry = get_registry()
    gc.collect()  # earlier tests' telemetry that only garbage holds (testing.reset() collects none) goes,
    registry.run_collect_hooks()  # and a collection drops the hooks of every object gone
    before = len(registry._hooks)
    refs = []
    for run in range(50):
        tt = trading.TradingTelemetry(strategy="bt", venue="sim")
        tt.tick("AAPL", 100.0, seq=run)
        order = tt.order_signal(f"bt-{run}", "AAPL", "buy", 10, 100.0)
        order.submitted()
        order.fill(10, 100.01)
        tt.flush()
        refs.append(weakref.ref(tt))
        del tt, order
    gc.collect()
    assert not [r for r in refs if r() is not None]
    assert cap.metric_value("trading.orders.filled", symbol="AAPL") == 50  # a collection: dead hooks go
    assert len(registry._hooks) == before
