"""What a collection costs with many open orders, before and after the unacknowledged-order gauges.

    python benchmarks/unacked_collect.py [--against REF] [--rounds 5] [--open 1000,10000] [--reps 200]

``trading.orders.unacknowledged`` and ``trading.orders.oldest_unacknowledged.age`` are computed at collection time,
in one pass over the open book (``OrderBook.unacknowledged``), so the orders' own calls pay nothing for them; this
measures what the pass adds to a collection. One ``TradingTelemetry`` (its own ``Registry``, no exporters) holds
``--open`` orders on 100 symbols: 90 % sent and acknowledged (resting limit orders), 10 % sent and never
acknowledged. Per collection, CPU (``time.thread_time``), median of ``--reps``:

- ``hooks``: ``Registry.run_collect_hooks()`` (what an export or a scrape runs first: staleness, exposure, expiry,
  open orders and now the unacknowledged pass)
- ``snapshot``: ``Registry.snapshot()``, the whole collection (the hooks, then every family copied)

Each version runs in its own interpreter (``_trees.before_and_now``: the agent of ``--against``, by default the
commit before the gauges, and of this tree), the rounds taking turns; the table shows the medians over rounds and
the ratio now / before. A collection runs once per export interval (10 s by default) or scrape, off the trading
thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _trees import before_and_now


def child(n_open: int, reps: int) -> dict[str, float]:
    from tradeobs_agent import trading
    from tradeobs_agent.metrics import Registry

    reg = Registry()
    tt = trading.TradingTelemetry(strategy="mm", venue="X", registry=reg, max_open_orders=n_open * 2)
    for i in range(n_open):
        o = tt.order_signal(f"o-{i}", f"S{i % 100}", "buy", 10, price=100.0, order_type="limit")
        o.risk_check(passed=True)
        o.submitted()
        if i % 10:
            o.acked(f"v-{i}")
    tt.flush()
    assert tt.open_orders == n_open
    out: dict[str, float] = {}
    for name, fn in (("hooks", reg.run_collect_hooks), ("snapshot", reg.snapshot)):
        fn()
        times = []
        for _ in range(reps):
            t0 = time.thread_time()
            fn()
            times.append(time.thread_time() - t0)
        out[name] = statistics.median(times) * 1e6
    tt.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", default="c9685ae", help="git revision of the agent to compare with")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--open", default="1000,10000", help="open orders, comma-separated")
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=1000, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.n, args.reps)))
        return
    print(f"collection CPU per call, us (median of {args.reps}; over {args.rounds} rounds; before = {args.against})")
    print(f"{'open orders':>12} {'phase':>9} {'before':>10} {'now':>10} {'now-before':>11} {'ratio':>7}")
    for n in (int(x) for x in args.open.split(",")):
        got = before_and_now(__file__, args.against, args.rounds, ["--n", str(n), "--reps", str(args.reps)])
        for phase in ("hooks", "snapshot"):
            b = statistics.median(r[phase] for r in got["before"])
            a = statistics.median(r[phase] for r in got["now"])
            print(f"{n:>12,} {phase:>9} {b:>10.1f} {a:>10.1f} {a - b:>+11.1f} {a / b:>7.2f}")


if __name__ == "__main__":
    main()
