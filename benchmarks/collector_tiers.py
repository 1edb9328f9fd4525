"""Spans/s through the collector tiers vs the single collector, measured in the same run.

    python benchmarks/collector_tiers.py [--spans 200000] [--rounds 2] [--senders 4]

Setups, each a fresh set of real ``otelcol-tradeobs`` processes on loopback (tests/integration/procs.py,
tests/integration/tiers.py), all exporting traces to the same kind of sink:

- ``single`` (the peer): collector/otel-collector.yaml -> sink;
- ``tiers``: collector/otel-collector-agent.yaml (static resolver) -> 2 x collector/otel-collector-gateway.yaml
  (tail sampling with ``--sampling`` percent kept, default 100 so every span is delivered as in the peer)
  -> sink.

The sink is one more otelcol-tradeobs (otel-collector.yaml, traces to the ``debug`` exporter) whose
``otelcol_receiver_accepted_spans`` counts what arrived: a sink cheaper than a trace store, so the
collectors, not the store, are measured. ``--senders`` threads push pre-built OTLP/gRPC requests
(``--spans-per-request`` spans: orders of 5 spans, root ``order`` ERROR-free, unique trace ids) to the
entry collector as fast as it accepts them; a refused request (memory limiter) is retried and counted.

Columns: ``accept/s`` = spans / time until the entry collector accepted the last one; ``e2e/s`` = spans /
time until the sink counted them all (includes the gateways' tail-sampling decision wait, 1 s after
the root span); ``refused`` = requests refused and retried. Everything shares this machine's cores
(the tiers run 4 collectors where the peer runs 2): figures are for comparison within one run, not
capacity of dedicated hosts. Setups alternate over ``--rounds`` to spread the machine's drift; each round ends with
the ratio ``tiers / single`` of both rates.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.procs import CollectorProc, start_collector  # noqa: E402
from tests.integration.tiers import collector_counter, start_agent_collector, start_gateway  # noqa: E402

STEPS = ("risk_check", "submit", "ack", "fill")


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def build_requests(spans: int, per_request: int) -> list[bytes]:
    """Serialized ExportTraceServiceRequests: orders of 1 + len(STEPS) spans, each with a fresh trace id."""
    per_order = 1 + len(STEPS)
    orders_per_request = max(1, per_request // per_order)
    out: list[bytes] = []
    now = time.time_ns()
    made = 0
    while made < spans:
        ss = trace_pb2.ScopeSpans()
        for _ in range(orders_per_request):
            if made >= spans:
                break
            trace_id, root_id = os.urandom(16), os.urandom(8)
            root = ss.spans.add(
                trace_id=trace_id,
                span_id=root_id,
                name="order",
                kind=trace_pb2.Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=now,
                end_time_unix_nano=now + 5_000_000,
            )
            root.attributes.extend(
                [_kv("order.symbol", "AAPL"), _kv("order.side", "buy"), _kv("order.outcome", "filled")]
            )
            made += 1
            for i, step in enumerate(STEPS):
                if made >= spans:
                    break
                ss.spans.add(
                    trace_id=trace_id,
                    span_id=os.urandom(8),
                    parent_span_id=root_id,
                    name=step,
                    start_time_unix_nano=now + i * 1_000_000,
                    end_time_unix_nano=now + (i + 1) * 1_000_000,
                )
                made += 1
        rs = trace_pb2.ResourceSpans(resource=Resource(attributes=[_kv("service.name", "bench-tiers")]))
        rs.scope_spans.append(ss)
        out.append(trace_service_pb2.ExportTraceServiceRequest(resource_spans=[rs]).SerializeToString())
    return out


def push(endpoint: str, requests: list[bytes], senders: int) -> tuple[float, int]:
    """Send every request (``senders`` threads, one channel each) -> (seconds, refused-and-retried)."""
    refused = 0
    lock = threading.Lock()
    chunks = [requests[i::senders] for i in range(senders)]

    def run(chunk: list[bytes]) -> None:
        nonlocal refused
        with grpc.insecure_channel(endpoint) as channel:
            export = channel.unary_unary(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                request_serializer=lambda b: b,
                response_deserializer=trace_service_pb2.ExportTraceServiceResponse.FromString,
            )
            for body in chunk:
                while True:
                    try:
                        export(body, timeout=30)
                        break
                    except grpc.RpcError as e:
                        if e.code() not in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE):
                            raise
                        with lock:
                            refused += 1
                        time.sleep(0.05)

    threads = [threading.Thread(target=run, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, refused


def wait_count(metrics_url: str, total: int, start: float, timeout: float = 300) -> float:
    """Seconds from ``start`` until the sink accepted ``total`` spans."""
    deadline = time.perf_counter() + timeout
    while True:
        got = collector_counter(metrics_url, "otelcol_receiver_accepted_spans")
        if got >= total:
            return time.perf_counter() - start
        if time.perf_counter() > deadline:
            raise SystemExit(f"sink counted {got:.0f} of {total} spans after {timeout:.0f}s")
        time.sleep(0.05)


def run_setup(
    kind: str, tmp: Path, requests: list[bytes], spans: int, senders: int, sampling: float
) -> dict[str, float]:
    with ExitStack() as stack:
        sink = stack.enter_context(
            start_collector(tmp / "sink", "127.0.0.1:1", extra_env={"TRADEOBS_TRACES_EXPORTERS": "[debug]"})
        )
        entry: CollectorProc
        if kind == "single":
            entry = stack.enter_context(start_collector(tmp / "single", sink.otlp_grpc_endpoint))
        else:
            gateways = [
                stack.enter_context(
                    start_gateway(
                        tmp / f"gw-{i}",
                        sink.otlp_grpc_endpoint,
                        sampling_percent=sampling,
                        decision_wait="10s",
                        decision_wait_after_root="1s",
                    )
                )
                for i in range(2)
            ]
            entry = stack.enter_context(
                start_agent_collector(tmp / "agent", static=[g.otlp_grpc_endpoint for g in gateways])
            )
        start = time.perf_counter()
        sent_s, refused = push(entry.otlp_grpc_endpoint, requests, senders)
        accepted = collector_counter(entry.metrics_url, "otelcol_receiver_accepted_spans")
        if accepted != spans:
            raise SystemExit(f"{kind}: entry collector accepted {accepted:.0f} of {spans} spans")
        expected = spans if kind == "single" or sampling >= 100 else 0
        e2e_s = wait_count(sink.metrics_url, expected, start) if expected else float("nan")
        return {"accept": spans / sent_s, "e2e": spans / e2e_s if expected else float("nan"), "refused": refused}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=200_000)
    ap.add_argument("--spans-per-request", type=int, default=500)
    ap.add_argument("--senders", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--sampling", type=float, default=100.0, help="gateway tail-sampling percent (100: keep all)")
    args = ap.parse_args()

    rows: list[tuple[int, str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-tiers-") as d:
        for r in range(args.rounds):
            for kind in ("single", "tiers"):
                requests = build_requests(args.spans, args.spans_per_request)
                res = run_setup(kind, Path(d) / f"{kind}-{r}", requests, args.spans, args.senders, args.sampling)
                rows.append((r, kind, res))
                print(f"round {r} {kind}: {res}", file=sys.stderr, flush=True)

    print(
        f"\n{args.spans} spans/run, {args.spans_per_request}/request, {args.senders} senders, "
        f"gateway sampling {args.sampling:g}%, {os.cpu_count()} CPUs shared\n"
    )
    print(f"{'round':>5}  {'setup':<32}  {'accept/s':>10}  {'e2e/s':>10}  {'refused':>7}")
    names = {"single": "single collector (peer)", "tiers": "agent -> 2 gateways"}
    for r, kind, res in rows:
        print(f"{r:>5}  {names[kind]:<32}  {res['accept']:>10.0f}  {res['e2e']:>10.0f}  {res['refused']:>7.0f}")
        if kind == "tiers":  # the ratio to the peer of the same round
            peer = next(p for q, k, p in rows if q == r and k == "single")
            ratio = {c: res[c] / peer[c] if peer[c] else float("nan") for c in ("accept", "e2e")}
            print(f"{r:>5}  {'tiers / single':<32}  {ratio['accept']:>9.2f}x  {ratio['e2e']:>9.2f}x")


if __name__ == "__main__":
    main()
