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
