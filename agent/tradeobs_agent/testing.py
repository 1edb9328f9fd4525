"""Test helpers for services instrumented with tradeobs: in-memory exporters and a fixture.

>>> from tradeobs_agent.testing import capture
>>> with capture() as cap:                       # doctest: +SKIP
...     tradeobs_agent.counter("orders").add(1)
...     assert cap.metric_value("orders") == 1

``capture()`` initialises the agent with in-memory span/log exporters and an
in-memory metric reader, with OTLP, the Prometheus endpoint, log files and the
live stream off, and resets every global afterwards. The pytest fixture
``tradeobs_capture`` wraps it; enable it with
``pytest_plugins = ["tradeobs_agent.testing"]`` in your ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from . import _errors
from ._internal.otel_private import InMemoryLogRecordExporter
from .agent import Agent, forget, get_agent, init
from .options import LogOptions

__all__ = ["Capture", "capture", "reset", "tradeobs_capture"]


@dataclass
class Capture:
    """What a test captured. ``spans()``, ``logs()`` and ``metric_value()`` read it."""

    agent: Agent
    span_exporter: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    log_exporter: InMemoryLogRecordExporter = field(default_factory=InMemoryLogRecordExporter)
    metric_reader: InMemoryMetricReader = field(default_factory=InMemoryMetricReader)

    def spans(self) -> list[Any]:
        self.agent.force_flush()
        return list(self.span_exporter.get_finished_spans())

    def logs(self) -> list[Any]:
        self.agent.force_flush()
        return list(self.log_exporter.get_finished_logs())

    def metrics(self) -> dict[str, list[Any]]:
        """``{metric name: [data points]}`` from one collection."""
        data = self.metric_reader.get_metrics_data()
        out: dict[str, list[Any]] = {}
        if data is None:
            return out
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    out.setdefault(m.name, []).extend(m.data.data_points)
        return out

    def metric_value(self, name: str, /, **attributes: Any) -> float | None:
        """Sum of the matching points' values (histograms: their sum of counts)."""
        points = self.metrics().get(name)
        if points is None:
            return None
        total = 0.0
        for p in points:
            if all(p.attributes.get(k) == v for k, v in attributes.items()):
                total += p.count if hasattr(p, "bucket_counts") else p.value
        return total


def reset() -> None:
    """Shut down the agent and reset every tradeobs global and OpenTelemetry's set-once globals.

    The OpenTelemetry globals are reset with OpenTelemetry's own test helpers
    (``opentelemetry-test-utils``, in the ``tradeobs[testing]`` extra).
    """
    try:
        from opentelemetry.test.globals_test import reset_logging_globals, reset_metrics_globals, reset_trace_globals
    except ImportError as exc:  # `pip install .` alone: "No module named 'opentelemetry.test'" said nothing to do
        raise ImportError(
            "tradeobs_agent.testing needs opentelemetry-test-utils, in the testing extra: "
            "pip install 'tradeobs[testing]' (from a clone: pip install '.[testing]')"
        ) from exc

    from . import secret_values
    from ._internal import gil
    from .events import reset_bus
    from .metrics import reset_registry
    from .trading import contracts

    agent = get_agent()
    if agent is not None:
        agent.shutdown(timeout=2.0)
    forget()
    gil.stopping(False)
    reset_registry()
    reset_bus()
    secret_values.reset()
    contracts.reset()
    _errors.reset()
    reset_trace_globals()
    reset_metrics_globals()
    reset_logging_globals()


@contextmanager
def capture(**init_kwargs: Any) -> Iterator[Capture]:
    """Run the block with an agent whose every signal is captured in memory."""
    reset()
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    kwargs: dict[str, Any] = {
        "service_name": "test-service",
        "otlp": False,
        "prometheus": False,
        "live": False,
        "logs": LogOptions(dir="", enabled=True),  # captured whatever TRADEOBS_LOGS_ENABLED says
    }
    kwargs.update(init_kwargs)
    agent = init(span_exporters=[spans], log_exporters=[logs], metric_readers=[reader], **kwargs)
    try:
        yield Capture(agent, spans, logs, reader)
    finally:
        reset()


try:  # the fixture and the plugin hooks are only defined when pytest is importable
    import pytest
except ImportError:  # pragma: no cover - pytest is not a runtime dependency
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def tradeobs_capture() -> Iterator[Capture]:
        """A :class:`Capture` for one test; globals are reset afterwards."""
        with capture() as cap:
            yield cap

    def pytest_configure(config: Any) -> None:
        """As a plugin (``pytest_plugins = ["tradeobs_agent.testing"]``): an internal error of the agent fails the
        test that caused it instead of being counted and logged once (``tradeobs_agent._errors``)."""
        _errors.set_strict(True)
