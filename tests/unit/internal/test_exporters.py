"""_internal/exporters: the counting wrappers never raise, count every outcome and say a failure once."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ConsoleMetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests._util import dead_endpoint, ended_spans, wait_for
from tradeobs_agent import _errors
from tradeobs_agent._internal.exporters import (
    CountingMetricExporter,
    CountingSpanExporter,
    DuplicateFilter,
    Retry,
    abandon_unreachable,
    install_duplicate_filter,
    remove_duplicate_filter,
    take_shutdown_losses,
)
from tradeobs_agent.metrics import Registry


class _Flaky(SpanExporter):
    """An exporter that fails (by result or by raising) until told otherwise: a collector going down and up."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.shut = False

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        if self.mode == "raise":
            raise ConnectionError("collector gone")
        return SpanExportResult.FAILURE if self.mode == "fail" else SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shut = True


def test_without_a_retry_buffer_every_outcome_is_counted_and_a_failure_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reg = Registry()
    selfm = reg.self_metrics
    inner = _Flaky()
    exp = CountingSpanExporter(inner, "traces", "localhost:4317", selfm)
    attrs = {"signal": "traces", "exporter": "_Flaky"}
    with caplog.at_level(logging.INFO, logger="tradeobs"):
        assert exp.export(ended_spans(3)) == SpanExportResult.SUCCESS
        inner.mode = "fail"
        assert exp.export(ended_spans(2)) == SpanExportResult.FAILURE
        inner.mode = "raise"
        assert exp.export(ended_spans(4)) == SpanExportResult.FAILURE  # raised inside: a result, never an exception
        inner.mode = "ok"
        assert exp.export(ended_spans(1)) == SpanExportResult.SUCCESS
    assert selfm.exports_succeeded.bind(**attrs).value == 2
    assert selfm.exports_failed.bind(**attrs).value == 2
    assert selfm.items_exported.bind(**attrs).value == 4
    assert selfm.items_dropped.bind(signal="traces", reason="export_failed").value == 6
    warnings = [r for r in caplog.records if "cannot export traces to localhost:4317" in r.getMessage()]
    assert len(warnings) == 1
    assert any("recovered" in r.getMessage() for r in caplog.records)
    assert exp.last_error is None and exp.last_success is not None


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tradeobs" and "outage" in r.getMessage()]


def test_each_outage_is_said_when_it_begins_and_when_it_ends_and_a_flapping_one_is_rate_limited(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: the beginning was said once per process (warn_once), the end after every outage; after a second outage
    the log had only "recovered" lines. Now each outage said is a pair, at most one per message_interval; the next
    one said counts those that were not."""
    from tradeobs_agent._internal import exporters

    monkeypatch.setattr(exporters, "_console_told", True, raising=False)  # stderr: another test's business
    # The exporter's clock is the test's: on the real one, a machine that took over 0.5 s for the three outages' nine
    # exports (CI's 2 cores at load 26) said the second outage too ("1 more outage(s)... began after...").
    clock = [5000.0]
    real = {name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
    monkeypatch.setattr(exporters, "time", SimpleNamespace(**(real | {"monotonic": lambda: clock[0]})))
    reg = Registry()
    inner = _Flaky()
    exp = CountingSpanExporter(inner, "traces", "localhost:4317", reg.self_metrics)
    exp.message_interval = 0.5
    with caplog.at_level(logging.INFO, logger="tradeobs"):
        assert exp.export(ended_spans(1)) == SpanExportResult.SUCCESS
        for outage in range(3):  # three outages in a row: the first is said, the two after it are not (flapping)
            inner.mode = "fail"
            for _ in range(2):
                exp.export(ended_spans(2))
            inner.mode = "ok"
            exp.export(ended_spans(1))
            said = _said(caplog)
            assert len(said) == 2, said
            if outage == 0:
                began, ended = said
                assert began.startswith("tradeobs: cannot export traces to localhost:4317 (export failed): an outage")
                assert ended.startswith("tradeobs: traces export to localhost:4317 recovered: the outage that began ")
                assert re.search(r"lasted \d+\.\d s; 2 failed export attempt\(s\), 4 spans dropped", ended), ended
        clock[0] += 0.6  # past the interval: the next outage is said, with the ones that were not
        inner.mode = "fail"
        exp.export(ended_spans(3))
        inner.mode = "ok"
        exp.export(ended_spans(1))
    said = _said(caplog)
    assert len(said) == 4, said
    assert "2 more outage(s) of this exporter began after the one said at" in said[2], said[2]
    assert "1 failed export attempt(s), 3 spans dropped" in said[3], said[3]
    assert reg.self_metrics.exports_failed.bind(signal="traces", exporter="_Flaky").value == 7


def test_the_first_outage_in_a_process_reaches_stderr_once_with_its_end(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a configuration problem does: when the log does not reach the console, the first outage said in the process
    (and its end) is printed on stderr too; later ones, of this exporter or another, are only in the log."""
    from tradeobs_agent._internal import exporters

    monkeypatch.setattr(exporters, "_console_told", False)
    monkeypatch.setattr(exporters, "on_console", lambda: False)
    reg = Registry()
    a, b = _Flaky(), _Flaky()
    ea = CountingSpanExporter(a, "traces", "http://127.0.0.1:4317", reg.self_metrics)
    eb = CountingSpanExporter(b, "traces", "http://127.0.0.2:4317", reg.self_metrics)  # another collector
    ea.message_interval = eb.message_interval = 0.0
    for _ in range(2):
        for inner, exp in ((a, ea), (b, eb)):
            inner.mode = "fail"
            exp.export(ended_spans(1))
            inner.mode = "ok"
            exp.export(ended_spans(1))
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2, err
    assert err[0].startswith("tradeobs: cannot export traces to http://127.0.0.1:4317")
    assert err[1].startswith("tradeobs: traces export to http://127.0.0.1:4317 recovered")


def test_at_shutdown_only_exporters_whose_collector_does_not_answer_give_up(tmp_path: Any) -> None:
    import socket
    import time

    reg = Registry()
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        up = f"http://127.0.0.1:{listening.getsockname()[1]}"
        down = dead_endpoint()
        good, bad = _Flaky(), _Flaky()
        g = CountingSpanExporter(good, "traces", up, reg.self_metrics, Retry(100, 60.0))
        b = CountingSpanExporter(bad, "traces", down, reg.self_metrics, Retry(100, 60.0))
        bad.mode = "fail"
        b.export(ended_spans(3))  # kept: the collector is "down"
        gone = abandon_unreachable(time.monotonic() + 5)
        assert down in gone and up not in gone
    assert bad.shut and not good.shut
    # Counted at once if the batch was waiting; if its send was under way, by the sender when that send returns.
    dropped = reg.self_metrics.items_dropped.bind(signal="traces", reason="shutdown")
    wait_for(lambda: dropped.value == 3, "the abandoned batch counted as dropped")
    g.shutdown()


def test_at_shutdown_the_collector_check_does_not_wait_for_a_slow_resolver_nor_give_up_on_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check had no time limit on resolving the host name: with a slow resolver (here one that answers only
    when the test ends), a shutdown waited for it for its whole bound. The check now returns while the name is still
    resolving, and does not give that collector up: it may well answer (a slow search-domain lookup in front of a
    live collector), so its exporter keeps the shutdown's deadline and what it keeps is not dropped."""
    import socket
    import threading

    real = socket.getaddrinfo
    release = threading.Event()
    answered = threading.Event()

    def slow(host: Any, *args: Any, **kw: Any) -> Any:
        if host == "collector.slow-dns.test":
            release.wait(30)  # the old check waited here, then found the collector listening
            answered.set()
            return real("127.0.0.1", *args, **kw)
        return real(host, *args, **kw)

    take_shutdown_losses()  # losses of earlier tests
    reg = Registry()
    try:
        with socket.socket() as listening:
            listening.bind(("127.0.0.1", 0))
            listening.listen()
            target = f"http://collector.slow-dns.test:{listening.getsockname()[1]}"
            inner = _Flaky()
            exp = CountingSpanExporter(inner, "traces", target, reg.self_metrics, Retry(100, 60.0))
            inner.mode = "fail"
            exp.export(ended_spans(2))  # kept
            monkeypatch.setattr(socket, "getaddrinfo", slow)
            gone = abandon_unreachable(time.monotonic() + 5)
            assert not answered.is_set(), "the check waited for the resolver"
            assert gone == [] and not inner.shut
            assert reg.self_metrics.items_dropped.bind(signal="traces", reason="shutdown").value == 0
    finally:
        release.set()
    assert ("traces", target) not in take_shutdown_losses()
    exp.shutdown()


def test_an_upstream_shutdown_that_raises_is_an_internal_error_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(InMemorySpanExporter):
        def shutdown(self) -> None:
            raise RuntimeError("upstream bug")

    monkeypatch.delenv(_errors.ENV_STRICT)
    monkeypatch.setattr(_errors, "_strict", False)
    exp = CountingSpanExporter(Broken(), "traces", "x", Registry().self_metrics)
    exp.shutdown()  # does not raise in production
    assert _errors.internal_error_counts() == {"exporter.traces.shutdown": 1}
    _errors.reset()


def test_the_metric_wrapper_keeps_the_inner_exporters_preferences() -> None:
    from opentelemetry.sdk.metrics import Counter

    inner = ConsoleMetricExporter(preferred_temporality={Counter: AggregationTemporality.DELTA})
    exp = CountingMetricExporter(inner, "metrics", "console", Registry().self_metrics)
    assert exp._preferred_temporality[Counter] == AggregationTemporality.DELTA
    assert exp.export(MetricsData(resource_metrics=[])) == MetricExportResult.SUCCESS


def test_duplicate_filter_lets_a_message_through_once_per_window_and_counts_queue_drops() -> None:
    reg = Registry()
    f = DuplicateFilter(reg.self_metrics, window=300.0)

    def rec(msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("opentelemetry.sdk.trace.export", logging.WARNING, __file__, 1, msg, args, None)

    assert f.filter(rec("Transient error %s", "UNAVAILABLE"))
    assert not f.filter(rec("Transient error %s", "UNAVAILABLE"))
    assert f.filter(rec("another message"))
    for _ in range(5):
        f.filter(rec("Queue full, dropping %s.", "span"))
    assert reg.self_metrics.items_dropped.bind(signal="traces", reason="queue_full").value == 5


def test_the_filter_sits_on_the_sdks_loggers_and_comes_off_again() -> None:
    f = install_duplicate_filter(Registry().self_metrics)
    try:
        assert f in logging.getLogger("opentelemetry.sdk.trace.export").filters
    finally:
        remove_duplicate_filter(f)
    assert f not in logging.getLogger("opentelemetry.sdk.trace.export").filters


def test_with_a_retry_buffer_batches_outlive_an_outage_in_order(caplog: pytest.LogCaptureFixture) -> None:
    """A collector that refuses for a while: nothing is dropped, everything arrives once, in order."""
    delivered: list[str] = []

    class Collector(_Flaky):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            result = super().export(spans)
            if result == SpanExportResult.SUCCESS:
                delivered.extend(s.name for s in spans)
            return result

    reg = Registry()
    inner = Collector()
    exp = CountingSpanExporter(inner, "traces", "collector:4317", reg.self_metrics, Retry(1000, 60.0))
    batches = [ended_spans(3) for _ in range(4)]
    names = [s.name for b in batches for s in b]
    inner.mode = "fail"
    for b in batches[:3]:
        assert exp.export(b) == SpanExportResult.SUCCESS  # accepted at once: the caller never waits
    wait_for(lambda: exp.delivery is not None and exp.delivery.failing, "the sender to see the outage")
    inner.mode = "ok"
    exp.export(batches[3])
    assert exp.force_flush(10_000)
    assert delivered == names
    selfm = reg.self_metrics
    assert selfm.items_exported.bind(signal="traces", exporter="Collector").value == 12
    assert selfm.items_dropped.bind(signal="traces", reason="export_failed").value == 0
    assert selfm.exports_failed.bind(signal="traces", exporter="Collector").value >= 1
    exp.shutdown()


class _FailingMetrics(ConsoleMetricExporter):
    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kw: Any) -> MetricExportResult:
        return MetricExportResult.FAILURE


def _metrics_data(temporality: AggregationTemporality) -> MetricsData:
    from opentelemetry.sdk.metrics.export import Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    def point(v: int) -> NumberDataPoint:
        return NumberDataPoint(attributes={"k": v}, start_time_unix_nano=0, time_unix_nano=1, value=v)

    metrics = [
        Metric("c", "", "1", Sum([point(1), point(2), point(3)], temporality, is_monotonic=True)),
        Metric("g", "", "1", Gauge([point(4)])),
    ]
    return MetricsData(
        [ResourceMetrics(Resource.create({}), [ScopeMetrics(InstrumentationScope("t"), metrics, "")], "")]
    )


@pytest.mark.parametrize(
    ("temporality", "dropped"), [(AggregationTemporality.CUMULATIVE, 0), (AggregationTemporality.DELTA, 3)]
)
def test_a_failed_metrics_export_drops_only_delta_points(temporality: AggregationTemporality, dropped: int) -> None:
    """Cumulative points and gauges are carried by the next export: a collector outage is a failed export, not
    lost counts (which would fire TradeobsAgentDroppingItems on every collector restart)."""
    selfm = Registry().self_metrics
    exp = CountingMetricExporter(_FailingMetrics(), "metrics", "x", selfm)
    assert exp.export(_metrics_data(temporality)) == MetricExportResult.FAILURE
    assert selfm.exports_failed.bind(signal="metrics", exporter="_FailingMetrics").value == 1
    assert selfm.items_dropped.bind(signal="metrics", reason="export_failed").value == dropped
