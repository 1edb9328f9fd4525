"""The demo as a FastAPI app factory (``tradeobs_agent.demo:create_app``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from opentelemetry import trace
from pydantic import BaseModel, Field

from .. import agent as _agent
from .._version import __version__
from ..config import resolve_settings
from ..instrumentation import instrument_app
from .engine import DemoConfig, TradingEngine


class OrderRequest(BaseModel):
    symbol: str | None = None
    side: str | None = Field(default=None, pattern="^(buy|sell)$")
    qty: float | None = Field(default=None, gt=0, le=1_000_000)


def _unset(config_file: Any) -> set[str]:
    """Which of ``service_name`` and ``service_version`` no source sets (``TRADEOBS_*``, ``OTEL_SERVICE_NAME``, the
    identity in ``OTEL_RESOURCE_ATTRIBUTES``, the config file): the demo names those itself."""
    report = resolve_settings(config_file=config_file)[1]
    return {name for name in ("service_name", "service_version") if report.source(name) == "default"}


def create_app(config: DemoConfig | None = None, **init_kwargs: Any) -> FastAPI:
    """Build the demo service. Initialises the agent unless the host already did (then reuses it).

    Calling the factory in each worker (``uvicorn --factory`` / gunicorn) gives each
    worker its own agent and ``service.instance.id``; the workers share one Prometheus
    endpoint and live view (multi-process mode, see docs/agent.md).
    """
    config = config or DemoConfig.from_env()
    owns_agent = not _agent.is_initialized()
    if owns_agent:
        unset = _unset(init_kwargs.get("config_file"))
        if "service_name" not in init_kwargs and "service_name" in unset:
            init_kwargs["service_name"] = "tradeobs-demo"
        # The demo is tradeobs' own service: its release is the installed tradeobs' (the distribution's metadata
        # version is _version.__version__, pyproject.toml's dynamic version), not the default 0.0.0.
        if "service_version" not in init_kwargs and "service_version" in unset:
            init_kwargs["service_version"] = __version__
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
