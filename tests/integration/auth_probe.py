"""One span through the agent's OTLP exporter as the environment configures it; prints what the agent counted.

Run by ``test_collector_auth.py``: ``python auth_probe.py <span name>``. Prints one JSON line,
``{"exported": spans the exporter delivered, "failed": failed export calls, "dropped": spans dropped}``
for the traces signal, after ``tradeobs_agent.shutdown()``.
"""

from __future__ import annotations

import json
import sys

from opentelemetry import trace

import tradeobs_agent
from tradeobs_agent.metrics import get_registry


def _total(name: str) -> float:
    return sum(p.value for p in get_registry().snapshot([name]).numbers(name) if p.attributes.get("signal") == "traces")


def main() -> None:
    tradeobs_agent.init()
    with trace.get_tracer("auth-probe").start_as_current_span(sys.argv[1]):
        pass
    tradeobs_agent.shutdown(timeout=5)
    counts = {
        "exported": _total("tradeobs.agent.items.exported"),
        "failed": _total("tradeobs.agent.exports.failed"),
        "dropped": _total("tradeobs.agent.items.dropped"),
    }
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
