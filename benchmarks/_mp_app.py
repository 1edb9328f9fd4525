"""The app ``benchmarks/multiprocess.py`` runs under uvicorn: ``POST /fill`` makes one order and fills it now.

The order id carries a ``time.time_ns()`` read just before the ``fill()`` call (``f-<pid>-<ns>``), so a
live-stream client can tell how long the ``fill`` event took to reach it, and from which worker it came.

``BENCH_DESK_SYMBOLS=N`` (``benchmarks/live_group.py``): every worker also trades the desk of
``benchmarks/live_frame.py`` at ``N`` symbols, moved every 100 ms by a task on the worker's event loop (the
trading code's loop).

``BENCH_MM_SYMBOLS=N`` (``benchmarks/leader_memory.py``): every worker also quotes ``N`` symbols as a market maker
does (``BENCH_MM_QUOTES`` quotes a second, each through its order steps, and 300 ticks each 100 ms), so its label
sets keep filling for minutes: a new snapshot layout at nearly each publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
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

    quoting = int(os.environ.get("BENCH_MM_SYMBOLS", "0"))

    async def quote() -> None:
        # a market maker still filling its label sets: each 100 ms, BENCH_MM_QUOTES/10 quotes on random symbols x
        # side x order type, each submitted, acknowledged, replaced 0-3 times and cancelled (2 % filled), and 300
        # ticks
        rate = float(os.environ.get("BENCH_MM_QUOTES", "30"))
        rnd = random.Random(os.getpid())
        syms = [f"S{i:04d}" for i in range(quoting)]
        n = 0
        while True:
            t0 = time.monotonic()
            for _ in range(max(1, int(rate / 10))):
                n += 1
                side, kind = rnd.choice(("buy", "sell")), rnd.choice(("limit", "post_only"))
                order = tt.order_signal(f"q-{os.getpid()}-{n}", rnd.choice(syms), side, 1.0, 100.0, order_type=kind)
                order.submitted()
                order.acked(f"v-{n}")
                for _ in range(rnd.randint(0, 3)):
                    order.replaced(price=100.5)
                if rnd.random() < 0.02:
                    order.fill(1.0, 100.5)
                else:
                    order.cancelled()
            for sym in rnd.sample(syms, min(quoting, 300)):
                tt.tick(sym, 100.0 + rnd.random())
            await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - t0)))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if symbols > 0:
            tasks.append(asyncio.get_running_loop().create_task(trade()))
        if quoting > 0:
            tasks.append(asyncio.get_running_loop().create_task(quote()))
        yield
        for t in tasks:
            t.cancel()

    routes: list[Any] = [
        Route("/fill", fill, methods=["POST"]),
        Route("/healthz", healthz),
        Mount("/telemetry", live.create_app()),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
