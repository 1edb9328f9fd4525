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

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DEMO = [
    "signal AAPL buy qty=100 px=187.25 strategy=mean-reversion",
    "order 61e69015-8549-4bfd-b9c3-01e75de48cd5 submitted AAPL buy 100 @ 187.25 client_order_id=cid-42",
    "fill order_id=ORD-20240102-000123 symbol=MSFT side=sell qty=50 px=402.10 venue=SIM",
    "risk rejected order 7f3c2a1e-0d4b-4c8e-9a6f-2b1d3e4f5a6b: peak drawdown 2.1% > 2.0%",
    "market data break on NVDA, resubscribing (trace 4bf92f3577b34da6a3ce929d0e0e4736)",
    "position TSLA qty=-20 avg=251.30 unrealized=-132.50 realized=48.00",
    "heartbeat ok latency_ms=3.2 take_profit=1.5 stop_loss=0.8",
    "GET /v2/orders?status=open&limit=50 200 12ms",
    "ws connected wss://stream.binance.com:9443/ws/btcusdt@trade design=v2 signed=true",
]
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


def child(n: int) -> None:
    from tradeobs_agent.redaction import Redactor

    r = Redactor(known_values=False)
    out = {}
    for name, lines in (("demo", DEMO), ("urls", URLS)):
        texts = [SECRET if i % 50 == 49 else lines[i % len(lines)] for i in range(n)]
        for t in texts[:2000]:
            r.text(t)
        best = float("inf")
        for _ in range(5):  # the fastest of 5 passes: the least disturbed by the machine's other work
            t0 = time.thread_time_ns()
            for t in texts:
                r.text(t)
            best = min(best, (time.thread_time_ns() - t0) / n)
        out[name] = best
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--before", default="3e6ddea")
    ap.add_argument("--lines", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--spans", type=int, default=5000)
    ap.add_argument("--logs", type=int, default=5000)
    ap.add_argument("--collector-runs", type=int, default=3)
    ap.add_argument("--no-collector", action="store_true")
    args = ap.parse_args()
    if args.child is not None:
        child(args.child)
        return
    sys.path.insert(0, str(ROOT))
    from benchmarks._trees import before_and_now

    res = before_and_now(__file__, args.before, args.rounds, [str(args.lines)])
    print(f"{'agent: Redactor.text per line, CPU ns':<44} {'before':>10} {'now':>10} {'now/before':>11}")
    for name in ("demo", "urls"):
        before = statistics.median(x[name] for x in res["before"])
        now = statistics.median(x[name] for x in res["now"])
        label = f"  {name} lines, median of {args.rounds} rounds"
        print(f"{label:<44} {before:>10.0f} {now:>10.0f} {now / before:>10.2f}x")
    if args.no_collector:
        return
    from benchmarks.collector_redaction import compare_with_revision

    compare_with_revision(args.before, args.collector_runs, args.spans, args.logs)


if __name__ == "__main__":
    main()
