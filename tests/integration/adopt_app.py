"""A trading team's FastAPI service with observability of its own before tradeobs (test_adoption.py).

Before ``tradeobs_agent.init()``: its logging ``dictConfig`` (a file handler whose lines carry the trace id), structlog
routed to the standard library, prometheus_client metrics (with its default process and gc collectors) served by
``start_http_server`` on ``APP_PROM_PORT``, and, with ``OWN_OTEL=1``, its own ``TracerProvider`` exporting over OTLP
with its own resource (``Resource.create({"service.name": SHOP_NAME, "team": "desk"})``). Run it under
``opentelemetry-instrument`` instead for zero-code instrumentation. ``SHARE_PROM=1`` puts the tradeobs series on the
service's own prometheus_client registry (docs/metrics.md). ``GET /order/{n}`` logs and places an order inside a span.
"""

from __future__ import annotations

import logging
import logging.config
import os

import prometheus_client
import structlog
from fastapi import FastAPI, Request, Response
from opentelemetry import trace

import tradeobs_agent


class TraceIdFilter(logging.Filter):
    """The service's own trace id on its file lines (what OTEL_PYTHON_LOG_CORRELATION does, by hand)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else "-"
        return True


logging.config.dictConfig(
    {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"trace": {"()": TraceIdFilter}},
        "formatters": {"line": {"format": "%(levelname)s %(name)s trace_id=%(trace_id)s %(message)s"}},
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "filename": os.environ["APP_LOG_FILE"],
                "formatter": "line",
                "filters": ["trace"],
            }
        },
        "loggers": {"shop": {"level": "INFO", "handlers": ["file"]}},
        "root": {"level": "INFO"},
    }
)
structlog.configure(
    processors=[
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.JSONRenderer(),
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
)
ORDERS = prometheus_client.Counter("shop_orders", "orders placed", ["symbol"])
prometheus_client.start_http_server(int(os.environ["APP_PROM_PORT"]), addr="127.0.0.1")

if os.environ.get("OWN_OTEL") == "1":
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": os.environ["SHOP_NAME"], "team": "desk"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(insecure=True)))  # OTEL_EXPORTER_OTLP_ENDPOINT
    trace.set_tracer_provider(provider)

agent = tradeobs_agent.init()
if os.environ.get("SHARE_PROM") == "1":
    prometheus_client.REGISTRY.register(agent.prometheus_collector())

app = FastAPI()


@app.middleware("http")
async def shop_header(request: Request, call_next):  # type: ignore[no-untyped-def]
    response: Response = await call_next(request)
    response.headers["x-shop"] = "1"
    return response


tradeobs_agent.instrument_app(app)
tracer = trace.get_tracer("shop")
telemetry = tradeobs_agent.TradingTelemetry(strategy="momo", venue="paper")
log = logging.getLogger("shop.api")
slog = structlog.get_logger("shop.struct")


@app.get("/ok")
def ok() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/order/{n}")
def order(n: str) -> dict[str, str]:
    with tracer.start_as_current_span("place-order") as span:
        ORDERS.labels("AAPL").inc()
        log.info("placing %s", n)
        slog.info("struct placing", n=n)
        o = telemetry.order_signal(f"c-{n}", "AAPL", "buy", 10, 100.0)
        o.submitted()
        telemetry.execution(f"c-{n}").fill(10, 100.02, expected_price=100.0)
        return {"trace_id": format(span.get_span_context().trace_id, "032x"), "order_trace_id": o.trace_id}
