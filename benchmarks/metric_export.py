"""One OTLP metric export of the trading series, and what it does to the trading loop, against its peers.

    python benchmarks/metric_export.py [--symbols 10,1000] [--rounds 5]

For each ``--symbols`` N, the trading layer's series of N symbols (one tick, one order through risk check,
submit, ack and fill, a position and a P&L per symbol: 21 families, about 26 series per symbol, with
exemplars on the latency histograms) are made once by ``TradingTelemetry`` and once by the raw OTel SDK
(``benchmarks/_raw_otel.py``'s hand-written equivalent, the peer of ``benchmarks/overhead.py``). Then, in
each round and in turn, one collection and OTLP/gRPC export to a local ``otelcol-tradeobs`` (from
``~/.cache/tradeobs/bin``; OTLP receiver -> debug exporter) by:

- ``tradeobs``: the agent's path (``_internal/bridge.py`` ``collect_encoded``: each family read when it is
  encoded and written straight to OTLP bytes by ``_internal/otlp_encode.encode_family``, giving the GIL back
  to the trading thread between points);
- ``tradeobs before (OTel points, stock encoder)``: the path before (the registry's snapshot as OTel point
  objects, encoded by the OTLP exporter's own reference encoder);
- ``raw OTel SDK``: the SDK's own instruments, collection and encoder;
- ``tradeobs, after gc.freeze()``: the first row again, after ``gc.freeze()`` (run last: it moves every object
  alive then out of the garbage collector's reach, which is what an application can do once warmed up).

Each runs on a background thread, as the SDK's periodic reader does, while this process's main thread runs
an asyncio loop with a task that sleeps 1 ms (a trading loop waiting for market data). Reported per row,
over ``--rounds`` rounds (each symbol count in a fresh process): the export thread's CPU for one collection
and export (median, ms, and its ratio to tradeobs'), its wall time, and the longest the loop waited past a
1 ms sleep during that export (median over rounds, and the worst round). ``idle`` is the same loop with no
export, over stretches as long as the slowest export: what the machine alone adds. Machines are noisy:
compare the rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _drive(tt: Any, symbols: int) -> None:
    """The same calls on either telemetry object: every symbol gets its series."""
    for i in range(symbols):
        sym = f"S{i:04d}"
        tt.tick(sym, 100.0 + i)
        order = tt.order_signal(f"o-{i}", sym, "buy", 1.0, 100.0)
        order.risk_check(True)
        order.submitted()
        order.acked()
        order.fill(1.0, 100.01, 100.0)
        tt.position(sym, 1.0, 100.0)
        tt.pnl(sym, 0.0, 0.01)


async def _longest_wait(done: Any) -> float:
    """Sleep 1 ms at a time until ``done()``: the longest this loop waited past a sleep."""
    perf = time.perf_counter
    worst = 0.0
    while not done():
        t0 = perf()
        await asyncio.sleep(0.001)
        worst = max(worst, perf() - t0 - 0.001)
    return worst


async def _measure(fn: Any) -> tuple[float, float, float]:
    """Run ``fn`` on a thread while this loop sleeps 1 ms at a time: its thread CPU and wall seconds, and the
    longest the loop waited past a 1 ms sleep meanwhile."""
    result: list[float] = []

    def work() -> None:
        c0 = time.thread_time()
        fn()
        result.append(time.thread_time() - c0)

    t = threading.Thread(target=work)
    start = time.perf_counter()
    t.start()
    worst = await _longest_wait(lambda: not t.is_alive())
    wall = time.perf_counter() - start
    t.join()
    return result[0], wall, worst


async def _idle(seconds: float) -> float:
    """The longest the loop waited past a 1 ms sleep over ``seconds`` with no export."""
    end = time.perf_counter() + seconds
    return await _longest_wait(lambda: time.perf_counter() >= end)


async def _rounds(ways: dict[str, Any], n: int) -> dict[str, list[tuple[float, float, float]]]:
    """Warm-up (first encodings, connections), then ``n`` rounds of each way in a rotating order, and after each
    round an idle stretch as long as the slowest way's export took."""
    out: dict[str, list[tuple[float, float, float]]] = {k: [] for k in (*ways, "idle")}
    for reader in ways.values():
        await _measure(reader.collect)
    for r in range(n):
        order = list(ways.items())
        order = order[r % len(order) :] + order[: r % len(order)]
        for name, reader in order:
            out[name].append(await _measure(reader.collect))
        longest = max(out[name][-1][1] for name in ways)
        out["idle"].append((0.0, longest, await _idle(longest)))
    return out


def child(n: int, otlp: str, rounds: int) -> None:
    """One symbol count in this fresh process: the three ways side by side; prints the table's rows."""
    from _raw_otel import RawOtelTelemetry
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    import tradeobs_agent
    from tradeobs_agent import TracingOptions, trading
    from tradeobs_agent._internal.exporters import CountingMetricExporter
    from tradeobs_agent._internal.providers import attach_registry
    from tradeobs_agent.metrics import get_registry

    endpoint = f"http://{otlp}"
    never = 3_600_000  # the readers export when collect() is called here, not on their own timer

    def exporter() -> Any:
        return OTLPMetricExporter(endpoint=endpoint, insecure=True)

    tradeobs_agent.init(
        service_name="bench-metric-export",
        otlp=False,
        prometheus=False,
        logs=False,
        live=False,
        tracing=TracingOptions(file=""),
    )
    reg = get_registry()
    # The agent's own OTLP reader, as init() builds it with OTLP on (providers.build_metrics), and the path
    # before this release (the registry as OTel points, the exporter's reference encoder) beside it.
    fast = PeriodicExportingMetricReader(
        CountingMetricExporter(exporter(), "metrics", otlp, reg.self_metrics), export_interval_millis=never
    )
    attach_registry(fast, reg, MeterProvider(metric_readers=[fast]), encoded=True)
    stock = PeriodicExportingMetricReader(exporter(), export_interval_millis=never)
    attach_registry(stock, reg, MeterProvider(metric_readers=[stock]))
    reg.max_series = max(reg.max_series, 40 * n)
    tt = trading.TradingTelemetry()
    _drive(tt, n)
    raw_reader = PeriodicExportingMetricReader(exporter(), export_interval_millis=never)
    mp = MeterProvider(metric_readers=[raw_reader])
    _drive(RawOtelTelemetry(TracerProvider(), mp, LoggerProvider()), n)
    series = sum(len(f.points) for f in reg.snapshot().families)
    ways = {"tradeobs": fast, "tradeobs before (OTel points, stock encoder)": stock, "raw OTel SDK": raw_reader}
    got = asyncio.run(_rounds(ways, rounds))
    # At 1,000 symbols most of the longest waits are the interpreter's full (generation 2) garbage collections,
    # which the collection's short-lived objects trigger and which scan every object in the process. An
    # application can take its long-lived objects out of them once warmed up (docs/metrics.md, "Cardinality").
    gc.freeze()
    frozen = asyncio.run(_rounds({"tradeobs, after gc.freeze()": fast}, rounds))
    got = {**{k: v for k, v in got.items() if k != "idle"}, **frozen}
    base = statistics.median(c for c, _, _ in got["tradeobs"])
    for name, rows in got.items():
        cpu = statistics.median(c for c, _, _ in rows)
        wall = statistics.median(w for _, w, _ in rows)
        waits = sorted(x for _, _, x in rows)
        cells = (f"{cpu * 1e3:.2f}", f"{cpu / base:.2f}x") if name != "idle" else ("", "")
        print(
            f"| {n} | {series} | {name} | {cells[0]} | {cells[1]} | {wall * 1e3:.2f} "
            f"| {statistics.median(waits) * 1e3:.2f} | {waits[-1] * 1e3:.2f} |",
            flush=True,
        )
    mp.shutdown()
    tradeobs_agent.shutdown(5.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", default="10,1000", help="comma-separated symbol counts")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--otlp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args.child, args.otlp, args.rounds)
        return

    import overhead  # start_collector: the same local collector as the overhead benchmark

    with tempfile.TemporaryDirectory() as work:
        col = overhead.start_collector(work)
        if col is None:
            sys.exit("needs otelcol-tradeobs in ~/.cache/tradeobs/bin (./scripts/test.sh builds it)")
        proc, otlp = col
        try:
            print(f"# metric export: one collection + OTLP/gRPC export to a local otelcol-tradeobs at {otlp}")
            print(
                f"# {args.rounds} rounds, each symbol count in a fresh process; python {platform.python_version()}; "
                "the trading loop sleeps 1 ms at a time meanwhile"
            )
            print(
                "| symbols | series | exporter | CPU ms (median) | vs tradeobs | wall ms | "
                "loop's longest wait per export, median ms | worst ms |"
            )
            print("|---:|---:|---|---:|---:|---:|---:|---:|")
            for n in (int(x) for x in args.symbols.split(",")):
                cmd = [sys.executable, __file__, "--child", str(n), "--otlp", otlp, "--rounds", str(args.rounds)]
                subprocess.run(cmd, check=True)
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
