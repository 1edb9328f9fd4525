"""The app ``benchmarks/multiprocess.py`` runs under uvicorn: ``POST /fill`` makes one order and fills it now.

The order id carries a ``time.time_ns()`` read just before the ``fill()`` call (``f-<pid>-<ns>``), so a
live-stream client can tell how long the ``fill`` event took to reach it, and from which worker it came.

``BENCH_DESK_SYMBOLS=N`` (``benchmarks/live_group.py``): every worker also trades the desk of
``benchmarks/live_frame.py`` at ``N`` symbols, moved every 100 ms by a task on the worker's event loop (the
trading code's loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route


def create_app() -> Starlette:
    import tradeobs_agent
    from tradeobs_agent import LogOptions, PrometheusOptions, live
    from tradeobs_agent.trading import TradingTelemetry

    agent = tradeobs_agent.init(
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

    symbols = int(os.environ.get("BENCH_DESK_SYMBOLS", "0"))
    tasks: list[Any] = []

    async def trade() -> None:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from live_frame import Desk

        desk = Desk(symbols, registry=agent.registry)
        while True:
            desk.move()
            await asyncio.sleep(0.1)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if symbols > 0:
            tasks.append(asyncio.get_running_loop().create_task(trade()))
        yield
        for t in tasks:
            t.cancel()

    routes: list[Any] = [
        Route("/fill", fill, methods=["POST"]),
        Route("/healthz", healthz),
        Mount("/telemetry", live.create_app()),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
