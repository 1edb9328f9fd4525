"""A trading process that publishes its live view to NATS, for tests/integration/test_live_gateway.py.

    python fleet_agent.py SERVICE STRATEGY ORDERS_PER_SECOND

The NATS URL comes from ``TRADEOBS_LIVE_NATS_URL`` (the one setting that turns publishing on). Each order
is signalled, submitted and filled (two live events: ``order`` and ``fill``). Prints ``READY {json}`` (its
instance id and Prometheus URL); on a line on stdin it stops trading, shuts the agent down (which sends what
the publisher still holds) and prints ``DONE {json}``: events produced (the bus's last sequence) and the
publisher's counts (published, dropped).
"""

from __future__ import annotations

import json
import sys
import threading

import tradeobs_agent
from tradeobs_agent.events import get_bus


def main() -> int:
    service, strategy, hz = sys.argv[1], sys.argv[2], float(sys.argv[3])
    agent = tradeobs_agent.init(service_name=service, otlp=False, prometheus=tradeobs_agent.PrometheusOptions(port=0))
    assert agent.nats is not None, "TRADEOBS_LIVE_NATS_URL is not set"
    tt = tradeobs_agent.TradingTelemetry(strategy=strategy, venue="paper")
    stop = threading.Event()

    def trade() -> None:
        i = 0
        while not stop.wait(1.0 / hz):
            i += 1
            sym = ("AAPL", "MSFT", "NVDA")[i % 3]
            tt.tick(sym, 100.0 + i % 7)
            order = tt.order_signal(f"{service}-{agent.instance_id[:8]}-{i}", sym, "buy", 10, 100.0)
            order.submitted()
            order.fill(10, 100.0)

    trader = threading.Thread(target=trade, name="trader")
    trader.start()
    ready = {"instance": agent.instance_id, "prometheus_url": agent.prometheus_url}
    print("READY", json.dumps(ready), flush=True)
    sys.stdin.readline()
    stop.set()
    trader.join()
    pub = agent.nats
    tradeobs_agent.shutdown()
    done = {"produced": get_bus().last_seq, **pub.stats, "outbox": pub.outbox}
    print("DONE", json.dumps(done), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
