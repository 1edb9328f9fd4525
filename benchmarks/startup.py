"""How long init() and shutdown() take with the collector dead, against the raw OTel SDK.

    python benchmarks/startup.py [--repeat 5]

Issue 2 asks that ``init()`` return promptly (well under a second) and that
``shutdown()`` be bounded (default 5 s) when no collector is reachable. Each
row runs in a fresh subprocess (imports included, as a service would pay them),
OTLP pointing at a loopback port where nothing listens, after recording one
span, one metric point and one log record so shutdown has something to flush.

Peer: the raw OTel SDK set up by hand the usual way (TracerProvider +
BatchSpanProcessor, MeterProvider + PeriodicExportingMetricReader,
LoggerProvider + BatchLogRecordProcessor, all OTLP/gRPC) and shut down with
its own ``shutdown()`` calls, which wait out the exporters' retries.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import textwrap

TRADEOBS = """
import time, json, logging
t0 = time.perf_counter()
import tradeobs_agent
t1 = time.perf_counter()
agent = tradeobs_agent.init(service_name="bench", otlp=tradeobs_agent.OtlpOptions(endpoint=ENDPOINT),
                            prometheus=tradeobs_agent.PrometheusOptions(port=0), live=False,
                            logs=tradeobs_agent.LogOptions(dir=""))
t2 = time.perf_counter()
with agent.tracer().start_as_current_span("s"):
    tradeobs_agent.counter("c").add(1)
    logging.getLogger("x").warning("hello")
t3 = time.perf_counter()
tradeobs_agent.shutdown()
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "init": t2 - t1, "shutdown": t4 - t3}))
"""

RAW = """
import time, json, logging
t0 = time.perf_counter()
from opentelemetry import trace, metrics
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
import warnings
warnings.simplefilter("ignore")
t1 = time.perf_counter()
tp = TracerProvider()
tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=ENDPOINT, insecure=True)))
mp = MeterProvider(metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=ENDPOINT, insecure=True))])
lp = LoggerProvider()
lp.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=ENDPOINT, insecure=True)))
logging.getLogger().addHandler(LoggingHandler(logger_provider=lp))
t2 = time.perf_counter()
with tp.get_tracer("b").start_as_current_span("s"):
    mp.get_meter("b").create_counter("c").add(1)
    logging.getLogger("x").warning("hello")
t3 = time.perf_counter()
tp.shutdown(); mp.shutdown(); lp.shutdown()
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "init": t2 - t1, "shutdown": t4 - t3}))
"""


def dead_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def run(code: str) -> dict[str, float]:
    src = f"ENDPOINT = {dead_endpoint()!r}\n" + textwrap.dedent(code)
    out = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rows = {}
    for name, code in (("tradeobs init()/shutdown()", TRADEOBS), ("raw OTel SDK, hand-built", RAW)):
        samples = [run(code) for _ in range(args.repeat)]
        rows[name] = {k: statistics.median(s[k] for s in samples) for k in ("import", "init", "shutdown")}
    base = rows["raw OTel SDK, hand-built"]
    print(f"collector dead, median of {args.repeat} fresh processes")
    print(
        f"{'setup':<28} {'import s':>9} {'init s':>9} {'shutdown s':>11} {'import vs raw':>14} {'init vs raw':>12} "
        f"{'shutdown vs raw':>16}"
    )
    for name, r in rows.items():
        ratio = {k: r[k] / base[k] if base[k] else float("nan") for k in ("import", "init", "shutdown")}
        print(
            f"{name:<28} {r['import']:>9.3f} {r['init']:>9.3f} {r['shutdown']:>11.3f} {ratio['import']:>13.2f}x "
            f"{ratio['init']:>11.2f}x {ratio['shutdown']:>15.2f}x"
        )


if __name__ == "__main__":
    main()
