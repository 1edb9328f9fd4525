"""A FastAPI service begun with raw OpenTelemetry, to which tradeobs is added (tests/integration/test_coexist.py).

Before ``tradeobs_agent.init()``: its own ``TracerProvider`` and ``MeterProvider`` (OTLP exporters to
``OTEL_EXPORTER_OTLP_ENDPOINT``; the meter provider has no Prometheus reader) set globally, and
``FastAPIInstrumentor`` applied to its app. After ``init()``, in its lifespan's start-up, what many services do
there: its logging ``dictConfig`` (``disable_existing_loggers`` left at its default), then a line saying it started.
``GET /trade/{marker}`` places and fills an order and logs a line.
"""

from __future__ import annotations

import logging
import logging.config
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import tradeobs_agent

LOGGING = {
    "version": 1,
    "formatters": {"plain": {"format": "APP %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "plain"}},
    "root": {"level": "INFO", "handlers": ["console"]},
}

endpoint = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
resource = Resource.create({"service.name": os.environ["TRADEOBS_SERVICE_NAME"], "team": "desk"})
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
trace.set_tracer_provider(tracer_provider)
reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint, insecure=True), 1000)
metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    logging.config.dictConfig(LOGGING)
    logging.getLogger("shop.api").info("shop started %s", os.environ["MARKER"])  # made after it: not disabled
    yield


app = FastAPI(lifespan=lifespan)
FastAPIInstrumentor.instrument_app(app)
tradeobs_agent.init()
tradeobs_agent.instrument_app(app)
telemetry = tradeobs_agent.TradingTelemetry(strategy="momentum", venue="paper")


@app.get("/ok")
def ok() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/trade/{marker}")
def trade(marker: str) -> dict[str, str | None]:
    order = telemetry.order_signal(f"c-{marker}", "AAPL", "buy", 10, 100.0)
    order.submitted()
    order.fill(10, 100.1)
    logging.getLogger("shop.api").info("traded %s", marker)
    agent = tradeobs_agent.get_agent()
    return {"prometheus": agent.prometheus_url if agent is not None else None}
