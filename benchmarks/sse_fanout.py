"""SSE fan-out benchmark: tradeobs live stream vs a naive per-client sse-starlette generator.

    python benchmarks/sse_fanout.py [--clients 1000,2000,4000] [--baseline 1000,2000] [--duration 12]

Same as ``tradeobs loadtest``; see ``tradeobs_agent/live/loadtest.py`` for the method and docs/live.md for results.
"""

from __future__ import annotations

import sys

from tradeobs_agent.live.loadtest import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
