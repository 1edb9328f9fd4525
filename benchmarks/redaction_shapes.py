"""What the shape and context rules (an Alpaca key id with no key word near it, a websocket auth message's key, a
signing header's value, a Binance stream URL's listen key, an IB Flex token) cost: the agent's log path and the
collector, this tree against a git revision before them, in the same run.

    python benchmarks/redaction_shapes.py [--before 70dd0c6] [--lines 20000] [--rounds 5] [--spans 5000] [--logs 5000]
                                          [--collector-runs 3] [--no-collector]

Agent: ``Redactor.text`` (what the log worker runs on each message and string attribute) on the demo's kind of lines
(orders, fills, rejects with order ids, UUIDs, trace ids, prices; words holding "pk"/"ak": "peak", "break", and
"sign"/"binance": "signal", "design", a public stream's URL; one line in 50 with a secret), each version in its own
interpreter (``benchmarks/_trees.py``: ``git archive`` of the older agent), rounds taking turns; CPU ns per line
(thread time, the fastest of 5 passes), median of rounds.
Collector: ``benchmarks/collector_redaction.py``'s run (a fresh ``otelcol-tradeobs``, a plain OTel SDK sender,
the collector's user+system CPU for the batch) with the older revision's ``collector/otel-collector.yaml`` and this
tree's, alternated.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._redaction_ab import DEMO_LINES, main

LINES = DEMO_LINES
SECRET = "API key PKABCDEF1234567890XY rejected"


if __name__ == "__main__":
    main(__file__, __doc__ or "", "70dd0c6", {"demo lines": LINES}, SECRET)
