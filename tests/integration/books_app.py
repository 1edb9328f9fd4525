"""A service whose workers hold the books a test gives them (test_multiworker_avg.py).

``uvicorn --factory books_app:create_app --app-dir tests/integration --workers 4`` (or gunicorn with
``--pythonpath tests/integration``): each worker's factory runs ``init()`` with the settings of the environment
(``TRADEOBS_*``). ``POST /book`` with ``{"positions": [[symbol, qty, mark, avg_price], ...]}`` reports each
position in the worker that takes the request (``tt.position(symbol, qty, mark, avg_price)``, and the unrealized
P&L ``qty * (mark - avg_price)`` as the worker's own books would have it, times the contract's multiplier, 0 when
flat) and answers the worker's pid. ``BOOKS_CONTRACTS`` (JSON, ``{"ESZ6": 50}``): the contract multipliers each
worker declares at start-up (``trading.instrument``). The live view is at ``/telemetry``.
"""

from __future__ import annotations

import json
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def create_app() -> Starlette:
    import tradeobs_agent
    from tradeobs_agent import live
    from tradeobs_agent.trading import TradingTelemetry, instrument, multiplier

    tradeobs_agent.init()
    for symbol, m in json.loads(os.environ.get("BOOKS_CONTRACTS") or "{}").items():
        instrument(symbol, multiplier=m)
    tt = TradingTelemetry(strategy="s1", venue="v1")

    async def book(request: Request) -> JSONResponse:
        for symbol, qty, mark, avg in (await request.json())["positions"]:
            tt.tick(symbol, mark)
            tt.position(symbol, qty, mark, avg)
            tt.pnl(symbol, 0.0, qty * (mark - avg) * multiplier(symbol) if qty and avg is not None else 0.0)
        return JSONResponse({"pid": os.getpid()})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/healthz", healthz), Route("/book", book, methods=["POST"])])
    app.mount("/telemetry", live.create_app())
    return app
