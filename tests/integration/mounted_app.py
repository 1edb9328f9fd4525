"""A FastAPI service with a FastAPI app mounted under a prefix, run by uvicorn in test_fastapi_mounted.py.

The agent is set up from the environment (``agent_proc.agent_env``), at import, as a service does; the app is
built by a factory (``uvicorn --factory mounted_app:create_app``) and instrumented with ``instrument_app``. The
admin app mounted at ``/admin`` is a plain ``FastAPI()`` (FastAPI 0.165 and later trace and count such an app on
their own once a global provider is set): ``GET /admin/items/{item_id}`` logs ``admin item <item_id>``,
``GET /admin/boom/{marker}`` raises ``RuntimeError("admin boom <marker>")``. ``GET /health`` answers health
checks, ``GET /orders/{order_id}`` an order, and the live view is mounted at ``/telemetry``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

import tradeobs_agent
import tradeobs_agent.live

log = logging.getLogger("mounted.admin")


def create_app() -> FastAPI:
    tradeobs_agent.init()
    app = FastAPI()
    admin = FastAPI()

    @app.get("/ok")
    async def ok() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/orders/{order_id}")
    async def order(order_id: str) -> dict[str, str]:
        return {"order_id": order_id}

    @admin.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        log.warning("admin item %s", item_id)
        return {"item": item_id}

    @admin.get("/boom/{marker}")
    async def boom(marker: str) -> None:
        raise RuntimeError(f"admin boom {marker}")

    app.mount("/admin", admin)
    app.mount("/telemetry", tradeobs_agent.live.create_app())
    tradeobs_agent.instrument_app(app)
    return app
