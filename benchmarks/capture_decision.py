"""Per-record cost of the capture handler's question "does an OpenTelemetry logging handler of the application's
export this record to the agent's provider already?" (asked while one does: ``CaptureHandler.bridged``).

    python benchmarks/capture_decision.py

The walk (``_capture._exported_by``: the record's logger's handlers up to the root, each asked for its provider) and
the cached decision (``CaptureHandler._exported``: decided once per logger, checked against what it was decided
from), interleaved in one process; min and median of 25 rounds of 100,000 calls, ns a call. Root: a StreamHandler
and the SDK's LoggingHandler; ``app``: a NullHandler.
"""

from __future__ import annotations

import logging
import statistics
import time
import warnings

warnings.simplefilter("ignore", DeprecationWarning)

from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler  # noqa: E402

from tradeobs_agent.logs import _capture  # noqa: E402
from tradeobs_agent.metrics import Registry  # noqa: E402


def main(n: int = 100_000, rounds: int = 25) -> None:
    provider = LoggerProvider()
    logging.getLogger().addHandler(logging.StreamHandler())
    logging.getLogger().addHandler(LoggingHandler(logger_provider=provider))
    logging.getLogger("app").addHandler(logging.NullHandler())
    cap = _capture.CaptureHandler(_capture.LogQueue(10, "drop_newest", 0.0, Registry().counter("b.d", "1", "d")))
    for name in ("execution", "app.orders.exec"):
        logging.getLogger(name)
        rec = logging.LogRecord(name, logging.INFO, __file__, 1, "m", (), None)
        walk, cached = _capture._exported_by, cap._exported
        assert walk(rec, provider) and cached(rec, provider)
        a: list[float] = []
        b: list[float] = []
        for _ in range(rounds):
            t = time.perf_counter_ns()
            for _ in range(n):
                walk(rec, provider)
            a.append((time.perf_counter_ns() - t) / n)
            t = time.perf_counter_ns()
            for _ in range(n):
                cached(rec, provider)
            b.append((time.perf_counter_ns() - t) / n)
        print(
            f"{name:16s} walk each record: min {min(a):4.0f} median {statistics.median(a):4.0f} ns | "
            f"cached: min {min(b):4.0f} median {statistics.median(b):4.0f} ns"
        )


if __name__ == "__main__":
    main()
