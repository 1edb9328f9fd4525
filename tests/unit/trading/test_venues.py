"""One strategy on three venues: one ``TradingTelemetry(strategy=..., venue=...)`` per venue, as the docs have it.

Exposure, equity, drawdown, open orders, the kill switch and risk limits were keyed by strategy alone, so the three
objects of one strategy set the same series and the last one's value was the strategy's: gross exposure 300 for
2,300, one open order of three, the equity of one venue. Each object now sets its own series (``venue`` label);
the dashboards and alert rules add them up (``sum by (job)``) or take the worst (``max by (job)``), as the live view
does.
"""

from __future__ import annotations

import orjson
import pytest

import tradeobs_agent
from tests._util import prom_samples
from tests.unit.live.test_app import Server
from tradeobs_agent import PrometheusOptions, TracingOptions, live, trading

pytestmark = pytest.mark.integration


def test_a_strategy_on_three_venues_keeps_each_venues_exposure_equity_and_orders() -> None:
    agent = tradeobs_agent.init(
        service_name="three-venues",
        otlp=False,
        logs=False,
        live=False,
        prometheus=PrometheusOptions(host="127.0.0.1", port=0),
        tracing=TracingOptions(file=""),
    )
    tts = {v: trading.TradingTelemetry(strategy="mm", venue=v) for v in ("nyse", "nasdaq", "arca")}
    tts["nyse"].position("AAPL", 100, 10.0)
    tts["nasdaq"].position("MSFT", -50, 20.0)
    tts["arca"].position("IBM", 30, 10.0)
    tts["nyse"].order_signal("o1", "AAPL", "buy", 1, 10.0).submitted()
    tts["nyse"].order_signal("o2", "AAPL", "buy", 1, 10.0).submitted()
    tts["nasdaq"].order_signal("o3", "MSFT", "sell", 1, 20.0).submitted()
    for venue, equity in (("nyse", 1000.0), ("nasdaq", 2000.0), ("arca", 500.0), ("arca", 400.0)):
        tts[venue].account(equity)  # arca: 20% below its peak
    tts["nasdaq"].limit_utilization("position", 0.7)
    tts["arca"].limit_utilization("position", 0.4)
    tts["arca"].kill_switch(True, "venue down")
    assert agent.prometheus_url is not None
    samples = prom_samples(agent.prometheus_url)

    def by_venue(name: str) -> dict[str, float]:
        got = {s.labels["venue"]: s.value for s in samples[name] if s.labels["strategy"] == "mm"}
        assert len(got) == len([s for s in samples[name] if s.labels["strategy"] == "mm"])  # one series a venue
        return got

    assert by_venue("trading_exposure_gross") == {"nyse": 1000.0, "nasdaq": 1000.0, "arca": 300.0}
    assert by_venue("trading_exposure_net") == {"nyse": 1000.0, "nasdaq": -1000.0, "arca": 300.0}
    assert by_venue("trading_orders_open") == {"nyse": 2.0, "nasdaq": 1.0}  # arca has had no order
    assert by_venue("trading_equity") == {"nyse": 1000.0, "nasdaq": 2000.0, "arca": 400.0}
    assert by_venue("trading_drawdown") == {"nyse": 0.0, "nasdaq": 0.0, "arca": pytest.approx(0.2)}
    assert by_venue("trading_risk_kill_switch_engaged") == {"arca": 1.0}
    assert by_venue("trading_risk_limit_utilization") == {"nasdaq": 0.7, "arca": 0.4}

    with Server(live.create_app(hz=20)) as srv:
        state = orjson.loads(srv.conn_get("/snapshot"))
    account, desk = state["account"], state["desk"]
    assert (account["gross"], account["net"], account["equity"]) == (2300.0, 300.0, 3400.0)
    assert account["drawdown"] == pytest.approx(0.2) and account["kill_switch"] == 1  # the worst venue's
    assert desk["open"] == 3 and desk["limits"] == {"position": 0.7}
    for tt in tts.values():
        tt.close()


def test_the_live_drawdown_of_two_strategies_is_the_worst_not_the_sum() -> None:
    """Grafana (``max by (job)``), the alert rules and the fleet view take the worst drawdown; the live view added
    the strategies' up: 5% and 10% down showed 15%."""
    from tradeobs_agent.live.frames import FrameBuilder
    from tradeobs_agent.metrics import Registry

    reg = Registry()
    for strategy, drawdown in (("a", 0.05), ("b", 0.10)):
        reg.gauge("trading.drawdown").bind(strategy=strategy).set(drawdown)
        reg.gauge("trading.equity").bind(strategy=strategy).set(1000.0)
    account = FrameBuilder(reg).build()["account"]
    assert account["drawdown"] == 0.1 and account["equity"] == 2000.0
