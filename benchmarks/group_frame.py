"""What one frame of a worker group costs its leader at 4 workers x 1,000 symbols: reading the workers' files,
merging them and building the frame, in CPU time; this tree against an older one in the same run.

    python benchmarks/group_frame.py [--before c9685ae] [--workers 4] [--symbols 1000] [--ticks 100] [--rounds 3]

One process holds ``--workers`` registries, each the desk of ``benchmarks/live_frame.py`` (7 gauges, 2 counters
and 3 histograms per symbol; 100 prices and 20 fills moved per tick). Each tick every desk moves, and half of the
workers write their files (``PartWriter.encode_registry``: a worker publishes five times a second while the view is
watched, the workers out of phase), then the leader's part, timed with the thread's CPU clock: it reads the files
that changed (``PartReader.columns``), merges them (``Merger.merge`` of the frame's instruments, kept between
ticks) and makes the frame and its delivery (``LiveHub.lead_tick``: the state, the full frame and the delta as
JSON). The leader spends at most a quarter of a core on frames (``_internal/workers/group.py``), so the frames a
second it can make are ``min(10, 0.25 / CPU per frame)``.

CPU time, not wall time: on a loaded machine a frame also waits for the GIL and the cores, which the frame does
not cost. The peer is the same measurement on the package of ``--before`` (``git archive`` of its ``agent/``),
rounds alternating, in fresh processes. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from typing import Any

from _trees import before_and_now


def measure(workers: int, symbols: int, ticks: int) -> dict[str, Any]:
    from live_frame import Desk

    from tradeobs_agent.events import EventBus
    from tradeobs_agent.live.frames import FRAME_INSTRUMENTS
    from tradeobs_agent.live.hub import LiveHub
    from tradeobs_agent.metrics import Registry
    from tradeobs_agent.metrics.wire import Merger, PartReader, PartWriter

    desks = []
    for w in range(workers):
        desk = Desk(symbols)
        desk.rng = random.Random(10 + w)  # each worker trades its own sample of the symbols
        desks.append(desk)
    writers = [PartWriter(100 + w) for w in range(workers)]
    keys: dict[Any, Any] = {}
    readers = [PartReader(keys) for _ in range(workers)]
    data = [writers[w].encode_registry(desks[w].reg) for w in range(workers)]
    cols: list[Any] = [None] * workers
    merger = Merger()
    hub = LiveHub(Registry(), EventBus())
    builder = getattr(hub, "_builder", None)
    if hasattr(builder, "day_from_first_frame"):
        builder.day_from_first_frame()  # as a group's leader does
    read, merge, frame = [], [], []

    def tick(i: int) -> None:
        for w in range(workers):
            desks[w].move()
            if (i + w) % 2 == 0:
                data[w] = writers[w].encode_registry(desks[w].reg)
        t0 = time.thread_time()
        for w in range(workers):
            if cols[w] is None or (i + w) % 2 == 0:
                cols[w] = readers[w].columns(data[w], True)[0]
        t1 = time.thread_time()
        snap = merger.merge(cols, FRAME_INSTRUMENTS)
        t2 = time.thread_time()
        hub.lead_tick(snap, workers)
        t3 = time.thread_time()
        read.append(t1 - t0)
        merge.append(t2 - t1)
        frame.append(t3 - t2)

    for i in range(5):  # the first merge plan, the first full frame
        tick(i)
    for xs in (read, merge, frame):
        xs.clear()
    for i in range(ticks):
        tick(i)
        time.sleep(0.1)  # ticks 0.1 s apart, as the leader's: the symbols' tick ages move with the clock
    return {"read": read, "merge": merge, "frame": frame}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="c9685ae", help="git revision of the peer (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--symbols", type=int, default=1000)
    ap.add_argument("--ticks", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = ["--workers", str(args.workers), "--symbols", str(args.symbols), "--ticks", str(args.ticks)]
    if args.child:
        print(json.dumps(measure(args.workers, args.symbols, args.ticks)))
        return
    results = before_and_now(__file__, args.before, args.rounds, sizes)
    print(
        f"A worker group's frame at its leader: {args.workers} workers x {args.symbols:,} symbols, "
        f"{args.rounds} x {args.ticks} ticks per tree (alternating), CPU ms per frame, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    print("| tree | read p50 | merge p50 | frame p50 | total p50 | total p99 | frames/s at a quarter of a core |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    totals = {}
    for name in ("before", "now"):
        rs = results[name]
        part = {k: sorted(x for r in rs for x in r[k]) for k in ("read", "merge", "frame")}
        total = sorted(a + b + c for r in rs for a, b, c in zip(r["read"], r["merge"], r["frame"], strict=True))
        totals[name] = statistics.median(total)
        label = f"before ({args.before})" if name == "before" else "now"
        cells = " | ".join(f"{statistics.median(part[k]) * 1000:.1f}" for k in ("read", "merge", "frame"))
        print(
            f"| {label} | {cells} | {totals[name] * 1000:.1f} | {total[int(0.99 * len(total))] * 1000:.1f} "
            f"| {min(10.0, 0.25 / totals[name]):.1f} |"
        )
    print(f"CPU per frame, now / before (medians): {totals['now'] / totals['before']:.2f}x")


if __name__ == "__main__":
    main()
