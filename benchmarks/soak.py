"""The soak at full length: the demo at 10x its default load for 15 minutes through the whole pipeline; the RSS of
the service, our collector and Prometheus, and their slopes.

    python benchmarks/soak.py [--seconds 900] [--warmup 60] [--interval 5] [--no-peer]

Two setups run side by side, in the same run (so the machine's load is the same for both), each with its own
pipeline (``tests/faults/harness.py`` ``Pipeline``: Jaeger in memory, otelcol-tradeobs with
``collector/otel-collector.yaml``, Debian Prometheus scraping it):

- ``tradeobs``: ``tests/faults/demo_service.py`` (the demo served by uvicorn, the agent from the environment,
  request traces, the live stream), at ``tests/faults/soak.py`` ``SOAK_LOAD`` (20 orders/s, 1000 ticks/s);
- ``raw OTel SDK`` (the peer): the same ``TradingEngine`` at the same load with the same telemetry hand-written on
  the OpenTelemetry SDK (``_raw_otel.py``; process: ``_soak_raw_service.py``), metrics over OTLP every second as
  the agent exports them. It serves no web app and no live stream: compare growth and slopes, not sizes.

For each process: RSS at the warm-up's end and at the end (medians of the samples in the 15 s before each), the
growth between them, the least-squares slope after the warm-up (MiB/min) and the peak; then orders/s and ticks/s
held after the warm-up, and spans/s that arrived in the trace store over the whole run. For tradeobs also the
account of the fault tests: spans and log records recorded = arrived + counted dropped. The trace store (Jaeger,
in memory) is listed for information: it keeps every trace, so it grows by design.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.faults.harness import MB, DemoService, Pipeline, settle  # noqa: E402
from tests.faults.soak import (  # noqa: E402
    PROCESSES,
    SOAK_DEMO,
    SOAK_LOAD,
    SoakRun,
    Target,
    arrived_span_count,
    soak,
    soak_logs_account,
    soak_spans_account,
)
from tests.integration.procs import READY_TIMEOUT, ManagedProcess, free_port, http_ok, wait_for  # noqa: E402

PEER_SCRIPT = Path(__file__).resolve().parent / "_soak_raw_service.py"
PEER_SERVICE = "bench-raw-otel"  # _raw_otel.start's service.name
PEER_SCOPE = "bench.raw"


class RawOtelService:
    """``_soak_raw_service.py`` in its own process, against a pipeline's collector."""

    def __init__(self, otlp_endpoint: str, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.control_url = f"http://127.0.0.1:{free_port()}"
        argv = [sys.executable, str(PEER_SCRIPT), "--otlp", otlp_endpoint.removeprefix("http://"),
                "--prom-port", str(free_port()), "--control-port", self.control_url.rsplit(":", 1)[1],
                "--logdir", str(workdir / "logs"), "--symbols", str(SOAK_DEMO["symbols"]),
                "--tick-hz", f"{SOAK_DEMO['tick_hz']:g}", "--orders-hz", f"{SOAK_DEMO['orders_hz']:g}"]  # fmt: skip
        self.proc = ManagedProcess("raw-otel-service", argv, {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}, workdir)
        try:
            ready = f"{self.control_url}/state"
            wait_for(lambda: http_ok(ready), "the peer to trade", READY_TIMEOUT, procs=(self.proc,))
        except BaseException:
            self.proc.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _call(self, method: str, path: str) -> dict[str, Any]:
        self.proc.check_alive()
        req = urllib.request.Request(f"{self.control_url}{path}", method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=30) as r:
            return dict(json.loads(r.read()))

    def state(self) -> dict[str, Any]:
        return self._call("GET", "/state")

    def set_orders(self, hz: float) -> None:
        self._call("POST", f"/orders?hz={hz:g}")

    def stop(self) -> int | None:
        self.proc.stop(60.0)  # SIGTERM: the providers flush and shut down
        return self.proc.popen.returncode

    def __enter__(self) -> RawOtelService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.stop()


def _row(name: str, run: SoakRun, process: str) -> str:
    first, full = run.rss_after_warmup[process], run.rss[process]
    return (f"{name:<13} {process:<12} {first.at_warmup / MB:>8.1f} {full.at_warmup / MB:>8.1f} "
            f"{full.at_end / MB:>8.1f} {first.growth_pct:>+7.1f}% {first.slope_mib_min:>+8.3f} "
            f"{full.growth_pct:>+7.1f}% {full.slope_mib_min:>+8.3f} {full.peak / MB:>7.1f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=900.0, help="the whole soak, warm-up included (default: 900)")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds before the RSS baseline (default: 60)")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between RSS samples (default: 5)")
    ap.add_argument("--no-peer", action="store_true", help="leave out the raw-OTel-SDK peer")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary directory)")
    ap.add_argument("--record", action="store_true",
                    help="write this run's row in docs/reliability.md (tests/faults/results/soak.json)")  # fmt: skip
    args = ap.parse_args(argv)

    with ExitStack() as stack:
        work = Path(args.keep) if args.keep else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        pipe = stack.enter_context(Pipeline(work / "tradeobs"))
        svc = stack.enter_context(DemoService(pipe.otlp_endpoint, work / "tradeobs" / "svc", **SOAK_DEMO))
        targets = [Target("tradeobs", pipe, svc)]
        peer = None
        if not args.no_peer:
            ppipe = stack.enter_context(Pipeline(work / "raw"))
            peer = stack.enter_context(RawOtelService(ppipe.otlp_endpoint, work / "raw" / "svc"))
            targets.append(Target("raw OTel SDK", ppipe, peer, scope=PEER_SCOPE))
        print(f"# soak: {SOAK_LOAD}; {args.seconds:g} s, warm-up {args.warmup:g} s, RSS every {args.interval:g} s",
              flush=True)  # fmt: skip
        started = time.time()
        runs = soak(targets, args.warmup, seconds=args.seconds, interval=args.interval)
        svc.set_orders(0)
        if peer is not None:
            peer.set_orders(0)
        flush = svc.flush(60.0)
        final = svc.stop()
        peer_rc = peer.stop() if peer is not None else None
        spans = settle(lambda: soak_spans_account(runs[0], svc, final))
        logs = settle(lambda: soak_logs_account(runs[0], svc, final))
        spans_s = {"tradeobs": spans.arrived / runs[0].seconds}
        if peer is not None:
            jaeger = runs[1].target.pipe.jaeger
            assert jaeger is not None
            arrived = arrived_span_count(jaeger.query_url, PEER_SERVICE, started - 60, time.time() + 60, PEER_SCOPE)
            spans_s["raw OTel SDK"] = len(arrived) / runs[1].seconds

        full = {r.target.name: f"{r.full_at:.0f} s" if r.full_at is not None else "-" for r in runs}
        print(
            f"\nRSS in MiB; A = after the first {args.warmup:g} s, B = after the agent's buffers were full "
            f"(the event bus's ring: {full['tradeobs']}; no bus in the peer: B = A)"
        )
        at_a = f"@{args.warmup:g}s"  # A
        print(f"{'setup':<13} {'process':<12} {at_a:>8} {'@full':>8} {'@end':>8} {'A grow':>8} {'A MiB/m':>8} "
              f"{'B grow':>8} {'B MiB/m':>8} {'peak':>7}")  # fmt: skip
        for run in runs:
            for process in PROCESSES:
                if process in run.series:
                    print(_row(run.target.name, run, process))
        print(
            f"\n{'setup':<13} {'orders/s':>9} {'ticks/s':>8} {'spans/s':>8}   (held after the warm-up; spans arrived)"
        )
        for run in runs:
            name = run.target.name
            print(f"{name:<13} {run.orders_per_s:>9.1f} {run.ticks_per_s:>8.0f} {spans_s[name]:>8.0f}")
        print(f"\ntradeobs: {spans}\ntradeobs: {logs}")
        print(f"tradeobs: final flush {flush}, shutdown ok {final['shutdown_ok']} in {final['shutdown_seconds']:.2f} s")
        stalls = [f"{r.target.name}: {s}" for r in runs for s in r.stalls()]
        print("stalls: " + ("; ".join(stalls) if stalls else "none"))
        if peer is not None:
            print(
                f"raw OTel SDK peer: exit code {peer_rc}; it serves no web app or live stream (smaller to begin with)"
            )
        print("the trace store is Jaeger in memory: it keeps every trace, so it grows by design")
    if args.record:
        _record(args, runs, spans_s, f"{spans}; {logs}")
    return 0


def _record(args: argparse.Namespace, runs: list[SoakRun], spans_s: dict[str, float], account: str) -> None:
    """This run's row in docs/reliability.md, section "Full-length runs (benchmarks)"."""
    from tests.faults import report

    report.UPDATE = True  # a benchmark's row is written when it runs, never checked by a test
    figures: dict[str, str] = {}
    for run in runs:
        name = run.target.name
        full = f", the event bus's ring full after {run.full_at:.0f} s" if run.full_at is not None else ""
        figures[name] = (f"ran {run.seconds:.0f} s{full}; {run.orders_per_s:.1f} orders/s, "
                         f"{run.ticks_per_s:.0f} ticks/s, {spans_s[name]:.0f} spans/s held")  # fmt: skip
        for process in PROCESSES:
            if process in run.series:
                a, b = run.rss_after_warmup[process], run.rss[process]
                figures[f"{name} {process} RSS"] = (
                    f"{a.at_warmup / MB:.1f} MiB at {args.warmup:g} s, {b.at_warmup / MB:.1f} MiB when full, "
                    f"{b.at_end / MB:.1f} MiB at the end; after the first minute {a.growth_pct:+.1f}% "
                    f"({a.slope_mib_min:+.3f} MiB/min), after the buffers were full {b.growth_pct:+.1f}% "
                    f"({b.slope_mib_min:+.3f} MiB/min)"
                )
    figures["tradeobs account"] = account
    report.record(
        "benchmarks/soak.py::main",
        report.Row(
            section="Full-length runs (benchmarks)",
            order=10,
            case=f"soak: {args.seconds:g} s at 10x the demo's default load through the whole pipeline; RSS of the "
            f"service, the collector, Prometheus (and the in-memory trace store) every {args.interval:g} s; the peer, "
            "the same engine with its telemetry on the raw OpenTelemetry SDK, side by side with its own pipeline",
            load=SOAK_LOAD,
            outcome="measured, not asserted (a benchmark): RSS growth and least-squares slope after the first "
            "minute and after the agent's bounded buffers were full, for each process; orders/s and spans/s held",
            lost="tradeobs: recorded = arrived + counted dropped, for spans and log records (the figures)",
            figures=figures,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
