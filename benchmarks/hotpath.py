"""Per-event cost of the bound hot path, against its peers measured in the same run.

    python benchmarks/hotpath.py [--n 200000] [--repeat 7]

Peers:
- prometheus_client: ``Counter(...).labels(...).inc(1)`` / ``Histogram(...).labels(...).observe(v)``,
  the bound (child) form, which is that library's fastest path.
- the raw OpenTelemetry SDK: ``counter.add(1, attrs)`` / ``histogram.record(v, attrs)`` with three
  attributes (a prebuilt dict), a MeterProvider with one in-memory reader (what the SDK does per call).

Each cell is the best of ``--repeat`` runs of ``--n`` calls, in ns per call (loop overhead included
for every row alike). Targets (issue 4): bound add <= prometheus_client inc, >= 10x faster than
the OTel SDK; bound record <= 1.5x prometheus_client observe.
"""

from __future__ import annotations

import argparse
import platform
import sys
import timeit
from collections.abc import Callable
from typing import Any


def bench(fn: Callable[..., Any], arg: Any, n: int, repeat: int) -> float:
    timer = timeit.Timer("f(a)", globals={"f": fn, "a": arg})
    return min(timer.repeat(repeat=repeat, number=n)) / n * 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    import prometheus_client as pc
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from tradeobs_agent.metrics import Registry

    attrs = {"symbol": "AAPL", "side": "buy", "venue": "paper"}

    reg = Registry()
    ours_c = reg.counter("bench.orders", "{order}").bind(**attrs)
    ours_h = reg.histogram("bench.latency", "s").bind(**attrs)
    tracer_span = _sampled_span()

    preg = pc.CollectorRegistry()
    prom_c = pc.Counter("bench_orders", "x", list(attrs), registry=preg).labels(**attrs)
    bounds = (*reg.histogram("bench.latency", "s").bounds, float("inf"))
    prom_h = pc.Histogram("bench_latency_seconds", "x", list(attrs), registry=preg, buckets=bounds).labels(**attrs)

    meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("bench")
    otel_c = meter.create_counter("bench.orders")
    otel_h = meter.create_histogram("bench.latency", unit="s")

    def otel_add(v: int) -> None:
        otel_c.add(v, attrs)

    def otel_record(v: float) -> None:
        otel_h.record(v, attrs)

    def ours_record_exemplar(v: float) -> None:
        ours_h.record(v, tracer_span)

    n, r = args.n, args.repeat
    rows = [
        ("counter", "tradeobs bound add(1)", bench(ours_c.add, 1, n, r)),
        ("counter", "prometheus_client bound inc(1)", bench(prom_c.inc, 1, n, r)),
        ("counter", "OTel SDK counter.add(1, 3 attrs)", bench(otel_add, 1, n // 10, r)),
        ("histogram", "tradeobs bound record(v)", bench(ours_h.record, 0.0042, n, r)),
        ("histogram", "tradeobs bound record(v, exemplar=span)", bench(ours_record_exemplar, 0.0042, n, r)),
        ("histogram", "prometheus_client bound observe(v)", bench(prom_h.observe, 0.0042, n, r)),
        ("histogram", "OTel SDK histogram.record(v, 3 attrs)", bench(otel_record, 0.0042, n // 10, r)),
    ]
    ref = {"counter": rows[1][2], "histogram": rows[5][2]}
    print(f"# hotpath: python {platform.python_version()} on {platform.machine()}, n={n}, best of {r}")
    print(f"| {'kind':<9} | {'implementation':<42} | {'ns/call':>8} | {'vs prometheus_client':>20} |")
    print(f"|{'-' * 11}|{'-' * 44}|{'-' * 10}|{'-' * 22}|")
    for kind, name, ns in rows:
        print(f"| {kind:<9} | {name:<42} | {ns:8.1f} | {ns / ref[kind]:19.2f}x |")
    add, inc, otel = rows[0][2], rows[1][2], rows[2][2]
    rec, obs = rows[3][2], rows[5][2]
    print()
    print(f"bound add vs prometheus_client inc: {add / inc:.2f}x (target <= 1.00x)")
    print(f"OTel SDK add vs bound add:          {otel / add:.1f}x faster (target >= 10x)")
    print(f"bound record vs prometheus observe: {rec / obs:.2f}x (target <= 1.50x)")
    ok = add <= inc and otel / add >= 10 and rec <= 1.5 * obs
    print("targets:", "met" if ok else "NOT met")
    sys.exit(0)


def _sampled_span() -> Any:
    from opentelemetry.sdk.trace import TracerProvider

    return TracerProvider().get_tracer("bench").start_span("order")


if __name__ == "__main__":
    main()
