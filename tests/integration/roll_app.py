"""A service whose workers import the agent from the install a file names when they start (test_rolling_deploy.py).

``gunicorn -k uvicorn_worker.UvicornWorker --pythonpath tests/integration 'roll_app:create_app()'`` with
``ROLL_TREE_FILE`` naming a file that holds the path of an ``agent/`` directory (this tree's, or a ``git archive`` of
an earlier commit): each worker reads it when gunicorn starts it and imports ``tradeobs_agent`` from there, for the
rest of its life, as a worker started from a new install does while the others still run the old one. The test
changes the file, then asks gunicorn for one more worker (``SIGTTIN``) or lets it replace one it killed.

* ``GET /whoami``: the worker's pid and the agent directory it imported;
* ``POST /count`` with ``{"pid": p, "n": n}``: when ``p`` is this worker's pid, adds ``n`` to the counter
  ``rollout.requests`` and to the histogram ``rollout.latency`` (one observation of 5 ms per unit), answers 200;
  another worker answers 409 and records nothing (the test sends again until ``p`` takes it);
* ``POST /book`` with ``{"pid": p, "positions": [[symbol, qty, mark, avg_price], ...]}``: the same, reporting the
  positions as ``books_app`` does.

The live view is at ``/telemetry``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def create_app() -> Starlette:
    tree = Path(os.environ["ROLL_TREE_FILE"]).read_text().strip()
    sys.path.insert(0, tree)
    import tradeobs_agent
    from tradeobs_agent import live
    from tradeobs_agent.trading import TradingTelemetry

    imported = str(Path(tradeobs_agent.__file__).resolve())
    if not imported.startswith(str(Path(tree).resolve())):
        raise RuntimeError(f"tradeobs_agent came from {imported}, not {tree}")
    tradeobs_agent.init()
    tt = TradingTelemetry(strategy="s1", venue="v1")
    requests = tradeobs_agent.counter("rollout.requests", unit="{request}").bind(route="count")
    latency = tradeobs_agent.histogram("rollout.latency", unit="ms").bind(route="count")
    me = os.getpid()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"pid": me, "tree": tree})

    async def count(request: Request) -> JSONResponse:
        doc: dict[str, Any] = await request.json()
        if doc["pid"] != me:
            return JSONResponse({"pid": me}, status_code=409)
        for _ in range(int(doc["n"])):
            requests.add(1)
            latency.record(5.0)
        return JSONResponse({"pid": me})

    async def book(request: Request) -> JSONResponse:
        doc: dict[str, Any] = await request.json()
        if doc["pid"] != me:
            return JSONResponse({"pid": me}, status_code=409)
        for symbol, qty, mark, avg in doc["positions"]:
            tt.tick(symbol, mark)
            tt.position(symbol, qty, mark, avg)
            tt.pnl(symbol, 0.0, qty * (mark - avg) if qty and avg is not None else 0.0)
        return JSONResponse({"pid": me})

    routes = [
        Route("/healthz", healthz),
        Route("/whoami", whoami),
        Route("/count", count, methods=["POST"]),
        Route("/book", book, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.mount("/telemetry", live.create_app())
    return app
