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
