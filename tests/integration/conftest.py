"""Integration fixtures: real collector, Jaeger, Prometheus and Alertmanager
processes on free loopback ports. The implementation and the fixture API are
documented in procs.py; import helpers from there (`from .procs import ...`,
or from elsewhere `from tests.integration.procs import ...`).
"""

from collections.abc import Iterator

import pytest

from tradeobs_agent.testing import reset

from .procs import (  # noqa: F401 - re-exported as fixtures
    alertmanager,
    collector,
    jaeger,
    procs_dir,
    prometheus,
    stack,
)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """[wall seconds, monotonic seconds] as the trading telemetry reads them; the test moves them on."""
    from tradeobs_agent.trading import telemetry

    now = [1_800_000_000.0, 5_000.0]
    monkeypatch.setattr(telemetry, "_time", lambda: now[0])
    monkeypatch.setattr(telemetry, "_monotonic", lambda: now[1])
    yield now
    reset()
