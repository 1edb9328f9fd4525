"""A process pool's cost, with the agent of a git revision and of this tree: ``python benchmarks/process_pool.py``.

The parent runs ``init()`` and counts; each round starts a pool of 2 workers, runs 8 tasks that each count one
order, and ends the pool: a ``spawn`` ``ProcessPoolExecutor`` whose workers never call ``init()`` (now: marked by
the parent, each checks what it recorded and says once that it was dropped), and a ``fork`` ``Pool`` ended by its
``with`` block (now: a SIGTERM during a worker's exit lets its shutdown finish). Nothing changed on the hot path
(a bound ``add``): this measures what the changes add to starting and ending workers, and the orders that reached
the parent's ``/metrics``.

    python benchmarks/process_pool.py [--before REV] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _task(i: int) -> int:
    import tradeobs_agent

    tradeobs_agent.counter("bench.orders").bind(kind="task").add(1)
    return i


def _scrape(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith("bench_orders_total{"))


def child(port: int) -> None:
    import tradeobs_agent

    os.environ["TRADEOBS_MULTIPROCESS_DIR"] = tempfile.mkdtemp()
    tradeobs_agent.init(
        service_name="bench-pool",
        otlp=False,
        live=False,
        logs=tradeobs_agent.LogOptions(dir=""),
        prometheus=tradeobs_agent.PrometheusOptions(host="127.0.0.1", port=port),
    )
    t0 = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as ex:
        list(ex.map(_task, range(8)))
    spawn_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(_task, range(8))
    fork_s = time.perf_counter() - t0
    time.sleep(1.2)  # the group folds the exited workers' last snapshots
    counted = _scrape(port)
    tradeobs_agent.shutdown()
    print(json.dumps({"spawn_s": spawn_s, "fork_s": fork_s, "fork_counted": counted}))


def main() -> None:
    from _ports import free_port
    from _trees import before_and_now

    ap = argparse.ArgumentParser()
    ap.add_argument("--child", action="store_true")
    ap.add_argument("port", nargs="?", type=int)
    ap.add_argument("--before", default="HEAD~2")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.child:
        child(args.port)
        return
    got = before_and_now(__file__, args.before, args.rounds, [str(free_port())])
    print(f"{args.rounds} rounds each, alternating; medians (before = {args.before})")
    print(f"{'measure':<44}{'before':>10}{'now':>10}{'now/before':>12}")
    for key, what in (
        ("spawn_s", "spawn ProcessPoolExecutor(2), 8 tasks, s"),
        ("fork_s", "fork Pool(2) in a with block, 8 tasks, s"),
        ("fork_counted", "fork Pool: orders on /metrics (of 8)"),
    ):
        b = statistics.median(r[key] for r in got["before"])
        n = statistics.median(r[key] for r in got["now"])
        low = min(r[key] for r in got["before"]), min(r[key] for r in got["now"])
        ratio = n / b if b else float("nan")
        print(f"{what:<44}{b:>10.3f}{n:>10.3f}{ratio:>12.2f}   (min {low[0]:.3f} / {low[1]:.3f})")


if __name__ == "__main__":
    if "--child" in sys.argv:
        child(int(sys.argv[-1]))
    else:
        main()
