"""The agent off (``TradingTelemetry`` without ``init()``): CPU of applying the first order, this tree against a git
revision of the agent.

    python benchmarks/agent_off_first_order.py [--before REV] [--rounds 3]

Each version in a fresh interpreter, rounds taking turns (``benchmarks/_trees.py``): a tick, then one order's signal;
the journal applied on the calling thread (``TradingTelemetry.flush``), its CPU time (``time.thread_time``) and wall
time; then the order's next steps (submit, fill), applied likewise; and whether the OTLP/gRPC exporter module was
imported meanwhile. With the agent off there is no SDK tracer, so no span fast path to decide on; before, that
decision evaluated the SDK assumptions first (``_internal/otel_private.broken_assumptions``: the OTLP and Prometheus
exporters imported, SDK sources parsed), on the journal's applier at a service's first order.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _child() -> dict[str, float | bool]:
    from tradeobs_agent import trading

    tt = trading.TradingTelemetry(strategy="bench", venue="sim")
    tt.tick("AAPL", 1.0)
    tt.flush()
    order = tt.order_signal("o-1", "AAPL", "buy", 1.0, price=1.0)
    cpu, wall = time.thread_time(), time.perf_counter()
    tt.flush()
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    order.submitted()
    order.fill(1.0, 1.0)
    nxt = time.thread_time()
    tt.flush()
    nxt = time.thread_time() - nxt
    grpc = "opentelemetry.exporter.otlp.proto.grpc.exporter" in sys.modules
    return {"first_cpu_ms": cpu * 1e3, "first_wall_ms": wall * 1e3, "next_cpu_ms": nxt * 1e3, "grpc": grpc}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="65f8333", help="the git revision of the agent to compare with")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child()))
        return
    from _trees import before_and_now

    res = before_and_now(__file__, args.before, args.rounds, [])
    print(f"# agent off, the first order applied: median of {args.rounds} fresh interpreters per version (range)")
    print("| version | first order, ms of CPU | its wall ms | next steps, ms of CPU | gRPC exporter imported |")
    print("|---|---:|---:|---:|---|")
    med = {}
    for name, label in (("before", f"before ({args.before})"), ("now", "now")):
        rs = res[name]
        cells = []
        for key in ("first_cpu_ms", "first_wall_ms", "next_cpu_ms"):
            v = [float(r[key]) for r in rs]
            med[name, key] = statistics.median(v)
            cells.append(f"{statistics.median(v):.1f} ({min(v):.1f} .. {max(v):.1f})")
        grpc = sorted({str(r["grpc"]) for r in rs})
        print(f"| {label} | " + " | ".join(cells) + f" | {', '.join(grpc)} |")
    ratio = med["now", "first_cpu_ms"] / med["before", "first_cpu_ms"]
    print(f"first order's CPU, now / before: {ratio:.3f}x")


if __name__ == "__main__":
    main()
