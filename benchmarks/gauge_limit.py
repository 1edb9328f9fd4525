"""What positions and P&L cost, and whether they all reach the endpoint, at N symbols x S strategies x V venues.

    python benchmarks/gauge_limit.py [--symbols 1000] [--strategies 5] [--venues 3] [--scrapes 5]

One process, the agent as a user starts it (``init()`` with the default settings: ``max_series`` and, where the
release has it, ``max_gauge_series`` at their defaults; the real Prometheus endpoint on a free port; no OTLP
collector, logs or live stream). One ``TradingTelemetry(strategy=..., venue=...)`` per strategy and venue; per
symbol each of them sends one order (a buy for even symbols, a sell for odd ones; a limit order on venue 0,
market on the others), fills it, and reports a position and P&L; each symbol ticks once. Then, printed as one
Markdown row:

* ``positions``: the ``trading_position_quantity`` samples of the scrape that carry a symbol, against
  ``symbols x strategies x venues`` (each venue object's position is set: the position gauges have a ``venue``
  label; before fd2bf45 the venues of one strategy shared its series, ``symbols x strategies``);
* ``gauge series`` / ``all series``: the registry's series of gauges / of every instrument;
* ``RSS MiB``: VmRSS after the scrapes and the export (the process's high-water mark in brackets);
* ``scrape ms``: median wall time of ``--scrapes`` GETs of ``/metrics`` over HTTP, and the body's size;
* ``OTLP``: one metric export as the agent's OTLP reader encodes it (``bridge.collect_encoded`` +
  ``otlp_encode.encode_metrics``): bytes, and ms (median of 3); the reader sends it as requests of at most
  3 MiB (docs/metrics.md, "Metric export").
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.request


def _status(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=1000)
    ap.add_argument("--strategies", type=int, default=5)
    ap.add_argument("--venues", type=int, default=3)
    ap.add_argument("--scrapes", type=int, default=5)
    args = ap.parse_args()

    from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics
    from opentelemetry.sdk.resources import Resource

    import tradeobs_agent
    from tradeobs_agent import PrometheusOptions, TracingOptions, trading
    from tradeobs_agent._internal import bridge
    from tradeobs_agent._internal.otlp_encode import encode_metrics
    from tradeobs_agent._internal.providers import SCOPE
    from tradeobs_agent.metrics import Gauge, get_registry

    agent = tradeobs_agent.init(
        service_name="bench-gauge-limit",
        otlp=False,
        logs=False,
        live=False,
        prometheus=PrometheusOptions(host="127.0.0.1", port=0),
        tracing=TracingOptions(file=""),
    )
    n, ns, nv = args.symbols, args.strategies, args.venues
    rss0 = _status("VmRSS")
    tts = [trading.TradingTelemetry(strategy=f"strat{s}", venue=f"venue{v}") for s in range(ns) for v in range(nv)]
    for i in range(n):
        sym = f"S{i:04d}"
        tts[0].tick(sym, 100.0 + i)
        for k, tt in enumerate(tts):
            order = tt.order_signal(
                f"o-{k}-{i}", sym, "buy" if i % 2 == 0 else "sell", 1.0, 100.0, "limit" if k % nv == 0 else "market"
            )
            order.risk_check(True)
            order.submitted()
            order.acked()
            order.fill(1.0, 100.01, 100.0)
            tt.position(sym, float(i + 1), 100.0 + i, 100.0)
            tt.pnl(sym, 1.0, float(i))
    for tt in tts:
        tt.flush()
    reg = get_registry()
    reg.flush()
    url = agent.prometheus_url
    assert url is not None
    walls = []
    body = b""
    for _ in range(args.scrapes):
        t0 = time.perf_counter()
        body = urllib.request.urlopen(url, timeout=60).read()
        walls.append(time.perf_counter() - t0)
    positions = sum(
        1 for line in body.decode().splitlines() if line.startswith("trading_position_quantity{") and 'symbol="' in line
    )
    resource = Resource.create({})
    sizes, took = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        scope = ScopeMetrics(SCOPE, bridge.collect_encoded(reg), "")
        data = encode_metrics(MetricsData([ResourceMetrics(resource, [scope], "")]))
        took.append(time.perf_counter() - t0)
        sizes.append(len(data))
    insts = list(reg._instruments.values())
    gauge_series = sum(len(i.series()) for i in insts if isinstance(i, Gauge))
    all_series = sum(len(i.series()) for i in insts)
    print(
        "| symbols x strategies x venues | positions | gauge series | all series | RSS MiB (peak) | RSS of the work | "
        "scrape ms | scrape MiB | OTLP MiB | OTLP ms |"
    )
    print(
        f"| {n} x {ns} x {nv} | {positions} / {n * ns * nv} | {gauge_series} | {all_series} "
        f"| {_status('VmRSS'):.0f} ({_status('VmHWM'):.0f}) | {_status('VmRSS') - rss0:.0f} "
        f"| {statistics.median(walls) * 1e3:.0f} | {len(body) / 2**20:.1f} | {statistics.median(sizes) / 2**20:.1f} "
        f"| {statistics.median(took) * 1e3:.0f} |",
        flush=True,
    )
    tradeobs_agent.shutdown(5.0)


if __name__ == "__main__":
    main()
