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


class Mono:
    """A monotonic clock the test moves (the order book's and the collection's)."""

    def __init__(self) -> None:
        self.now = 5_000.0


@pytest.fixture
def mono(monkeypatch: pytest.MonkeyPatch) -> Mono:
    from tradeobs_agent.trading import orders, telemetry

    m = Mono()
    for module in (orders, telemetry):
        monkeypatch.setattr(module, "_monotonic", lambda: m.now)
    return m


def workers_with_orders_waiting(mono: Mono, waited: tuple[float, ...] = (40.0, 7.0)) -> list[Any]:
    """One registry per worker, each with 2 orders sent and unanswered ``waited[i]`` seconds ago, as its collect
    hook saw them (the worker's TradingTelemetry closed after)."""
    from tradeobs_agent import trading
    from tradeobs_agent.metrics import Registry

    regs = []
    for i, w in enumerate(waited):
        reg = Registry()
        tt = trading.TradingTelemetry(strategy="mm", venue="X", registry=reg)
        tt.order_signal(f"w{i}-a", "AAPL", "buy", 1).submitted()
        tt.order_signal(f"w{i}-b", "AAPL", "buy", 1).submitted()
        mono.now += w
        tt.flush()
        reg.run_collect_hooks()
        mono.now -= w
        tt.close()
        regs.append(reg)
    return regs
