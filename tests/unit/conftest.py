"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import tradeobs_agent
from tradeobs_agent.testing import reset as _reset_for_tests


@pytest.fixture
def agent_with_readers() -> Iterator[tuple[Any, InMemoryMetricReader]]:
    """A real agent with an in-memory OTel reader and the real Prometheus endpoint on a free port."""
    reader = InMemoryMetricReader()
    agent = tradeobs_agent.init(
        service_name="test-metrics",
        otlp=False,
        logs=False,
        live=False,
        prometheus=tradeobs_agent.PrometheusOptions(host="127.0.0.1", port=0),
        metric_readers=[reader],
    )
    assert agent.prometheus_url is not None
    yield agent, reader
    _reset_for_tests()


class PointsAlive:
    """How many counter points are alive at once while a reader runs (see :func:`points_alive`)."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0


@pytest.fixture
def points_alive(monkeypatch: pytest.MonkeyPatch) -> PointsAlive:
    """Every counter series' point is counted while alive: a reader that writes each point out and drops it
    keeps one alive at a time; one that holds a family (or a snapshot) keeps them all."""
    from tradeobs_agent.metrics import NumberPoint
    from tradeobs_agent.metrics._series import BoundCounter

    alive = PointsAlive()

    class Counted(NumberPoint):
        __slots__ = ()

        def __del__(self) -> None:
            alive.now -= 1

    def counted_point(self: BoundCounter) -> NumberPoint:
        alive.now += 1
        alive.most = max(alive.most, alive.now)
        return Counted(self.key, self.attributes, self.start_ns, self.value)

    monkeypatch.setattr(BoundCounter, "point", counted_point)
    return alive
