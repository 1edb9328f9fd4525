"""At the stated scale (1,000 symbols) every position and P&L reaches the endpoint and the live view, by default.

A gauge's overflow series keeps only the last value set through it: with one limit for every instrument
(``max_series``, 2,000) the position and P&L gauges of 1,000 symbols x 5 strategies (5,000 sets each) lost the
values of 3,000 pairs, which were then on no scrape, OTLP export or live row. Gauges have their own limit
(``max_gauge_series``, 20,000).
"""

from __future__ import annotations

import orjson
import pytest

import tradeobs_agent
from tests._util import prom_samples
from tests.unit.live.test_app import Server
from tradeobs_agent import PrometheusOptions, TracingOptions, live, trading

pytestmark = pytest.mark.integration

SYMBOLS = [f"S{i:04d}" for i in range(1000)]
STRATEGIES = [f"strat{k}" for k in range(5)]


def _qty(k: int, i: int) -> float:
    return float((k + 1) * 10_000 + i)  # every pair its own quantity


def test_every_position_of_1000_symbols_x_5_strategies_is_scraped_and_live_with_default_settings() -> None:
    agent = tradeobs_agent.init(
        service_name="desk-1000",
        otlp=False,
        logs=False,
        live=False,
        prometheus=PrometheusOptions(host="127.0.0.1", port=0),
        tracing=TracingOptions(file=""),
    )
    assert agent.settings.max_series == 2000  # the defaults, as a user has them
    tts = [trading.TradingTelemetry(strategy=s, venue="v1") for s in STRATEGIES]
    for i, sym in enumerate(SYMBOLS):
        tts[0].tick(sym, 100.0 + i)
        for k, tt in enumerate(tts):
            tt.position(sym, _qty(k, i), 100.0 + i, 99.0)
            tt.pnl(sym, float(k), float(i))
    assert agent.prometheus_url is not None
    samples = prom_samples(agent.prometheus_url)  # the embedded endpoint: a scrape applies pending writes first
    positions = {
        (s.labels["symbol"], s.labels["strategy"]): s.value
        for s in samples["trading_position_quantity"]
        if "symbol" in s.labels
    }
    want = {(sym, s): _qty(k, i) for i, sym in enumerate(SYMBOLS) for k, s in enumerate(STRATEGIES)}
    assert len(positions) == 5000 and positions == want
    assert not [s for s in samples["trading_position_quantity"] if "otel_metric_overflow" in s.labels]
    realized = {(s.labels["symbol"], s.labels["strategy"]): s.value for s in samples["trading_pnl_realized"]}
    assert realized == {(sym, s): float(k) for sym in SYMBOLS for k, s in enumerate(STRATEGIES)}

    with Server(live.create_app(hz=20)) as srv:
        rows = orjson.loads(srv.conn_get("/snapshot"))["symbols"]
    assert {sym: rows[sym]["pos"] for sym in SYMBOLS} == {
        sym: sum(_qty(k, i) for k in range(5)) for i, sym in enumerate(SYMBOLS)
    }
    assert {sym: rows[sym]["upnl"] for sym in SYMBOLS} == {sym: 5.0 * i for i, sym in enumerate(SYMBOLS)}
    for tt in tts:
        tt.close()
