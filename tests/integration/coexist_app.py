"""A FastAPI service with observability of its own, to which tradeobs is added (tests/integration/test_coexist.py).

Before ``tradeobs_agent.init()``, as docs/logging.md and docs/agent.md ask: its logging set-up (``dictConfig``
with its own formatter and handlers, the root at DEBUG, a library silenced, a logger that does not propagate),
its own OpenTelemetry providers (OTLP exporters to ``OTEL_EXPORTER_OTLP_ENDPOINT``, its own resource, the SDK's
``LoggingHandler`` on the root logger) and prometheus_client metrics on its own ``/metrics`` route.
``GET /trade/{marker}`` logs a line, places an order inside a span of its own and logs inside the order.
"""

from __future__ import annotations

import logging
import logging.config
import os
import warnings

import prometheus_client
from fastapi import FastAPI
from fastapi.responses import Response
from opentelemetry import metrics, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import tradeobs_agent

logging.config.dictConfig(
    {
        "version": 1,
        "formatters": {"plain": {"format": "APP %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "plain"}},
        "loggers": {"noisy.lib": {"level": "CRITICAL"}, "audit": {"handlers": ["console"], "propagate": False}},
        "root": {"level": "DEBUG", "handlers": ["console"]},
    }
)
endpoint = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
resource = Resource.create({"service.name": os.environ["TRADEOBS_SERVICE_NAME"], "team": "desk"})
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
trace.set_tracer_provider(tracer_provider)
reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint, insecure=True))
metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True)))
set_logger_provider(logger_provider)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's LoggingHandler, still what services use
    logging.getLogger().addHandler(LoggingHandler(level=logging.INFO, logger_provider=logger_provider))

tradeobs_agent.init()

app = FastAPI()
tradeobs_agent.instrument_app(app)
tracer = trace.get_tracer(__name__)
trades = prometheus_client.Counter("shop_trades", "trades handled")
telemetry = tradeobs_agent.TradingTelemetry(strategy="momentum", venue="paper")
log = logging.getLogger("shop.api")
execution = tradeobs_agent.get_logger("execution")


@app.get("/ok")
def ok() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/trade/{marker}")
def trade(marker: str) -> dict[str, str]:
    with tracer.start_as_current_span("handle-trade") as span:
        trades.inc()
        log.info("app handling %s", marker)
        log.debug("app debug %s", marker)
        logging.getLogger("noisy.lib").warning("noisy %s", marker)
        order = telemetry.order_signal(f"c-{marker}", "AAPL", "buy", 10, 100.0)
        with order.scope():
            order.submitted()
            execution.info("order %s sent", marker)
        order.fill(10, 100.1)
        return {"trace_id": format(span.get_span_context().trace_id, "032x"), "order_trace_id": order.trace_id}


@app.get("/metrics")
def prometheus_metrics() -> Response:
    return Response(prometheus_client.generate_latest(), media_type=prometheus_client.CONTENT_TYPE_LATEST)
