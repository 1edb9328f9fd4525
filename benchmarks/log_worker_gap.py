"""The log worker's CPU per line inside the demo's run against the same work in a tight loop, measured together.

    python benchmarks/log_worker_gap.py [--seconds 10] [--rounds 3]

``docs/performance.md`` quoted ~100 us of CPU per line for the log worker inside ``overhead.py``'s demo run and
~22 us in a tight loop: this puts both side by side, in paired rounds (the children of a round run at the same time,
so they see the same machine), each in its own interpreter with the agent fully on (OTLP/gRPC to a local
``otelcol-tradeobs`` when it is in ``~/.cache/tradeobs/bin``, JSON files):

- ``demo run``: ``overhead.py``'s demo workload (``run_demo("agent fully on")``: ~250 INFO lines/s, most inside an
  order); the ``tradeobs-logs`` thread's CPU (``time.thread_time``, its whole life) per line, with the part spent
  applying the trading journal (a line inside an order needs its order's span first: the applier's work done
  earlier, not the worker's own) apart, and the worker's wake-ups, batch sizes, GIL offers and looks counted.
- ``tight loop, each line once``: ``apply_cost.py``'s order shape (three demo lines an order), batches of 20
  orders, the journal applied first, then the batch's lines through the worker's ``_process`` once, on a
  background thread while the main thread waits in a selector (as the demo's event loop waits).
- ``tight loop, hot``: the same lines built, serialized and encoded again 30 times (``RecordBuilder.build``,
  ``dumps``, ``otel_attributes``, ``OtlpSink._encoded``: no file write, no export queue), what
  ``logging_hotpath.py``'s worker figure measures (lines it has just seen).

Figures: medians over rounds, with the range.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def demo_child(seconds: float, otlp: str | None) -> dict[str, Any]:
    import overhead

    from tradeobs_agent._internal import gil
    from tradeobs_agent.logs import pipeline as P
    from tradeobs_agent.trading import telemetry as T

    tt = time.thread_time
    acc = {"lines": 0, "batches": 0, "wakes": 0, "thread": 0.0, "journal": 0.0, "process": 0.0, "looks": 0, "offers": 0}

    def on_worker() -> bool:
        return threading.current_thread().name == "tradeobs-logs"

    apply_bg = T.TradingTelemetry.apply_pending_background

    def apply_pending_background(self: Any) -> None:
        if not on_worker():
            apply_bg(self)
            return
        t = tt()
        apply_bg(self)
        acc["journal"] += tt() - t

    process = P.LogPipeline._process

    def _process(self: Any, batch: list[Any]) -> None:
        acc["lines"] += len(batch)
        acc["batches"] += 1
        t = tt()
        process(self, batch)
        acc["process"] += tt() - t

    run = P.LogPipeline._run

    def _run(self: Any) -> None:
        wait = self._wake.wait

        def counted(timeout: float | None = None) -> bool:
            acc["wakes"] += 1
            return wait(timeout)

        self._wake.wait = counted
        t = tt()
        run(self)
        acc["thread"] += tt() - t

    idle, sleep = gil.loop_idle, gil._sleep

    def loop_idle() -> bool:
        acc["looks"] += on_worker()
        return idle()

    def _sleep(s: float) -> None:
        acc["offers"] += on_worker()
        sleep(s)

    T.TradingTelemetry.apply_pending_background = apply_pending_background  # type: ignore[method-assign]
    P.LogPipeline._process = _process  # type: ignore[method-assign]
    P.LogPipeline._run = _run  # type: ignore[method-assign]
    gil.loop_idle, gil._sleep = loop_idle, _sleep
    overhead.run_demo("agent fully on", seconds, 10, 1000, 100, otlp, 0, 7)
    n = acc["lines"]
    own = acc["thread"] - acc["journal"]
    return {
        "us_line": own / n * 1e6,
        "journal_us_line": acc["journal"] / n * 1e6,
        "lines_per_wake": n / max(1, acc["batches"]),
        "outside_us_wake": (acc["thread"] - acc["process"]) / max(1, acc["wakes"]) * 1e6,
        "looks_per_line": acc["looks"] / n,
        "offers_per_line": acc["offers"] / n,
    }


def tight_child(otlp: str | None, orders: int = 400, batch: int = 20, hot_reps: int = 30) -> dict[str, Any]:
    import contextlib
    import selectors

    import apply_cost

    import tradeobs_agent
    from tradeobs_agent import LogOptions, OtlpOptions, PrometheusOptions
    from tradeobs_agent._text import right_sized
    from tradeobs_agent.logs._format import dumps
    from tradeobs_agent.logs._sinks import otel_attributes
    from tradeobs_agent.trading import TradingTelemetry
    from tradeobs_agent.trading._journal import get_journal

    logdir = tempfile.mkdtemp(prefix="tradeobs-bench-gap-")
    otlp_opts = OtlpOptions(endpoint=f"http://{otlp}", protocol="grpc", insecure=True) if otlp else None
    agent = tradeobs_agent.init(
        service_name="bench-gap",
        otlp=otlp_opts,
        prometheus=PrometheusOptions(host="127.0.0.1", port=0),
        logs=LogOptions(dir=logdir, console=False),
        live=False,
    )
    tel = TradingTelemetry(strategy="momentum", venue="paper")
    journal = get_journal()
    journal.stop()
    pipe = agent.logs
    pipe._abandon = True  # the worker stops: the background thread below does its work
    pipe._wake.set()
    pipe._thread.join(5)
    dq = pipe.queue.dq
    rng = random.Random(7)
    state: dict[str, Any] = {}
    spent = {"once": 0.0, "hot": 0.0, "lines": 0}
    todo = threading.Semaphore(0)
    r_done, w_done = os.pipe()
    sel = selectors.DefaultSelector()
    sel.register(r_done, selectors.EVENT_READ)
    measuring = [False]

    def background() -> None:
        me = threading.get_ident()
        while True:
            todo.acquire()
            journal.flush_chunked()
            lines = []
            with contextlib.suppress(IndexError):
                while True:
                    lines.append(dq.popleft())
            pipe.queue.worker_ident = me
            c = time.thread_time()
            pipe._process(lines)
            once = time.thread_time() - c
            c = time.thread_time()
            b, sink = pipe.builder, pipe.otlp
            for _ in range(hot_reps):
                for e in lines:
                    built = b.build(e)
                    right_sized(dumps(built.fields))
                    attrs = otel_attributes(built.fields)
                    if sink is not None:
                        sink._encoded(built, attrs)
            hot = (time.thread_time() - c) / hot_reps
            pipe.queue.worker_ident = None
            if measuring[0]:
                spent["once"] += once
                spent["hot"] += hot
                spent["lines"] += len(lines)
            os.write(w_done, b"x")

    threading.Thread(target=background, name="bench-background", daemon=True).start()
    for i in range(orders // batch + 2):
        measuring[0] = i >= 2  # two batches of warm-up
        apply_cost.workload(tel, batch, rng, state)
        todo.release()
        sel.select()
        os.read(r_done, 1)
    tradeobs_agent.shutdown(5.0)
    n = spent["lines"]
    return {"once_us_line": spent["once"] / n * 1e6, "hot_us_line": spent["hot"] / n * 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", choices=("demo", "tight"), help=argparse.SUPPRESS)
    ap.add_argument("--otlp", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        res = demo_child(args.seconds, args.otlp or None) if args.child == "demo" else tight_child(args.otlp or None)
        print(json.dumps(res))
        return
    import overhead

    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as work:
        os.environ["BENCH_LOGS"] = work
        col = overhead.start_collector(work)
        otlp = col[1] if col else ""
        try:
            for _ in range(args.rounds):
                cmd = [sys.executable, __file__, "--otlp", otlp, "--seconds", str(args.seconds), "--child"]
                procs = [subprocess.Popen([*cmd, c], stdout=subprocess.PIPE, text=True) for c in ("demo", "tight")]
                outs = [p.communicate(timeout=args.seconds + 120)[0] for p in procs]
                if any(p.returncode for p in procs):
                    raise SystemExit(f"a child failed: {[p.returncode for p in procs]}")
                demo, tight = (json.loads(o.strip().splitlines()[-1]) for o in outs)
                for k, v in {**demo, **tight}.items():
                    rows.setdefault(k, []).append(v)
                rows.setdefault("ratio_once", []).append(demo["us_line"] / tight["once_us_line"])
                rows.setdefault("ratio_hot", []).append(demo["us_line"] / tight["hot_us_line"])
        finally:
            if col:
                col[0].terminate()
                col[0].wait(10)

    def cell(k: str, fmt: str = "{:.1f}") -> str:
        v = rows[k]
        return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))} .. {fmt.format(max(v))})"

    where = "to a local collector" if otlp else "off"
    print(f"{args.rounds} paired rounds, demo run {args.seconds:.0f} s; OTLP {where}")
    print("| the log worker, us of CPU per line | median (range) |\n|---|---:|")
    print(f"| demo run, the worker's own work (the journal it applies for the applier apart) | {cell('us_line')} |")
    print(f"| demo run, the journal applied on the worker | {cell('journal_us_line')} |")
    print(f"| tight loop, each line once (apply_cost.py's shape) | {cell('once_us_line')} |")
    print(f"| tight loop, the same lines again (hot) | {cell('hot_us_line')} |")
    print(f"| ratio demo run / tight loop once | {cell('ratio_once', '{:.2f}')}x |")
    print(f"| ratio demo run / tight loop hot | {cell('ratio_hot', '{:.2f}')}x |")
    print("\n| demo run, per wake-up of the worker | median (range) |\n|---|---:|")
    print(f"| lines per wake-up | {cell('lines_per_wake')} |")
    print(f"| us of CPU per wake-up outside the batch (wait, checks) | {cell('outside_us_wake', '{:.0f}')} |")
    print(f"| GIL looks (gil.loop_idle) per line | {cell('looks_per_line', '{:.2f}')} |")
    print(f"| GIL offers (sleeps) per line | {cell('offers_per_line', '{:.3f}')} |")


if __name__ == "__main__":
    main()
