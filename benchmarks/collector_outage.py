"""What a collector outage loses: spans and log records a service emitted vs what arrived, per outage length.

    python benchmarks/collector_outage.py [--outages 10,60,300] [--rate 20]

For each outage length: a fresh native stack (``tests/integration/procs.py``: Jaeger as the trace store,
otelcol-tradeobs with ``collector/otel-collector.yaml``, log records to a JSON-lines file), and two
service processes emitting ``--rate`` spans and ``--rate`` log records per second each:

- ``tradeobs agent``: ``tradeobs_agent.init()`` from the environment, spans from ``agent.tracer()``,
  records from ``tradeobs_agent.get_logger()``;
- ``raw OTel SDK`` (the peer): ``TracerProvider`` + ``BatchSpanProcessor`` and ``LoggerProvider`` +
  ``BatchLogRecordProcessor`` with the OTLP/gRPC exporters, defaults.

After ``--warmup`` s the collector is stopped (SIGTERM: a planned restart, it drains), restarted after the
outage with the same configuration, ports and disk queue, and both services run ``--cooldown`` s more,
stop emitting, flush and shut down. Then:

- emitted: what each service asked its SDK to send (counted by the service);
- arrived: spans in Jaeger for the service, log records in the collector's file output (one file per
  collector run: the file exporter truncates at start);
- lost = emitted - arrived; and for the tradeobs agent what its own self-metrics counted after its shutdown
  (``tradeobs.agent.items.exported`` / ``items.dropped`` by reason: a loss the agent did not count is a bug);
- resumed: for the tradeobs agent, seconds from the collector's restart until its exports stopped failing
  (the raw SDK has no such signal: ``-``).

The collector is down for exactly the outage; the first exports after the restart may take a retry
interval longer. Metrics are cumulative and re-exported every interval, so an outage costs them
resolution, not totals: they are not counted here.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


# --------------------------------------------------------------------------- the service (a subprocess)


def worker(kind: str, rate: float) -> int:
    """Emit spans and log records at ``rate``/s until stdin says stop; print the counts as JSON."""
    stop = threading.Event()
    counts = {"spans": 0, "logs": 0}
    if kind == "tradeobs":
        import tradeobs_agent

        agent = tradeobs_agent.init()
        tracer = agent.tracer("outage")
        log = tradeobs_agent.get_logger("system")

        def emit(i: int) -> None:
            with tracer.start_as_current_span("outage.op", attributes={"i": i}):
                pass
            log.info("outage record %d", i)

        from tradeobs_agent._internal.exporters import failing_targets

        recovered: list[float] = []  # wall-clock times delivery came back after failing

        def watch() -> None:
            was_failing = False
            while not stop.is_set():
                failing = bool(failing_targets())
                if was_failing and not failing:
                    recovered.append(time.time())
                was_failing = failing
                stop.wait(0.05)

        threading.Thread(target=watch, daemon=True).start()

        def finish() -> dict[str, Any]:
            agent.force_flush()
            tradeobs_agent.shutdown()  # its leftovers are counted as dropped{reason="shutdown"}
            return {"self_metrics": _self_metrics(tradeobs_agent.get_registry()), "recovered": recovered}
    else:
        import logging

        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        endpoint = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
        resource = Resource.create({"service.name": os.environ["TRADEOBS_SERVICE_NAME"]})
        tp = TracerProvider(resource=resource)
        tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
        lp = LoggerProvider(resource=resource)
        lp.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True)))
        logger = logging.getLogger("outage-sdk")
        logger.setLevel(logging.INFO)
        logger.addHandler(LoggingHandler(logger_provider=lp))
        sdk_tracer = tp.get_tracer("outage")

        def emit(i: int) -> None:
            with sdk_tracer.start_as_current_span("outage.op", attributes={"i": i}):
                pass
            logger.info("outage record %d", i)

        def finish() -> dict[str, Any]:
            tp.force_flush()
            lp.force_flush()
            tp.shutdown()
            lp.shutdown()
            return {"self_metrics": {}, "recovered": []}

    def run() -> None:
        i = 0
        t0 = time.monotonic()
        while not stop.is_set():
            i += 1
            emit(i)
            counts["spans"] += 1
            counts["logs"] += 1
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                stop.wait(delay)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    print("READY", flush=True)
    sys.stdin.readline()
    stop.set()
    thread.join()
    result = {"emitted": counts, **finish()}
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def _self_metrics(registry: Any) -> dict[str, Any]:
    """The agent's own counts after its shutdown (what it exported, what it dropped and why)."""
    out: dict[str, float] = {}
    for what in ("exported", "dropped"):
        family = registry.get(f"tradeobs.agent.items.{what}")
        for series in family.series() if family is not None else ():
            a = series.attributes
            key = f"{what} {a.get('signal')}" + (f" {a['reason']}" if "reason" in a else "")
            out[key] = out.get(key, 0) + series.value
    return out


# --------------------------------------------------------------------------- the harness


class Service:
    def __init__(self, kind: str, name: str, collector: Any, workdir: Path, rate: float) -> None:
        from tests.integration.agent_proc import agent_env
        from tests.integration.procs import _clean_env, free_port

        self.kind, self.name = kind, name
        env = {**_clean_env(), **agent_env(collector, workdir, name), "TRADEOBS_PROMETHEUS_PORT": str(free_port())}
        self.popen = subprocess.Popen(
            [sys.executable, __file__, "--worker", kind, "--rate", str(rate)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(workdir / f"{kind}.log", "ab"),  # noqa: SIM115 - closed with the process
            text=True,
            start_new_session=True,
        )
        assert self.popen.stdout is not None and self.popen.stdout.readline().strip() == "READY"

    def finish(self) -> dict[str, Any]:
        assert self.popen.stdin is not None and self.popen.stdout is not None
        self.popen.stdin.write("stop\n")
        self.popen.stdin.flush()
        for line in self.popen.stdout:
            if line.startswith("RESULT "):
                self.popen.wait(60)
                return dict(json.loads(line[7:]))
        raise RuntimeError(f"{self.kind} service gave no result (exit {self.popen.wait()})")

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()


def one_outage(outage: float, rate: float, warmup: float, cooldown: float, workdir: Path) -> list[dict[str, Any]]:
    from tests.integration.procs import jaeger_search, read_otlp_json_logs, start_collector, start_jaeger

    with start_jaeger(workdir / "jaeger") as jaeger:
        col = start_collector(
            workdir / "col",
            jaeger.otlp_grpc_endpoint,
            extra_env={"TRADEOBS_LOGS_FILE_PATH": str(workdir / "logs-1.jsonl")},
        )
        services = []
        try:
            stamp = f"{int(outage)}s-{os.getpid()}"
            services = [
                Service("tradeobs", f"outage-tradeobs-{stamp}", col, workdir, rate),
                Service("sdk", f"outage-sdk-{stamp}", col, workdir, rate),
            ]
            time.sleep(warmup)
            col.stop()  # planned: SIGTERM, the collector drains its pipelines
            time.sleep(outage)
            restarted = time.time()
            col = start_collector(
                workdir / "col", jaeger.otlp_grpc_endpoint, env=col.env,
                extra_env={"TRADEOBS_LOGS_FILE_PATH": str(workdir / "logs-2.jsonl")},
            )  # fmt: skip
            time.sleep(cooldown)
            results = [(s, s.finish()) for s in services]
            time.sleep(3)  # the collector's batch timeout, Jaeger's batch, the file exporter's flush
        finally:
            for s in services:
                s.kill()
            col.stop()
        records = read_otlp_json_logs(workdir / "logs-1.jsonl") + read_otlp_json_logs(workdir / "logs-2.jsonl")
        rows = []
        for s, res in results:
            spans = sum(len(t["spans"]) for t in jaeger_search(jaeger.query_url, s.name, limit=99_999))
            logs = sum(
                1
                for r in records
                if r["_resource"].get("service.name") == s.name and "outage record" in str(r.get("body"))
            )  # not the agent's own warnings, which go out as log records too
            resumed = [t - restarted for t in res.pop("recovered") if t >= restarted - 1]
            rows.append(
                {"outage": outage, "service": s.kind, "arrived": {"spans": spans, "logs": logs},
                 "resumed": resumed[0] if resumed else None, **res}
            )  # fmt: skip
        return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--outages", default="10,60,300", help="outage lengths in seconds, comma-separated")
    p.add_argument("--rate", type=float, default=20.0, help="spans and log records per second per service")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--cooldown", type=float, default=20.0)
    p.add_argument("--worker", choices=("tradeobs", "sdk"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.rate)
    rows = []
    for outage in (float(x) for x in args.outages.split(",")):
        with tempfile.TemporaryDirectory(prefix="tradeobs-outage-") as d:
            rows += one_outage(outage, args.rate, args.warmup, args.cooldown, Path(d))
    print(f"\ncollector stopped (SIGTERM) for N s, restarted with the same disk queue; {args.rate:g}/s per signal")
    print(f"{'outage':>7}  {'service':<15} {'spans emitted':>13} {'arrived':>8} {'lost':>6}  "
          f"{'logs emitted':>12} {'arrived':>8} {'lost':>6}  {'resumed':>8}  agent self-metrics")  # fmt: skip
    for r in rows:
        e, a = r["emitted"], r["arrived"]
        shown = {k: v for k, v in r["self_metrics"].items() if v and "metrics" not in k}
        sm = ", ".join(f"{k}={v:g}" for k, v in sorted(shown.items())) or "-"
        name = "tradeobs agent" if r["service"] == "tradeobs" else "raw OTel SDK"
        resumed = "-" if r["resumed"] is None else f"+{r['resumed']:.1f}s"
        print(f"{r['outage']:>6g}s  {name:<15} {e['spans']:>13} {a['spans']:>8} {e['spans'] - a['spans']:>6}  "
              f"{e['logs']:>12} {a['logs']:>8} {e['logs'] - a['logs']:>6}  {resumed:>8}  {sm}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
