"""The app ``benchmarks/multiprocess.py`` runs under uvicorn: ``POST /fill`` makes one order and fills it now.

The order id carries a ``time.time_ns()`` read just before the ``fill()`` call (``f-<pid>-<ns>``), so a
live-stream client can tell how long the ``fill`` event took to reach it, and from which worker it came.
"""

from __future__ import annotations

import os
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route


def create_app() -> Starlette:
    import tradeobs_agent
    from tradeobs_agent import LogOptions, PrometheusOptions, live
    from tradeobs_agent.trading import TradingTelemetry

    tradeobs_agent.init(
        service_name="bench-multiprocess-live",
        otlp=False,
        logs=LogOptions(dir=""),
        prometheus=PrometheusOptions(host="127.0.0.1", port=int(os.environ["BENCH_PROM_PORT"])),
    )
    tt = TradingTelemetry(strategy="bench", venue="sim")

    async def fill(request: Request) -> JSONResponse:
        oid = f"f-{os.getpid()}-{time.time_ns()}"  # a few microseconds before the fill() call
        order = tt.order_signal(oid, "AAPL", "buy", 1.0, 100.0)
        order.submitted()
        order.fill(1.0, 100.0)
        return JSONResponse({"pid": os.getpid(), "order_id": oid})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes: list[Any] = [
        Route("/fill", fill, methods=["POST"]),
        Route("/healthz", healthz),
        Mount("/telemetry", live.create_app()),
    ]
    return Starlette(routes=routes)
