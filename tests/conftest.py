"""Shared fixtures: every test starts and ends with no agent and fresh OTel globals."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tradeobs_agent.agent import _reset_for_tests


@pytest.fixture(autouse=True)
def _reset_agent(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # No test may pick up the developer's environment by accident, or litter the checkout with logs.
    for name in list(os.environ):
        if name.startswith(("TRADEOBS_", "OTEL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TRADEOBS_LOG_DIR", str(tmp_path_factory.mktemp("logs")))
    _reset_for_tests()
    yield
    _reset_for_tests()
