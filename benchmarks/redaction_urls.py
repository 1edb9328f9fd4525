"""What the URL rules (a query parameter named ``apitoken``/``auth``/``apikey``, a Telegram bot token and a Slack
webhook's secret in a URL's path, the token after ``/webhook(s)/`` or ``/hook(s)/``, a DSN password with ``@`` or
``/``) cost: the agent's log path and the collector, this tree against a git revision before them, in the same run.

    python benchmarks/redaction_urls.py [--before 3e6ddea] [--lines 20000] [--rounds 5] [--spans 5000] [--logs 5000]
                                        [--collector-runs 3] [--no-collector]

Agent: ``Redactor.text`` (what the log worker runs on each message and string attribute) on two sets of lines, each
version in its own interpreter (``benchmarks/_trees.py``: ``git archive`` of the older agent), rounds taking turns;
CPU ns per line (thread time, the fastest of 5 passes), median of rounds:

* ``demo``: the demo's kind of lines (orders, fills, rejects with order ids, UUIDs, prices; one line in 50 with a
  secret), none of which the new rules' gates let through except a URL with "://";
* ``urls``: what a service's HTTP clients and server log (uvicorn's access lines, httpx's "HTTP Request: GET ...",
  requests' and httpx's errors with their URL, webhook routes, a DSN), every line with a gate of the new rules.

Collector: ``benchmarks/collector_redaction.py``'s run (a fresh ``otelcol-tradeobs``, a plain OTel SDK sender, the
collector's user+system CPU for the batch) with the older revision's ``collector/otel-collector.yaml`` and this
tree's, alternated.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._redaction_ab import DEMO_LINES, main

DEMO = DEMO_LINES
URLS = [
    '127.0.0.1:39358 - "GET /v2/orders?status=open&limit=50 HTTP/1.1" 200 OK',
    'HTTP Request: GET https://data.alpaca.markets/v2/stocks/AAPL/bars?timeframe=1Min&limit=100 "HTTP/1.1 200 OK"',
    "Client error '404 Not Found' for url 'https://api.broker.example/v2/orders/61e69015-8549-4bfd-b9c3-01e75de48cd5'",
    "HTTPSConnectionPool(host='api.broker.example', port=443): Max retries exceeded with url: /v2/positions/AAPL",
    '127.0.0.1:39360 - "POST /webhooks/orders HTTP/1.1" 200 OK',
    "POST https://alerts.example.com/hooks/alpaca/trade_updates -> 200",
    "connected to postgresql://trader@db.internal:5432/orders pool=10",
    "ws connected wss://stream.binance.com:9443/ws/btcusdt@trade",
    "GET https://api.telegram.org/bot/status 200",
]
SECRET = "POST /webhook/rHtycPcledWG5pTw7hZYzkOGukvws508 HTTP/1.1 200"


if __name__ == "__main__":
    main(__file__, __doc__ or "", "3e6ddea", {"demo": DEMO, "urls": URLS}, SECRET)
