"""Scrapes beside a trading thread that never waits: how long a scrape takes, and what the trading thread keeps.

    python benchmarks/busy_loop.py [--symbols 1000] [--scrapes 8] [--gap 0.5]

A trading loop that always has work (a backtest, a strategy busy on the CPU) never blocks, so it holds
the GIL but for the interpreter's forced switches. tradeobs' background readers (the Prometheus endpoint,
the metric export, the log worker) cut their work into slices of 0.1 ms and offer the GIL between them
(``tradeobs_agent/_internal/gil.py``); a thread that never waits takes every offer and keeps the GIL for a
whole switch interval (5 ms), so without a rule for it a scrape got one slice in every 5 ms.

Each mode runs in a fresh interpreter whose main thread is the trading thread: it spins on pure Python work
(counted) for the whole run, or, in the ``idle`` rows, sleeps. Another process (a ``urllib`` GET, timed in
that process, as Prometheus would be another process) scrapes its endpoint ``--scrapes`` times, ``--gap``
seconds apart. Modes:

- ``tradeobs``: this checkout, ``init()`` with the Prometheus endpoint (no OTLP, no log files), and the
  demo's series for ``--symbols`` symbols (``TradingTelemetry.tick``, ``position``, ``pnl``);
- ``tradeobs, no busy rule``: the same with ``gil.BUSY_HOLD = 0``, so every offer is made (the code before
  the rule);
- ``prometheus_client``: the peer, per symbol a price and a position gauge, a P&L gauge per kind, a tick
  counter and a tick-latency histogram (its default buckets) in prometheus_client's registry, served by its
  ``start_http_server`` thread.

Reported: the scrape's wall time (median and worst, as Prometheus sees it; its default scrape timeout is
10 s), the exposition's size and series; for a busy trading thread, its work rate while a scrape runs as a
share of its rate in the ``--gap`` before it (same process), and its pauses while scrapes run (the time
between two of its units of work, ~50 us each: how long it waited for the GIL at once), p99 and worst. Last, each
mode's scrape median over prometheus_client's with the trading thread in the same state.
Machines are noisy: compare the rows of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

from _ports import free_port

MODES = ("tradeobs", "tradeobs, no busy rule", "prometheus_client")
# The scraper: another process, as Prometheus is; it times its own GET (not its start-up) and prints the
# seconds, the bytes and the series (lines that are not comments).
_SCRAPE = """
import sys, time, urllib.request
t = time.perf_counter()
body = urllib.request.urlopen(sys.argv[1], timeout=120).read()
took = time.perf_counter() - t
print(took, len(body), sum(1 for ln in body.splitlines() if ln[:1] not in b"#"))
"""


def _tradeobs(symbols: int, port: int, busy_rule: bool) -> None:
    os.environ["TRADEOBS_PROMETHEUS_PORT"] = str(port)
    import tradeobs_agent
    from tradeobs_agent._internal import gil

    if not busy_rule:
        gil.BUSY_HOLD = 0.0
    tradeobs_agent.init(service_name="busy-loop", otlp=False, logs=False)
    tt = tradeobs_agent.TradingTelemetry(strategy="s", venue="v")
    now = time.time()
    for i in range(symbols):
        s = f"S{i:04d}"
        tt.tick(s, 100.0 + i, exchange_ts=now - 0.0005)
        tt.position(s, 1.0, 100.0 + i, 99.0)
        tt.pnl(s, 1.0, 2.0)


def _prometheus_client(symbols: int, port: int) -> None:
    import prometheus_client as pc

    price = pc.Gauge("trading_marketdata_price", "last price", ["symbol"])
    ticks = pc.Counter("trading_marketdata_ticks", "ticks", ["symbol"])
    latency = pc.Histogram("trading_marketdata_latency_seconds", "exchange to receipt", ["symbol"])
    position = pc.Gauge("trading_position_qty", "position", ["symbol"])
    pnl = pc.Gauge("trading_pnl", "P&L", ["symbol", "kind"])
    for i in range(symbols):
        s = f"S{i:04d}"
        price.labels(s).set(100.0 + i)
        ticks.labels(s).inc()
        latency.labels(s).observe(0.0005)
        position.labels(s).set(1.0)
        pnl.labels(s, "realized").set(1.0)
        pnl.labels(s, "unrealized").set(2.0)
    pc.start_http_server(port, addr="127.0.0.1")


def child(mode: str, symbols: int, scrapes: int, gap: float, busy: bool) -> dict[str, Any]:
    port = free_port()
    if mode == "prometheus_client":
        _prometheus_client(symbols, port)
    else:
        _tradeobs(symbols, port, busy_rule=mode == "tradeobs")
    url = f"http://127.0.0.1:{port}/metrics"
    done = threading.Event()
    got: list[tuple[float, int, int]] = []
    work = [0]  # the trading thread's units of work, read by the scraper at each scrape's start and end
    scraping = [False]
    during = {"work": 0, "seconds": 0.0}
    between = {"work": 0, "seconds": 0.0}

    def scraper() -> None:
        time.sleep(0.5)  # settle
        for _ in range(scrapes):
            w0, t0 = work[0], time.perf_counter()
            time.sleep(gap)  # the trading thread alone
            w1, t1 = work[0], time.perf_counter()
            between["work"] += w1 - w0
            between["seconds"] += t1 - t0
            scraping[0] = True
            out = subprocess.run([sys.executable, "-c", _SCRAPE, url], capture_output=True, check=True, text=True)
            scraping[0] = False
            w2, t2 = work[0], time.perf_counter()
            during["work"] += w2 - w1
            during["seconds"] += t2 - t1
            took, size, series = out.stdout.split()
            got.append((float(took), int(size), int(series)))
        done.set()

    th = threading.Thread(target=scraper, daemon=True)
    th.start()
    pauses: list[float] = []
    perf = time.perf_counter
    last = perf()
    while not done.is_set():
        if busy:
            x = 0.0
            for i in range(2_000):  # pure Python work that holds the GIL
                x += i * 0.5
        else:
            time.sleep(0.001)
        work[0] += 1
        now = perf()
        if scraping[0]:
            pauses.append(now - last)
        last = now
    times = [g[0] for g in got]
    pauses.sort()
    rate_during = during["work"] / during["seconds"]
    rate_between = between["work"] / between["seconds"]
    return {
        "median_s": statistics.median(times),
        "max_s": max(times),
        "bytes": got[-1][1],
        "series": got[-1][2],
        "kept": rate_during / rate_between if busy else None,
        "pause_p99_ms": pauses[int(len(pauses) * 0.99)] * 1e3 if busy and pauses else None,
        "pause_max_ms": pauses[-1] * 1e3 if busy and pauses else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=1000)
    ap.add_argument("--scrapes", type=int, default=8)
    ap.add_argument("--gap", type=float, default=0.5, help="seconds between two scrapes")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--idle", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.symbols, args.scrapes, args.gap, busy=not args.idle)))
        return
    print(
        f"# scrapes beside a trading thread that never waits: {args.symbols} symbols, {args.scrapes} scrapes "
        f"{args.gap:g} s apart; python {sys.version.split()[0]}"
    )
    print(
        "| mode | trading thread | scrape median s | scrape worst s | vs idle | bytes | series "
        "| trading work kept | trading pause p99 ms | worst ms |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    idle: dict[str, float] = {}
    scrape: dict[tuple[str, bool], float] = {}  # (mode, busy) -> scrape median, for the ratio to the peer
    for mode in MODES:
        for busy in (False, True):
            if not busy and mode == "tradeobs, no busy rule":
                continue  # the rule only acts on a busy thread: its idle row is tradeobs'
            cmd = [sys.executable, __file__, "--child", mode, "--symbols", str(args.symbols)]
            cmd += ["--scrapes", str(args.scrapes), "--gap", str(args.gap)] + ([] if busy else ["--idle"])
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800).stdout
            r = json.loads(out.strip().splitlines()[-1])
            base = idle.setdefault(mode.split(",")[0], r["median_s"])
            scrape[mode, busy] = r["median_s"]
            kept = f"{r['kept']:.0%}" if r["kept"] is not None else "-"
            p99 = f"{r['pause_p99_ms']:.2f}" if r["pause_p99_ms"] is not None else "-"
            worst = f"{r['pause_max_ms']:.1f}" if r["pause_max_ms"] is not None else "-"
            print(
                f"| {mode} | {'busy' if busy else 'idle'} | {r['median_s']:.3f} | {r['max_s']:.3f} | "
                f"{r['median_s'] / base:.1f}x | {r['bytes']:,} | {r['series']:,} | {kept} | {p99} | {worst} |",
                flush=True,
            )
    peer = "prometheus_client"
    ratios = [
        f"{mode} {'busy' if busy else 'idle'} {t / scrape[peer, busy]:.2f}x"
        for (mode, busy), t in scrape.items()
        if mode != peer and scrape.get((peer, busy))
    ]
    print(f"Scrape median vs {peer} (same trading thread): " + "; ".join(ratios))


if __name__ == "__main__":
    main()
