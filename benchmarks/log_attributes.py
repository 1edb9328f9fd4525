"""CPU per demo log line and per step span in the pieces that read every attribute name, this tree against a git
revision of the agent.

    python benchmarks/log_attributes.py [--before REV] [--rounds 7] [--lines 2000]

The demo's fill line (``"order %s filled %s %s @ %.4f"``, ``extra={"symbol": ..., "side": ...}``, inside
``correlate(order_id=..., symbol=...)`` as ``order.scope()`` gives it, with the order's trace), 16 fields once built,
and the fill step's span attributes. Each version in its own interpreter, rounds taking turns
(``benchmarks/_trees.py``); per round the best of 15 passes over ``--lines`` distinct lines, in microseconds of the
thread's CPU (``time.thread_time``) per line (the work is hot, so this is the work's own cost, not the run's: see
docs/performance.md); medians over rounds (range) and the ratio now / before:

- ``build``: ``RecordBuilder.build`` (the JSON line's fields: message, redaction, the correlation ids and extras)
- ``OTLP attributes``: ``otel_attributes`` (the fields that are log attributes) and their ``KeyValue`` encoding
- ``step span attributes``: ``encode_step_span`` of a fill (its four float attributes)
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

PIECES = (("build", "build"), ("otlp_attrs", "OTLP attributes"), ("span_attrs", "step span attributes"))


def _best(fn: Any, items: list[Any], passes: int = 15) -> float:
    best = float("inf")
    for _ in range(passes):
        t = time.thread_time()
        for x in items:
            fn(x)
        best = min(best, time.thread_time() - t)
    return best / len(items) * 1e6


def _child(lines: int) -> dict[str, float]:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    from tradeobs_agent._internal.otlp_encode import _attributes, encode_step_span
    from tradeobs_agent.logs._capture import Captured
    from tradeobs_agent.logs._format import RecordBuilder
    from tradeobs_agent.logs._sinks import otel_attributes
    from tradeobs_agent.redaction import Redactor

    builder = RecordBuilder(Redactor(), {"service.name": "demo", "service.instance.id": "7f3a9c"})
    now = time.time_ns()
    entries = []
    for i in range(lines):
        sc = SpanContext(0xABC + i, 0xDEF + i, False, TraceFlags(1))
        ctx = trace.set_span_in_context(NonRecordingSpan(sc))
        sym, side = ("AAPL", "MSFT", "NVDA", "AMZN", "TSLA")[i % 5], ("buy", "sell")[i % 2]
        oid = f"demo-5012-{i}"
        corr = MappingProxyType({"order_id": oid, "symbol": sym})
        args = (oid, 10.0 + i % 7, sym, 101.5 + i / 100)
        extra = {"symbol": sym, "side": side}
        entries.append(
            Captured(
                now + i,
                logging.INFO,
                "demo.execution",
                "order %s filled %s %s @ %.4f",
                args,
                extra,
                None,
                ctx,
                corr,
                1,
                None,
                None,
            )
        )
    built = [builder.build(e) for e in entries]

    def otlp(b: Any) -> None:
        _attributes(b"\x32", otel_attributes(b.fields))

    spans = [
        (
            0xABC + i,
            0xDEF + i,
            None,
            0x123 + i,
            "fill",
            now,
            now + 1000,
            {"fill.qty": 10.0, "fill.price": 101.5 + i / 100, "order.filled_qty": 10.0, "fill.slippage_bps": i / 10},
            None,
        )
        for i in range(lines)
    ]

    def span(s: Any) -> None:
        encode_step_span(*s)

    return {
        "build": _best(builder.build, entries),
        "otlp_attrs": _best(otlp, built),
        "span_attrs": _best(span, spans),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", default="89781da", help="the git revision of the agent to compare with")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--lines", type=int, default=2000)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.lines)))
        return
    from _trees import before_and_now

    res = before_and_now(__file__, args.before, args.rounds, ["--lines", str(args.lines)])
    py = sys.version.split()[0]
    print(f"# us of CPU per line or span, median of {args.rounds} rounds (range); python {py}")
    print(f"| piece | before ({args.before}) | now | now - before | now / before |")
    print("|---|---:|---:|---:|---:|")
    for key, label in PIECES:
        b = [r[key] for r in res["before"]]
        n = [r[key] for r in res["now"]]
        mb, mn = statistics.median(b), statistics.median(n)
        print(
            f"| {label} | {mb:.2f} ({min(b):.2f} .. {max(b):.2f}) | {mn:.2f} ({min(n):.2f} .. {max(n):.2f}) "
            f"| {mn - mb:+.2f} | {mn / mb:.2f}x |"
        )


if __name__ == "__main__":
    main()
