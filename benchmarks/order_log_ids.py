"""What an order's other ids on its log lines cost: the log worker's CPU per line, this tree against a git revision.

    python benchmarks/order_log_ids.py [--against REF] [--rounds 7] [--lines 4000]

A line of an order carries ``venue_order_id`` (once ``acked()`` was given it) and ``new_order_id`` (after a
``replaced()``) beside ``order_id``, added by the log worker (``logs.links.register_record_ids``); the call that logs
does what it did before, and ``acked()``/``replaced()`` store the id. Measured in one interpreter per version and
round, the versions taking turns (``benchmarks/_trees.py``), with ``time.thread_time`` (CPU, not wall):

- ``calls``: the trading calls and the log calls on the calling thread, per line (4 lines per order, each order
  signalled, submitted, acked with a venue's id and amended, its lines written inside ``order.scope()``)
- ``worker``: the log worker's ``_process`` of those lines (JSON file and OTLP records), per line
- ``worker, no ids``: the same for lines of orders never acked nor amended (the lookup that finds no id)

The agent is fully on (``init()``: JSON files, OTLP to a closed local port: the records are encoded, their export
fails, for both versions alike); the journal is applied before the lines are processed, so neither counts it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PHASES = ("calls", "worker", "worker, no ids")


def child(lines: int) -> None:
    sys.path.insert(0, str(HERE))
    from _ports import free_port

    import tradeobs_agent
    from tradeobs_agent import LogOptions, OtlpOptions
    from tradeobs_agent.trading import TradingTelemetry
    from tradeobs_agent.trading._journal import get_journal

    logdir = tempfile.mkdtemp(prefix="tradeobs-bench-ids-")
    agent = tradeobs_agent.init(
        service_name="bench-ids",
        otlp=OtlpOptions(endpoint=f"http://127.0.0.1:{free_port()}", protocol="grpc", insecure=True),
        prometheus=False,
        logs=LogOptions(dir=logdir, console=False),
        live=False,
    )
    tt = TradingTelemetry(strategy="momentum", venue="paper")
    log = tradeobs_agent.get_logger("execution")
    journal = get_journal()
    journal.stop()  # this thread applies
    pipe = agent.logs
    pipe._abandon = True  # the log worker stops; this thread processes the lines
    pipe._wake.set()
    pipe._thread.join(5)
    dq = pipe.queue.dq
    seq = [0]

    def process() -> float:
        journal.flush()
        pipe.queue.worker_ident = threading_ident()
        c = time.thread_time()
        while dq:
            batch = []
            with contextlib.suppress(IndexError):
                for _ in range(256):
                    batch.append(dq.popleft())
            pipe._process(batch)
        spent = time.thread_time() - c
        pipe.queue.worker_ident = None
        return spent

    def orders(ids: bool) -> float:
        c = time.thread_time()
        for _ in range(lines // 4):
            seq[0] += 1
            oid = f"c-{seq[0]}"
            o = tt.order_signal(oid, "AAPL", "buy", 100, 189.5)
            with o.scope():
                o.submitted()
                if ids:
                    o.acked(f"V{seq[0]:08d}")
                    o.replaced(f"{oid}-r", qty=200)
                log.info("order %s acked", oid)
                log.info("order %s working", oid, extra={"symbol": "AAPL"})
                o.fill(100, 189.52)
                log.info("order %s filled %s @ %s", oid, 100, 189.52)
                o.fill(100, 189.53)
                log.info("order %s filled %s @ %s", oid, 100, 189.53)
        return time.thread_time() - c

    def run() -> dict[str, float]:
        calls = orders(True)
        worker = process()
        orders(False)
        plain = process()
        return {"calls": calls / lines * 1e6, "worker": worker / lines * 1e6, "worker, no ids": plain / lines * 1e6}

    run()  # warm-up: lazy imports, first binds
    print(json.dumps(run()), flush=True)
    tradeobs_agent.shutdown(5.0)


def threading_ident() -> int:
    import threading

    return threading.get_ident()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", default="65f8333", help="the git revision measured in the same rounds")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--lines", type=int, default=4000, help="log lines per round (4 per order)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.lines)
        return
    sys.path.insert(0, str(HERE))
    from _trees import before_and_now

    res = before_and_now(str(Path(__file__).resolve()), args.against, args.rounds, ["--lines", str(args.lines)])
    print(f"{args.rounds} rounds of {args.lines} lines each, versions alternating; Python {sys.version.split()[0]}")
    print("us of CPU per log line, median over rounds (range):\n")
    print(f"| phase | this tree | {args.against} | ratio |")
    print("|---|---:|---:|---:|")
    for ph in PHASES:
        now = [r[ph] for r in res["now"]]
        before = [r[ph] for r in res["before"]]
        m_now, m_before = statistics.median(now), statistics.median(before)
        print(
            f"| {ph} | {m_now:.2f} ({min(now):.2f} .. {max(now):.2f}) | {m_before:.2f} ({min(before):.2f} .. "
            f"{max(before):.2f}) | {m_now / m_before:.3f} |"
        )


if __name__ == "__main__":
    main()
