"""Fixtures shared by the trading layer's tests (the agent and the environment are reset around every test by
``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tradeobs_agent.testing import Capture, capture


@pytest.fixture
def cap() -> Iterator[Capture]:
    """An agent whose every signal is captured in memory, without the log pipeline."""
    with capture(service_name="test-trading", logs=False) as c:
        yield c
