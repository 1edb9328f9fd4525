"""A wall clock stepped back (NTP, chrony, an operator) under a service exporting to the real collector and Jaeger.

The collector's Prometheus exporter keeps each series' latest point and drops older ones: points stamped by a
wall clock stepped back 10 minutes were all older than the last kept, and the collector's ``/metrics`` showed the
value from before the step for those 10 minutes (a counter added to 5 times read 1). An order's spans were read
from the wall clock at each step: in Jaeger, a step back of 60 s between submit and ack showed an ``ack`` of 0 ms
(it ended before it began) and a ``fill`` 60 s before its order began.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

import tradeobs_agent
from tradeobs_agent.metrics import _clock, _series
from tradeobs_agent.options import OtlpOptions
from tradeobs_agent.testing import reset
from tradeobs_agent.trading import TradingTelemetry, orders, telemetry

from .procs import http_get, jaeger_trace, start_collector, start_jaeger, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    with ExitStack() as es:
        jaeger = es.enter_context(start_jaeger(tmp_path / "jaeger"))
        yield jaeger, es.enter_context(start_collector(tmp_path / "collector", jaeger.otlp_grpc_endpoint))


@pytest.fixture
def collector(stack: tuple[Any, Any]) -> Any:
    return stack[1]


def _shown(collector: Any, service: str) -> float | None:
    body = http_get(collector.prometheus_exporter_url + "/metrics")[1].decode()
    for line in body.splitlines():
        if line.startswith("clock_step_orders") and service in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_counts_after_a_step_back_reach_the_collectors_prometheus_exporter(
    collector: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEOBS_METRIC_EXPORT_INTERVAL", "0.5")
    service = "clock-" + uuid.uuid4().hex[:8]
    reset()
    agent = tradeobs_agent.init(
        service_name=service,
        otlp=OtlpOptions(endpoint="http://" + collector.otlp_grpc_endpoint, protocol="grpc", insecure=True),
        prometheus=False,
        live=False,
        logs=False,
    )
    try:
        orders = tradeobs_agent.counter("clock.step.orders").bind(kind="x")
        orders.add(1)
        wait_for(lambda: _shown(collector, service) == 1, "the first count at the collector", procs=(collector.proc,))
        stepped = time.time_ns
        back = 600 * 10**9
        # the wall clock steps back 10 minutes (gRPC's deadlines read time.time, which is left alone)
        monkeypatch.setattr(time, "time_ns", lambda: stepped() - back)
        monkeypatch.setattr(_clock, "_time_ns", lambda: stepped() - back, raising=False)
        monkeypatch.setattr(_series, "_time_ns", lambda: stepped() - back, raising=False)
        for n in range(2, 5):
            orders.add(1)
            wait_for(
                lambda n=n: _shown(collector, service) == n,
                f"count {n} at the collector after the step back",
                timeout=15,
                procs=(collector.proc,),
            )
    finally:
        agent.shutdown()
        reset()


def test_an_order_across_a_step_back_reads_in_jaeger_as_it_ran(
    stack: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    jaeger, collector = stack
    reset()
    agent = tradeobs_agent.init(
        service_name="clock-" + uuid.uuid4().hex[:8],
        otlp=OtlpOptions(endpoint="http://" + collector.otlp_grpc_endpoint, protocol="grpc", insecure=True),
        prometheus=False,
        live=False,
        logs=False,
    )
    try:
        wall = {"ns": 1_800_000_000 * 10**9}
        mono = {"s": 5_000.0}
        for module in (orders, telemetry):  # the clocks the trading calls read (orders read the wall before the fix)
            monkeypatch.setattr(module, "_time_ns", lambda: wall["ns"], raising=False)
            monkeypatch.setattr(module, "_monotonic", lambda: mono["s"])

        def elapse(seconds: float) -> None:
            wall["ns"] += round(seconds * 1e9)
            mono["s"] += seconds

        tt = TradingTelemetry(strategy="s", venue="v")
        o = tt.order_signal("c-step", "AAPL", "buy", 10, price=1.0)
        elapse(0.002)
        o.submitted()
        elapse(0.003)
        wall["ns"] -= 60 * 10**9  # NTP steps the clock back
        o.acked("v-1")
        elapse(0.005)
        o.fill(10, 1.0)
        trace_id = o.trace_id
        assert trace_id
        agent.force_flush()
        trace = wait_for(lambda: jaeger_trace(jaeger.query_url, trace_id), "the order's trace in Jaeger")
        spans = {s["operationName"]: s for s in trace["spans"]}
        root = spans["order"]
        got = {name: (s["startTime"] - root["startTime"], s["duration"]) for name, s in spans.items()}
        assert got == {"order": (0, 10_000), "submit": (0, 2_000), "ack": (2_000, 3_000), "fill": (5_000, 5_000)}
        tt.close()
    finally:
        agent.shutdown()
        reset()
