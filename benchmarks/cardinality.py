"""Collection/export cost per cycle at 10, 100 and 1,000 symbols, against the raw OTel SDK.

    python benchmarks/cardinality.py [--symbols 10,100,1000] [--cycles 20]

Per symbol the workload has what ``TradingTelemetry`` creates for an active symbol:
a tick counter, a price gauge, a feed-lag histogram (19 buckets), and order counters
and a submit->fill histogram for two sides. So 1,000 symbols = 7,000 series.

Each row is the median of ``--cycles`` cycles, in milliseconds per cycle:
- ``collect``:   the reader's collection (``InMemoryMetricReader.get_metrics_data``), i.e.
  the bridge turning the registry into OTel points, vs the SDK aggregating its own instruments
- ``+ OTLP encode``: collection plus protobuf encoding of the export request (what the OTLP
  exporter does before the network): for tradeobs what the agent's own OTLP/gRPC reader does (each
  family read as it is written straight to bytes: ``bridge.collect_encoded``, ``otlp_encode.encode_metrics``;
  other readers, like the in-memory one of ``collect``, get OTel points), for the SDK the exporter's
  reference encoder on its collection
- ``Prometheus scrape``: rendering the embedded endpoint's text: for tradeobs the registry's
  snapshot rendered by the agent's own renderer (``_internal/prometheus.py`` ``Renderer``), for the
  SDK the OTel Prometheus exporter's collector through prometheus_client ``generate_latest``
- the row ``tradeobs/pc``: the same snapshot, same names, rendered by prometheus_client's own
  exposition code (``PrometheusCollector`` + ``generate_latest``): why the endpoint has its own renderer
- ``snapshot``: ``Registry.snapshot()`` alone, the read model every reader starts from
- the row ``vs OTel SDK``: each ``tradeobs`` cell over the SDK's of the same run (below 1x: tradeobs costs less)

``max_series`` is raised to 5,000 so the 1,000-symbol case is not folded into overflow.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any


def median_ms(fn: Callable[[], Any], cycles: int) -> float:
    fn()  # warm
    samples = []
    for _ in range(cycles):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


def ours(n_symbols: int) -> tuple[Any, Any, Any]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from tradeobs_agent._internal import bridge
    from tradeobs_agent._internal.providers import SCOPE
    from tradeobs_agent.metrics import Registry
    from tradeobs_agent.trading.instruments import TradingInstruments

    reg = Registry(max_series=5000)
    inst = TradingInstruments(reg)
    for i in range(n_symbols):
        sym = f"SYM{i:04d}"
        inst.ticks.bind(symbol=sym).add(1)
        inst.price.bind(symbol=sym).set(100.0 + i)
        inst.feed_lag.bind(symbol=sym).record(0.002)
        for side in ("buy", "sell"):
            a = {"symbol": sym, "side": side, "order_type": "limit", "venue": "paper", "strategy": "s"}
            inst.submitted.bind(**a).add(3)
            inst.submit_to_fill.bind(**a).record(0.004)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    bridge.attach(reader, reg, lambda: provider._sdk_config.resource, SCOPE)
    prom = _embedded_endpoint(reg, provider)
    return reader, prom, provider


def _ours_export(reg: Any) -> Callable[[], bytes]:
    """One collection + encoding as the agent's OTLP/gRPC reader makes it: each family read as it is written
    straight to bytes (``bridge.collect_encoded``, ``otlp_encode.encode_metrics``)."""
    from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics
    from opentelemetry.sdk.resources import Resource

    from tradeobs_agent._internal import bridge
    from tradeobs_agent._internal.otlp_encode import encode_metrics
    from tradeobs_agent._internal.providers import SCOPE

    resource = Resource.create({})

    def export() -> bytes:
        scope = ScopeMetrics(SCOPE, bridge.collect_encoded(reg), "")
        return encode_metrics(MetricsData([ResourceMetrics(resource, [scope], "")]))

    return export


def _embedded_endpoint(reg: Any, provider: Any) -> Any:
    """What the agent's endpoint serves: the registry rendered directly (``_internal/prometheus.py``)."""
    from tradeobs_agent._internal.prometheus import Renderer

    return Renderer(reg, lambda: provider._sdk_config.resource), provider


def _prom_reader(reg: Any, provider: Any) -> Any:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import CollectorRegistry

    from tradeobs_agent._internal import bridge
    from tradeobs_agent._internal.providers import SCOPE

    preg = CollectorRegistry(auto_describe=False)
    reader = PrometheusMetricReader(registry=preg)
    p = MeterProvider(metric_readers=[reader])
    if reg is not None:
        bridge.attach(reader, reg, lambda: p._sdk_config.resource, SCOPE)
    return preg, p


def sdk(n_symbols: int) -> tuple[Any, Any, Any]:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
    from prometheus_client import CollectorRegistry

    from tradeobs_agent.trading.instruments import LATENCY_BOUNDS

    reader = InMemoryMetricReader()
    preg = CollectorRegistry(auto_describe=False)
    prom = PrometheusMetricReader(registry=preg)
    views = [View(instrument_name="*lat*", aggregation=ExplicitBucketHistogramAggregation(LATENCY_BOUNDS))]
    provider = MeterProvider(metric_readers=[reader, prom], views=views)
    m = provider.get_meter("sdk")
    ticks = m.create_counter("trading.marketdata.ticks")
    prices: dict[str, float] = {}

    def observe(_: Any) -> Any:
        from opentelemetry.metrics import Observation

        return [Observation(v, {"symbol": s}) for s, v in prices.items()]

    m.create_observable_gauge("trading.marketdata.price", callbacks=[observe])
    lag = m.create_histogram("trading.marketdata.feed.lag", unit="s")
    sub = m.create_counter("trading.orders.submitted")
    fill = m.create_histogram("trading.order.submit_to_fill.latency", unit="s")
    for i in range(n_symbols):
        sym = f"SYM{i:04d}"
        ticks.add(1, {"symbol": sym})
        prices[sym] = 100.0 + i
        lag.record(0.002, {"symbol": sym})
        for side in ("buy", "sell"):
            a = {"symbol": sym, "side": side, "order_type": "limit", "venue": "paper", "strategy": "s"}
            sub.add(3, a)
            fill.record(0.004, a)
    return reader, (preg, provider), provider


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", default="10,100,1000")
    ap.add_argument("--cycles", type=int, default=20)
    args = ap.parse_args()

    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
    from prometheus_client import generate_latest

    print(f"# cardinality: python {platform.python_version()}, median of {args.cycles} cycles, ms per cycle")
    header = (
        f"| {'symbols':>7} | {'series':>6} | {'impl':<11} | {'collect':>8} | {'+ OTLP encode':>13} "
        f"| {'OTLP bytes':>10} | {'Prometheus scrape':>17} |"
    )
    print(header)
    print("|" + "|".join("-" * len(c) for c in header.strip().strip("|").split("|")) + "|")
    for n in (int(x) for x in args.symbols.split(",")):
        cells: dict[str, tuple[float, float, int, float]] = {}
        for name, build in (("tradeobs", ours), ("OTel SDK", sdk)):
            reader, (preg, _p), _provider = build(n)
            collect = median_ms(reader.get_metrics_data, args.cycles)
            if name == "tradeobs":  # what the agent's own OTLP reader does (bridge.collect_encoded)
                export = _ours_export(preg.registry)
            else:
                export = lambda r=reader: encode_metrics(r.get_metrics_data()).SerializeToString()  # noqa: E731
            size = len(export())
            encode = median_ms(export, args.cycles)
            scrape_fn = preg.render if hasattr(preg, "render") else (lambda g=preg: generate_latest(g))
            scrape = median_ms(scrape_fn, args.cycles)
            cells[name] = (collect, encode, size, scrape)
            print(
                f"| {n:>7} | {n * 7:>6} | {name:<11} | {collect:8.2f} | {encode:13.2f} | {size:>10} | {scrape:17.2f} |"
            )
            if name == "tradeobs":
                from prometheus_client import CollectorRegistry

                from tradeobs_agent._internal.prometheus import PrometheusCollector

                registry = preg.registry
                pc = CollectorRegistry(auto_describe=False)
                pc.register(PrometheusCollector(registry))
                pc_scrape = median_ms(lambda g=pc: generate_latest(g), args.cycles)
                snap = median_ms(registry.snapshot, args.cycles)
                print(
                    f"| {n:>7} | {n * 7:>6} | {'tradeobs/pc':<11} | {'-':>8} | {'-':>13} | {'-':>10} "
                    f"| {pc_scrape:17.2f} |"
                    f"  (snapshot alone {snap:.2f} ms)"
                )
        ratio = [a / b if b else float("nan") for a, b in zip(cells["tradeobs"], cells["OTel SDK"], strict=True)]
        print(
            f"| {n:>7} | {n * 7:>6} | {'vs OTel SDK':<11} | {ratio[0]:7.2f}x | {ratio[1]:12.2f}x | {ratio[2]:9.2f}x "
            f"| {ratio[3]:16.2f}x |"
        )


if __name__ == "__main__":
    main()
