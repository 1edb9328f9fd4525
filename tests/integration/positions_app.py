"""A service whose every worker holds positions in 1,000 symbols x 5 strategies (test_multiworker_shared.py).

``uvicorn --factory positions_app:create_app --app-dir tests/integration --workers 2``: each worker's factory runs
``init()`` with the settings of the environment (``TRADEOBS_*``) and reports, per symbol and strategy, a position
of ``(strategy index + 1) * 10,000 + symbol index`` and an unrealized P&L of the symbol index. The live view is at
``/telemetry``.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SYMBOLS = [f"S{i:04d}" for i in range(1000)]
STRATEGIES = [f"strat{k}" for k in range(5)]


def quantity(k: int, i: int) -> float:
    return float((k + 1) * 10_000 + i)


def create_app() -> Starlette:
    import tradeobs_agent
    from tradeobs_agent import live
    from tradeobs_agent.trading import TradingTelemetry

    tradeobs_agent.init()
    tts = [TradingTelemetry(strategy=s, venue="v1") for s in STRATEGIES]
    for i, sym in enumerate(SYMBOLS):
        tts[0].tick(sym, 100.0 + i)
        for k, tt in enumerate(tts):
            tt.position(sym, quantity(k, i), 100.0 + i, 99.0)
            tt.pnl(sym, 0.0, float(i))

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/healthz", healthz)])
    app.mount("/telemetry", live.create_app())
    return app
