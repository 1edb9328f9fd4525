"""What the rules for a secret bare after its key word in a sentence ("using secret 3f9a...", "password hunter2x")
cost: the agent's log path and the collector, this tree against a git revision before them, in the same run.

    python benchmarks/redaction_prose.py [--before 89781da] [--lines 20000] [--rounds 5] [--spans 5000]
                                         [--logs 5000] [--collector-runs 3] [--no-collector]

Agent: ``Redactor.text`` (what the log worker runs on each message and string attribute), each version in its own
interpreter (``benchmarks/_trees.py``: ``git archive`` of the older agent), rounds taking turns; CPU ns per line
(thread time, the fastest of 5 passes), median of rounds, on two mixes: the demo's kind of lines (orders, fills,
rejects with order ids, UUIDs: no key word, so the new rules' gate fails), and lines that hold a key word ("api
key rejected", "token refreshed at ...", "cache key <uuid>", "password policy v2") but no secret: the new rules'
worst case, where their gate passes and their regexes scan the line.
Collector: ``benchmarks/collector_redaction.py``'s run (a fresh ``otelcol-tradeobs``, a plain OTel SDK sender, the
collector's user+system CPU for the batch) with the older revision's ``collector/otel-collector.yaml`` and this
tree's, alternated (the collector runs every rule on every string: no gates).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._redaction_ab import main

PLAIN = [
    "signal AAPL buy qty=100 px=187.25 strategy=mean-reversion",
    "order 61e69015-8549-4bfd-b9c3-01e75de48cd5 submitted AAPL buy 100 @ 187.25 client_order_id=cid-42",
    "fill order_id=ORD-20240102-000123 symbol=MSFT side=sell qty=50 px=402.10 venue=SIM",
    "risk rejected order 7f3c2a1e-0d4b-4c8e-9a6f-2b1d3e4f5a6b: peak drawdown 2.1% > 2.0%",
    "position TSLA qty=-20 avg=251.30 unrealized=-132.50 realized=48.00",
    "GET /v2/orders?status=open&limit=50 200 12ms",
]
KEY_WORDS = [
    "broker said: api key rejected for order 61e69015-8549-4bfd-b9c3-01e75de48cd5 (retry 2 of 5)",
    "access token refreshed at 2026-12-07T02:20:24Z, expires in 3600s; session token rotated",
    "cache key 61e69015-8549-4bfd-b9c3-01e75de48cd5 hit for AAPL bars key=MSFT",
    "password policy v2 applied; secret rotation scheduled for 2026-12-08 by ops",
    "loading private key /etc/keys/alpaca-prod2.pem for venue SIM, token_address unset",
]
MIXES = {"demo lines (no key word)": PLAIN, "key-word lines, no secret": KEY_WORDS}


if __name__ == "__main__":
    main(__file__, __doc__ or "", "89781da", MIXES, None)
