"""Whole-agent overhead on a paced trading loop: agent fully on vs off, same fixed workload.

    python benchmarks/overhead.py [--loop demo|synthetic] [--seconds 10] [--rounds 5] [--symbols 10]
                                  [--tick-hz 1000] [--order-hz 100] [--seed 7] [--sequential]
                                  [--against DIR]

``--loop demo`` (issue 4's workload, the default) runs the demo's own trading loop,
``tradeobs_agent.demo.TradingEngine``, on an asyncio event loop with
``DemoConfig(symbols=--symbols, tick_hz=--tick-hz / --symbols, orders_hz=--order-hz, seed=--seed)``:
every step ticks every symbol; orders go through the strategy, risk, the paper broker
(acks, partial fills, rejects, slippage, each a separate task) and the portfolio; positions,
P&L and equity are published at 10 Hz; the demo logs its lines (signals, fills, rejects) at INFO.
Modes, each in a fresh interpreter:

- ``baseline``: the engine with a do-nothing telemetry object (the same trading and logging
  calls, no telemetry work; the INFO lines are discarded by the root logger's WARNING level)
- ``baseline, stdlib logging``: the same, with ``logging.basicConfig(filename=..., level=INFO)``:
  what the service pays for those log lines on its own, without tradeobs
- ``instrumented, agent off``: the engine's ``TradingTelemetry``, ``init()`` never called
- ``agent fully on``: ``init()`` with OTLP (gRPC) traces/metrics/logs to a real local
  collector (``otelcol-tradeobs`` from ``~/.cache/tradeobs/bin``, OTLP receiver -> debug
  exporter, a separate process, so its CPU is not counted), the Prometheus endpoint
  scraped every ``--scrape-interval`` seconds (by this parent process, as Prometheus would be
  another process), JSON log files, always-on sampling. Without the collector binary, OTLP is
  replaced by in-memory exporters (said in the output).
- ``agent fully on, --against`` (with ``--against DIR``): the same as ``agent fully on``, with the agent of
  another checkout (``DIR/agent`` first on ``PYTHONPATH``; e.g. ``git worktree add /tmp/prev HEAD~1``): a
  change measured against the code before it in the same paired rounds.
- ``raw OTel SDK, fully on``: the peer, the same telemetry written by hand on the OpenTelemetry
  SDK (``benchmarks/_raw_otel.py``: SDK instruments with attributes per call, a span per order
  step, exemplars, OTLP/gRPC for the three signals with the SDK's batch processors, the SDK's
  Prometheus reader, ``LoggingHandler`` plus a JSON ``FileHandler``).

Paired rounds: in each of ``--rounds`` rounds all modes run at the same time, so they see
the same machine (on a shared VM the speed drifts by tens of percent within minutes; run one
after another, that drift is larger than the effect). The overhead is the median over rounds
of the per-round difference, with its range. ``--sequential`` runs them one after another.

Reported per mode: process CPU (``time.process_time``, all threads) as % of one core over
the run, the part of it on the event loop's thread (``time.thread_time``; the rest is the
agent's background threads: the trading journal, export, logs), ``TradingEngine.step()``
latency p50/p99/p99.9 (a step ticks every symbol and places the orders due) and the event
loop's lag p99 (a monitor task sleeping 5 ms; lag = how late it woke).
Then, per thread of ``agent off``, ``agent fully on`` and the ``--workers`` modes (from ``/proc``, Linux):
CPU as % of one core and blocks per second (voluntary context switches: sleeps, waits for work, waits for the
GIL), with what one block and wake-up (``time.sleep(50 us)``) costs a thread on this machine, measured before
the rounds.

``--loop synthetic`` (self-contained): ``--tick-hz`` ticks/s round-robin over ``--symbols``
symbols, each tick runs a small strategy (rolling mean over 50 prices) and reports
``tt.tick``, ``tt.decision_time``; ``--order-hz`` orders/s each go through
signal -> risk check -> submit on the tick that decides, ack one tick later, fill three
ticks later, then ``tt.position`` / ``tt.pnl`` / ``tt.account`` and one INFO log line; modes
``baseline`` (the calls removed), ``instrumented, agent off``, ``agent fully on`` and
``fully on, steps as events`` (``TradingTelemetry(child_spans=False)``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

from _ports import free_port

MODES = ("baseline", "instrumented, agent off", "agent fully on", "fully on, steps as events")
DEMO_MODES = ("baseline", "baseline, stdlib logging", "instrumented, agent off", "agent fully on")
# --workers N: the loop as one worker of a group of N (multi-process mode, the live view watched: it publishes its
# snapshot five times a second and its events ten; the N-1 others are idle members started by this process,
# after it, so it leads and serves the scrapes); and, to weigh what moving export out of the trading process
# could save, the loop fully on without any export (no OTLP, no local trace file).
LEAD, FOLLOW, NO_EXPORT = "fully on, group leader", "fully on, group follower", "fully on, no export"
WORKER_MODES = (LEAD, FOLLOW, NO_EXPORT)
GROUPS = {LEAD: "bench-overhead-lead", FOLLOW: "bench-overhead-follow"}  # one group each (by service name)
PEER_MODES = ("baseline", "agent fully on", "raw OTel SDK, fully on")
# --against DIR: "agent fully on" with the agent of another checkout (DIR/agent first on PYTHONPATH, e.g. a
# `git worktree` of the previous commit), in the same paired rounds: a change's effect without the drift between runs
AGAINST = "agent fully on, --against"
SCRAPED = ("agent fully on", "fully on", "raw OTel SDK")
COLLECTOR = Path(os.environ.get("TRADEOBS_CACHE") or Path.home() / ".cache" / "tradeobs") / "bin" / "otelcol-tradeobs"


def run_loop(
    mode: str,
    seconds: float,
    symbols: int,
    tick_hz: int,
    order_hz: int,
    otlp: str | None,
    prom_port: int = 0,
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
        agent, stop_scrape = _start_agent(otlp, prom_port)
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
    if agent is not None:
        tradeobs_agent.shutdown(5.0)
    if stop_scrape is not None:  # removes the log directory: after the shutdown, which writes the last lines to it
        stop_scrape()
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

    def scope(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()  # the engine runs an order's steps inside its scope

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
    prom_port: int,
    seed: int,
) -> dict[str, Any]:
    import asyncio

    import tradeobs_agent
    from tradeobs_agent.demo import DemoConfig, TradingEngine

    agent = stop_scrape = None
    if mode in ("agent fully on", AGAINST, *WORKER_MODES):
        if mode in GROUPS:
            os.environ["TRADEOBS_MULTIPROCESS"] = "on"  # grouped with its siblings by their parent (this benchmark)
        agent, stop_scrape = _start_agent(otlp, prom_port, export=mode != NO_EXPORT, service=GROUPS.get(mode))
        if agent.group is not None:
            from tradeobs_agent.live import LiveHub

            hub = LiveHub()  # the live side of this worker: as the group's leader it builds the frames, 10 a second
            agent.group.live_started()  # as if a browser watched the live view
            del hub  # the group holds it
    logdir = None
    if mode == "baseline, stdlib logging":  # what the service pays for its own INFO log lines without tradeobs
        import logging

        logdir = tempfile.mkdtemp(prefix="tradeobs-bench-stdlib-", dir=os.environ.get("BENCH_LOGS"))
        logging.basicConfig(
            filename=os.path.join(logdir, "service.log"),
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s %(message)s",
        )
    telemetry: Any = _NullTelemetry() if mode.startswith("baseline") else None
    if mode == "raw OTel SDK, fully on":  # the peer: the same telemetry hand-written on the OTel SDK
        import _raw_otel

        logdir = tempfile.mkdtemp(prefix="tradeobs-bench-raw-", dir=os.environ.get("BENCH_LOGS"))
        telemetry = _raw_otel.start(otlp or "127.0.0.1:4317", prom_port, logdir)
    cfg = DemoConfig(symbols=symbols, tick_hz=tick_hz / symbols, orders_hz=order_hz, seed=seed)
    engine = TradingEngine(cfg, telemetry=telemetry)
    steps: list[float] = []
    lags: list[float] = []
    thread_use: dict[str, list[float]] = {}
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
        threads0 = _threads()
        cpu0, th0, t0 = time.process_time(), time.thread_time(), perf()
        await asyncio.sleep(seconds)
        wall, cpu, loop_cpu = perf() - t0, time.process_time() - cpu0, time.thread_time() - th0
        thread_use.update(_thread_use(threads0, wall))
        state["on"] = False
        ticks, orders = engine.ticks - ticks0, engine.orders - orders0
        mon.cancel()
        await engine.stop()
        return wall, cpu, loop_cpu, ticks, orders

    wall, cpu, loop_cpu, ticks, orders = asyncio.run(main())
    led = bool(agent.group.leader) if agent is not None and agent.group is not None else None
    if hasattr(telemetry, "shutdown"):
        telemetry.shutdown()
    if logdir is not None:
        shutil.rmtree(logdir, ignore_errors=True)
    if agent is not None:
        tradeobs_agent.shutdown(5.0)
    if stop_scrape is not None:  # removes the log directory: after the shutdown, which writes the last lines to it
        stop_scrape()
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
        "leader": led,
        "threads": thread_use,
        "agent": os.path.dirname(os.path.dirname(os.path.abspath(tradeobs_agent.__file__))),
    }


def _threads() -> dict[int, tuple[str, float, int]]:
    """Every thread of this process: native id -> (name, CPU seconds, voluntary context switches), from ``/proc``.

    Python threads by their ``threading`` name, the others (gRPC's) by their kernel name; empty off Linux.
    CPU from ``schedstat`` (nanoseconds; ``stat`` counts 10 ms ticks). A voluntary switch is a block: a sleep,
    a wait for work, a wait for the GIL."""
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[int, tuple[str, float, int]] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                cpu_ns = int(f.read().split()[0])
            with open(f"/proc/self/task/{tid}/status") as f:
                status = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        switches = int(status.split("voluntary_ctxt_switches:")[1].split()[0])
        name = names.get(int(tid)) or status.split("Name:", 1)[1].split("\n", 1)[0].strip()
        out[int(tid)] = (name, cpu_ns / 1e9, switches)
    return out


def _thread_use(before: dict[int, tuple[str, float, int]], wall: float) -> dict[str, list[float]]:
    """Per thread name (threads of one name summed): [CPU % of a core, voluntary switches/s] since ``before``."""
    use: dict[str, list[float]] = {}
    for tid, (name, cpu, switches) in _threads().items():
        _, cpu0, switches0 = before.get(tid, (name, 0.0, 0))
        u = use.setdefault(re.sub(r"^Thread-\d+ ", "", name), [0.0, 0.0])  # "Thread-7 (process_request_thread)"
        u[0] += (cpu - cpu0) / wall * 100
        u[1] += (switches - switches0) / wall
    return use


def _blocking_wait_cost(n: int = 2000, pause: float = 0.00005) -> float:
    """Microseconds of CPU one ``time.sleep(pause)`` costs its thread on this machine (a block and a wake-up)."""
    t = time.thread_time()
    for _ in range(n):
        time.sleep(pause)
    return (time.thread_time() - t) / n * 1e6


def _pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))] if sorted_values else float("nan")


def o_side(o: Any) -> str:
    return o[1] if isinstance(o, tuple) else o.side  # type: ignore[no-any-return]


def _start_agent(otlp: str | None, prom_port: int, export: bool = True, service: str | None = None) -> tuple[Any, Any]:
    """``init()`` fully on; the Prometheus endpoint listens on ``prom_port``, scraped by the parent process
    (a scraper is Prometheus's CPU, not the service's). ``export=False``: no OTLP export at all (what moving
    the export out of this process would leave in it)."""
    import tradeobs_agent
    from tradeobs_agent import LogOptions, OtlpOptions, PrometheusOptions, TracingOptions

    extra: dict[str, Any] = {}
    if not export:  # nor the local trace file that replaces OTLP when there is no collector
        otlp = None
        extra = {"tracing": TracingOptions(file="")}
    elif otlp is None:
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        extra = {"span_exporters": [InMemorySpanExporter()], "metric_readers": [InMemoryMetricReader()]}
    logdir = tempfile.mkdtemp(prefix="tradeobs-bench-logs-", dir=os.environ.get("BENCH_LOGS"))
    agent = tradeobs_agent.init(
        service_name=service or "bench-overhead",
        otlp=OtlpOptions(endpoint=f"http://{otlp}", protocol="grpc", insecure=True) if otlp else False,
        prometheus=PrometheusOptions(host="127.0.0.1", port=prom_port),
        logs=LogOptions(dir=logdir, console=False),
        live=False,
        **extra,
    )

    def cleanup() -> None:
        shutil.rmtree(logdir, ignore_errors=True)

    return agent, cleanup


class _Scraper:
    """Scrapes each child's Prometheus endpoint every ``interval`` seconds from the parent process."""

    def __init__(self, ports: list[int], interval: float) -> None:
        import threading

        self.ports, self.interval = ports, interval
        self.stop = threading.Event()
        self.scrapes = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import urllib.request

        while not self.stop.wait(self.interval):
            for port in self.ports:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
                    self.scrapes += 1
                except Exception:  # not listening yet, or already gone
                    pass

    def __enter__(self) -> _Scraper:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(10)


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

    grpc, health = free_port(), free_port()
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
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--symbols", type=int, default=10)
    ap.add_argument("--tick-hz", type=int, default=1000)
    ap.add_argument("--order-hz", type=int, default=100)
    ap.add_argument("--scrape-interval", type=float, default=5.0, help="seconds between Prometheus scrapes")
    ap.add_argument("--no-fill-log", action="store_true", help="do not log one INFO line per fill")
    ap.add_argument("--peer-rounds", type=int, default=3, help="rounds of baseline / tradeobs / raw OTel SDK peer")
    ap.add_argument(
        "--sequential",
        action="store_true",
        help="run the modes one after another in each round (default: all at once, paired)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="also run the loop as one worker of a group of N (multi-process mode) and fully on without OTLP export",
    )
    ap.add_argument(
        "--against",
        metavar="DIR",
        help="also run the loop fully on with the agent of another checkout DIR (e.g. a git worktree), paired",
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--otlp", help=argparse.SUPPRESS)
    ap.add_argument("--prom-port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "idle worker":
        _idle_worker(args.prom_port, args.seconds + 30)  # terminated by the parent when the round ends
        return
    if args.child and args.loop == "demo":
        res = run_demo(
            args.child,
            args.seconds,
            args.symbols,
            args.tick_hz,
            args.order_hz,
            args.otlp or None,
            args.prom_port,
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
            args.prom_port,
            not args.no_fill_log,
        )
        print(json.dumps(res))
        return

    with tempfile.TemporaryDirectory() as work:
        # The children's log directories go in here, so none is left behind by a terminated idle worker, a failed
        # child or Ctrl-C.
        os.environ["BENCH_LOGS"] = work
        col = start_collector(work)
        otlp = col[1] if col else ""
        try:
            modes: tuple[str, ...] = DEMO_MODES if args.loop == "demo" else MODES
            if args.workers > 1 and args.loop == "demo":
                modes = (*modes, *WORKER_MODES)
                os.environ["TRADEOBS_MULTIPROCESS_DIR"] = work  # the group's files, for this run only
            if args.against:
                if args.loop != "demo" or not (Path(args.against) / "agent" / "tradeobs_agent").is_dir():
                    raise SystemExit(f"--against {args.against}: needs --loop demo and a checkout's agent/ directory")
                modes = (*modes, AGAINST)
            args.wait_cost_us = _blocking_wait_cost()  # before the rounds: what one block and wake-up costs here
            results = _rounds(args, modes, args.rounds, otlp)
            peer = None
            if args.loop == "demo" and args.peer_rounds > 0 and otlp:
                # The raw-SDK peer takes ~5x tradeobs' CPU; run alongside the others it would slow them down
                # and blur their latencies, so it gets rounds of its own with the baseline and tradeobs.
                peer = _rounds(args, PEER_MODES, args.peer_rounds, otlp)
        finally:
            if col:
                col[0].terminate()
                col[0].wait(10)
    _print(results, args, otlp)
    if peer is not None:
        _print_peer(peer, args)


def _rounds(args: Any, modes: tuple[str, ...], rounds: int, otlp: str) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    for _ in range(rounds):
        ports = {mode: free_port() for mode in modes if mode.startswith(SCRAPED)}
        cmds = [_child_cmd(args, mode, otlp, ports.get(mode, 0)) for mode in modes]
        siblings: list[subprocess.Popen[bytes]] = []
        procs: list[subprocess.Popen[str]] = []
        try:
            with _Scraper(list(ports.values()), args.scrape_interval):
                if args.sequential:
                    outs = []
                    for mode, c in zip(modes, cmds, strict=True):
                        if mode in GROUPS:
                            siblings += _siblings(args, ports[mode], GROUPS[mode], wait=False)
                        run = subprocess.run(c, capture_output=True, text=True, check=True, env=_child_env(args, mode))
                        outs.append(run.stdout)
                else:  # paired: every mode at the same time, so a round compares them on the same machine state
                    if FOLLOW in modes:  # its group is led before it starts
                        siblings += _siblings(args, ports[FOLLOW], GROUPS[FOLLOW], wait=False)
                        _serving(ports[FOLLOW])
                    # A child's stderr (the demo's WARNING lines, with no handler in the baselines) goes to a file,
                    # shown only if that child fails: a pipe left unread could fill and stall it mid-round.
                    with contextlib.ExitStack() as files:
                        errs = [files.enter_context(tempfile.TemporaryFile(mode="w+")) for _ in modes]
                        procs += [
                            subprocess.Popen(c, stdout=subprocess.PIPE, stderr=e, text=True, env=_child_env(args, m))
                            for m, c, e in zip(modes, cmds, errs, strict=True)
                        ]
                        if LEAD in modes:  # its group's others join once it leads
                            _serving(ports[LEAD])
                            siblings += _siblings(args, ports[LEAD], GROUPS[LEAD], wait=False)
                        outs = [p.communicate()[0] for p in procs]
                        failed = [(m, e) for m, p, e in zip(modes, procs, errs, strict=True) if p.returncode]
                        for m, e in failed:
                            e.seek(0)
                            print(
                                f"# the child '{m}' failed; its stderr ends with:\n{e.read()[-4000:]}", file=sys.stderr
                            )
                    if failed:
                        raise SystemExit("a benchmark child failed")
        finally:
            for child in procs:  # all done, unless the round was cut short (Ctrl-C, a failed sibling)
                if child.poll() is None:
                    child.kill()
                    child.wait()
            for sib in siblings:
                sib.terminate()
                sib.wait(30)
        for mode, out in zip(modes, outs, strict=True):
            results[mode].append(json.loads(out.strip().splitlines()[-1]))
    return results


def _serving(port: int, timeout: float = 60.0) -> None:
    """Wait until a group's leader serves its Prometheus endpoint on ``port``."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"no group leader served port {port}")


def _siblings(args: Any, port: int, service: str, wait: bool) -> list[subprocess.Popen[bytes]]:
    """The other members of a measured worker's group: idle processes that ``init()`` in multi-process mode."""
    cmd = [sys.executable, __file__, "--child", "idle worker", "--prom-port", str(port), "--seconds", str(args.seconds)]
    env = {**os.environ, "TRADEOBS_MULTIPROCESS": "on", "BENCH_SERVICE": service}
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL) for _ in range(args.workers - 1)]
    if wait:
        _serving(port)
    return procs


def _idle_worker(prom_port: int, seconds: float) -> None:
    import tradeobs_agent

    agent, cleanup = _start_agent(None, prom_port, export=False, service=os.environ["BENCH_SERVICE"])
    if agent.group is not None:
        agent.group.live_started()
    time.sleep(seconds)
    cleanup()
    tradeobs_agent.shutdown(2.0)


def _child_env(args: Any, mode: str) -> dict[str, str]:
    """The environment of a child: ``--against``'s checkout first on the path for its mode."""
    if mode != AGAINST:
        return dict(os.environ)
    path = os.pathsep.join(p for p in (str(Path(args.against).resolve() / "agent"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _child_cmd(args: Any, mode: str, otlp: str, prom_port: int) -> list[str]:
    cmd = [sys.executable, __file__, "--child", mode, "--otlp", otlp, "--loop", args.loop]
    cmd += ["--prom-port", str(prom_port)]
    cmd += ["--seed", str(args.seed)]
    cmd += ["--seconds", str(args.seconds), "--symbols", str(args.symbols)]
    cmd += ["--tick-hz", str(args.tick_hz), "--order-hz", str(args.order_hz)]
    cmd += ["--no-fill-log"] if args.no_fill_log else []
    return cmd


def _paired(results: dict[str, list[dict[str, Any]]], a: str, b: str, key: str = "cpu_pct") -> str:
    """Median and range of the per-round differences ``a - b``."""
    d = sorted(x[key] - y[key] for x, y in zip(results[a], results[b], strict=True))
    return f"{statistics.median(d):+.2f} (rounds {d[0]:+.2f} .. {d[-1]:+.2f})"


def _lag_ratios(results: dict[str, list[dict[str, Any]]], a: str, b: str) -> list[float]:
    """The per-round ratios of the loop's lag p99, ``a / b``, sorted."""
    return sorted(x["lag_p99_us"] / y["lag_p99_us"] for x, y in zip(results[a], results[b], strict=True))


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
    how = "one after another" if args.sequential else "all at the same time (paired)"
    print(
        f"# overhead (the demo's TradingEngine): {args.symbols} symbols, {args.tick_hz} ticks/s "
        f"({args.tick_hz / args.symbols:g} steps/s), {args.order_hz} orders/s, seed {args.seed}, "
        f"{args.seconds:g}s x {args.rounds} rounds, modes run {how}; python {sys.version.split()[0]}"
    )
    target = f"a local otelcol-tradeobs at {otlp}" if otlp else "in-memory exporters"
    print(f"# agent fully on exports OTLP to: {target}")
    print("# CPU in % of one core; 'vs' columns are the median of the per-round differences (percentage points)")
    print(
        "| mode                     | CPU % of a core | vs baseline | vs agent off | loop thread | other threads "
        "| step p50 us | step p99 us | step p99.9 us | loop lag p99 us | ticks/s | orders/s |"
    )
    print(
        "|--------------------------|-----------------|-------------|--------------|-------------|---------------"
        "|-------------|-------------|---------------|-----------------|---------|----------|"
    )
    off = "instrumented, agent off"
    for mode in results:
        rs = results[mode]

        def med(key: str, rs: list[dict[str, Any]] = rs) -> float:
            return statistics.median(r[key] for r in rs)

        def vs(other: str, mode: str = mode) -> float:
            return statistics.median(
                a["cpu_pct"] - b["cpu_pct"] for a, b in zip(results[mode], results[other], strict=True)
            )

        other_threads = statistics.median(r["cpu_pct"] - r["loop_cpu_pct"] for r in rs)
        print(
            f"| {mode:<24} | {med('cpu_pct'):15.2f} | {vs('baseline'):+9.2f}pp | {vs(off):+10.2f}pp "
            f"| {med('loop_cpu_pct'):11.2f} | {other_threads:13.2f} | {med('p50_us'):11.1f} | {med('p99_us'):11.1f} "
            f"| {med('p999_us'):13.1f} | {med('lag_p99_us'):15.1f} | {med('ticks_per_s'):7.0f} "
            f"| {med('orders_per_s'):8.1f} |"
        )
    on = "agent fully on"
    print(f"fully on vs agent off: {_paired(results, on, off)} pp of a core")
    ratios = _lag_ratios(results, on, off)
    print(
        f"loop lag p99, fully on / agent off: median {statistics.median(ratios):.2f}x "
        f"(rounds {ratios[0]:.2f} .. {ratios[-1]:.2f}; target <= 1.10x)"
    )
    for mode in WORKER_MODES:
        if mode in results:
            lag = statistics.median(_lag_ratios(results, mode, off))
            print(f"{mode} vs agent off: {_paired(results, mode, off)} pp of a core; loop lag p99 x{lag:.2f}")
            print(f"{mode} vs fully on: {_paired(results, mode, on)} pp of a core")
    for mode in GROUPS:
        if mode in results:
            print(f"{mode}: the measured worker led its group in rounds:", [r["leader"] for r in results[mode]])
    if AGAINST in results:
        print(f"{AGAINST}: the agent of {results[AGAINST][0]['agent']}; fully on: {results[on][0]['agent']}")
        r = _lag_ratios(results, AGAINST, off)
        print(
            f"{AGAINST} vs agent off: {_paired(results, AGAINST, off)} pp of a core; loop lag p99 "
            f"median {statistics.median(r):.2f}x (rounds {r[0]:.2f} .. {r[-1]:.2f})"
        )
        print(f"fully on vs {AGAINST}: {_paired(results, on, AGAINST)} pp of a core")
        r = _lag_ratios(results, on, AGAINST)
        lag = f"median {statistics.median(r):.2f}x (rounds {r[0]:.2f} .. {r[-1]:.2f})"
        print(f"loop lag p99, fully on / {AGAINST}: {lag}")
    print(f"fully on vs baseline:  {_paired(results, on, 'baseline')} pp of a core")
    print(f"agent off vs baseline: {_paired(results, off, 'baseline')} pp of a core")
    stdlib = "baseline, stdlib logging"
    print(f"stdlib logging of the same lines vs baseline: {_paired(results, stdlib, 'baseline')} pp of a core")
    print(f"step p99, stdlib logging vs baseline: {_paired(results, stdlib, 'baseline', 'p99_us')} us")
    print(f"step p99, fully on vs agent off: {_paired(results, on, off, 'p99_us')} us")
    print(f"step p99, fully on vs baseline: {_paired(results, on, 'baseline', 'p99_us')} us")
    print(f"step p99, agent off vs baseline: {_paired(results, off, 'baseline', 'p99_us')} us")
    print(f"step p99, baseline round to round: {sorted(round(r['p99_us']) for r in results['baseline'])} us")
    for key, label in (("cpu_pct", "CPU %"), ("p99_us", "step p99 us"), ("lag_p99_us", "loop lag p99 us")):
        print(f"per-round {label}:", {m: [round(r[key], 1) for r in results[m]] for m in results})
    _print_threads(results, args)


def _print_threads(results: dict[str, list[dict[str, Any]]], args: Any) -> None:
    """Where the CPU goes, per thread: CPU % of a core and blocks (voluntary context switches) per second."""
    wanted = ("instrumented, agent off", "agent fully on", AGAINST, *WORKER_MODES)
    modes = [m for m in wanted if m in results and results[m][0]["threads"]]
    if not modes:
        return
    print()
    print(
        f"# per thread (median over rounds): CPU % of a core, and blocks per second (sleeps, waits for work or for "
        f"the GIL); one block and wake-up (time.sleep(50 us)) cost {args.wait_cost_us:.1f} us of CPU on this machine"
    )
    names = {n for m in modes for r in results[m] for n in r["threads"]}
    med = {  # (thread, mode) -> [CPU %, blocks/s], each the median over the rounds (0 where it did not run)
        (n, m): [statistics.median(r["threads"].get(n, [0.0, 0.0])[i] for r in results[m]) for i in (0, 1)]
        for n in names
        for m in modes
    }
    print("| thread | " + " | ".join(f"{m}: CPU % | blocks/s" for m in modes) + " |")
    print("|---|" + "---:|---:|" * len(modes))
    for name in sorted(names, key=lambda n: -max(med[n, m][0] for m in modes)):  # the busiest in any mode first
        if any(med[name, m][0] >= 0.01 for m in modes):
            print(f"| {name} | " + " | ".join(f"{med[name, m][0]:.2f} | {med[name, m][1]:.0f}" for m in modes) + " |")


def _print_peer(results: dict[str, list[dict[str, Any]]], args: Any) -> None:
    print()
    print(f"# the peer: the same telemetry hand-written on the raw OTel SDK; {args.peer_rounds} rounds of its own")
    print("| mode                     | CPU % of a core | vs baseline | step p50 us | step p99 us | loop lag p99 us |")
    print("|--------------------------|-----------------|-------------|-------------|-------------|-----------------|")
    for mode in PEER_MODES:
        rs = results[mode]
        d = statistics.median(a["cpu_pct"] - b["cpu_pct"] for a, b in zip(rs, results["baseline"], strict=True))

        def med(key: str, rs: list[dict[str, Any]] = rs) -> float:
            return statistics.median(r[key] for r in rs)

        print(
            f"| {mode:<24} | {med('cpu_pct'):15.2f} | {d:+9.2f}pp | {med('p50_us'):11.1f} | {med('p99_us'):11.1f} "
            f"| {med('lag_p99_us'):15.1f} |"
        )
    raw, on = "raw OTel SDK, fully on", "agent fully on"
    ratio = statistics.median(
        (r["cpu_pct"] - b["cpu_pct"]) / max(1e-9, t["cpu_pct"] - b["cpu_pct"])
        for r, t, b in zip(results[raw], results[on], results["baseline"], strict=True)
    )
    print(f"tradeobs fully on vs raw OTel SDK fully on: {_paired(results, on, raw)} pp of a core")
    print(f"raw OTel SDK overhead / tradeobs overhead (over the baseline): {ratio:.1f}x")


if __name__ == "__main__":
    main()
