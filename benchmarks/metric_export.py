"""One OTLP metric export, and one Prometheus scrape, of the trading series, and what each does to the trading
loop, against their peers.

    python benchmarks/metric_export.py [--symbols 10,1000] [--rounds 20]

For each ``--symbols`` N, the trading layer's series of N symbols (one tick, one order through risk check,
submit, ack and fill, a position and a P&L per symbol: 21 families, about 18 series per symbol, with
exemplars on the latency histograms) are made once by ``TradingTelemetry`` and once by the raw OTel SDK
(``benchmarks/_raw_otel.py``'s hand-written equivalent, the peer of ``benchmarks/overhead.py``). Then, in
each round and in turn:

``OTLP export``: one collection and OTLP/gRPC export to a local ``otelcol-tradeobs`` (from
``~/.cache/tradeobs/bin``; OTLP receiver -> debug exporter) by

- ``tradeobs``: the agent's path (``_internal/bridge.py`` ``collect_encoded``: each instrument read when it is
  encoded, each point made, written straight to OTLP bytes by ``_internal/otlp_encode.encode_family`` and
  dropped, the GIL given back to the trading thread between points);
- ``tradeobs before (OTel points, stock encoder)``: the path of the release before (the registry's snapshot as
  OTel point objects, encoded by the OTLP exporter's own reference encoder);
- ``raw OTel SDK``: the SDK's own instruments, collection and encoder.

``Prometheus scrape``: one body of the embedded endpoint by

- ``tradeobs``: ``Renderer.render_chunks``, what the endpoint sends (each instrument's points written as they
  are made, the text encoded in pieces);
- ``tradeobs from a whole snapshot, one body``: the registry's snapshot first, then the same renderer, joined
  into one body (how the endpoint read before; the merged view of a worker group still reads a snapshot);
- ``raw OTel SDK (prometheus_client)``: the SDK's ``PrometheusMetricReader`` rendered by prometheus_client's
  ``generate_latest`` (its default registry).

Last, the two ``tradeobs`` rows again after ``gc.freeze()`` (it moves every object alive then out of the
garbage collector's reach, which is what an application can do once warmed up).

Each read runs on a background thread, as the SDK's periodic reader and the endpoint's server thread do, while
this process's main thread runs an asyncio loop with a task that sleeps 1 ms (a trading loop waiting for
market data). Reported per row, over ``--rounds`` rounds (each symbol count in a fresh process): the read's
thread CPU (median, ms, and its ratio to tradeobs'), its wall time, the longest the loop waited past a 1 ms
sleep during it (median over rounds, and the worst round), and the full (generation 2) garbage collections
during all its rounds. ``idle`` is the same loop with nothing read, over stretches as long as the slowest
read: what the machine alone adds. Machines are noisy: compare the rows of one run.
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
from collections.abc import Callable
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


_full_gcs = [0]  # full (generation 2) garbage collections so far, counted by _count_full_gcs


def _count_full_gcs(phase: str, info: dict[str, Any]) -> None:
    if phase == "start" and info["generation"] == 2:
        _full_gcs[0] += 1


async def _measure(fn: Any) -> tuple[float, float, float, int]:
    """Run ``fn`` on a thread while this loop sleeps 1 ms at a time: its thread CPU and wall seconds, the
    longest the loop waited past a 1 ms sleep meanwhile, and the full garbage collections meanwhile."""
    result: list[float] = []
    gcs = _full_gcs[0]

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
    return result[0], wall, worst, _full_gcs[0] - gcs


async def _idle(seconds: float) -> float:
    """The longest the loop waited past a 1 ms sleep over ``seconds`` with no export."""
    end = time.perf_counter() + seconds
    return await _longest_wait(lambda: time.perf_counter() >= end)


async def _rounds(ways: dict[str, Any], n: int) -> dict[str, list[tuple[float, float, float, int]]]:
    """Warm-up (first encodings, connections), then ``n`` rounds of each way (a function) in a rotating order,
    and after each round an idle stretch as long as the slowest way took."""
    out: dict[str, list[tuple[float, float, float, int]]] = {k: [] for k in (*ways, "idle")}
    for fn in ways.values():
        await _measure(fn)
    for r in range(n):
        order = list(ways.items())
        order = order[r % len(order) :] + order[: r % len(order)]
        for name, fn in order:
            out[name].append(await _measure(fn))
        longest = max(out[name][-1][1] for name in ways)
        gcs = _full_gcs[0]
        worst = await _idle(longest)
        out["idle"].append((0.0, longest, worst, _full_gcs[0] - gcs))
    return out


def child(n: int, otlp: str, rounds: int) -> None:
    """One symbol count in this fresh process: the ways of each read side by side; prints the table's rows."""
    gc.callbacks.append(_count_full_gcs)
    from _raw_otel import RawOtelTelemetry
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from prometheus_client import REGISTRY, generate_latest

    import tradeobs_agent
    from tradeobs_agent import TracingOptions, trading
    from tradeobs_agent._internal.exporters import CountingMetricExporter
    from tradeobs_agent._internal.gil import Slices
    from tradeobs_agent._internal.prometheus import Renderer
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
    raw_prom = PrometheusMetricReader()  # the SDK's Prometheus reader: a collector in prometheus_client's REGISTRY
    mp = MeterProvider(metric_readers=[raw_reader, raw_prom])
    _drive(RawOtelTelemetry(TracerProvider(), mp, LoggerProvider()), n)
    series = sum(len(f.points) for f in reg.snapshot().families)
    renderer = Renderer(reg)
    export: dict[str, Callable[[], Any]] = {
        "tradeobs": fast.collect,
        "tradeobs before (OTel points, stock encoder)": stock.collect,
        "raw OTel SDK": raw_reader.collect,
    }
    scrape: dict[str, Callable[[], Any]] = {
        "tradeobs": renderer.render_chunks,  # what the endpoint sends, a piece at a time
        "tradeobs from a whole snapshot, one body (the path before)": lambda: renderer.render(
            snapshot=reg.snapshot(offer=Slices().offer)
        ),
        "raw OTel SDK (prometheus_client)": lambda: generate_latest(REGISTRY),
    }
    got = {("OTLP export", k): v for k, v in asyncio.run(_rounds(export, rounds)).items()}
    got |= {("Prometheus scrape", k): v for k, v in asyncio.run(_rounds(scrape, rounds)).items()}
    # At 1,000 symbols most of the longest waits are the interpreter's full (generation 2) garbage collections,
    # which the collection's short-lived objects trigger and which scan every object in the process. An
    # application can take its long-lived objects out of them once warmed up (docs/metrics.md, "Cardinality").
    gc.freeze()
    frozen: dict[str, Callable[[], Any]] = {"tradeobs, after gc.freeze()": fast.collect}
    got |= {("OTLP export", k): v for k, v in asyncio.run(_rounds(frozen, rounds)).items() if k != "idle"}
    frozen = {"tradeobs, after gc.freeze()": renderer.render_chunks}
    got |= {("Prometheus scrape", k): v for k, v in asyncio.run(_rounds(frozen, rounds)).items() if k != "idle"}
    for (read, name), rows in got.items():
        base = statistics.median(c for c, *_ in got[read, "tradeobs"])
        cpu = statistics.median(c for c, *_ in rows)
        wall = statistics.median(w for _, w, *_ in rows)
        waits = sorted(x for _, _, x, _ in rows)
        cells = (f"{cpu * 1e3:.2f}", f"{cpu / base:.2f}x") if name != "idle" else ("", "")
        print(
            f"| {n} | {series} | {read} | {name} | {cells[0]} | {cells[1]} | {wall * 1e3:.2f} "
            f"| {statistics.median(waits) * 1e3:.2f} | {waits[-1] * 1e3:.2f} | {sum(g for *_, g in rows)} |",
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
                "| symbols | series | read | by | CPU ms (median) | vs tradeobs | wall ms | "
                "loop's longest wait per read, median ms | worst ms | full GCs in all rounds |"
            )
            print("|---:|---:|---|---|---:|---:|---:|---:|---:|---:|")
            for n in (int(x) for x in args.symbols.split(",")):
                cmd = [sys.executable, __file__, "--child", str(n), "--otlp", otlp, "--rounds", str(args.rounds)]
                subprocess.run(cmd, check=True)
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
