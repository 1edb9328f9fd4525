"""Small helpers for tests: free loopback ports, polling."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


_handed_out: set[int] = set()


def free_port() -> int:
    """A free TCP port on 127.0.0.1, never the same twice in this process."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("could not find a free port")


def dead_endpoint() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago, so connects are refused)."""
    return f"http://127.0.0.1:{free_port()}"


def wait_for(cond: Callable[[], T], what: str, limit: float = 20.0, interval: float = 0.05) -> T:
    """Poll until ``cond()`` is truthy and return it; ``limit`` only bounds a broken test, it measures nothing."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def otel_points(reader: Any) -> dict[str, list[Any]]:
    """``{metric name: [data points]}`` from one collection of an OTel ``InMemoryMetricReader``."""
    out: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out.setdefault(m.name, []).extend(m.data.data_points)
    return out


def prom_samples(url: str) -> dict[str, list[Any]]:
    """``{sample name: [samples]}`` from one scrape of a Prometheus text endpoint, parsed by prometheus_client."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, list[Any]] = {}
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            out.setdefault(sample.name, []).append(sample)
    return out
