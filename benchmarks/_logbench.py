"""Helpers for benchmarks/logging_hotpath.py: per-call timing, a counting exporter, the table."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult


class CountingLogExporter(LogRecordExporter):
    """Stands in for the network: counts what a BatchLogRecordProcessor would have sent."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        with self._lock:
            self.count += len(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def time_calls(call: Callable[[int], None], n: int, warmup: int) -> list[int]:
    """perf_counter_ns around each call; returns n durations (ns). GC stays on, as in production."""
    pc = time.perf_counter_ns
    for i in range(warmup):
        call(i)
    gc.collect()
    out = [0] * n
    for i in range(n):
        t0 = pc()
        call(i)
        out[i] = pc() - t0
    return out


def pct(samples: list[int], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))] / 1000.0


def count_lines(path: str) -> int:
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def count_lines_with(path: str, text: str) -> int:
    if not os.path.exists(path):
        return 0
    needle = text.encode()
    with open(path, "rb") as f:
        return sum(1 for line in f if needle in line)


def print_table(rows: list[dict[str, Any]], ref: str) -> None:
    base = next(r for r in rows if r["name"] == ref)
    print(f"{'logger':<58} {'median us':>10} {'p99 us':>8} {'x tradeobs':>11}  delivered")
    for r in rows:
        ratio = r["median"] / base["median"] if base["median"] else float("nan")
        print(f"{r['name']:<58} {r['median']:>10.2f} {r['p99']:>8.2f} {ratio:>11.2f}  {r['delivered']}")
