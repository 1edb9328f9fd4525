"""CPU per item put into an SDK batch processor's queue (``otel_private.batch_put``, every span and log record the
agent exports goes through it), this tree against a git revision of the agent.

    python benchmarks/batch_put.py [--before REV] [--rounds 5] [--items 20000]

Each version in its own interpreter, rounds taking turns (``benchmarks/_trees.py``). A ``BatchSpanProcessor`` with
the default batch size (512) and a queue that never fills, whose exporter drops what it gets: the put with room,
the usual case. Two shapes: ``tight``, the items one after another; ``after sleeps``, 20 items after each 1 ms sleep
(the applier's and the log worker's pattern: a few items per slice, caches cold after a wait). CPU time of the
putting thread (``time.thread_time``), in microseconds per item, median over rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


class _Drop:
    def export(self, batch: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _child(items: int) -> dict[str, float]:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from tradeobs_agent._internal import otel_private

    proc = BatchSpanProcessor(_Drop(), max_queue_size=1 << 20, max_export_batch_size=512)  # type: ignore[arg-type]
    bp = otel_private.batch_processor(proc)
    put = otel_private.batch_put
    item = object()
    for _ in range(2000):  # warm-up
        put(bp, item, 0.1)
    t = time.thread_time()
    for _ in range(items):
        put(bp, item, 0.1)
    tight = (time.thread_time() - t) / items * 1e6
    spent, n = 0.0, 0
    while n < items // 4:
        time.sleep(0.001)
        t = time.thread_time()
        for _ in range(20):
            put(bp, item, 0.1)
        spent += time.thread_time() - t
        n += 20
    proc.shutdown()
    return {"tight": tight, "after_sleeps": spent / n * 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="65f8333", help="the git revision of the agent to compare with")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.items)))
        return
    from _trees import before_and_now

    res = before_and_now(__file__, args.before, args.rounds, ["--items", str(args.items)])
    py = sys.version.split()[0]
    print(f"# batch_put with room: us of CPU per item, median of {args.rounds} rounds (range); python {py}")
    print(f"| shape | before ({args.before}) | now | now / before |")
    print("|---|---:|---:|---:|")
    for key, label in (("tight", "tight loop"), ("after_sleeps", "20 items after each 1 ms sleep")):
        b = [r[key] for r in res["before"]]
        n = [r[key] for r in res["now"]]
        mb, mn = statistics.median(b), statistics.median(n)
        print(
            f"| {label} | {mb:.2f} ({min(b):.2f} .. {max(b):.2f}) | {mn:.2f} ({min(n):.2f} .. {max(n):.2f}) "
            f"| {mn / mb:.2f}x |"
        )


if __name__ == "__main__":
    main()
