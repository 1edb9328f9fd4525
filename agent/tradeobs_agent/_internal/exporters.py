"""Small wrappers around OTel exporters: never raise, count every outcome, warn once.

Behaviour is added around the upstream exporters, not by forking them. A dead
collector produces one warning naming the endpoint, then only counts in
``tradeobs.agent.exports.failed`` / ``tradeobs.agent.items.dropped``.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .._errors import internal_error, warn_once
from ..metrics import SelfMetrics
from . import otel_private
from .otel_private import LogRecordExporter, LogRecordExportResult
from .otlp_encode import install_fast_log_encoding, install_fast_span_encoding

_LIVE: weakref.WeakSet[_Counting] = weakref.WeakSet()


def abort_failing_exporters() -> int:
    """Shut down exporters whose last export failed, so a final flush does not sit in retries.

    Used by ``Agent.shutdown``: when the collector is known to be down, waiting the full
    shutdown bound only delays the host's exit. What they still held is counted as dropped.
    """
    n = 0
    for exp in list(_LIVE):
        if exp.last_error is not None:
            exp._call(exp.inner.shutdown)
            n += 1
    return n


class _Counting:
    def __init__(self, inner: Any, signal: str, target: str, selfm: SelfMetrics) -> None:
        _LIVE.add(self)
        self.inner = inner
        self.signal = signal
        self.target = target
        attrs = {"signal": signal, "exporter": type(inner).__name__}
        self._ok = selfm.exports_succeeded.bind(**attrs)
        self._failed = selfm.exports_failed.bind(**attrs)
        self._exported = selfm.items_exported.bind(**attrs)
        self._dropped = selfm.items_dropped.bind(signal=signal, reason="export_failed")
        self.last_error: str | None = None
        self.last_success: float | None = None

    def _outcome(self, ok: bool, n: int, error: str | None = None) -> None:
        if ok:
            self._ok.add(1)
            self._exported.add(n)
            self.last_success = time.time()
            if self.last_error is not None:
                logging.getLogger("tradeobs").info("%s export to %s recovered", self.signal, self.target)
                self.last_error = None
            return
        self._failed.add(1)
        self._dropped.add(n)
        first = self.last_error is None
        self.last_error = error or "export failed"
        if first:
            warn_once(
                f"export:{self.signal}:{self.target}",
                "cannot export %s to %s (%s); the service keeps running, retries continue, and failures are "
                "counted in tradeobs.agent.exports.failed (this warning is shown once)",
                self.signal,
                self.target,
                self.last_error,
            )

    def _call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except Exception as exc:  # an upstream exporter's shutdown/flush raising is a bug there; never ours to raise
            internal_error(f"exporter.{self.signal}.{getattr(fn, '__name__', 'call')}", exc)
            return None

    def shutdown(self, *args: Any, **kw: Any) -> None:
        self._call(self.inner.shutdown, *args, **kw)

    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        return bool(self._call(getattr(self.inner, "force_flush", lambda **_: True), timeout_millis=timeout_millis))


class CountingSpanExporter(_Counting, SpanExporter):
    """Counts outcomes; an OTLP/gRPC exporter also gets the cheaper span encoder (``otlp_encode``)."""

    def __init__(self, inner: Any, signal: str, target: str, selfm: SelfMetrics) -> None:
        super().__init__(inner, signal, target, selfm)
        self.fast_encoding = install_fast_span_encoding(inner)

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception as exc:  # an exporter bug must not kill the worker thread
            self._outcome(False, len(spans), repr(exc))
            return SpanExportResult.FAILURE
        self._outcome(result == SpanExportResult.SUCCESS, len(spans))
        return result  # type: ignore[no-any-return]


class CountingLogExporter(_Counting, LogRecordExporter):
    """Counts outcomes; an OTLP/gRPC exporter also gets the cheaper log encoder (``otlp_encode``)."""

    def __init__(self, inner: Any, signal: str, target: str, selfm: SelfMetrics) -> None:
        super().__init__(inner, signal, target, selfm)
        self.fast_encoding = install_fast_log_encoding(inner)

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        try:
            result = self.inner.export(batch)
        except Exception as exc:
            self._outcome(False, len(batch), repr(exc))
            return LogRecordExportResult.FAILURE
        self._outcome(result == LogRecordExportResult.SUCCESS, len(batch))
        return result  # type: ignore[no-any-return]


class CountingMetricExporter(_Counting, MetricExporter):
    def __init__(self, inner: MetricExporter, signal: str, target: str, selfm: SelfMetrics) -> None:
        _Counting.__init__(self, inner, signal, target, selfm)
        temporality, aggregation = otel_private.exporter_preferences(inner)
        MetricExporter.__init__(self, preferred_temporality=temporality, preferred_aggregation=aggregation)

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kw: Any) -> MetricExportResult:
        n = sum(
            len(m.data.data_points)
            for rm in metrics_data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
        )
        try:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kw)
        except Exception as exc:
            self._outcome(False, n, repr(exc))
            return MetricExportResult.FAILURE
        self._outcome(result == MetricExportResult.SUCCESS, n)
        return result  # type: ignore[no-any-return]


class DuplicateFilter(logging.Filter):
    """Let a repeated message from the OTel SDK/exporters through once per window; count the rest.

    Also turns the SDK's "Queue full, dropping ..." warnings into counts of dropped items.
    """

    def __init__(self, selfm: SelfMetrics, window: float = 300.0) -> None:
        super().__init__()
        self._selfm = selfm
        self._window = window
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        if msg.startswith("Queue full"):
            self._selfm.items_dropped.add(1, {"signal": _signal_of(record), "reason": "queue_full"})
        key = (record.name, msg)
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._window:
                return False
            if len(self._last) > 1000:
                self._last.clear()
            self._last[key] = now
        record.exc_info = None  # one line, no traceback storm
        record.exc_text = None
        return True


def _signal_of(record: logging.LogRecord) -> str:
    text = " ".join(str(a) for a in (record.args or ()))
    for s in ("span", "log", "metric"):
        if s in text.lower():
            return {"span": "traces", "log": "logs", "metric": "metrics"}[s]
    return "unknown"


OTEL_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.sdk.metrics._internal.export",
    "opentelemetry.sdk.trace.export",
    "opentelemetry.sdk._logs._internal.export",
)


def install_duplicate_filter(selfm: SelfMetrics) -> DuplicateFilter:
    f = DuplicateFilter(selfm)
    for name in OTEL_LOGGERS:
        logging.getLogger(name).addFilter(f)
    return f


def remove_duplicate_filter(f: DuplicateFilter) -> None:
    for name in OTEL_LOGGERS:
        logging.getLogger(name).removeFilter(f)
