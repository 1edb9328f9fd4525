"""Does publishing the live view to NATS slow the trading loop? The demo loop with the agent fully on, without and
with ``live_nats_url``, paired rounds.

    python benchmarks/nats_publish.py [--rounds 5] [--seconds 10] [--symbols 10] [--tick-hz 1000] [--order-hz 100]

The workload and the measurement are ``benchmarks/overhead.py``'s ``--loop demo`` (the demo's ``TradingEngine`` on
an asyncio loop; OTLP to a real local collector, the Prometheus endpoint scraped every 5 s by this process; the
event loop's lag p99 from a 5 ms monitor task, ``step()`` latency, process CPU and the loop thread's share). Modes,
each in a fresh interpreter, all of a round at the same time so they see the same machine:

- ``agent fully on``: as in overhead.py (no live stream);
- ``fully on + NATS``: the same, and the live publisher on (frames at 10 Hz and every event to a real nats-server
  with JetStream, from its own thread).

The effect is the median over rounds of the per-round difference, with its range, and of the per-round ratio (on / off).
Results: docs/scaling.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import overhead
from _ports import free_port

MODES = ("agent fully on", "fully on + NATS")


def _child(args: argparse.Namespace) -> None:
    """One mode: overhead.run_demo's 'agent fully on', with the live publisher on when --nats is given."""
    if args.nats:
        base = overhead._start_agent

        def with_nats(otlp: str | None, prom_port: int, **options: Any) -> tuple[Any, Any]:
            import tradeobs_agent

            real_init = tradeobs_agent.init

            def init(**kw: Any) -> Any:
                kw["live"] = tradeobs_agent.LiveOptions(nats_url=args.nats)  # overhead.py passes live=False
                return real_init(**kw)

            tradeobs_agent.init = init  # type: ignore[assignment]
            try:
                agent, cleanup = base(otlp, prom_port, **options)  # export=, service=: as overhead.py passes them
            finally:
                tradeobs_agent.init = real_init  # type: ignore[assignment]
            assert agent.nats is not None
            return agent, cleanup

        overhead._start_agent = with_nats
    res = overhead.run_demo(
        "agent fully on", args.seconds, args.symbols, args.tick_hz, args.order_hz, args.otlp, args.prom_port, args.seed
    )
    print(json.dumps(res))


def _nats_binary() -> str:
    cached = Path(os.environ.get("TRADEOBS_CACHE", Path.home() / ".cache" / "tradeobs")) / "bin" / "nats-server"
    found = str(cached) if cached.exists() else shutil.which("nats-server")
    if not found:
        sys.exit("nats-server not found: run scripts/install.d/40-nats.sh (scripts/build-nats.sh)")
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="paired rounds (default: %(default)s)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per mode (default: %(default)s)")
    ap.add_argument("--symbols", type=int, default=10, help="demo symbols (default: %(default)s)")
    ap.add_argument("--tick-hz", type=int, default=1000, help="ticks per second, all symbols (default: %(default)s)")
    ap.add_argument("--order-hz", type=int, default=100, help="orders per second (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=7, help="the demo's seed (default: %(default)s)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--nats", default="", help=argparse.SUPPRESS)
    ap.add_argument("--otlp", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--prom-port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return 0
    with tempfile.TemporaryDirectory() as work:
        os.environ["BENCH_LOGS"] = work  # the children's log directories (overhead._start_agent), removed with it
        col = overhead.start_collector(work)
        if col is None:
            sys.exit("otelcol-tradeobs not found: run scripts/install.d/30-collector.sh")
        port = free_port()
        nats = subprocess.Popen(
            [_nats_binary(), "-js", "-sd", f"{work}/js", "-a", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"nats://127.0.0.1:{port}"
        results: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
        try:
            time.sleep(1.0)
            for r in range(args.rounds):
                print(f"... round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
                ports = {m: free_port() for m in MODES}
                cmds = []
                for m in MODES:
                    cmd = [sys.executable, __file__, "--child", "--otlp", col[1], "--prom-port", str(ports[m])]
                    cmd += ["--seconds", str(args.seconds), "--symbols", str(args.symbols), "--seed", str(args.seed)]
                    cmd += ["--tick-hz", str(args.tick_hz), "--order-hz", str(args.order_hz)]
                    cmds.append(cmd + (["--nats", url] if m.endswith("NATS") else []))
                with overhead._Scraper(list(ports.values()), 5.0):
                    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, text=True) for c in cmds]
                    try:
                        outs = [p.communicate()[0] for p in procs]
                    finally:  # cut short (Ctrl-C): no child goes on alone
                        for p in procs:
                            if p.poll() is None:
                                p.kill()
                                p.wait()
                if any(p.returncode for p in procs):
                    raise SystemExit("a benchmark child failed")
                for m, out in zip(MODES, outs, strict=True):
                    results[m].append(json.loads(out.strip().splitlines()[-1]))
        finally:
            col[0].terminate()
            col[0].wait(10)
            nats.terminate()
            nats.wait(10)
    _print(results, args)
    return 0


def _print(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    print(
        f"\nDemo loop ({args.symbols} symbols, {args.tick_hz} ticks/s, {args.order_hz} orders/s), agent fully on "
        f"(OTLP to a local collector, Prometheus scraped every 5 s), {args.rounds} paired rounds of "
        f"{args.seconds:g} s, on this machine ({os.cpu_count()} CPUs); medians over rounds"
    )
    keys = [
        ("loop lag p99 us", "lag_p99_us"),
        ("step p99 us", "p99_us"),
        ("CPU % of a core", "cpu_pct"),
        ("on the loop thread %", "loop_cpu_pct"),
    ]
    print("| mode | " + " | ".join(k for k, _ in keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for m in MODES:
        rs = results[m]
        print(f"| {m} | " + " | ".join(f"{statistics.median(r[key] for r in rs):.1f}" for _, key in keys) + " |")
    a, b = results[MODES[0]], results[MODES[1]]
    for label, key in keys:
        d = sorted(y[key] - x[key] for x, y in zip(a, b, strict=True))
        q = sorted(y[key] / x[key] if x[key] else float("nan") for x, y in zip(a, b, strict=True))
        print(
            f"NATS on - off, {label}: median {statistics.median(d):+.1f} (rounds {d[0]:+.1f} .. {d[-1]:+.1f}); "
            f"on / off: median {statistics.median(q):.2f}x (rounds {q[0]:.2f}x .. {q[-1]:.2f}x)"
        )


if __name__ == "__main__":
    sys.exit(main())
