"""Small helpers for tests: free loopback ports, polling, the package's installed metadata."""

from __future__ import annotations

import os
import random
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


_handed_out: set[int] = set()
_next: list[int] = []


def _pool() -> range:
    """Ports this process hands out: below the kernel's ephemeral range, one slice per pytest-xdist worker.

    A port inside the ephemeral range can be taken, while a test's service is down, as the local port of any
    outgoing connection on the machine (a scrape, an exporter's retry, another worker's client); the service
    then cannot listen on it again ("bind: address already in use" when Jaeger or Prometheus restarts on its
    ports). Outside that range only a listener can hold a port, and each worker picks from its own slice.
    """
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_low, eph_high = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        eph_low, eph_high = 32768, 60999
    low, high = (10000, eph_low) if eph_low - 10000 >= 8000 else (eph_high + 1, 65536)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    slots = 8
    index = int(worker) % slots if worker.isdigit() else 0
    width = (high - low) // slots
    return range(low + index * width, low + (index + 1) * width)


# Ports browsers refuse to connect to (Chromium's kRestrictedPorts above 1024: ERR_UNSAFE_PORT): a browser test whose
# server got 10080 failed at page.goto. Never handed out.
BROWSER_UNSAFE_PORTS = frozenset(
    {1719, 1720, 1723, 2049, 3659, 4045, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6697, 10080}
)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 outside the ephemeral range, never the same twice in this process, never one a
    browser refuses (:data:`BROWSER_UNSAFE_PORTS`)."""
    pool = _pool()
    if not _next:
        _next.append(pool.start + random.randrange(len(pool)))
    for _ in range(len(pool)):
        port = _next[0]
        _next[0] = pool.start + (port + 1 - pool.start) % len(pool)
        if port in _handed_out or port in BROWSER_UNSAFE_PORTS:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port left in {pool.start}-{pool.stop - 1}")


_held: list[socket.socket] = []


def dead_endpoint() -> str:
    """A loopback URL where nothing listens, for as long as this process runs: its port is held by a socket that is
    bound and never listens, so connects are refused (RST) and no other process can bind it. Before, the port was
    only free a moment ago, and once a gRPC server of another test took it: the "dead" collector answered
    UNIMPLEMENTED."""
    port = free_port()
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # no SO_REUSEADDR: the bind stays exclusive
    held.bind(("127.0.0.1", port))
    _held.append(held)
    return f"http://127.0.0.1:{port}"


def ended_spans(n: int) -> list[Any]:
    """``n`` ended SDK spans (``s0``, ``s1``, ...) of a provider of their own, for exporters and batch processors."""
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("t")
    out = []
    for i in range(n):
        s = tracer.start_span(f"s{i}")
        s.end()
        out.append(s)
    return out


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


ROWS = ("symbols", "services", "strategies")  # live frames: merged row by row, then field by field


def apply_frame(state: dict[str, Any] | None, frame: dict[str, Any]) -> dict[str, Any]:
    """A live stream client's state after ``frame`` (docs/live.md, "Applying a delta"): a full frame replaces it; a
    delta is merged per section (``symbols``, ``services`` and ``strategies`` one level deeper), ``None`` (JSON
    ``null``) deleting the key it is at. Works on a copy: ``state`` is not changed."""
    if frame.get("type") == "full" or state is None:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in frame.items()}
    out = dict(state)
    for section, changes in frame.items():
        if not isinstance(changes, dict):  # type, seq, ts
            out[section] = changes
            continue
        merged = out[section] = dict(out.get(section) or {})
        for key, value in changes.items():
            if value is None:
                merged.pop(key, None)
            elif section in ROWS and isinstance(merged.get(key), dict):
                row = merged[key] = dict(merged[key])
                for field, v in value.items():
                    if v is None:
                        row.pop(field, None)
                    else:
                        row[field] = v
            else:
                merged[key] = value
    return out


def without_nulls(state: dict[str, Any]) -> dict[str, Any]:
    """A live state without its frame header (``type``, ``seq``, ``ts``) and with no ``None`` where a delta's
    ``None`` deletes (a section's key, a row, a row's field): a null value means no value, as an absent key."""

    def clean(section: str, d: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for k, v in d.items():
            if v is None:
                continue
            out[k] = {f: x for f, x in v.items() if x is not None} if section in ROWS and isinstance(v, dict) else v
        return out

    return {s: clean(s, v) for s, v in state.items() if isinstance(v, dict)}


def closed_by_server(s: socket.socket) -> bool:
    """Whether the server closed (or reset) the client socket ``s``; the socket is left non-blocking."""
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True


def installed_metadata(root: Path) -> Path:
    """What installing tradeobs leaves for pytest and ``importlib.metadata`` to find, without a venv: the
    distribution's ``.dist-info`` with the entry points ``pyproject.toml`` declares (pytest's ``pytest11`` plugin
    among them), written under ``root``. Put ``root`` on ``PYTHONPATH`` next to the checkout's ``agent/``: the code is
    the checkout's, the metadata the one pip writes from this pyproject (the editable install of the environment may
    be another checkout's, or older than this one)."""
    import tomllib

    repo = Path(__file__).resolve().parents[1]
    pyproject = tomllib.loads((repo / "pyproject.toml").read_text())
    version = re.search(r'__version__ = "([^"]+)"', (repo / "agent/tradeobs_agent/_version.py").read_text())
    assert version, "agent/tradeobs_agent/_version.py: no __version__"
    info = root / f"tradeobs-{version.group(1)}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: tradeobs\nVersion: {version.group(1)}\n")
    groups = dict(pyproject["project"].get("entry-points", {}))
    groups["console_scripts"] = pyproject["project"].get("scripts", {})
    text = "".join(
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in eps.items()) + "\n"
        for group, eps in groups.items()
    )
    (info / "entry_points.txt").write_text(text)
    return root


def trading_invalid(cap: Any, reason: str) -> float:
    """How many of the trading layer's inputs ``cap`` (a ``tradeobs_agent.testing.Capture``) counted as
    ``tradeobs.agent.measurements.invalid{instrument="trading", reason=...}``: 0 when none."""
    return cap.metric_value("tradeobs.agent.measurements.invalid", instrument="trading", reason=reason) or 0.0
