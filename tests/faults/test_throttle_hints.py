"""A collector that asks for a pause (OTLP throttling) gets it: the agent's next attempt waits for the hint.

The OTLP specification: a client refused with OTLP/HTTP 429/503 and ``Retry-After``, or OTLP/gRPC
``RESOURCE_EXHAUSTED``/``UNAVAILABLE`` with a ``google.rpc.RetryInfo`` in the status details, waits that long before
it sends again. Before this, the agent's sender tried again on its own schedule (0.5 s doubling to 5 s) once the
SDK's exporter gave up on a hint longer than its timeout, and over gRPC the SDK did not read the hint at all (it
looks for a ``google.rpc.retryinfo-bin`` trailer; servers send ``grpc-status-details-bin``) and retried after 1 s.

Real parts: the SDK's OTLP exporters as ``init()`` builds them (``providers._otlp_exporter``), the agent's
wrapper and sender, and a real grpcio / HTTP server on loopback (``otlp_refuser.ThrottlingOtlpServer``).
"""

from __future__ import annotations

import email.utils
import itertools
import threading
import time
from collections import Counter
from typing import Any

import grpc
import pytest

from tests._util import ended_spans, wait_for
from tradeobs_agent._internal import providers
from tradeobs_agent._internal.exporters import CountingSpanExporter, Retry
from tradeobs_agent.config import resolve_settings
from tradeobs_agent.metrics import Registry

from .otlp_refuser import ThrottlingOtlpServer

pytestmark = pytest.mark.faults


def _exporter(srv: ThrottlingOtlpServer, timeout: float, max_age: float = 300.0) -> tuple[Any, Registry]:
    settings, _ = resolve_settings(otlp_endpoint=srv.endpoint, otlp_protocol=srv.protocol, otlp_timeout=timeout)
    inner, target = providers._otlp_exporter(settings, "traces")
    reg = Registry()
    return CountingSpanExporter(inner, "traces", target, reg.self_metrics, Retry(1000, max_age)), reg


def _dropped(reg: Registry) -> Counter[str]:
    items = reg.self_metrics.items_dropped
    reasons = ("expired", "shutdown", "retry_buffer_full")
    return Counter({r: items.bind(signal="traces", reason=r).value for r in reasons})


HINTS = [
    # protocol, server's answer, the exporter's own timeout (s): a hint longer than it ends the SDK's export at
    # once (the agent's sender must wait); a shorter one is waited for inside the export (the SDK's retry loop)
    pytest.param("grpc", {"code": grpc.StatusCode.RESOURCE_EXHAUSTED}, 1.0, id="grpc-resource-exhausted-retryinfo"),
    pytest.param("grpc", {"code": grpc.StatusCode.UNAVAILABLE}, 1.0, id="grpc-unavailable-retryinfo"),
    pytest.param("grpc", {"code": grpc.StatusCode.RESOURCE_EXHAUSTED}, 10.0, id="grpc-retryinfo-within-the-timeout"),
    pytest.param("http/protobuf", {"status": 429}, 1.0, id="http-429-retry-after-seconds"),
    pytest.param("http/protobuf", {"status": 503, "date": True}, 1.0, id="http-503-retry-after-date"),
]


@pytest.mark.parametrize(("protocol", "answer", "timeout"), HINTS)
def test_the_next_attempt_waits_for_the_collectors_hint_then_delivers(
    protocol: str, answer: dict[str, Any], timeout: float
) -> None:
    delay = 2.0
    kw: dict[str, Any] = {"delay": delay}
    if protocol == "grpc":
        kw["code"] = answer["code"]
    else:
        kw["status"] = answer["status"]
        if answer.get("date"):  # an HTTP date 3 s ahead (whole seconds): not before then
            kw["retry_after"] = email.utils.formatdate(time.time() + 3, usegmt=True)
    with ThrottlingOtlpServer(protocol, refusals=2, **kw) as srv:
        exp, reg = _exporter(srv, timeout)
        try:
            spans = ended_spans(3)
            exp.export(spans)
            wait_for(lambda: len(srv.accepted) == 3, "the spans delivered after the pauses", limit=60)
            # the server took them; the sender thread has its answer once a flush returns (a shutdown at once,
            # with no deadline, would count a batch whose answer was still on its way as dropped: a full run did)
            assert exp.force_flush(30_000)
        finally:
            exp.shutdown()
        arrivals = list(srv.arrivals)
    assert [a[2] for a in arrivals] == [True, True, False], arrivals  # refused twice, then taken: no extra attempt
    for before, after in itertools.pairwise(arrivals):
        if "retry_after" in kw:
            not_before = email.utils.parsedate_to_datetime(kw["retry_after"]).timestamp()
            assert after[1] >= not_before, f"an attempt {not_before - after[1]:.2f} s before the Retry-After date"
        else:
            gap = after[0] - before[0]
            assert gap >= delay, f"the next attempt came {gap:.2f} s after a refusal asking for {delay:g} s"
    assert srv.accepted == [s.name for s in spans]
    assert not +_dropped(reg)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_a_hint_past_the_shutdown_deadline_is_not_waited_out_and_what_is_kept_is_counted(protocol: str) -> None:
    """A pause of 4 hours, a shutdown with an hour to deliver (and kept batches that live 2 hours, so the pause
    is not cut short by their expiry): it gives up at once (the next attempt would come after its deadline),
    counts what it kept as dropped, and the collector sees no second attempt.

    No clock decides it: a shutdown that waited would still be waiting an hour later, so the test reads whether
    ``shutdown()`` returned (its ``limit`` only bounds the broken case) and what the exporter counted."""
    with ThrottlingOtlpServer(protocol, refusals=100, delay=4 * 3600.0) as srv:
        exp, reg = _exporter(srv, timeout=1.0, max_age=2 * 3600.0)
        exp.export(ended_spans(3))
        wait_for(lambda: exp.delivery.failing, "the refusal")
        exp.export(ended_spans(2))  # kept during the pause
        exp.deadline = time.monotonic() + 3600.0
        raised: list[BaseException] = []

        def shut() -> None:
            try:
                exp.shutdown()
            except BaseException as exc:  # re-raised below, on the test's thread
                raised.append(exc)

        stop = threading.Thread(target=shut, name="test-shutdown", daemon=True)
        stop.start()
        wait_for(lambda: not stop.is_alive(), "shutdown() to give up on a pause that outlasts its deadline", limit=60)
        if raised:
            raise raised[0]
        arrivals = list(srv.arrivals)
    assert len(arrivals) == 1, arrivals
    assert _dropped(reg)["shutdown"] == 5 and not srv.accepted
    assert len(exp.delivery) == 0


def test_a_hint_longer_than_the_buffers_max_age_expires_what_is_kept_on_time_and_counts_it() -> None:
    """Kept batches do not outlive ``max_age`` because the collector asked for a longer pause: they expire on time,
    counted, and nothing is sent to the collector meanwhile."""
    with ThrottlingOtlpServer("http/protobuf", refusals=100, delay=600.0, status=503) as srv:
        exp, reg = _exporter(srv, timeout=1.0, max_age=1.0)
        try:
            exp.export(ended_spans(4))
            wait_for(lambda: _dropped(reg)["expired"] == 4, "the kept spans to expire during the pause")
            assert len(exp.delivery) == 0
            assert len(srv.arrivals) == 1, srv.arrivals
        finally:
            exp.deadline = time.monotonic()
            exp.shutdown()


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_metrics_are_not_sent_during_the_pause(protocol: str) -> None:
    """The periodic metrics export after a throttled one is not sent before the pause ends: counted as a failed
    export (cumulative points are carried by the next one), the collector sees nothing."""
    from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricExportResult

    from tests.unit.internal.test_exporters import _metrics_data
    from tradeobs_agent._internal.exporters import CountingMetricExporter

    with ThrottlingOtlpServer(protocol, refusals=100, delay=600.0, status=503) as srv:
        settings, _ = resolve_settings(otlp_endpoint=srv.endpoint, otlp_protocol=protocol, otlp_timeout=1.0)
        inner, target = providers._otlp_exporter(settings, "metrics")
        reg = Registry()
        exp = CountingMetricExporter(inner, "metrics", target, reg.self_metrics)
        try:
            data = _metrics_data(AggregationTemporality.CUMULATIVE)
            assert exp.export(data) == MetricExportResult.FAILURE  # refused, with the hint
            assert exp.export(data) == MetricExportResult.FAILURE  # not sent: the pause runs
            assert exp.export(data) == MetricExportResult.FAILURE
            arrivals = list(srv.arrivals)
        finally:
            exp.shutdown()
    assert len(arrivals) == 1, arrivals
    failed = reg.self_metrics.exports_failed.bind(signal="metrics", exporter=type(inner).__name__).value
    assert failed == 3
    assert exp.last_error is not None and "asked to wait 600 s" in exp.last_error


def test_a_413_from_a_proxy_sends_the_batch_again_in_halves_and_the_next_one_goes_through() -> None:
    """``413 Payload Too Large`` (a proxy's body limit in front of the collector): sending the same body again
    cannot pass. Before, the agent's sender kept the batch and sent it again whole on its back-off until it expired,
    every later batch waiting behind it. Now its two halves are sent at once (this server refuses only the first
    request), nothing is dropped, and the next batch follows. (The collector's own limits, and an item too large by
    itself: tests/integration/test_collector_too_large.py.)"""
    with ThrottlingOtlpServer("http/protobuf", refusals=1, status=413) as srv:
        exp, reg = _exporter(srv, timeout=1.0)
        try:
            exp.export(ended_spans(4))
            exp.export(ended_spans(2))
            wait_for(lambda: srv.accepted, "a batch delivered", limit=60)
            assert exp.force_flush(10_000)
        finally:
            exp.deadline = time.monotonic()
            exp.shutdown()
        arrivals = list(srv.arrivals)
    assert [a[2] for a in arrivals] == [True, False, False, False], arrivals  # refused whole, then two halves
    assert srv.accepted == ["s0", "s1", "s2", "s3", "s0", "s1"]
    assert reg.self_metrics.items_dropped.bind(signal="traces", reason="too_large").value == 0
    assert not +_dropped(reg)
