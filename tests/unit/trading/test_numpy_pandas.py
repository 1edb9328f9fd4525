"""Real numpy and pandas values through the trading API, as a strategy iterating a DataFrame hands them."""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests._util import trading_invalid
from tradeobs_agent import TradingTelemetry
from tradeobs_agent.metrics import Registry
from tradeobs_agent.testing import Capture

ODD = [
    pd.NA,
    pd.NaT,
    np.nan,
    np.float32("nan"),
    np.datetime64("NaT", "ns"),
    np.timedelta64(5, "s"),
    np.bool_(True),
    np.array([1.0, 2.0]),
    np.array(3.0),
    pd.Series([1.0]),
    np.int8(-3),
    np.uint64(2**64 - 1),
    np.float16(1.5),
    np.complex128(1 + 2j),
    np.longdouble(1.5),
    pd.Timestamp("2026-01-01"),
    pd.Timestamp("2026-01-01", tz="UTC"),
    pd.Timedelta(1, "s"),
    pd.Period("2026-01", freq="M"),
    pd.Interval(0, 1),
    np.str_("AAPL"),
    np.bytes_(b"AAPL"),
]


def test_a_dataframe_strategys_numbers_and_times_are_recorded_as_numbers(cap: Capture) -> None:
    """A strategy iterating a DataFrame: numpy.int64 quantities, numpy.float32 prices, the time column as numpy's
    datetime64 (``.to_numpy()``) and as pandas' Timestamp with its zone. datetime64 was refused as bad input (no feed
    lag, counted as reason="exchange_ts"); a risk check's numpy.int64 and bool_ were text in the span ("3", "True")."""
    now = time.time_ns()
    df = pd.DataFrame(
        {
            "symbol": ["AAPL", "MSFT", "AAPL"],
            "px": np.array([189.5, 410.25, 189.75], dtype=np.float32),
            "qty": np.array([10, 5, 20], dtype=np.int64),
            "ts": pd.to_datetime([now - 300_000_000, now - 200_000_000, now - 100_000_000], unit="ns", utc=True),
        }
    )
    naive = df["ts"].dt.tz_localize(None).to_numpy()  # datetime64[ns]: numpy's count since the epoch, in UTC
    tt = TradingTelemetry(strategy="s")
    for i, r in enumerate(df.itertuples()):
        tt.tick(r.symbol, r.px, exchange_ts=r.ts)
        tt.tick(r.symbol, r.px, exchange_ts=naive[i])
        o = tt.order_signal(f"c{i}", r.symbol, "buy", r.qty, price=r.px)
        o.risk_check(np.bool_(True), checks={"n": np.int64(3), "b": np.bool_(False), "x": np.float32(0.5)})
        o.submitted()
        o.fill(r.qty, r.px)
    tt.flush()
    lag = [p for p in cap.metrics()["trading.marketdata.feed.lag"] if p.attributes["symbol"] == "AAPL"]
    assert lag[0].count == 4 and 0.1 <= lag[0].sum / 4 < 60  # both times of each tick: 0.1 to 0.3 s old
    assert trading_invalid(cap, "exchange_ts") == 0
    assert cap.metric_value("trading.orders.filled", symbol="AAPL") == 2
    risk = [s for s in cap.spans() if s.name == "risk_check"]
    assert len(risk) == 3
    attrs = dict(risk[0].attributes)
    assert attrs["risk.passed"] is True and attrs["risk.check.n"] == 3 and type(attrs["risk.check.n"]) is int
    assert attrs["risk.check.b"] is False and attrs["risk.check.x"] == 0.5
    roots = [s for s in cap.spans() if s.name == "order"]
    assert sorted(s.attributes["order.qty"] for s in roots) == [5, 10, 20]


def test_a_decision_that_has_no_truth_is_counted_and_never_raised(
    cap: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    """pandas' NA (a missing value in a boolean column) has no truth: bool(pd.NA) raises. market_session(open=NA)
    raised into the caller; risk_check(NA) and kill_switch(NA) raised on the agent's thread (an internal error, and the
    order's later steps failed the same way). Now each is bad input: counted, said once, nothing decided from it."""
    tt = TradingTelemetry(strategy="s")
    with caplog.at_level(logging.WARNING, logger="tradeobs"):
        tt.market_session("AAPL", open=pd.NA)
        tt.kill_switch(True, reason="drawdown")
        tt.kill_switch(pd.NA)
        o = tt.order_signal("c1", "AAPL", "buy", 10, price=1.0)
        o.risk_check(pd.NA, reason=pd.NA)
        o.submitted()
        o.fill(10, 1.0)
        tt.tick("AAPL", 1.0, exchange_ts=pd.NaT)
        tt.tick("AAPL", 1.0, exchange_ts=np.datetime64("NaT", "ns"))
        tt.tick("AAPL", 1.0, seq=np.timedelta64(5, "s"))
        tt.flush()
    assert (trading_invalid(cap, "open"), trading_invalid(cap, "engaged"), trading_invalid(cap, "passed")) == (1, 1, 1)
    assert trading_invalid(cap, "exchange_ts") == 2 and trading_invalid(cap, "seq") == 1
    assert cap.metric_value("trading.risk.kill_switch.engaged") == 1  # kept its state
    assert cap.metric_value("trading.orders.filled", symbol="AAPL") == 1  # not rejected by a check with no decision
    (risk,) = [s for s in cap.spans() if s.name == "risk_check"]
    assert "risk.passed" not in risk.attributes and risk.attributes["risk.reason"] == "<NA>"
    said = [r.getMessage() for r in caplog.records if "dropped invalid" in r.getMessage()]
    assert any("dropped invalid open <NA>: a market session's open is True or False" in m for m in said), said
    assert any("dropped invalid passed <NA>" in m for m in said), said


@pytest.mark.parametrize("v", ODD, ids=lambda v: f"{type(v).__name__}")
def test_every_call_takes_any_numpy_or_pandas_value_without_raising(cap: Capture, v: Any) -> None:
    tt = TradingTelemetry(strategy="s")
    ids = itertools.count()
    tt.tick("AAPL", v)
    tt.tick("AAPL", 1.0, exchange_ts=v)
    tt.tick("AAPL", 1.0, seq=v)
    tt.tick(v, 1.0)
    for args in [(v, "AAPL", "buy", 1), (None, v, "buy", 1), (None, "AAPL", v, 1), (None, "AAPL", "buy", v)]:
        cid = f"{next(ids)}" if args[0] is None else args[0]
        o = tt.order_signal(cid, *args[1:], price=v)
        o.risk_check(v, reason=v, checks={"a": v})
        o.submitted()
        o.acked(v)
        o.replaced(qty=v, price=v)
        o.fill(v, 1.0)
        o.fill(1, v, expected_price=v, exec_id=v)
        o.cancelled(v)
    tt.position("AAPL", v, 1.0, avg_price=v)
    tt.position("AAPL", 1, v)
    tt.pnl("AAPL", v, v)
    tt.account(v, drawdown=v)
    tt.limit_utilization("gross", v)
    tt.breach(v, "AAPL")
    tt.kill_switch(v, reason=v)
    tt.decision_time(v, "AAPL")
    tt.market_session("AAPL", open=v)
    tt.flush()
    cap.metrics()
    cap.spans()
    tt.close()


def test_numpy_bool_is_a_measurement_for_every_instrument_as_a_python_bool_is() -> None:
    """A gauge's ``set(np.True_)`` was dropped as "not a number" while a counter's ``add(np.True_)`` counted 1 (its
    ``amount == 1`` shortcut) and ``add(np.False_)`` was dropped: numpy's bool is no ``numbers.Number``. Now each
    takes it as 1 or 0, as each takes a Python bool."""
    reg = Registry()
    c, g, h = reg.counter("c"), reg.gauge("g"), reg.histogram("h")
    for v in (np.True_, np.False_, np.bool_(True)):
        c.add(v)  # type: ignore[arg-type]
        g.set(v)  # type: ignore[arg-type]
        h.record(v)  # type: ignore[arg-type]
    assert c.bind().value == 2
    assert g.bind().value == 1
    p = h.bind().point()
    assert (p.observed, p.sum) == (3, 2)
    assert {i: reg.self_metrics.invalid.bind(instrument=i, reason="value").value for i in ("c", "g", "h")} == {
        "c": 0,
        "g": 0,
        "h": 0,
    }
