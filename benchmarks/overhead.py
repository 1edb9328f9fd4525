"""Whole-agent overhead on a paced trading loop: agent fully on vs off, same fixed workload.

    python benchmarks/overhead.py [--loop demo|synthetic] [--seconds 10] [--rounds 2] [--symbols 10]
                                  [--tick-hz 1000] [--order-hz 100] [--seed 7]

``--loop demo`` (issue 4's workload) runs the demo's own trading loop,
``tradeobs_agent.demo.TradingEngine``, on an asyncio event loop with
``DemoConfig(symbols=--symbols, tick_hz=--tick-hz / --symbols, orders_hz=--order-hz, seed=--seed)``:
every step ticks every symbol; orders go through the strategy, risk, the paper broker
(acks, partial fills, rejects, slippage, each a separate task) and the portfolio; positions,
P&L and equity are published at 10 Hz; the demo logs its lines (signals, fills, rejects).
Modes: ``baseline`` (the engine with a do-nothing telemetry object: the same trading and
logging calls, no telemetry work), ``instrumented, agent off`` (the engine's
``TradingTelemetry``, ``init()`` never called) and ``agent fully on`` (as below). Reported:
process CPU, the event loop thread's CPU, ``TradingEngine.step()`` latency p50/p99/p99.9 (a
step ticks every symbol and places the orders due) and the event loop's lag p99/p99.9 (a
monitor task sleeping 5 ms; lag = how late it woke).

``--loop synthetic`` (self-contained): ``--tick-hz`` ticks/s round-robin over ``--symbols``
symbols, each tick runs a small strategy (rolling mean over 50 prices) and reports
``tt.tick``, ``tt.decision_time``; ``--order-hz`` orders/s each go through
signal -> risk check -> submit on the tick that decides, ack one tick later, fill three
ticks later, then ``tt.position`` / ``tt.pnl`` / ``tt.account`` and one INFO log line.

Modes, each in a fresh interpreter, interleaved over ``--rounds`` rounds:
- ``baseline``: no telemetry calls at all (the same loop with the calls removed)
- ``instrumented, agent off``: ``TradingTelemetry`` calls, ``init()`` never called
- ``agent fully on``: ``init()`` with OTLP (gRPC) traces/metrics/logs to a real local
  collector (``otelcol-tradeobs`` from ``~/.cache/tradeobs/bin``, OTLP receiver -> debug
  exporter, a separate process, so its CPU is not counted), the Prometheus endpoint
  scraped every second by a thread in this process, JSON log files, always-on sampling.
  Without the collector binary, OTLP is replaced by in-memory batch exporters (said in the output).
- ``fully on, steps as events``: the same with ``TradingTelemetry(child_spans=False)`` (one span per
  order, the steps as span events).

Reported per mode: process CPU (``time.process_time``, all threads) as % of one core over
the run, the part of it spent on the trading loop's own thread (``time.thread_time``; the rest
is the agent's background threads: export, logs, scrapes), and per-iteration processing latency
(work only, not the pacing sleep) p50/p99/p99.9.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

MODES = ("baseline", "instrumented, agent off", "agent fully on", "fully on, steps as events")
DEMO_MODES = ("baseline", "instrumented, agent off", "agent fully on")
COLLECTOR = Path(os.environ.get("TRADEOBS_CACHE") or Path.home() / ".cache" / "tradeobs") / "bin" / "otelcol-tradeobs"


def run_loop(
    mode: str,
    seconds: float,
    symbols: int,
    tick_hz: int,
    order_hz: int,
    otlp: str | None,
    scrape: float = 5.0,
    fill_log: bool = True,
) -> dict[str, Any]:
    import logging

    import tradeobs_agent
    from tradeobs_agent import trading

    log = logging.getLogger("bench.orders")
    log.setLevel(logging.INFO)
    agent = None
    stop_scrape = None
    if mode.startswith(("agent fully on", "fully on")):
        agent, stop_scrape = _start_agent(otlp, scrape)
    instrumented = mode != "baseline"
    child_spans = mode != "fully on, steps as events"
    tt = trading.TradingTelemetry(strategy="bench", venue="sim", child_spans=child_spans) if instrumented else None

    syms = [f"SYM{i:02d}" for i in range(symbols)]
    prices = {s: 100.0 + i for i, s in enumerate(syms)}
    windows: dict[str, deque[float]] = {s: deque(maxlen=50) for s in syms}
    positions = dict.fromkeys(syms, 0.0)
    pending: dict[int, list[tuple[str, Any, str, float]]] = {}
    ticks_per_order = max(1, tick_hz // order_hz)
    warm = tick_hz  # one second of warm-up (lazy imports, first binds) is not measured
    n = int(seconds * tick_hz) + warm
    period = 1.0 / tick_hz
    lat = []
    rng_state = 12345
    order_no = 0

    cpu0 = th0 = 0.0
    t0 = tm = time.perf_counter()
    for i in range(n):
        if i == warm:
            cpu0, th0, tm = time.process_time(), time.thread_time(), time.perf_counter()
        deadline = t0 + i * period
        delay = deadline - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        w0 = time.perf_counter()
        # --- market data + strategy
        sym = syms[i % symbols]
        rng_state = (rng_state * 1103515245 + 12345) & 0x7FFFFFFF
        px = prices[sym] = prices[sym] * (1 + ((rng_state % 2001) - 1000) * 1e-6)
        win = windows[sym]
        win.append(px)
        d0 = time.perf_counter()
        mean = sum(win) / len(win)
        side = "buy" if px < mean else "sell"
        if tt is not None:
            tt.tick(sym, px, exchange_ts=time.time() - 0.0005)
            tt.decision_time(time.perf_counter() - d0, symbol=sym)
        # --- venue events due now
        for kind, o, s, qty in pending.pop(i, ()):
            if kind == "ack":
                if tt is not None:
                    o.acked(f"v-{s}")
            else:
                fill_px = prices[s] * (1.0001 if o_side(o) == "buy" else 0.9999)
                positions[s] += qty if o_side(o) == "buy" else -qty
                if tt is not None:
                    o.fill(qty, fill_px, expected_price=prices[s])
                    tt.position(s, positions[s], fill_px)
                    tt.pnl(s, realized=0.0, unrealized=positions[s] * (prices[s] - fill_px))
                    tt.account(equity=1_000_000.0 + sum(positions.values()))
                if fill_log:
                    log.info("filled %s %s %s @ %.4f", s, o_side(o), qty, fill_px)
        # --- maybe an order
        if i % ticks_per_order == 0:
            order_no += 1
            cid = f"c-{order_no}"
            qty = 10.0
            o: Any = (cid, side)
            if tt is not None:
                o = tt.order_signal(cid, sym, side, qty, price=px, order_type="limit")
                o.risk_check(passed=True)
                o.submitted()
            pending.setdefault(i + 1, []).append(("ack", o, sym, qty))
            pending.setdefault(i + 3, []).append(("fill", o, sym, qty))
        if i >= warm:
            lat.append(time.perf_counter() - w0)
    wall = time.perf_counter() - tm
    cpu = time.process_time() - cpu0
    loop_cpu = time.thread_time() - th0
    if stop_scrape is not None:
        stop_scrape()
    if agent is not None:
        tradeobs_agent.shutdown(5.0)
    lat.sort()
    return {
        "mode": mode,
        "cpu_pct": cpu / wall * 100,
        "loop_cpu_pct": loop_cpu / wall * 100,
        "wall": wall,
        "iters": n - warm,
        "orders": order_no,
        "p50_us": lat[len(lat) // 2] * 1e6,
        "p99_us": lat[int(len(lat) * 0.99)] * 1e6,
        "p999_us": lat[int(len(lat) * 0.999)] * 1e6,
        "mean_us": statistics.fmean(lat) * 1e6,
        "otlp": otlp or "in-memory",
    }


class _NullOrder:
    """The do-nothing order of the demo baseline."""

    trace_id = None

    def __getattr__(self, name: str) -> Any:
        return _noop


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


class _NullTelemetry:
    """Stands in for ``TradingTelemetry`` in the demo baseline: every call does nothing."""

    _order = _NullOrder()

    def order_signal(self, *args: Any, **kwargs: Any) -> Any:
        return self._order

    def order(self, *args: Any) -> Any:
        return self._order

    def __getattr__(self, name: str) -> Any:
        return _noop


def run_demo(
    mode: str,
    seconds: float,
    symbols: int,
    tick_hz: int,
    order_hz: int,
    otlp: str | None,
    scrape: float,
    seed: int,
) -> dict[str, Any]:
    import asyncio

    import tradeobs_agent
    from tradeobs_agent.demo import DemoConfig, TradingEngine

    agent = stop_scrape = None
    if mode == "agent fully on":
        agent, stop_scrape = _start_agent(otlp, scrape)
    cfg = DemoConfig(symbols=symbols, tick_hz=tick_hz / symbols, orders_hz=order_hz, seed=seed)
    engine = TradingEngine(cfg, telemetry=_NullTelemetry() if mode == "baseline" else None)  # type: ignore[arg-type]
    steps: list[float] = []
    lags: list[float] = []
    state = {"on": False}
    step = engine.step
    perf = time.perf_counter

    def timed_step() -> None:
        t = perf()
        step()
        if state["on"]:
            steps.append(perf() - t)

    engine.step = timed_step  # type: ignore[method-assign]

    async def lag_monitor(interval: float = 0.005) -> None:
        while True:
            t = perf()
            await asyncio.sleep(interval)
            if state["on"]:
                lags.append(max(0.0, perf() - t - interval))

    async def main() -> tuple[float, float, float, int, int]:
        engine.start()
        mon = asyncio.get_running_loop().create_task(lag_monitor())
        await asyncio.sleep(1.0)  # warm-up: lazy imports, first binds, first export
        ticks0, orders0 = engine.ticks, engine.orders
        state["on"] = True
        cpu0, th0, t0 = time.process_time(), time.thread_time(), perf()
        await asyncio.sleep(seconds)
        wall, cpu, loop_cpu = perf() - t0, time.process_time() - cpu0, time.thread_time() - th0
        state["on"] = False
        ticks, orders = engine.ticks - ticks0, engine.orders - orders0
        mon.cancel()
        await engine.stop()
        return wall, cpu, loop_cpu, ticks, orders

    wall, cpu, loop_cpu, ticks, orders = asyncio.run(main())
    if stop_scrape is not None:
        stop_scrape()
    if agent is not None:
        tradeobs_agent.shutdown(5.0)
    steps.sort()
    lags.sort()
    return {
        "mode": mode,
        "cpu_pct": cpu / wall * 100,
        "loop_cpu_pct": loop_cpu / wall * 100,
        "wall": wall,
        "iters": len(steps),
        "ticks_per_s": ticks / wall,
        "orders_per_s": orders / wall,
        "p50_us": _pct(steps, 0.5) * 1e6,
        "p99_us": _pct(steps, 0.99) * 1e6,
        "p999_us": _pct(steps, 0.999) * 1e6,
        "mean_us": statistics.fmean(steps) * 1e6,
        "lag_p99_us": _pct(lags, 0.99) * 1e6,
        "lag_p999_us": _pct(lags, 0.999) * 1e6,
        "otlp": otlp or "in-memory",
    }


def _pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))] if sorted_values else float("nan")


def o_side(o: Any) -> str:
    return o[1] if isinstance(o, tuple) else o.side  # type: ignore[no-any-return]


def _start_agent(otlp: str | None, scrape_interval: float) -> tuple[Any, Any]:
    import threading
    import urllib.request

    import tradeobs_agent
    from tradeobs_agent import LogOptions, OtlpOptions, PrometheusOptions

    extra: dict[str, Any] = {}
    if otlp is None:
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        extra = {"span_exporters": [InMemorySpanExporter()], "metric_readers": [InMemoryMetricReader()]}
    logdir = tempfile.mkdtemp(prefix="tradeobs-bench-logs-")
    agent = tradeobs_agent.init(
        service_name="bench-overhead",
        otlp=OtlpOptions(endpoint=f"http://{otlp}", protocol="grpc", insecure=True) if otlp else False,
        prometheus=PrometheusOptions(host="127.0.0.1", port=0),
        logs=LogOptions(dir=logdir, console=False),
        live=False,
        **extra,
    )
    url = agent.prometheus_url
    stop = threading.Event()

    def scrape() -> None:
        while not stop.wait(scrape_interval):
            try:
                urllib.request.urlopen(url, timeout=5).read()
            except Exception:
                pass

    t = threading.Thread(target=scrape, daemon=True)
    t.start()

    def stop_scrape() -> None:
        stop.set()
        t.join(5)
        shutil.rmtree(logdir, ignore_errors=True)

    return agent, stop_scrape


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_COLLECTOR_CONFIG = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
exporters:
  debug:
    verbosity: basic
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
  pipelines:
    traces: {{receivers: [otlp], exporters: [debug]}}
    metrics: {{receivers: [otlp], exporters: [debug]}}
    logs: {{receivers: [otlp], exporters: [debug]}}
"""


def start_collector(workdir: str) -> tuple[subprocess.Popen[bytes], str] | None:
    if not (COLLECTOR.exists() and os.access(COLLECTOR, os.X_OK)):
        return None
    import urllib.request

    grpc, health = _free_port(), _free_port()
    cfg = Path(workdir) / "collector.yaml"
    cfg.write_text(_COLLECTOR_CONFIG.format(grpc=grpc, health=health))
    proc = subprocess.Popen(
        [str(COLLECTOR), "--config", f"file:{cfg}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{health}/", timeout=1).read()
            return proc, f"127.0.0.1:{grpc}"
        except Exception:
            if proc.poll() is not None:
                return None
            time.sleep(0.1)
    proc.terminate()
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loop", choices=("demo", "synthetic"), default="demo", help="which trading loop to drive")
    ap.add_argument("--seed", type=int, default=7, help="the demo's seed (--loop demo)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--symbols", type=int, default=10)
    ap.add_argument("--tick-hz", type=int, default=1000)
    ap.add_argument("--order-hz", type=int, default=100)
    ap.add_argument("--scrape-interval", type=float, default=5.0, help="seconds between Prometheus scrapes")
    ap.add_argument("--no-fill-log", action="store_true", help="do not log one INFO line per fill")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--otlp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child and args.loop == "demo":
        res = run_demo(
            args.child,
            args.seconds,
            args.symbols,
            args.tick_hz,
            args.order_hz,
            args.otlp or None,
            args.scrape_interval,
            args.seed,
        )
        print(json.dumps(res))
        return
    if args.child:
        res = run_loop(
            args.child,
            args.seconds,
            args.symbols,
            args.tick_hz,
            args.order_hz,
            args.otlp or None,
            args.scrape_interval,
            not args.no_fill_log,
        )
        print(json.dumps(res))
        return

    with tempfile.TemporaryDirectory() as work:
        col = start_collector(work)
        otlp = col[1] if col else ""
        try:
            modes = DEMO_MODES if args.loop == "demo" else MODES
            results: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
            for _ in range(args.rounds):
                for mode in modes:
                    cmd = [sys.executable, __file__, "--child", mode, "--otlp", otlp, "--loop", args.loop]
                    cmd += ["--seed", str(args.seed)]
                    cmd += ["--seconds", str(args.seconds), "--symbols", str(args.symbols)]
                    cmd += ["--tick-hz", str(args.tick_hz), "--order-hz", str(args.order_hz)]
                    cmd += ["--scrape-interval", str(args.scrape_interval)]
                    cmd += ["--no-fill-log"] if args.no_fill_log else []
                    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                    results[mode].append(json.loads(out.strip().splitlines()[-1]))
        finally:
            if col:
                col[0].terminate()
                col[0].wait(10)
    _print(results, args, otlp)


def _print(results: dict[str, list[dict[str, Any]]], args: Any, otlp: str) -> None:
    if args.loop == "demo":
        _print_demo(results, args, otlp)
        return
    print(
        f"# overhead (synthetic loop): {args.symbols} symbols, {args.tick_hz} ticks/s, {args.order_hz} orders/s, "
        f"{args.seconds:g}s x {args.rounds} rounds per mode (median of rounds); python {sys.version.split()[0]}; "
        f"fill log lines: {'off' if args.no_fill_log else 'on'}"
    )
    target = f"a local otelcol-tradeobs at {otlp}" if otlp else "in-memory exporters"
    print(f"# agent fully on exports OTLP to: {target}")
    print(
        "| mode                      | CPU % of a core | vs baseline | loop thread | other threads "
        "| p50 us | p99 us | p99.9 us | mean us |"
    )
    print(
        "|---------------------------|-----------------|-------------|-------------|---------------"
        "|--------|--------|----------|---------|"
    )
    base_cpu = statistics.median(r["cpu_pct"] for r in results["baseline"])
    for mode in MODES:
        rs = results[mode]

        def med(key: str, rs: list[dict[str, Any]] = rs) -> float:
            return statistics.median(r[key] for r in rs)

        cpu = med("cpu_pct")
        loop = med("loop_cpu_pct")
        other = statistics.median(r["cpu_pct"] - r["loop_cpu_pct"] for r in rs)
        print(
            f"| {mode:<25} | {cpu:15.2f} | {cpu - base_cpu:+10.2f}pp | {loop:11.2f} | {other:13.2f} "
            f"| {med('p50_us'):6.1f} | {med('p99_us'):6.1f} | {med('p999_us'):8.1f} | {med('mean_us'):7.1f} |"
        )
    print("per-round CPU %:", {m: [round(r["cpu_pct"], 2) for r in results[m]] for m in MODES})
    print("per-round p99 us:", {m: [round(r["p99_us"], 1) for r in results[m]] for m in MODES})


def _print_demo(results: dict[str, list[dict[str, Any]]], args: Any, otlp: str) -> None:
    print(
        f"# overhead (the demo's TradingEngine): {args.symbols} symbols, {args.tick_hz} ticks/s "
        f"({args.tick_hz / args.symbols:g} steps/s), {args.order_hz} orders/s, seed {args.seed}, "
        f"{args.seconds:g}s x {args.rounds} rounds per mode (median of rounds); python {sys.version.split()[0]}"
    )
    target = f"a local otelcol-tradeobs at {otlp}" if otlp else "in-memory exporters"
    print(f"# agent fully on exports OTLP to: {target}")
    print(
        "| mode                    | CPU % of a core | vs baseline | vs agent off | loop thread | other threads "
        "| step p50 us | step p99 us | step p99.9 us | loop lag p99 us | ticks/s | orders/s |"
    )
    print(
        "|-------------------------|-----------------|-------------|--------------|-------------|---------------"
        "|-------------|-------------|---------------|-----------------|---------|----------|"
    )
    base_cpu = statistics.median(r["cpu_pct"] for r in results["baseline"])
    off_cpu = statistics.median(r["cpu_pct"] for r in results["instrumented, agent off"])
    for mode in DEMO_MODES:
        rs = results[mode]

        def med(key: str, rs: list[dict[str, Any]] = rs) -> float:
            return statistics.median(r[key] for r in rs)

        cpu = med("cpu_pct")
        other = statistics.median(r["cpu_pct"] - r["loop_cpu_pct"] for r in rs)
        print(
            f"| {mode:<23} | {cpu:15.2f} | {cpu - base_cpu:+9.2f}pp | {cpu - off_cpu:+10.2f}pp "
            f"| {med('loop_cpu_pct'):11.2f} | {other:13.2f} | {med('p50_us'):11.1f} | {med('p99_us'):11.1f} "
            f"| {med('p999_us'):13.1f} | {med('lag_p99_us'):15.1f} | {med('ticks_per_s'):7.0f} "
            f"| {med('orders_per_s'):8.1f} |"
        )
    for key, label in (("cpu_pct", "CPU %"), ("p99_us", "step p99 us"), ("lag_p99_us", "loop lag p99 us")):
        print(f"per-round {label}:", {m: [round(r[key], 1) for r in results[m]] for m in DEMO_MODES})


if __name__ == "__main__":
    main()
