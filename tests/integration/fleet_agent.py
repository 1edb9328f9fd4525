"""A trading process that publishes its live view to NATS, for tests/integration/test_live_gateway.py.

    python fleet_agent.py SERVICE STRATEGY ORDERS_PER_SECOND [LIVE_PORT]

The NATS URL comes from ``TRADEOBS_LIVE_NATS_URL`` (the one setting that turns publishing on). Each order
is signalled and submitted; most fill (two live events: ``order`` and ``fill``), every 7th is rejected by the
venue for service ``alpha`` (every 3rd by risk otherwise) and the 3rd, 13th, 23rd... up to five stay working. Each fill
moves the symbol's position, average entry price and P&L, and the risk limit's use. Trading starts once the
publisher has sent frames, so its reject-rate window holds every order.

Prints ``READY {json}`` (its instance id and Prometheus URL); with ``LIVE_PORT`` it also serves the agent's own
live view (``/snapshot``) there with uvicorn. A ``pause`` line on stdin stops trading and prints ``PAUSED {}``
(the process keeps publishing its frames); any other line (or the next one) stops trading, shuts the agent down
(which sends what the publisher still holds) and prints ``DONE {json}``: events produced (the bus's last
sequence) and the publisher's counts (published, dropped).
"""

from __future__ import annotations

import json
import sys
import threading
import time

import tradeobs_agent
from tradeobs_agent.events import get_bus

SYMBOLS = ("AAPL", "MSFT", "NVDA")


def _serve(port: int) -> None:
    import uvicorn

    from tradeobs_agent.live import create_app

    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, name="live-server", daemon=True).start()
    deadline = time.monotonic() + 30.0
    while not server.started and time.monotonic() < deadline:  # READY means /snapshot answers
        time.sleep(0.05)


def main() -> int:
    service, strategy, hz = sys.argv[1], sys.argv[2], float(sys.argv[3])
    agent = tradeobs_agent.init(service_name=service, otlp=False, prometheus=tradeobs_agent.PrometheusOptions(port=0))
    assert agent.nats is not None, "TRADEOBS_LIVE_NATS_URL is not set"
    if len(sys.argv) > 4:
        _serve(int(sys.argv[4]))
    tt = tradeobs_agent.TradingTelemetry(strategy=strategy, venue="paper")
    stop = threading.Event()
    pub = agent.nats
    deadline = time.monotonic() + 30.0
    while pub.stats["frames"] < 2 and time.monotonic() < deadline:  # the reject window starts before any order
        time.sleep(0.05)
    book = {s: [0.0, 0.0, 0.0] for s in SYMBOLS}  # qty, average entry, realized
    resting: list[object] = []  # working orders, kept open
    base = 100.0 + (7.0 if service == "alpha" else 0.0) + len(strategy)  # every process trades at its own prices

    def trade() -> None:
        i = 0
        while not stop.wait(1.0 / hz):
            i += 1
            sym = SYMBOLS[i % 3]
            px = base + i % 7
            tt.tick(sym, px)
            order = tt.order_signal(f"{service}-{agent.instance_id[:8]}-{i}", sym, "buy", 10, px)
            order.submitted()
            if i % 10 == 3 and len(resting) < 5:
                resting.append(order)
                continue
            if i % (7 if service == "alpha" else 3) == 0:
                order.rejected("venue_reject" if service == "alpha" else "risk_limit")
                continue
            order.fill(10, px)
            qty, avg, realized = book[sym]
            avg = (qty * avg + 10 * px) / (qty + 10)
            qty += 10
            if i % 5 == 0:  # take some profit: sell 5 at the mark
                realized += 5 * (px - avg)
                qty -= 5
            book[sym] = [qty, avg, realized]
            tt.position(sym, qty, px, avg_price=avg)
            tt.pnl(sym, realized, qty * (px - avg))
            tt.limit_utilization("gross", min(1.0, sum(q for q, _, _ in book.values()) * 100.0 / 1e6))

    trader = threading.Thread(target=trade, name="trader")
    trader.start()
    ready = {"instance": agent.instance_id, "prometheus_url": agent.prometheus_url}
    print("READY", json.dumps(ready), flush=True)
    if sys.stdin.readline().strip() == "pause":
        stop.set()
        trader.join()
        print("PAUSED {}", flush=True)
        sys.stdin.readline()
    stop.set()
    trader.join()
    tradeobs_agent.shutdown()
    done = {"produced": get_bus().last_seq, **pub.stats, "outbox": pub.outbox}
    print("DONE", json.dumps(done), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
