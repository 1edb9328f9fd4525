"""What the worker group's leader pays to merge its workers' position books: ``Merger.merge`` of their files.

    python benchmarks/group_merge.py [--workers 4] [--symbols 1000] [--changed 100] [--merges 200] [--rounds 3]
                                     [--before 58cbcc8]

Each of ``--workers`` processes holds, per symbol (strategy ``s1``), the trading position gauges as
``TradingTelemetry`` declares them (quantity, notional, average entry, realized and unrealized P&L, the price),
each worker long a different quantity at a different average entry. Each merge, ``--changed`` symbols of every
worker move (a fill: quantity, average entry, notional and P&L), each worker writes its file (``PartWriter``) and
the leader reads them (``PartReader``) and merges them (``Merger.merge``, kept between merges, as the leader
keeps it); the time is that of the reads and the merge (the leader's work), per merge. The first merge (the plan
built) is reported apart.

The peer is the same measurement on the package of ``--before`` (``git archive`` of that revision: the average
entry merged as ``last``), in the same run: each round runs both, in fresh processes, one after the other.
Prints the median and p99 per merge; not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

from _trees import before_and_now


def measure(workers: int, symbols: int, changed: int, merges: int) -> dict[str, Any]:
    from tradeobs_agent.metrics import Registry
    from tradeobs_agent.metrics.wire import Merger, PartReader, PartWriter
    from tradeobs_agent.trading.instruments import TradingInstruments

    regs = [Registry() for _ in range(workers)]
    insts = [TradingInstruments(r) for r in regs]
    syms = [f"S{i:04d}" for i in range(symbols)]

    def book(w: int, i: int, step: int) -> None:
        inst, sym = insts[w], syms[i]
        qty = float(100 * (w + 1) + i + step)
        avg = 100.0 + i + w + step / 7
        px = 101.0 + i
        a = {"symbol": sym, "strategy": "s1"}
        inst.position_qty.bind(**a).set(qty)
        inst.avg_price.bind(**a).set(avg)
        inst.position_notional.bind(**a).set(qty * px)
        inst.realized.bind(**a).set(float(step))
        inst.unrealized.bind(**a).set(qty * (px - avg))
        inst.price.bind(symbol=sym).set(px)

    for w in range(workers):
        for i in range(symbols):
            book(w, i, 0)
    writers = [PartWriter(100 + w) for w in range(workers)]
    readers = [PartReader() for _ in range(workers)]
    merger = Merger()

    def once() -> float:
        data = [writers[w].encode_registry(regs[w]) for w in range(workers)]
        t0 = time.perf_counter()
        cols = [readers[w].columns(data[w], True)[0] for w in range(workers)]
        merger.merge(cols)
        return time.perf_counter() - t0

    first = once()
    times = []
    for step in range(1, merges + 1):
        for w in range(workers):
            for k in range(changed):
                book(w, (step * changed + k * 7 + w) % symbols, step)
        times.append(once())
    return {"first": first, "times": times}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--symbols", type=int, default=1000)
    ap.add_argument("--changed", type=int, default=100)
    ap.add_argument("--merges", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--before", default="58cbcc8", help="git revision of the peer (default: %(default)s)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = ["--workers", str(args.workers), "--symbols", str(args.symbols), "--changed", str(args.changed)]
    if args.child:
        print(json.dumps(measure(args.workers, args.symbols, args.changed, args.merges)))
        return
    results = before_and_now(__file__, args.before, args.rounds, [*sizes, "--merges", str(args.merges)])
    print(
        f"Worker group merge: {args.workers} workers x {args.symbols} symbols, {args.changed} changed per worker per "
        f"merge, {args.rounds} x {args.merges} merges per tree, {os.cpu_count()} CPUs"
    )
    print("| tree | first merge ms | merge p50 ms | p99 ms |")
    print("|---|---:|---:|---:|")
    p50 = {}
    for name in ("before", "now"):
        times = sorted(t for r in results[name] for t in r["times"])
        first = statistics.median(r["first"] for r in results[name])
        p50[name] = statistics.median(times)
        label = f"before ({args.before})" if name == "before" else "now"
        print(f"| {label} | {first * 1000:.1f} | {p50[name] * 1000:.2f} | {times[int(0.99 * len(times))] * 1000:.2f} |")
    print(f"Merge time, now / before: {p50['now'] / p50['before']:.2f}x")


if __name__ == "__main__":
    main()
