"""What the event-loop lag monitor costs its loop per wake-up, before and with the stall watch, and one collection.

    python benchmarks/loop_monitor.py [--seconds 2] [--rounds 5] [--before c9685ae]

``trading.eventloop.stall`` (``trading/_loopwatch.py``) adds one attribute store to each wake-up of the monitor's
task (``t0 = watch.t0 = loop.time()``); the stall itself is computed at collection, on the reader's thread. Each
child runs an asyncio loop whose only work is the monitor, at an interval of 1 us (so it wakes as fast as the loop
can), for ``--seconds``; the wake-ups done are the lag histogram's count, and the cost of one is the loop
thread's CPU time (``time.thread_time``) over that count. The peer is the same on the agent of ``--before``
(``git archive`` of that revision), rounds taking turns in fresh processes (``_trees.before_and_now``). The tree
with the watch also times ``_loopwatch.refresh`` (what each collection adds: one running monitor). Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any

from _trees import before_and_now


def measure(seconds: float) -> dict[str, Any]:
    from tradeobs_agent import trading
    from tradeobs_agent.metrics import Registry

    reg = Registry()
    tt = trading.TradingTelemetry(registry=reg)
    out: dict[str, Any] = {}

    async def main() -> None:
        task = tt.event_loop_lag_monitor(interval=1e-6)
        t = time.thread_time()  # the loop thread's CPU: the machine's other load does not count
        await asyncio.sleep(seconds)
        out["cpu"] = time.thread_time() - t
        try:
            from tradeobs_agent.trading import _loopwatch
        except ImportError:  # the tree before the watch
            pass
        else:
            n = 10_000
            t = time.perf_counter()
            for _ in range(n):
                _loopwatch.refresh(tt._stall)
            out["refresh_us"] = (time.perf_counter() - t) / n * 1e6
        assert task is not None
        task.cancel()

    asyncio.run(main())
    tt.flush()
    (fam,) = reg.snapshot(["trading.eventloop.lag"]).families
    out["wakeups"] = sum(sum(p.counts) for p in fam.points)
    tt.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--before", default="c9685ae", help="the revision without the stall watch")
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.seconds)))
        return
    results = before_and_now(__file__, args.before, args.rounds, ["--seconds", str(args.seconds)])
    cpus = os.cpu_count()
    print(f"Lag monitor wake-up, interval 1 us, {args.rounds} rounds x {args.seconds:g} s per tree, {cpus} CPUs")
    print("| tree | wake-ups per round (median) | loop CPU us per wake-up (median) | rounds (us) |")
    print("|---|---:|---:|---|")
    per: dict[str, float] = {}
    for name in ("before", "now"):
        us = [r["cpu"] / r["wakeups"] * 1e6 for r in results[name]]
        per[name] = statistics.median(us)
        label = f"before ({args.before})" if name == "before" else "now"
        wake = statistics.median(r["wakeups"] for r in results[name])
        print(f"| {label} | {wake:.0f} | {per[name]:.2f} | {', '.join(f'{u:.2f}' for u in us)} |")
    print(f"Per wake-up, now / before: {per['now'] / per['before']:.3f}x")
    refresh = statistics.median(r["refresh_us"] for r in results["now"])
    print(f"One collection's stall refresh (one running monitor): {refresh:.2f} us")


if __name__ == "__main__":
    main()
