"""What the collector's secret-value redaction costs: its CPU seconds for a fixed batch, per config.

    python benchmarks/collector_redaction.py [--spans 20000] [--logs 20000] [--points 0] [--runs 3] [--config X.yaml]

For each config (default: ``collector/otel-collector.yaml``; pass an older copy to compare, e.g.
``git show HEAD~1:collector/otel-collector.yaml > /tmp/old.yaml``), runs alternated: a fresh otelcol-tradeobs
(``tests/integration/procs.py``, traces and logs to files, the config's redaction processors as they are),
a plain OTel SDK sender (no agent) sending ``--spans`` spans (6 string attributes of ordinary trading text, one
with a URL, and one event with 2) and ``--logs`` log records (a 100-character body and 4 string attributes), one
in 50 holding a secret. The collector's user+system CPU (``/proc/<pid>/stat``) is read after a warm-up batch and
again once everything arrived: the difference is the batch's cost. ``--points N`` measures the metrics pipeline the
same way, on a collector of its own: one export of a counter with N series (4 string attributes each, the trading
labels a desk has), written to a file as well as to the Prometheus exporter.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter  # noqa: E402
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

from tests.integration.procs import COLLECTOR_CONFIG, free_port, start_collector, wait_for  # noqa: E402
from tests.integration.test_redaction_values import file_config  # noqa: E402

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def count_lines(path: Path, word: str) -> int:
    return path.read_text().count(word) if path.exists() else 0


def send(endpoint: str, spans: int, logs: int, tag: str) -> None:
    resource = Resource.create({"service.name": "plain-sdk-bench"})
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True), max_queue_size=max(spans, 512))
    )
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True), max_queue_size=max(logs, 512))
    )
    tracer, logger = tp.get_tracer("bench"), lp.get_logger("bench")
    for i in range(spans):
        secret = "sk_live_51HxYzAbCdEfGhIjKlMnOp" if i % 50 == 0 else "none"
        attrs = {
            "bench.tag": tag,
            "http.url": f"https://broker.example/v2/orders?symbol=AAPL&qty={i}&client_order_id=ORD-{i:09d}",
            "order.id": f"ORD-{i:09d}",
            "symbol": "AAPL",
            "strategy": "momentum-eu-open",
            "note": f"filled {i} at 187.5 via {secret}",
        }
        with tracer.start_as_current_span("order", attributes=attrs) as span:
            span.add_event("fill", {"venue": "XNAS", "message": f"partial fill qty={i} px=187.5 key=AAPL"})
    for i in range(logs):
        secret = "password=hunter2hunter2" if i % 50 == 0 else "qty=100"
        body = f"order ORD-{i:09d} AAPL buy {secret} px=187.5 venue=XNAS strategy=momentum-eu-open latency_us=412"
        logger.emit(
            body=body,
            attributes={"bench.tag": tag, "order.id": f"ORD-{i:09d}", "symbol": "AAPL", "message": body[:60]},
        )
    tp.force_flush(120_000)
    lp.force_flush(120_000)
    tp.shutdown()
    lp.shutdown()


def send_points(endpoint: str, points: int, tag: str) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint, insecure=True), 3_600_000)
    mp = MeterProvider(resource=Resource.create({"service.name": "plain-sdk-bench"}), metric_readers=[reader])
    meter = mp.get_meter("bench")
    counters = [meter.create_counter(f"bench_{tag}_{n}") for n in range(-(-points // 1000))]  # the SDK keeps 2000
    for i in range(points):
        attrs = {"symbol": f"SYM{i:05d}", "strategy": "momentum-eu-open", "venue": "XNAS", "side": "buy"}
        counters[i // 1000].add(1, attrs)
    mp.force_flush(120_000)
    mp.shutdown()


def metrics_file_config(work: Path, config: Path) -> Path:
    """``file_config``: it writes the metrics to ``work/metrics.jsonl`` too (next to the Prometheus exporter), to see
    them arrive."""
    return file_config(work, config)


def run_points(config: Path, points: int) -> float:
    with tempfile.TemporaryDirectory(prefix="tradeobs-redbench-") as d:
        work = Path(d)
        with start_collector(work, f"127.0.0.1:{free_port()}", config=metrics_file_config(work, config)) as c:
            endpoint = f"http://{c.otlp_grpc_endpoint}"
            metrics = work / "metrics.jsonl"
            send_points(endpoint, 200, "warmup")
            wait_for(lambda: count_lines(metrics, "bench_warmup") >= 1, "warmup")
            time.sleep(1)
            before = cpu_seconds(c.proc.pid)
            send_points(endpoint, points, "measured")
            wait_for(lambda: count_lines(metrics, "SYM") >= 200 + points, "the points", timeout=300)
            return cpu_seconds(c.proc.pid) - before


def run(config: Path, spans: int, logs: int) -> float:
    with tempfile.TemporaryDirectory(prefix="tradeobs-redbench-") as d:
        work = Path(d)
        with start_collector(work, f"127.0.0.1:{free_port()}", config=file_config(work, config)) as c:
            endpoint = f"http://{c.otlp_grpc_endpoint}"
            send(endpoint, 200, 200, "warmup")
            traces = work / "traces.jsonl"
            wait_for(
                lambda: count_lines(traces, '"warmup"') >= 1 and count_lines(c.logs_file, '"warmup"') >= 1, "warmup"
            )
            time.sleep(1)
            before = cpu_seconds(c.proc.pid)
            send(endpoint, spans, logs, "measured")
            wait_for(
                lambda: count_lines(traces, '"measured"') >= spans and count_lines(c.logs_file, '"measured"') >= logs,
                "the batch",
                timeout=300,
            )
            return cpu_seconds(c.proc.pid) - before


def compare_with_revision(before: str, runs: int, spans: int, logs: int) -> None:
    """Print the collector's CPU for ``spans`` + ``logs`` under ``before``'s collector/otel-collector.yaml and under
    this tree's, ``runs`` times each, taking turns; the medians and their ratio (the redaction benchmarks' table)."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "otel-collector.before.yaml"
        old.write_bytes(
            subprocess.run(
                ["git", "-C", str(root), "show", f"{before}:collector/otel-collector.yaml"],
                check=True,
                capture_output=True,
            ).stdout
        )
        new = root / "collector" / "otel-collector.yaml"
        secs: dict[str, list[float]] = {"before": [], "now": []}
        for _ in range(runs):
            secs["before"].append(run(old, spans, logs))
            secs["now"].append(run(new, spans, logs))
    b, n = statistics.median(secs["before"]), statistics.median(secs["now"])
    label = f"collector CPU s, {spans} spans + {logs} logs"
    print(f"{label:<44} {b:>10.2f} {n:>10.2f} {n / b:>10.2f}x")
    print(f"  runs: before {secs['before']}, now {secs['now']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spans", type=int, default=20000)
    ap.add_argument("--logs", type=int, default=20000)
    ap.add_argument("--points", type=int, default=0, help="also measure N metric data points (metrics pipeline)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--config", type=Path, action="append", help="default: collector/otel-collector.yaml")
    args = ap.parse_args()
    configs = args.config or [COLLECTOR_CONFIG]
    results: dict[Path, list[float]] = {c: [] for c in configs}
    point_results: dict[Path, list[float]] = {c: [] for c in configs}
    for _ in range(args.runs):
        for config in configs:
            if args.spans or args.logs:
                results[config].append(run(config, args.spans, args.logs))
            if args.points:
                point_results[config].append(run_points(config, args.points))
    for config, secs in results.items():
        if not secs:
            continue
        runs = " ".join(f"{s:.2f}" for s in secs)
        print(
            f"{config}: collector CPU {statistics.median(secs):.2f} s median ({runs})"
            f" for {args.spans} spans + {args.logs} logs"
        )
    for config, secs in point_results.items():
        if secs:
            runs = " ".join(f"{s:.2f}" for s in secs)
            print(f"{config}: collector CPU {statistics.median(secs):.2f} s median ({runs}) for {args.points} points")


if __name__ == "__main__":
    main()
