"""The peer for ``overhead.py``: the demo's telemetry written by hand on the raw OpenTelemetry SDK.

What a team would write without tradeobs: the same instruments (OTel names, the same
attributes), one trace per order with a child span per step, latency histograms recorded
in the step span's context (so the SDK keeps trace exemplars), OTLP/gRPC for all three
signals with the SDK's batch processors and reference exporters, the SDK's Prometheus
reader on ``prometheus_client``'s HTTP server, and the INFO log lines through the SDK's
``LoggingHandler`` plus a stdlib ``FileHandler`` writing JSON lines.

>>> tt = start("127.0.0.1:4317", prom_port=9464, logdir="/tmp/x")   # doctest: +SKIP
>>> TradingEngine(cfg, telemetry=tt)                                  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Status, StatusCode

_ORDER_ATTRS = ("symbol", "side", "order_type", "venue", "strategy")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        span = trace.get_current_span().get_span_context()
        doc = {
            "timestamp": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if span.is_valid:
            doc["trace_id"] = format(span.trace_id, "032x")
        return json.dumps(doc)


def start(otlp: str, prom_port: int, logdir: str, metric_interval_ms: int = 10_000) -> RawOtelTelemetry:
    """Set up the three SDK providers (the hand-written equivalent of ``init()``) and the telemetry object;
    metrics go over OTLP every ``metric_interval_ms`` (the SDK's reader default is 60 s)."""
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from prometheus_client import start_http_server

    endpoint = f"http://{otlp}"
    resource = Resource.create({"service.name": "bench-raw-otel"})
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True), schedule_delay_millis=1000)
    )
    start_http_server(prom_port, addr="127.0.0.1")
    mp = MeterProvider(
        resource=resource,
        metric_readers=[
            PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=endpoint, insecure=True), export_interval_millis=metric_interval_ms
            ),
            PrometheusMetricReader(),
        ],
    )
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True), schedule_delay_millis=1000)
    )
    root = logging.getLogger()
    root.addHandler(LoggingHandler(level=logging.INFO, logger_provider=lp))
    files = logging.FileHandler(os.path.join(logdir, "service.jsonl"))
    files.setFormatter(_JsonFormatter())
    root.addHandler(files)
    root.setLevel(logging.INFO)
    return RawOtelTelemetry(tp, mp, lp)


class RawOtelTelemetry:
    """The subset of ``TradingTelemetry`` the demo engine calls, on SDK instruments and spans."""

    def __init__(self, tp: Any, mp: Any, lp: Any, strategy: str = "momentum", venue: str = "paper") -> None:
        self.providers = (tp, mp, lp)
        self.tracer = tp.get_tracer("bench.raw")
        m = mp.get_meter("bench.raw")
        self.strategy, self.venue = strategy, venue
        self.price = m.create_gauge("trading.marketdata.price", "{currency}")
        self.ticks = m.create_counter("trading.marketdata.ticks", "{tick}")
        self.feed_lag = m.create_histogram("trading.marketdata.feed.lag", "s")
        self.decision = m.create_histogram("trading.strategy.decision.duration", "s")
        self.submitted = m.create_counter("trading.orders.submitted", "{order}")
        self.acknowledged = m.create_counter("trading.orders.acknowledged", "{order}")
        self.filled = m.create_counter("trading.orders.filled", "{order}")
        self.partially = m.create_counter("trading.orders.partially_filled", "{fill}")
        self.rejected = m.create_counter("trading.orders.rejected", "{order}")
        self.signal_to_submit = m.create_histogram("trading.order.signal_to_submit.latency", "s")
        self.submit_to_ack = m.create_histogram("trading.order.submit_to_ack.latency", "s")
        self.submit_to_fill = m.create_histogram("trading.order.submit_to_fill.latency", "s")
        self.slippage = m.create_histogram("trading.order.slippage", "{bp}")
        self.fill_ratio = m.create_histogram("trading.order.fill_ratio", "1")
        self.position_qty = m.create_gauge("trading.position.quantity", "{unit}")
        self.position_notional = m.create_gauge("trading.position.notional", "{currency}")
        self.position_avg = m.create_gauge("trading.position.avg_price", "{currency}")
        self.limit_use = m.create_gauge("trading.risk.limit.utilization", "1")
        self.realized = m.create_gauge("trading.pnl.realized", "{currency}")
        self.unrealized = m.create_gauge("trading.pnl.unrealized", "{currency}")
        self.equity = m.create_gauge("trading.equity", "{currency}")
        self.drawdown = m.create_gauge("trading.drawdown", "1")
        self.kill = m.create_gauge("trading.risk.kill_switch.engaged", "1")
        self.breaches = m.create_counter("trading.risk.breaches", "{breach}")
        self.loop_lag = m.create_histogram("trading.eventloop.lag", "s")
        self.orders: dict[str, RawOrder] = {}

    def event_loop_lag_monitor(self, interval: float = 0.1) -> asyncio.Task[None]:
        """The demo engine's loop-lag monitor, as a service would write it on the SDK (no stall gauge)."""

        async def watch() -> None:
            loop = asyncio.get_running_loop()
            while True:
                t0 = loop.time()
                await asyncio.sleep(interval)
                self.loop_lag.record(max(0.0, loop.time() - t0 - interval))

        return asyncio.get_running_loop().create_task(watch(), name="raw-eventloop-lag")

    def shutdown(self) -> None:
        for p in self.providers:
            p.shutdown()

    def tick(self, symbol: str, price: float, exchange_ts: float | None = None) -> None:
        attrs = {"symbol": symbol}
        self.price.set(price, attrs)
        self.ticks.add(1, attrs)
        if exchange_ts is not None:
            self.feed_lag.record(max(0.0, time.time() - exchange_ts), attrs)

    def decision_time(self, seconds: float, symbol: str | None = None) -> None:
        self.decision.record(seconds, {"strategy": self.strategy, "symbol": symbol or ""})

    def order_signal(
        self, cid: str, symbol: str, side: str, qty: float, price: float | None = None, order_type: str = "market"
    ) -> RawOrder:
        o = RawOrder(self, cid, symbol, side, qty, price, order_type)
        self.orders[cid] = o
        if len(self.orders) > 10_000:  # bounded, like tradeobs' book
            self.orders.pop(next(iter(self.orders)))
        return o

    def order(self, cid: str) -> RawOrder | None:
        return self.orders.get(cid)

    def position(self, symbol: str, qty: float, price: float, avg_price: float | None = None) -> None:
        attrs = {"symbol": symbol, "strategy": self.strategy}
        self.position_qty.set(qty, attrs)
        self.position_notional.set(qty * price, attrs)
        if avg_price is not None:
            self.position_avg.set(avg_price, attrs)

    def limit_utilization(self, limit: str, ratio: float) -> None:
        self.limit_use.set(ratio, {"strategy": self.strategy, "limit": limit})

    def pnl(self, symbol: str, realized: float, unrealized: float) -> None:
        attrs = {"symbol": symbol, "strategy": self.strategy}
        self.realized.set(realized, attrs)
        self.unrealized.set(unrealized, attrs)

    def account(self, equity: float, drawdown: float | None = None) -> None:
        self.equity.set(equity, {"strategy": self.strategy})
        self.drawdown.set(drawdown or 0.0, {"strategy": self.strategy})

    def kill_switch(self, engaged: bool, reason: str | None = None) -> None:
        self.kill.set(1 if engaged else 0, {"strategy": self.strategy})

    def breach(self, limit: str, symbol: str | None = None) -> None:
        self.breaches.add(1, {"strategy": self.strategy, "venue": self.venue, "limit": limit, "symbol": symbol or ""})


class RawOrder:
    def __init__(
        self, tt: RawOtelTelemetry, cid: str, symbol: str, side: str, qty: float, price: Any, order_type: str
    ) -> None:
        self.tt, self.symbol, self.side, self.qty, self.price = tt, symbol, side, qty, price
        self.attrs = dict(zip(_ORDER_ATTRS, (symbol, side, order_type, tt.venue, tt.strategy), strict=True))
        span_attrs = {"order.id": cid, "order.qty": float(qty), **self.attrs}
        if price is not None:
            span_attrs["order.price"] = float(price)
        self.root = tt.tracer.start_span("order", context=Context(), attributes=span_attrs)
        self.ctx = trace.set_span_in_context(self.root)
        self.t_signal = self.t_last = time.time_ns()
        self.t_submit: int | None = None
        self.filled = 0.0
        self.done_ = False
        self.trace_id = format(self.root.get_span_context().trace_id, "032x")

    def scope(self) -> Any:
        """The order's root span current in the block (``TradingTelemetry``'s ``order.scope()``)."""
        return trace.use_span(self.root, end_on_exit=False)

    def _step(self, name: str, attributes: dict[str, Any] | None = None, error: str | None = None) -> Any:
        now = time.time_ns()
        span = self.tt.tracer.start_span(name, context=self.ctx, start_time=self.t_last, attributes=attributes)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=now)
        self.t_last = now
        return now, trace.set_span_in_context(span)

    def risk_check(self, passed: bool, reason: str | None = None, checks: dict[str, Any] | None = None) -> None:
        attrs = {"risk.passed": bool(passed), **{f"risk.check.{k}": v for k, v in (checks or {}).items()}}
        self._step("risk_check", attrs, None if passed else reason or "risk")
        if not passed:
            self.rejected(reason or "risk")

    def submitted(self) -> None:
        now, ctx = self._step("submit")
        self.t_submit = now
        self.tt.submitted.add(1, self.attrs)
        self.tt.signal_to_submit.record((now - self.t_signal) / 1e9, self.attrs, context=ctx)

    def acked(self, venue_order_id: str | None = None) -> None:
        now, ctx = self._step("ack", {"order.venue_order_id": str(venue_order_id)})
        self.tt.acknowledged.add(1, self.attrs)
        if self.t_submit is not None:
            self.tt.submit_to_ack.record((now - self.t_submit) / 1e9, self.attrs, context=ctx)

    def fill(self, qty: float, price: float, expected_price: float | None = None) -> None:
        first = self.filled == 0
        self.filled += qty
        ref = expected_price or self.price
        slip = (price - ref) / ref * 1e4 * (-1 if self.side == "sell" else 1) if ref else 0.0
        now, ctx = self._step("fill", {"fill.qty": float(qty), "fill.price": float(price), "fill.slippage_bps": slip})
        if first and self.t_submit is not None:
            self.tt.submit_to_fill.record((now - self.t_submit) / 1e9, self.attrs, context=ctx)
        self.tt.slippage.record(slip, self.attrs, context=ctx)
        if self.filled >= self.qty:
            self.tt.filled.add(1, self.attrs)
            self.tt.fill_ratio.record(1.0, self.attrs, context=self.ctx)
            self._end("filled")
        else:
            self.tt.partially.add(1, self.attrs)

    def rejected(self, reason: str) -> None:
        self.tt.rejected.add(1, {**self.attrs, "reason": reason})
        self.root.set_status(Status(StatusCode.ERROR, reason))
        self._end("rejected")

    def _end(self, outcome: str) -> None:
        if not self.done_:
            self.done_ = True
            self.root.set_attributes({"order.outcome": outcome, "order.filled_qty": self.filled})
            self.root.end()
