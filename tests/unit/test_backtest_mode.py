"""``trading_mode="backtest"``: a backtest or replay is no service, so the agent does not act as one unless told to.

Before this mode a backtest run with the agent's defaults bound the Prometheus port the live service's scrape job
names, grouped parallel backtest processes as one service's workers, and exported to a collector it found at
localhost:4317 under the service's name (its simulated P&L and orders then paged on-call, and its end fired
``TradingServiceTelemetryMissing``: see ``docs/metrics.md``, "Replays and backtests").
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

import tradeobs_agent
from tests._util import dead_endpoint, free_port
from tradeobs_agent._internal import providers
from tradeobs_agent.config import TRADING_MODES, resolve_settings


def test_backtest_is_a_trading_mode_and_its_defaults_say_where_they_come_from() -> None:
    assert "backtest" in TRADING_MODES
    paper, _ = resolve_settings(env={}, config_file=None)
    assert paper.prometheus_enabled is True and paper.multiprocess == "auto"
    s, report = resolve_settings(env={"TRADEOBS_TRADING_MODE": "backtest"}, config_file=None)
    assert s.trading_mode == "backtest"
    assert s.prometheus_enabled is False and s.multiprocess == "off"
    assert report.source("prometheus_enabled") == "default (trading_mode=backtest)"
    assert report.source("multiprocess") == "default (trading_mode=backtest)"
    assert report.problems == []


@pytest.mark.parametrize(
    ("env", "name", "value"),
    [
        ({"TRADEOBS_PROMETHEUS_ENABLED": "true"}, "prometheus_enabled", True),
        ({"TRADEOBS_MULTIPROCESS": "on"}, "multiprocess", "on"),
    ],
)
def test_a_backtest_keeps_what_is_configured(env: dict[str, str], name: str, value: Any) -> None:
    s, report = resolve_settings(env={"TRADEOBS_TRADING_MODE": "backtest", **env}, config_file=None)
    assert getattr(s, name) == value
    assert report.source(name) == next(iter(env))
    explicit, _ = resolve_settings(env={}, config_file=None, trading_mode="backtest", **{name: value})
    assert getattr(explicit, name) == value


def test_a_backtest_does_not_look_for_a_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default endpoint is probed only when nothing configures OTLP; a backtest does not probe it. (The probe
    is replaced by one that finds a collector: the real localhost:4317 must stay free while the suite runs, other
    tests rely on nothing listening there.)"""
    probed: list[str] = []

    def found(endpoint: str, *args: Any, **kwargs: Any) -> bool:
        probed.append(endpoint)
        return True

    monkeypatch.setattr(providers, "reachable", found)
    paper, report = resolve_settings(env={}, config_file=None)
    assert providers.otlp_mode(paper, report) == "on" and probed  # what a paper or live service does
    probed.clear()
    backtest, report = resolve_settings(env={"TRADEOBS_TRADING_MODE": "backtest"}, config_file=None)
    assert providers.otlp_mode(backtest, report) == "not_configured"
    assert probed == []
    configured, report = resolve_settings(
        env={"TRADEOBS_TRADING_MODE": "backtest", "TRADEOBS_OTLP_ENDPOINT": "http://127.0.0.1:4317"},
        config_file=None,
    )
    assert providers.otlp_mode(configured, report) == "on"  # told to export: it does


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_init_in_backtest_mode_serves_no_port_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()  # outside the ephemeral range: free now, and only a listener could take it
    monkeypatch.setenv("TRADEOBS_PROMETHEUS_PORT", str(port))
    agent = tradeobs_agent.init(
        service_name="bt", trading_mode="backtest", live=False, logs=tradeobs_agent.LogOptions(dir=str(tmp_path))
    )
    try:
        assert agent.prometheus is None and _port_free(port)
        assert agent.export == "not_configured"
        tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="sim")
        order = tt.order_signal("o1", "AAPL", "buy", 10, price=100.0)
        order.fill(10, 100.01)
        assert order.closed and order.filled_qty == 10  # the trading layer works as ever, in the process
    finally:
        tradeobs_agent.shutdown()
    system = [json.loads(x)["message"] for x in (tmp_path / "system.jsonl").read_text().splitlines()]
    said = [m for m in system if "trading_mode=backtest" in m]
    assert len(said) == 1 and "no Prometheus endpoint unless configured" in said[0]


@pytest.mark.parametrize(
    ("service_name", "warned"), [("algo-1", True), ("algo-1-backtest", False), ("Replay-algo-1", False)]
)
def test_a_backtest_exporting_under_a_service_name_of_no_backtest_is_warned_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], service_name: str, warned: bool
) -> None:
    """A backtest told to export (an endpoint configured) under the live service's name: through the collector its
    series are that service's job, told apart by trading_mode only (a collector without transform/trading_mode, or
    rules of the deployment's own that sum by job, add its simulated P&L to the live service's), and its traces and
    logs are under the live service's name; nothing said so."""
    endpoint = dead_endpoint()
    agent = tradeobs_agent.init(
        service_name=service_name,
        trading_mode="backtest",
        otlp=tradeobs_agent.OtlpOptions(endpoint=endpoint),
        live=False,
        logs=tradeobs_agent.LogOptions(dir=str(tmp_path)),
    )
    try:
        assert agent.export == "on" and agent.prometheus is None
        assert dict(agent.resource.attributes)["trading.mode"] == "backtest"
    finally:
        tradeobs_agent.shutdown(timeout=2.0)
    path = tmp_path / "system.jsonl"  # written once the agent says something
    system = [json.loads(x)["message"] for x in path.read_text().splitlines()] if path.exists() else []
    said = [m for m in system if "trading_mode=backtest exports" in m]
    if not warned:
        assert said == []
        return
    assert len(said) == 1, said
    assert repr(service_name) in said[0] and f"'{service_name}-backtest'" in said[0] and endpoint in said[0]
    assert "trading_mode=backtest exports" in capsys.readouterr().err  # the log does not reach the console
