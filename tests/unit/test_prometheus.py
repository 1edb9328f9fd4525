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
    assert 'trading_order_submit_to_fill_latency_seconds_bucket{symbol="AAPL",le="0.0025"} 0' in text
    assert 'trading_order_submit_to_fill_latency_seconds_bucket{symbol="AAPL",le="0.005"} 1' in text
    assert 'trading_order_submit_to_fill_latency_seconds_bucket{symbol="AAPL",le="+Inf"} 1' in text
    assert 'trading_order_submit_to_fill_latency_seconds_count{symbol="AAPL"} 1' in text
    assert 'trading_order_submit_to_fill_latency_seconds_sum{symbol="AAPL"} 0.003' in text
    assert "trading_drawdown_ratio 0.05" in text
    assert 'flag_events_total{ok="true"} 2.0' in text

    om = _scrape(agent.prometheus_url, openmetrics=True)
    bucket = next(
        ln
        for ln in om.splitlines()
        if ln.startswith("trading_order_submit_to_fill_latency_seconds_bucket{") and 'le="0.005"' in ln
    )
    assert f'trace_id="{trace_id}"' in bucket and "# {" in bucket
    assert om.rstrip().endswith("# EOF") and om.count("# EOF") == 1


def test_exposition_parses_with_the_reference_parsers() -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
    from prometheus_client.parser import text_string_to_metric_families as parse_text

    agent = tradeobs_agent.init(otlp=False, live=False, logs=False, prometheus=PrometheusOptions(port=0))
    assert agent.prometheus_url
    h = tradeobs_agent.histogram("lat", unit="s").bind(symbol='we"ird\\name')
    with agent.tracer().start_as_current_span("x") as span:
        h.record(0.02, exemplar=span)
    tradeobs_agent.counter("c", unit="{x}").add(1)
    text_fams = {f.name: f for f in parse_text(_scrape(agent.prometheus_url))}
    assert text_fams["lat_seconds"].type == "histogram"
    assert text_fams["lat_seconds"].samples[0].labels["symbol"] == 'we"ird\\name'
    om_fams = {f.name: f for f in parse_om(_scrape(agent.prometheus_url, openmetrics=True))}
    buckets = [s for s in om_fams["lat_seconds"].samples if s.exemplar is not None]
    assert buckets and buckets[0].exemplar.labels["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert om_fams["c"].type == "counter"
