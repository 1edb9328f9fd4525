"""CPU per demo order on one thread: the trading calls, the journal's apply, the log worker's lines; A/B vs a git ref.

    python benchmarks/apply_cost.py [--orders 200] [--batch 20] [--rounds 15] [--against REF] [--peer] [--profile FILE]

A fixed, deterministic workload of the demo's shape (``tradeobs_agent.demo``: 10 symbols, one market-data step
of 10 ticks per order, 100 orders/s, positions/P&L/limits published every 10 orders): each order is signal,
risk check (the demo's ``RiskManager`` checks), submit, ack, two fills (six spans), with the demo's three INFO
lines (the signal, two fills) logged inside it, through the demo's own loggers and ``correlate()``.

Each version runs in its own interpreter with the agent fully on (``init()``: OTLP/gRPC for the three signals to
a real local collector, ``otelcol-tradeobs`` from ``~/.cache/tradeobs/bin``, else to a closed port; JSON log
files; the Prometheus endpoint), its journal's applier thread and its log worker stopped, so the benchmark's threads
do all the work, measured with ``time.thread_time`` (CPU, not wall: meaningful on a busy machine): the trading calls on
the main thread, the batch's apply and lines on a background thread (with its GIL offers between slices, the main
thread waiting in a selector meanwhile as the demo's event loop waits between steps):

- ``record``: the trading calls and the log calls on the trading thread (what ``TradingTelemetry`` does at the call)
- ``apply``: ``Journal.flush_chunked()`` of the batch's entries (series, spans encoded to OTLP, exemplars, ...)
- ``logs``: the log worker's ``_process`` of the batch's lines (JSON files, OTLP log records)

A batch is ``--batch`` orders (20: what the applier and the log worker find at each 0.2 s wake-up at 100 orders/s;
in larger batches the SDK's batch processors' queues pass their export size and each put wakes the export thread).
Rounds of ``--orders`` orders in each of ``--procs`` interpreters per version (a round's figure is their mean: two
interpreters of the same code differ by several percent, each its own memory layout); the versions take turns
(``--against REF``: a ``git worktree`` of REF, removed after), so both see the same machine. Figures are medians
over rounds of microseconds per order, with the range. The export threads (joining already-encoded bytes, gRPC)
are not counted, for either version. Same code against itself (``--against HEAD``), 9 rounds: within 3 %.

``--peer``: the same workload through the raw OpenTelemetry SDK by hand (``benchmarks/_raw_otel.py``, what
``overhead.py`` compares with), where everything happens in the calls (its span and log export threads, which
encode, are not counted either, so its figure is a lower bound).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PHASES = ("record", "apply", "logs")


def workload(tt: Any, steps: int, rng: random.Random, state: dict[str, Any]) -> None:
    """``steps`` market-data steps of the demo, one order each, with its ticks, log lines and state updates; an
    order's ack and fills come 1, 2 and 3 steps later, in the next call for the last ones (deterministic for a seed)."""
    from tradeobs_agent.demo import engine as demo
    from tradeobs_agent.demo.risk import RiskLimits, RiskManager
    from tradeobs_agent.logs import correlate

    syms = state.setdefault("symbols", [f"SYM{i:02d}" for i in range(10)])
    marks = state.setdefault("marks", {s: 100.0 + i for i, s in enumerate(syms)})
    pos = state.setdefault("pos", dict.fromkeys(syms, 0.0))
    risk = state.setdefault("risk", RiskManager(RiskLimits()))
    pending: dict[int, list[tuple[str, str, str, str, float, float]]] = state.setdefault("pending", {})
    first = state.get("step", 0)
    seq = state.get("seq", 0)
    for i in range(first, first + steps):
        for s in syms:  # one market-data step
            marks[s] *= 1 + rng.uniform(-1e-4, 1e-4)
            tt.tick(s, marks[s], time.time() - 0.0005)
        for kind, oid, sym, side, qty, expected in pending.pop(i, ()):
            order = tt.order(oid)
            with order.scope(), correlate(symbol=sym):
                if kind == "ack":
                    order.acked(f"V{oid}")
                else:
                    px = marks[sym] * (1.0001 if side == "buy" else 0.9999)
                    order.fill(qty, px, expected_price=expected)
                    pos[sym] += qty if side == "buy" else -qty
                    demo._xlog.info(
                        "order %s filled %s %s @ %.4f", oid, qty, sym, px, extra={"symbol": sym, "side": side}
                    )
        t0 = time.perf_counter()
        sym = rng.choice(syms)
        side = rng.choice(("buy", "sell"))
        qty = float(rng.choice((10, 20, 50, 100)))
        tt.decision_time(time.perf_counter() - t0, sym)
        seq += 1
        oid = f"demo-{seq}"
        mark = marks[sym]
        order = tt.order_signal(oid, sym, side, qty, mark, order_type="market")
        result = risk.check(side, qty, pos[sym], 1_000_000.0, mark)
        order.risk_check(result.passed, result.reason, result.checks)
        with correlate(order_id=oid):
            demo._slog.info("signal %s %s %s @ %.2f", side, qty, sym, mark, extra={"symbol": sym})
            order.submitted()
        pending.setdefault(i + 1, []).append(("ack", oid, sym, side, qty, mark))
        pending.setdefault(i + 2, []).append(("fill", oid, sym, side, qty / 2, mark))
        pending.setdefault(i + 3, []).append(("fill", oid, sym, side, qty / 2, mark))
        if seq % 10 == 0:  # the demo's state publisher: 10 Hz at 100 orders/s
            for s in syms:
                tt.position(s, pos[s], marks[s], marks[s])
                tt.pnl(s, 0.0, pos[s] * 0.01)
            tt.account(1_000_000.0, 0.01)
            for name in ("position", "gross_notional", "drawdown"):
                tt.limit_utilization(name, 0.1)
    state["seq"] = seq
    state["step"] = first + steps


def child(mode: str, otlp: str, orders: int, batch: int, profile: str | None) -> None:
    """Rounds on demand: reads a line, runs a round, writes its JSON line (``{phase: seconds}``)."""
    import logging

    sys.path.insert(0, str(HERE))
    logdir = tempfile.mkdtemp(prefix="tradeobs-bench-apply-")
    rng = random.Random(7)
    state: dict[str, Any] = {}
    prof = None
    if mode == "peer":
        import _raw_otel

        tt = _raw_otel.start(otlp, 0, logdir)
        logging.getLogger("tradeobs").setLevel(logging.INFO)
        from tradeobs_agent.demo import engine as demo

        for lg in (demo._slog, demo._xlog):
            lg.setLevel(logging.INFO)

        def run() -> dict[str, float]:
            c = time.thread_time()
            for _ in range(orders // batch):
                workload(tt, batch, rng, state)
            return {"record": time.thread_time() - c, "apply": 0.0, "logs": 0.0}

    else:
        import tradeobs_agent
        from tradeobs_agent import LogOptions, OtlpOptions, PrometheusOptions
        from tradeobs_agent.trading import TradingTelemetry
        from tradeobs_agent.trading._journal import get_journal

        agent = tradeobs_agent.init(
            service_name="bench-apply",
            otlp=OtlpOptions(endpoint=f"http://{otlp}", protocol="grpc", insecure=True),
            prometheus=PrometheusOptions(host="127.0.0.1", port=0),
            logs=LogOptions(dir=logdir, console=False),
            live=False,
        )
        tt = TradingTelemetry(strategy="momentum", venue="paper")
        journal = get_journal()
        journal.stop()  # this thread applies
        pipe = agent.logs
        pipe._abandon = True  # the log worker stops; this thread processes the lines
        pipe._wake.set()
        pipe._thread.join(5)
        dq = pipe.queue.dq
        if profile:
            import cProfile

            prof = cProfile.Profile(time.thread_time)

        import selectors
        import threading

        # The applier and the log worker are background threads: the batch is applied on one (so the GIL offers
        # between slices run as they do there), while this thread, the trading thread, waits in a selector as the
        # demo's event loop does between steps.
        todo = threading.Semaphore(0)
        r_done, w_done = os.pipe()
        sel = selectors.DefaultSelector()
        sel.register(r_done, selectors.EVENT_READ)
        spent = dict.fromkeys(PHASES, 0.0)

        def background() -> None:
            me = threading.get_ident()
            while True:
                todo.acquire()
                if prof is not None:
                    prof.enable()
                c1 = time.thread_time()
                journal.flush_chunked()
                c2 = time.thread_time()
                pipe.queue.worker_ident = me
                while dq:
                    lines = []
                    with contextlib.suppress(IndexError):
                        for _ in range(256):
                            lines.append(dq.popleft())
                    pipe._process(lines)
                pipe.queue.worker_ident = None
                c3 = time.thread_time()
                if prof is not None:
                    prof.disable()
                spent["apply"] += c2 - c1
                spent["logs"] += c3 - c2
                os.write(w_done, b"x")

        threading.Thread(target=background, name="bench-background", daemon=True).start()

        def run() -> dict[str, float]:
            for k in spent:
                spent[k] = 0.0
            for _ in range(orders // batch):
                c0 = time.thread_time()
                workload(tt, batch, rng, state)
                spent["record"] += time.thread_time() - c0
                todo.release()
                sel.select()
                os.read(r_done, 1)
            return dict(spent)

    run()  # warm-up: lazy imports, first binds
    for line in sys.stdin:
        if line.strip() != "go":
            break
        print(json.dumps(run()), flush=True)
    if prof is not None and profile:
        prof.dump_stats(profile)
    if mode != "peer":
        tradeobs_agent.shutdown(5.0)
    shutil.rmtree(logdir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=200, help="orders per round")
    ap.add_argument(
        "--batch", type=int, default=20, help="orders applied at a time (20: the applier's 0.2 s at 100 orders/s)"
    )
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument(
        "--procs",
        type=int,
        default=3,
        help="interpreters per version, a round's figure their mean (one process's memory layout is not another's)",
    )
    ap.add_argument("--against", help="a git ref: its agent measured in the same rounds")
    ap.add_argument("--peer", action="store_true", help="the raw OTel SDK by hand, the same workload")
    ap.add_argument("--profile", help="cProfile of this tree's apply+logs phases to FILE (a .prof)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--otlp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.otlp, args.orders, args.batch, args.profile)
        return

    sys.path.insert(0, str(HERE))
    from _ports import free_port
    from overhead import start_collector

    work = tempfile.mkdtemp(prefix="tradeobs-bench-apply-")
    coll = start_collector(work)
    otlp = coll[1] if coll else f"127.0.0.1:{free_port()}"
    versions: list[tuple[str, str, Path]] = [("this tree", "agent", ROOT)]
    tree = None
    if args.against:
        tree = Path(work) / "against"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.against], check=True)
        versions.append((f"--against {args.against}", "agent", tree))
    if args.peer:
        versions.append(("raw OTel SDK (calls only)", "peer", ROOT))
    procs: list[list[subprocess.Popen[str]]] = [[] for _ in versions]  # --procs interpreters per version
    try:
        for i, (_, mode, root) in enumerate(versions):
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root / "agent"), str(HERE)]))
            for j in range(args.procs):
                cmd = [sys.executable, str(HERE / "apply_cost.py"), "--child", mode, "--otlp", otlp]
                cmd += ["--orders", str(args.orders), "--batch", str(args.batch)]
                if args.profile and i == 0 and j == 0:
                    cmd += ["--profile", args.profile]
                procs[i].append(
                    subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
                )
        results: list[list[dict[str, float]]] = [[] for _ in versions]
        for r in range(args.rounds):
            sums = [dict.fromkeys(PHASES, 0.0) for _ in versions]
            for j in range(args.procs):
                order = list(range(len(versions)))
                if (r + j) % 2:
                    order.reverse()
                for i in order:
                    p = procs[i][j]
                    assert p.stdin and p.stdout
                    p.stdin.write("go\n")
                    p.stdin.flush()
                    line = p.stdout.readline()
                    if not line:
                        raise SystemExit(f"{versions[i][0]}: the child ended")
                    for ph, v in json.loads(line).items():
                        sums[i][ph] += v / args.procs
                    time.sleep(0.2)  # the export threads drain
            for i in range(len(versions)):
                results[i].append(sums[i])
        for p in (p for ps in procs for p in ps):
            assert p.stdin
            p.stdin.write("stop\n")
            p.stdin.close()
        for p in (p for ps in procs for p in ps):
            p.wait(30)
    finally:
        for p in (p for ps in procs for p in ps):
            if p.poll() is None:
                p.kill()
        if coll:
            coll[0].terminate()
            coll[0].wait(10)
        if tree is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"{args.rounds} rounds of {args.orders} orders in batches of {args.batch} (10 ticks, 3 log lines each); "
        "OTLP to "
        f"{'a local collector' if coll else 'a closed port'}; Python {sys.version.split()[0]}"
    )
    print("us of CPU per order, median over rounds (range):\n")
    print("| version | " + " | ".join(PHASES) + " | total |")
    print("|---|" + "---:|" * (len(PHASES) + 1))
    for (name, _, _), rows in zip(versions, results, strict=True):
        cells = []
        for ph in (*PHASES, "total"):
            vals = [(sum(r.values()) if ph == "total" else r[ph]) / args.orders * 1e6 for r in rows]
            cells.append(f"{statistics.median(vals):.1f} ({min(vals):.1f} .. {max(vals):.1f})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.against:
        print(f"\nthis tree - {args.against}, per round (median, range):")
        for ph in (*PHASES, "total"):

            def cost(r: dict[str, float], ph: str = ph) -> float:
                return (sum(r.values()) if ph == "total" else r[ph]) / args.orders * 1e6

            diffs = [cost(a) - cost(b) for a, b in zip(results[0], results[1], strict=True)]
            d, base = statistics.median(diffs), statistics.median(cost(b) for b in results[1])
            print(f"- {ph}: {d:+.1f} us/order ({d / base * 100:+.1f} %; rounds {min(diffs):+.1f} .. {max(diffs):+.1f})")


if __name__ == "__main__":
    main()
