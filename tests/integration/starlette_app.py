"""A plain Starlette service (no FastAPI), run by uvicorn in test_fastapi_mounted.py.

The agent is set up from the environment (``agent_proc.agent_env``), at import; the app is instrumented with
``instrument_app``. ``GET /orders/{order_id}`` answers an order, ``GET /admin/items/{item_id}`` sits under a
``Mount``, ``GET /ok`` says it serves.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

import tradeobs_agent


async def ok(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def order(request: Request) -> JSONResponse:
    return JSONResponse({"order_id": request.path_params["order_id"]})


async def item(request: Request) -> JSONResponse:
    return JSONResponse({"item": request.path_params["item_id"]})


tradeobs_agent.init()
app = Starlette(
    routes=[
        Route("/ok", ok),
        Route("/orders/{order_id}", order),
        Mount("/admin", routes=[Route("/items/{item_id}", item)]),
    ]
)
tradeobs_agent.instrument_app(app)
