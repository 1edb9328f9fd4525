"""What one fleet gateway tick costs: merging every instance's frame (``FleetView.build``), the delta, orjson.

    python benchmarks/fleet_merge.py [--services 10] [--symbols 100] [--working 200] [--ticks 200] [--rounds 3]
                                     [--before a022386]

Each of ``--services`` instances publishes a frame as an agent does today (``state`` with ``symbols``,
``account``, ``desk``, ``working``; the publisher's ``desk`` extras): ``--symbols`` symbols with a price, position,
average entry, tick age, P&L and order counts, and ``--working`` working orders. Each tick every instance's
frame is new (as arriving from NATS: new dicts): 10 of its prices move, one working order fills and a new one is
sent; then the gateway's work runs once: ``build``, ``fleet_delta`` against the previous state, and orjson of the
full frame and the delta.

The peer is the same measurement on the package of ``--before`` (``git archive`` of that revision: the fleet merge
before it merged ``desk``, ``working``, ``avg`` and ``age``, given the same frames), in the same run: each round
runs both, in fresh processes, one after the other. Prints the median and p99 time per tick and the frame sizes;
not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

from _trees import before_and_now


def _frame(svc: int, seq: int, symbols: int, working: int) -> dict[str, Any]:
    syms = {
        f"S{i:04d}": {
            "px": 100.0 + i + (seq % 7 if i % (symbols // 10 or 1) == 0 else 0),
            "pos": 10 * (i + svc),
            "ntl": 1000.0 * i,
            "rpnl": 1.5 * i,
            "upnl": -2.5,
            "avg": 99.0 + i + svc,
            "age": 1,
            "ord": 5 + seq,
            "fill": 4 + seq,
            "rej": 1,
            "p50": 0.002,
            "p99": 0.01,
        }
        for i in range(symbols)
    }
    orders = {
        f"c-{j}": {"s": "S0001", "sd": "buy", "q": 10, "f": 0, "p": 100.0, "t": 1000.0 + j, "tr": "ab" * 16}
        | {"st": "momentum", "v": "paper"}
        for j in range(seq, seq + working)
    }
    state = {
        "symbols": syms,
        "account": {"equity": 1e6, "pnl": 10.0 + seq, "rpnl": 5.0, "upnl": 5.0 + seq, "pnl_day": 3.0}
        | {"day_since": 1.0, "day_full": True, "gross": 1e5, "net": 1e4},
        "desk": {"open": working, "orders": 100 + seq, "fills": 90 + seq, "rejects": 10, "reasons": {"a": 4, "b": 6}}
        | {"reject_rate": 0.1, "reject_window": 300, "limits": {"gross": 0.5}, "md_age": 0.1, "stale": 0}
        | {"working": working},
        "working": orders,
        "health": {"exports_failed": 0},
    }
    extras = {"rw": [100 + seq, 10, 300], "limits": {"momentum/gross": 0.5}, "gross": {s: 10.0 for s in syms}}
    return {"service": f"svc{svc}", "instance": "i", "seq": seq, "ts": 1.0, "state": state, "desk": extras}


def measure(services: int, symbols: int, working: int, ticks: int) -> dict[str, Any]:
    import orjson

    from tradeobs_agent.live.fleet import FleetView, fleet_delta

    view = FleetView()
    prev: dict[str, Any] = {}
    times, full, deltas = [], [], []
    for seq in range(1, ticks + 1):
        frames = [orjson.loads(orjson.dumps(_frame(s, seq, symbols, working))) for s in range(services)]
        t0 = time.perf_counter()
        for f in frames:
            view.update(f, received=1.0)
        state = view.build(now=1.0)
        full_json = orjson.dumps(state)
        delta_json = orjson.dumps(fleet_delta(prev, state))
        times.append(time.perf_counter() - t0)
        full.append(len(full_json))
        deltas.append(len(delta_json))
        prev = state
    return {"times": times, "full": full, "delta": deltas}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=10)
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--working", type=int, default=200)
    ap.add_argument("--ticks", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--before", default="a022386", help="git revision of the peer (default: %(default)s)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.services, args.symbols, args.working, args.ticks)))
        return
    results = before_and_now(
        __file__,
        args.before,
        args.rounds,
        [
            "--services",
            str(args.services),
            "--symbols",
            str(args.symbols),
            "--working",
            str(args.working),
            "--ticks",
            str(args.ticks),
        ],
    )
    print(
        f"Fleet gateway tick: {args.services} instances x {args.symbols} symbols, {args.working} working orders each, "
        f"{args.rounds} x {args.ticks} ticks per tree, {os.cpu_count()} CPUs"
    )
    print("| tree | merge + delta + serialize p50 ms | p99 ms | full frame KB | delta KB |")
    print("|---|---:|---:|---:|---:|")
    p50 = {}
    for name in ("before", "now"):
        times = sorted(t for r in results[name] for t in r["times"])
        full = [x for r in results[name] for x in r["full"]]
        deltas = [x for r in results[name] for x in r["delta"]]
        p50[name] = statistics.median(times)
        label = f"before ({args.before})" if name == "before" else "now"
        print(
            f"| {label} | {p50[name] * 1000:.1f} | {times[int(0.99 * len(times))] * 1000:.1f} "
            f"| {statistics.median(full) / 1000:.0f} | {statistics.median(deltas) / 1000:.1f} |"
        )
    print(f"Tick time, now / before: {p50['now'] / p50['before']:.2f}x")


if __name__ == "__main__":
    main()
