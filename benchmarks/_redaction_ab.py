"""The shared part of the redaction benchmarks (``redaction_shapes.py``, ``redaction_prose.py``,
``redaction_urls.py``): ``Redactor.text`` timed on mixes of lines with the agent of an older revision and of this
tree (``_trees.before_and_now``), then the collector's run (``collector_redaction.compare_with_revision``)."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The demo's kind of lines (orders, fills, rejects with ids, UUIDs, prices; the words "sign"/"binance": "signal",
# "design", a public stream's URL): the mix redaction_shapes.py and redaction_urls.py time (each adds its own secret).
DEMO_LINES = [
    "signal AAPL buy qty=100 px=187.25 strategy=mean-reversion",
    "order 61e69015-8549-4bfd-b9c3-01e75de48cd5 submitted AAPL buy 100 @ 187.25 client_order_id=cid-42",
    "fill order_id=ORD-20240102-000123 symbol=MSFT side=sell qty=50 px=402.10 venue=SIM",
    "risk rejected order 7f3c2a1e-0d4b-4c8e-9a6f-2b1d3e4f5a6b: peak drawdown 2.1% > 2.0%",
    "market data break on NVDA, resubscribing (trace 4bf92f3577b34da6a3ce929d0e0e4736)",
    "position TSLA qty=-20 avg=251.30 unrealized=-132.50 realized=48.00",
    "heartbeat ok latency_ms=3.2 take_profit=1.5 stop_loss=0.8",
    "GET /v2/orders?status=open&limit=50 200 12ms",
    "ws connected wss://stream.binance.com:9443/ws/btcusdt@trade design=v2 signed=true",
]


def time_mixes(mixes: Mapping[str, Sequence[str]], n: int, secret: str | None = None) -> None:
    """The child: print ``{mix: CPU ns per line}`` for ``n`` lines of each mix (every 50th ``secret`` if given),
    the fastest of 5 passes after a warm-up of 2,000 lines."""
    from tradeobs_agent.redaction import Redactor

    r = Redactor(known_values=False)
    out = {}
    for name, lines in mixes.items():
        texts = [secret if secret is not None and i % 50 == 49 else lines[i % len(lines)] for i in range(n)]
        for t in texts[:2000]:
            r.text(t)
        best = float("inf")
        for _ in range(5):  # the fastest of 5 passes: the least disturbed by the machine's other work
            t0 = time.thread_time_ns()
            for t in texts:
                r.text(t)
            best = min(best, (time.thread_time_ns() - t0) / n)
        out[name] = best
    print(json.dumps(out))


def main(script: str, doc: str, default_before: str, mixes: Mapping[str, Sequence[str]], secret: str | None) -> None:
    """The command line of each redaction benchmark: the agent's table (per mix: before, now, now/before), then
    the collector's comparison unless ``--no-collector``."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--before", default=default_before)
    ap.add_argument("--lines", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--spans", type=int, default=5000)
    ap.add_argument("--logs", type=int, default=5000)
    ap.add_argument("--collector-runs", type=int, default=3)
    ap.add_argument("--no-collector", action="store_true")
    args = ap.parse_args()
    if args.child is not None:
        time_mixes(mixes, args.child, secret)
        return
    sys.path.insert(0, str(ROOT))
    from benchmarks._trees import before_and_now

    res = before_and_now(script, args.before, args.rounds, [str(args.lines)])
    print(f"{'agent: Redactor.text, CPU ns per line':<44} {'before':>10} {'now':>10} {'now/before':>11}")
    for name in mixes:
        before = statistics.median(x[name] for x in res["before"])
        now = statistics.median(x[name] for x in res["now"])
        print(f"  {name:<42} {before:>10.0f} {now:>10.0f} {now / before:>10.2f}x")
    print(f"  (median of {args.rounds} rounds)")
    if args.no_collector:
        return
    from benchmarks.collector_redaction import compare_with_revision

    compare_with_revision(args.before, args.collector_runs, args.spans, args.logs)
