"""The demo as a FastAPI app factory (``tradeobs_agent.demo:create_app``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from opentelemetry import trace
from pydantic import BaseModel, Field

from .. import agent as _agent
from ..instrumentation import instrument_app
from .engine import DemoConfig, TradingEngine

_NAME_VARS = ("TRADEOBS_SERVICE_NAME", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES")


class OrderRequest(BaseModel):
    symbol: str | None = None
    side: str | None = Field(default=None, pattern="^(buy|sell)$")
    qty: float | None = Field(default=None, gt=0, le=1_000_000)


def create_app(config: DemoConfig | None = None, **init_kwargs: Any) -> FastAPI:
    """Build the demo service. Initialises the agent unless the host already did (then reuses it).

    Calling the factory in each worker (``uvicorn --factory`` / gunicorn) gives each
    worker its own agent and ``service.instance.id``; the workers share one Prometheus
    endpoint and live view (multi-process mode, see docs/agent.md).
    """
    config = config or DemoConfig.from_env()
    owns_agent = not _agent.is_initialized()
    if owns_agent:
        if "service_name" not in init_kwargs and not any(os.environ.get(v) for v in _NAME_VARS):
            init_kwargs["service_name"] = "tradeobs-demo"
        _agent.init(**init_kwargs)
    engine = TradingEngine(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine.start()
        try:
            yield
        finally:
            await engine.stop()
            if owns_agent:
                await asyncio.to_thread(_agent.shutdown)

    app = FastAPI(title="tradeobs demo: paper trading", lifespan=lifespan)
    app.state.engine = engine
    instrument_app(app)
    from .. import live

    app.mount("/telemetry", live.create_app())

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/telemetry/")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ready = engine.running and engine.ticks > 0
        return JSONResponse(
            {"ready": ready, "ticks": engine.ticks, "orders": engine.orders}, status_code=200 if ready else 503
        )

    @app.post("/api/orders")
    async def place_order(req: OrderRequest) -> JSONResponse:
        """Place one order now; the order's trace links to this request's (W3C ``traceparent``) trace."""
        if req.symbol is not None and req.symbol not in engine.marks:
            return JSONResponse({"error": f"unknown symbol {req.symbol!r}"}, status_code=404)
        oid = engine.place_order(req.symbol, req.side, req.qty)
        if oid is None:
            return JSONResponse({"error": "too many orders in flight"}, status_code=429)
        # Each order is its own trace (see tradeobs_agent.trading); it links to this request's span,
        # which continues the caller's W3C trace.
        request_ctx = trace.get_current_span().get_span_context()
        order = engine.tt.order(oid)
        body = {
            "order_id": oid,
            "order_trace_id": order.trace_id if order is not None else None,
            "request_trace_id": format(request_ctx.trace_id, "032x"),
        }
        return JSONResponse(body, status_code=202)

    return app
