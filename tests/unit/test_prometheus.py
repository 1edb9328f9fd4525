"""The embedded Prometheus endpoint renders the registry directly, with the collector's naming rules."""

from __future__ import annotations

import urllib.request

import pytest

import tradeobs_agent
from tradeobs_agent import PrometheusOptions
from tradeobs_agent._internal.prometheus import prometheus_name


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        ("trading.order.submit_to_fill.latency", "s", "histogram", "trading_order_submit_to_fill_latency_seconds"),
        ("trading.orders.submitted", "{order}", "counter", "trading_orders_submitted"),
        ("trading.drawdown", "1", "gauge", "trading_drawdown_ratio"),
        ("trading.order.fill_ratio", "1", "histogram", "trading_order_fill_ratio"),
        ("net.bytes", "By", "counter", "net_bytes"),
        ("rate", "By/s", "gauge", "rate_bytes_per_second"),
        ("requests.total", "", "counter", "requests"),
        ("odd-name/x", "", "gauge", "odd_name_x"),
    ],
)
def test_otel_to_prometheus_names(name: str, unit: str, kind: str, expected: str) -> None:
    assert prometheus_name(name, unit, kind) == expected


def _scrape(url: str, openmetrics: bool = False) -> str:
    headers = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as resp:
        return str(resp.read().decode())


def test_endpoint_serves_target_info_values_and_exemplars() -> None:
    agent = tradeobs_agent.init(
        service_name="prom-test", otlp=False, live=False, logs=False, prometheus=PrometheusOptions(port=0)
    )
    assert agent.prometheus_url
    hist = tradeobs_agent.histogram("trading.order.submit_to_fill.latency", unit="s").bind(symbol="AAPL")
    with agent.tracer().start_as_current_span("order") as span:
        hist.record(0.003, exemplar=span)
        trace_id = format(span.get_span_context().trace_id, "032x")
    tradeobs_agent.gauge("trading.drawdown", unit="1").set(0.05)
    tradeobs_agent.counter("flag.events").bind(ok=True).add(2)

    text = _scrape(agent.prometheus_url)
    assert "target_info{" in text and 'service_name="prom-test"' in text
    assert 'trading_order_submit_to_fill_latency_seconds_bucket{le="0.0025",symbol="AAPL"} 0.0' in text
    assert 'trading_order_submit_to_fill_latency_seconds_bucket{le="0.005",symbol="AAPL"} 1.0' in text
    assert 'trading_order_submit_to_fill_latency_seconds_count{symbol="AAPL"} 1.0' in text
    assert "trading_drawdown_ratio 0.05" in text
    assert 'flag_events_total{ok="true"} 2.0' in text

    om = _scrape(agent.prometheus_url, openmetrics=True)
    bucket = next(
        ln for ln in om.splitlines() if ln.startswith('trading_order_submit_to_fill_latency_seconds_bucket{le="0.005"')
    )
    assert f'trace_id="{trace_id}"' in bucket and "# {" in bucket
