"""A small service for the browser test: the live app mounted at /telemetry, fed with synthetic trading data.

    python tests/e2e/live_server.py PORT

``POST /test/drop`` ends every live stream while the server stays up (a network drop, as the browser sees it).
"""

from __future__ import annotations

import random
import sys
import threading

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

import tradeobs_agent
from tradeobs_agent import events, live


def feed(stop: threading.Event) -> None:
    syms = ["AAPL", "MSFT", "NVDA"]
    px = {s: tradeobs_agent.gauge("trading.marketdata.price").bind(symbol=s) for s in syms}
    pos = {s: tradeobs_agent.gauge("trading.position.quantity").bind(symbol=s) for s in syms}
    pnl = {s: tradeobs_agent.gauge("trading.pnl.unrealized").bind(symbol=s) for s in syms}
    fills = {s: tradeobs_agent.counter("trading.orders.filled").bind(symbol=s, side="buy") for s in syms}
    lat = tradeobs_agent.histogram("trading.order.submit_to_fill.latency", unit="s")
    eq = tradeobs_agent.gauge("trading.equity").bind()
    price = dict.fromkeys(syms, 100.0)
    n = 0
    while not stop.wait(0.05):
        n += 1
        for s in syms:
            price[s] *= 1 + random.gauss(0, 0.001)
            px[s].set(price[s])
            pnl[s].set(random.gauss(0, 100))
            lat.bind(symbol=s).record(random.lognormvariate(-6, 0.5))
        eq.set(1_000_000 + n)
        if n % 4 == 0:  # 5 fills a second
            s = random.choice(syms)
            fills[s].add(1)
            pos[s].set(n)
            events.publish("fill", symbol=s, side="buy", qty=n, price=round(price[s], 2), order_id=f"o{n}")


def main() -> None:
    port = int(sys.argv[1])
    telemetry = live.create_app(hz=10, token="", cors_origins=())
    hub = telemetry.state.hub

    async def drop(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(hub.disconnect_all()))

    app = Starlette(routes=[Route("/test/drop", drop, methods=["POST"]), Mount("/telemetry", telemetry)])
    stop = threading.Event()
    threading.Thread(target=feed, args=(stop,), daemon=True).start()
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")
    finally:
        stop.set()


if __name__ == "__main__":
    main()
