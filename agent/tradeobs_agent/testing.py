"""Test helpers for services instrumented with tradeobs: in-memory exporters and a fixture.

>>> from tradeobs_agent.testing import capture
>>> with capture() as cap:                       # doctest: +SKIP
...     tradeobs_agent.counter("orders").add(1)
...     assert cap.metric_value("orders") == 1

``capture()`` initialises the agent with in-memory span/log exporters and an
in-memory metric reader, with OTLP, the Prometheus endpoint, log files and the
live stream off, and resets every global afterwards. The pytest fixture
``tradeobs_capture`` wraps it: tradeobs' pytest plugin (``tradeobs_pytest``,
loaded by pytest wherever tradeobs is installed) gives it, and gives ``init()``
in the test process a test's defaults (no Prometheus endpoint, log files,
worker group or collector probe unless configured). docs/agent.md, "Testing
your own instrumentation".
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

__all__ = ["Capture", "HistogramValue", "capture", "reset"]


@dataclass
class Capture:
    """What a test captured. ``spans()``, ``logs()`` and ``metric_value()`` read it."""

    agent: Agent
    span_exporter: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    log_exporter: InMemoryLogRecordExporter = field(default_factory=InMemoryLogRecordExporter)
    metric_reader: InMemoryMetricReader = field(default_factory=InMemoryMetricReader)

    def spans(self, name: str | None = None) -> list[Any]:
        """The finished spans, oldest first (only those called ``name`` when given)."""
        self.agent.force_flush()
        return [s for s in self.span_exporter.get_finished_spans() if name is None or s.name == name]

    def order(self, client_order_id: str) -> Any:
        """The root span ``order`` of the order with this client order id, once it ended (filled, rejected,
        cancelled, ...: its ``order.outcome``); ``None`` when no such order ended. Its steps (``risk_check``,
        ``submit``, ``fill`` ...) are :meth:`order_steps`."""
        found = [s for s in self.spans("order") if s.attributes.get("order.id") == client_order_id]
        return found[-1] if found else None

    def order_steps(self, client_order_id: str) -> list[Any]:
        """The spans of that order's trace other than its root, oldest first (``[s.name for s in ...]``)."""
        root = self.order(client_order_id)
        if root is None:
            return []
        trace_id = root.context.trace_id
        steps = [s for s in self.spans() if s.context.trace_id == trace_id and s is not root]
        return sorted(steps, key=lambda s: s.start_time or 0)

    def logs(self) -> list[Any]:
        """The log records (OpenTelemetry ``LogData``: ``.log_record.body``, ``.log_record.attributes``)."""
        self.agent.force_flush()
        return list(self.log_exporter.get_finished_logs())

    def messages(self, stream: str | None = None) -> list[str]:
        """The logged lines' messages, oldest first (only one stream's when given: ``"execution"``,
        ``"system"`` ...)."""
        out = []
        for data in self.logs():
            rec = data.log_record
            if stream is None or (rec.attributes or {}).get("stream") == stream:
                out.append(str(rec.body))
        return out

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

    def _points(self, name: str, attributes: dict[str, Any]) -> list[Any]:
        return [p for p in self.metrics().get(name, ()) if all(p.attributes.get(k) == v for k, v in attributes.items())]

    def metric_value(self, name: str, /, **attributes: Any) -> float | None:
        """Sum of the values of the points whose attributes include ``attributes`` (histograms: their counts);
        ``None`` when no point does (before 2026-12-07, 0.0 when the metric had points but none matched)."""
        points = self._points(name, attributes)
        if not points:
            return None
        total: float = sum(p.count if hasattr(p, "bucket_counts") else p.value for p in points)
        return total

    def histogram(self, name: str, /, **attributes: Any) -> HistogramValue | None:
        """A histogram's matching points added up: ``count``, ``sum``, ``min``, ``max`` and ``bucket_counts`` (one
        more than ``explicit_bounds``); ``None`` when no point matches."""
        points = [p for p in self._points(name, attributes) if hasattr(p, "bucket_counts")]
        if not points:
            return None
        counts = [sum(c) for c in zip(*(p.bucket_counts for p in points), strict=True)]
        return HistogramValue(
            count=sum(p.count for p in points),
            sum=sum(p.sum for p in points),
            min=min(p.min for p in points),
            max=max(p.max for p in points),
            explicit_bounds=tuple(points[0].explicit_bounds),
            bucket_counts=tuple(counts),
        )


@dataclass(frozen=True)
class HistogramValue:
    """What :meth:`Capture.histogram` read."""

    count: int
    sum: float
    min: float
    max: float
    explicit_bounds: tuple[float, ...]
    bucket_counts: tuple[int, ...]


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
    from .trading.telemetry import forget_state

    agent = get_agent()
    if agent is not None:
        agent.shutdown(timeout=2.0)
    forget()
    gil.stopping(False)
    forget_state()
    reset_registry()
    reset_bus()
    secret_values.reset()
    # Contract multipliers stay declared: configuration, made once at import as the bot's instruments are (a reset
    # that forgot them made a test's ES notional qty * price). A suite that declares conflicting ones between tests
    # calls tradeobs_agent.trading.contracts.reset() itself, as this repository's conftest does.
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


# As a plugin (``-p tradeobs_agent.testing``, ``pytest_plugins = ["tradeobs_agent.testing"]``, as before 2026-12-07):
# the plugin is tradeobs_pytest, which pytest loads by itself wherever tradeobs is installed; named here, pytest loads
# it too (the same name as its entry point's: registered once). The fixture stays importable from here.
pytest_plugins = ["tradeobs_pytest"]


def __getattr__(name: str) -> Any:
    if name == "tradeobs_capture":  # the fixture, where it was (pytest is imported only when it is asked for)
        import tradeobs_pytest

        return tradeobs_pytest.tradeobs_capture
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
