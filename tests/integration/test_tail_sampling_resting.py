"""The gateway's ``slow`` tail-sampling policy, with a market maker's orders: a resting quote is not a slow order.

    tradeobs agent (this process) --OTLP--> gateway (collector/otel-collector-gateway.yaml, the-rest at 0 %)
                                                --> Jaeger

A market maker's quotes rest at the venue for seconds, replaced and then cancelled: each is one trace from its
signal to its cancel. The gateway kept every trace longer than ``TRADEOBS_TAIL_LATENCY_THRESHOLD_MS`` (first span
start to last span end), so it kept every quote that rested longer than 500 ms: a bot quoting 1,000 symbols
(55 quotes/s, median life 0.37 s) had 40 % of its traces kept as "slow", 47 % in all where the share was 10 %,
and a quote resting 2 s or more was always kept: the share did nothing (docs/scaling.md). What is slow in an order
is a step (signal -> submit, the venue's submit -> ack, a risk check, a fill: a quote filled after resting is a
slow fill, whose exemplar should find its trace) or a market order's whole life; a limit order's time resting in the
book before its cancel is not. Each case below is one order (or one span of the service's
own), under a threshold of 3 s, decided by a gateway that keeps 0 % of the rest.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .procs import JaegerProc, jaeger_search, start_jaeger, wait_for
from .tiers import collector_counter, start_gateway

pytestmark = pytest.mark.integration

# 3 s, not 1: the quotes' steps made back to back (signal, submit, ack) must stay under it, and a loaded machine
# can stall a process for longer than a second between two calls (the fast ones would then be kept as slow)
THRESHOLD_MS = 3000
OVER = 4.0  # seconds: a wait well over the threshold (a lower bound: the machine can only make it longer)
DECIDED = "otelcol_processor_tail_sampling_global_count_traces_sampled"


@pytest.fixture
def jaeger(tmp_path: Path) -> Iterator[JaegerProc]:
    with start_jaeger(tmp_path / "jaeger") as j:
        yield j


def test_a_resting_quote_is_not_kept_as_slow_but_a_slow_ack_a_slow_market_order_and_a_slow_request_are(
    tmp_path: Path, jaeger: JaegerProc
) -> None:
    from opentelemetry import trace

    import tradeobs_agent
    from tradeobs_agent.testing import reset

    with start_gateway(
        tmp_path / "gw",
        jaeger.otlp_grpc_endpoint,
        sampling_percent=0,
        latency_threshold_ms=THRESHOLD_MS,
        decision_wait="20s",
        decision_wait_after_root="1s",
    ) as gw:
        reset()
        service = f"mm-{time.time_ns()}"
        agent = tradeobs_agent.init(
            service_name=service,
            otlp=tradeobs_agent.OtlpOptions(endpoint=f"http://{gw.otlp_grpc_endpoint}", protocol="grpc"),
            prometheus=False,
            live=False,
            logs=False,
        )
        t0 = time.time()
        try:
            tt = tradeobs_agent.TradingTelemetry(strategy="mm", venue="binance")
            # A quote acknowledged at once, resting, replaced, resting, cancelled: its whole life is 2 x OVER.
            quote = tt.order_signal("q-1", "BTC-USDT", "buy", 1, 100.0, order_type="limit")
            quote.submitted()
            quote.acked("V-q-1")
            time.sleep(OVER)
            quote.replaced(new_client_order_id="q-1a", price=100.5)
            time.sleep(OVER)
            quote.cancelled("requote")
            # A quote filled after resting: a slow fill (its submit -> fill exemplar leads to this trace).
            filled = tt.order_signal("q-2", "ETH-USDT", "sell", 1, 10.0, order_type="limit")
            filled.submitted()
            filled.acked("V-q-2")
            # The venue slow to acknowledge: submit -> ack over the threshold.
            slow_ack = tt.order_signal("s-1", "BTC-USDT", "buy", 1, 100.0, order_type="limit")
            slow_ack.submitted()
            # A market order filled late.
            market = tt.order_signal("m-1", "BTC-USDT", "buy", 1, None, order_type="MARKET")
            market.submitted()
            market.acked("V-m-1")
            # A span of the service's own (a request, a broker call) over the threshold.
            with trace.get_tracer("mm.http").start_as_current_span("GET /book") as request:
                time.sleep(OVER)
            slow_ack.acked("V-s-1")
            slow_ack.cancelled("requote")
            market.fill(1, 100.2, expected_price=100.0)
            filled.fill(1, 10.0)
            # A fast order, for the count: nothing keeps it (0 % of the rest).
            fast = tt.order_signal("f-1", "BTC-USDT", "buy", 1, 100.0, order_type="limit")
            fast.submitted()
            fast.acked("V-f-1")
            fast.cancelled("requote")
            ids = {
                "resting quote": quote.trace_id,
                "filled quote": filled.trace_id,
                "slow ack": slow_ack.trace_id,
                "slow market order": market.trace_id,
                "slow request": format(request.get_span_context().trace_id, "032x"),
                "fast order": fast.trace_id,
            }
            assert agent.force_flush()
        finally:
            tradeobs_agent.shutdown()

        procs = (gw.proc, jaeger.proc)
        wait_for(lambda: collector_counter(gw.metrics_url, DECIDED) >= len(ids), "every trace decided", procs=procs)
        assert collector_counter(gw.metrics_url, DECIDED) == len(ids)
        kept_n = collector_counter(gw.metrics_url, DECIDED, sampled="true")

        def stored() -> set[str] | None:
            traces = jaeger_search(jaeger.query_url, service, start_s=t0 - 60, end_s=time.time() + 60)
            found = {t["traceID"] for t in traces}
            return found if len(found) >= kept_n else None

        kept = wait_for(stored, "Jaeger to hold what the gateway kept", procs=procs)
        got = {name for name, tid in ids.items() if tid in kept}
        assert got == {"filled quote", "slow ack", "slow market order", "slow request"}, got
