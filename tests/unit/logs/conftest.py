"""Fixtures for the log pipeline tests: a real agent with in-memory span/log exporters and a temp log dir."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tradeobs_agent
from tests.unit.logs._logs_helpers import BlockingStream, Env
from tradeobs_agent.testing import reset as _reset_for_tests


@pytest.fixture(autouse=True)
def _clean_globals() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    _reset_for_tests()
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


@pytest.fixture
def make_env(tmp_path: Path) -> Callable[..., Env]:
    def make(**log_options: Any) -> Env:
        log_dir = Path(log_options.pop("dir", tmp_path / "logs"))
        logs, spans = InMemoryLogRecordExporter(), InMemorySpanExporter()
        agent = tradeobs_agent.init(
            service_name="test-svc",
            otlp=False,
            prometheus=False,
            live=False,
            span_exporters=[spans],
            log_exporters=[logs],
            logs=tradeobs_agent.LogOptions(dir=str(log_dir), **log_options),
        )
        return Env(agent, log_dir, logs, spans)

    return make


@pytest.fixture
def env(make_env: Callable[..., Env]) -> Env:
    return make_env()


@pytest.fixture
def blocking_stream() -> Iterator[BlockingStream]:
    s = BlockingStream()
    yield s
    s.release.set()


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Detach pytest's log-capture handlers from the root logger while a test runs.

    With them attached every record takes the standard (slow) path, so the capture
    fast path would go untested. Tests that want another handler add their own.
    """
    import _pytest.logging

    root = logging.getLogger()
    theirs = [
        h
        for h in root.handlers
        if isinstance(
            h,
            _pytest.logging.LogCaptureHandler | _pytest.logging._LiveLoggingNullHandler | _pytest.logging._FileHandler,
        )
    ]
    for h in theirs:
        root.removeHandler(h)
    try:
        return (yield)
    finally:
        for h in theirs:
            root.addHandler(h)
