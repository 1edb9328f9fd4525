"""Shared fixtures: every test starts and ends with no agent and fresh OTel globals, and no internal error passes.

The ``tradeobs_agent.testing`` plugin (loaded by ``-p`` in ``pyproject.toml``) makes an internal error of the
agent re-raise where it happens (strict mode); the fixture below also fails a test after which any internal
error was counted, wherever it happened (a background thread, a server thread), so a swallowed bug cannot pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tradeobs_agent import _errors
from tradeobs_agent.testing import reset as _reset_for_tests


@pytest.fixture(autouse=True)
def _reset_agent(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # No test may pick up the developer's environment by accident, or litter the checkout with logs.
    for name in list(os.environ):
        if name.startswith(("TRADEOBS_", "OTEL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TRADEOBS_LOG_DIR", str(tmp_path_factory.mktemp("logs")))
    # Agent subprocesses started by a test raise on an internal error too.
    monkeypatch.setenv(_errors.ENV_STRICT, "raise")
    _reset_for_tests()
    yield
    errors = _errors.internal_error_counts()
    _reset_for_tests()
    assert not errors, f"internal errors during the test (see the log for their tracebacks): {errors}"
