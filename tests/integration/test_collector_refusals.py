"""A collector that answers but refuses for good: each refusal does what can help, is counted with its reason and
said once, naming the signal, the target and the setting.

Real otelcol-tradeobs processes, the agent's own OTLP exporters (``providers._otlp_exporter``) of traces, logs and
metrics, over OTLP/gRPC and OTLP/HTTP:

* a wrong token against ``collector/otel-collector.auth.yaml`` (gRPC ``UNAUTHENTICATED``, HTTP 401): the token can
  be fixed on the collector's side while the service runs, so batches are kept and sent again (delivered once the
  collector takes the agent's token), and what the retry buffer gives up is counted as ``reason="unauthorized"``;
  the outage is said once per signal with the collector's answer and ``TRADEOBS_OTLP_HEADERS``;
* a collector with a traces pipeline only (gRPC ``UNIMPLEMENTED`` "unknown service", HTTP 404) and an OTLP/HTTP
  endpoint with a wrong path (404): dropped at once, ``reason="unimplemented"``, later batches not held back;
* a collector whose traces exporter has no sending queue and whose backend refuses the data (gRPC
  ``INVALID_ARGUMENT``, HTTP 400, passed on by the collector's receiver): dropped at once, ``reason="rejected"``.

Before (the old code, measured 2026-12-05 with these tests): every one of them was an outage said as "cannot export
... (export failed)", its batch kept at the head of the retry buffer and sent again every 5 s until it expired
(``reason="expired"``), every later batch waiting behind it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from tests._util import dead_endpoint, ended_spans
from tradeobs_agent._internal import providers
from tradeobs_agent._internal.exporters import (
    CountingLogExporter,
    CountingMetricExporter,
    CountingSpanExporter,
    Retry,
)
from tradeobs_agent.config import resolve_settings
from tradeobs_agent.metrics import Registry

from .procs import COLLECTOR_CONFIG, REPO, CollectorProc, collector_env, start_collector, wait_for

pytestmark = pytest.mark.integration

AUTH_OVERLAY = REPO / "collector" / "otel-collector.auth.yaml"
PROTOCOLS = ["grpc", "http/protobuf"]


@contextmanager
def _collector(
    workdir: Path, edit: Any = None, overlays: tuple[Path, ...] = (), env: dict[str, str] | None = None
) -> Iterator[CollectorProc]:
    """otel-collector.yaml, changed by ``edit(config, env)``, with ``overlays``."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(env or collector_env(workdir, dead_endpoint()))
    cfg = yaml.safe_load(COLLECTOR_CONFIG.read_text())
    if edit is not None:
        edit(cfg, env)
    path = workdir / "otel-collector.test.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    with start_collector(workdir, "", config=path, env=env, overlays=overlays) as col:
        yield col


def _endpoint(col: CollectorProc, protocol: str) -> str:
    return f"http://{col.otlp_grpc_endpoint}" if protocol == "grpc" else col.otlp_http_endpoint


class _Agent:
    """The agent's three OTLP exporters to ``endpoint``, each counted in its own registry."""

    def __init__(self, endpoint: str, protocol: str, headers: str = "", max_age: float = 300.0) -> None:
        kw: dict[str, Any] = {"otlp_headers": headers} if headers else {}
        settings, _ = resolve_settings(otlp_endpoint=endpoint, otlp_protocol=protocol, otlp_timeout=5.0, **kw)
        self.reg = {s: Registry() for s in ("traces", "logs", "metrics")}
        self.targets: dict[str, str] = {}
        inner: dict[str, Any] = {}
        for s in self.reg:
            inner[s], self.targets[s] = providers._otlp_exporter(settings, s)
        self.exporter_name = {s: type(inner[s]).__name__ for s in inner}
        retry = Retry(100_000, max_age)
        self.traces = CountingSpanExporter(
            inner["traces"], "traces", self.targets["traces"], self.reg["traces"].self_metrics, retry
        )
        self.logs = CountingLogExporter(
            inner["logs"], "logs", self.targets["logs"], self.reg["logs"].self_metrics, retry
        )
        self.metrics = CountingMetricExporter(
            inner["metrics"], "metrics", self.targets["metrics"], self.reg["metrics"].self_metrics
        )

    def dropped(self, signal: str, reason: str) -> float:
        return self.reg[signal].self_metrics.items_dropped.bind(signal=signal, reason=reason).value

    def all_dropped(self, signal: str) -> dict[str, float]:
        reasons = ("unauthorized", "unimplemented", "rejected", "expired", "retry_buffer_full", "export_failed")
        return {r: v for r in reasons if (v := self.dropped(signal, r))}

    def exported(self, signal: str) -> float:
        m = self.reg[signal].self_metrics.items_exported
        return m.bind(signal=signal, exporter=self.exporter_name[signal]).value

    def failed(self, signal: str) -> float:
        m = self.reg[signal].self_metrics.exports_failed
        return m.bind(signal=signal, exporter=self.exporter_name[signal]).value

    def close(self) -> None:
        for exp in (self.traces, self.logs, self.metrics):
            exp.deadline = 0.0
            exp.shutdown()


def _logs(n: int) -> list[Any]:
    resource, scope = Resource.create({"service.name": "refusals"}), InstrumentationScope("t")
    return [ReadableLogRecord(LogRecord(observed_timestamp=1, body=f"record {i}"), resource, scope) for i in range(n)]


def _metrics() -> Any:
    """Four points of a delta counter (lost when an export fails) and two of a cumulative one."""
    reader = InMemoryMetricReader(preferred_temporality={Counter: AggregationTemporality.DELTA})
    delta = MeterProvider(metric_readers=[reader]).get_meter("m").create_counter("orders")
    for i in range(4):
        delta.add(1, {"k": str(i)})
    data = reader.get_metrics_data()
    assert data is not None
    return data


def _said(caplog: pytest.LogCaptureFixture, signal: str, text: str) -> list[str]:
    return [
        m
        for r in caplog.records
        if r.name == "tradeobs" and text in (m := r.getMessage()) and f" {signal} " in m.replace("export ", " ")
    ]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_wrong_token_keeps_the_data_says_the_setting_once_and_counts_what_is_given_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    caplog.set_level(logging.WARNING, logger="tradeobs")
    workdir = tmp_path / "collector"
    workdir.mkdir()
    env = {**collector_env(workdir, dead_endpoint()), "TRADEOBS_COLLECTOR_TOKEN": secrets.token_urlsafe(24)}
    agents_token = secrets.token_urlsafe(24)
    answer = "UNAUTHENTICATED" if protocol == "grpc" else "HTTP 401"
    with _collector(workdir, overlays=(AUTH_OVERLAY,), env=env) as col:
        endpoint = _endpoint(col, protocol)
        keeping = _Agent(endpoint, protocol, f"authorization=Bearer {agents_token}")
        expiring = _Agent(endpoint, protocol, f"authorization=Bearer {agents_token}", max_age=1.0)
        try:
            keeping.traces.export(ended_spans(3))
            keeping.logs.export(_logs(2))
            expiring.traces.export(ended_spans(5))
            expiring.logs.export(_logs(4))
            # Kept and sent again (several refusals), until the retry buffer gives up: counted as unauthorized
            wait_for(
                lambda: [expiring.dropped(s, "unauthorized") for s in ("traces", "logs")] == [5, 4],
                "what the 1 s retry buffer gave up counted as unauthorized",
                procs=(col.proc,),
            )
            wait_for(lambda: keeping.failed("traces") >= 2 and keeping.failed("logs") >= 2, "refused again")
            assert len(keeping.traces.delivery or ()) == 3 and len(keeping.logs.delivery or ()) == 2
            assert keeping.metrics.export(_metrics()) == MetricExportResult.FAILURE
            assert keeping.dropped("metrics", "unauthorized") == 4  # the delta points; no others
            for agent in (keeping, expiring):
                for signal in ("traces", "logs", "metrics"):
                    assert set(agent.all_dropped(signal)) <= {"unauthorized"}, (signal, agent.all_dropped(signal))
                    assert agent.exported(signal) == 0
        finally:
            env = col.env
            expiring.close()
    try:
        # The collector is reconfigured with the token the agent sends: what was kept is delivered.
        env["TRADEOBS_COLLECTOR_TOKEN"] = agents_token
        with _collector(workdir, overlays=(AUTH_OVERLAY,), env=env) as col:
            wait_for(
                lambda: keeping.exported("traces") == 3 and keeping.exported("logs") == 2,
                "the kept spans and log records delivered once the token is right",
                procs=(col.proc,),
            )
            assert keeping.metrics.export(_metrics()) == MetricExportResult.SUCCESS
    finally:
        keeping.close()
    for signal in ("traces", "logs", "metrics"):
        said = _said(caplog, signal, "refused the credentials")
        # one per exporter (two exporters of spans and log records, one of metrics), however many refusals
        assert len(said) == (1 if signal == "metrics" else 2), said
        assert answer in said[0] and "TRADEOBS_OTLP_HEADERS" in said[0] and 'reason="unauthorized"' in said[0], said
        assert agents_token not in said[0] and env["TRADEOBS_COLLECTOR_TOKEN"] not in said[0]
        assert "export failed" not in said[0]


def _traces_only(cfg: dict[str, Any], env: dict[str, str]) -> None:
    del cfg["service"]["pipelines"]["logs"]
    del cfg["service"]["pipelines"]["metrics"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_signal_the_collector_has_no_pipeline_for_is_dropped_at_once_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    caplog.set_level(logging.WARNING, logger="tradeobs")
    answer = "UNIMPLEMENTED" if protocol == "grpc" else "HTTP 404"
    with _collector(tmp_path / "collector", _traces_only) as col:
        agent = _Agent(_endpoint(col, protocol), protocol)
        try:
            agent.logs.export(_logs(3))
            agent.traces.export(ended_spans(2))
            agent.logs.export(_logs(4))
            assert agent.logs.force_flush(30_000), "the log records were held back"
            assert agent.traces.force_flush(30_000)
            assert agent.metrics.export(_metrics()) == MetricExportResult.FAILURE
            assert agent.metrics.export(_metrics()) == MetricExportResult.FAILURE
        finally:
            agent.close()
    assert agent.exported("traces") == 2 and not agent.all_dropped("traces")
    assert agent.all_dropped("logs") == {"unimplemented": 7}
    assert agent.all_dropped("metrics") == {"unimplemented": 8}
    assert len(agent.logs.delivery or ()) == 0
    for signal in ("logs", "metrics"):
        said = _said(caplog, signal, "does not take")
        assert len(said) == 1, said
        assert answer in said[0] and agent.targets[signal] in said[0] and "pipeline" in said[0], said
        assert 'reason="unimplemented"' in said[0]
    assert not [r for r in caplog.records if r.name == "tradeobs" and "outage" in r.getMessage()]


def test_an_otlp_http_endpoint_with_a_wrong_path_is_said_with_the_setting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``TRADEOBS_OTLP_ENDPOINT=http://collector:4318/otlp``: the agent posts to /otlp/v1/traces, the collector
    answers 404 for every signal."""
    caplog.set_level(logging.WARNING, logger="tradeobs")
    with _collector(tmp_path / "collector") as col:
        agent = _Agent(col.otlp_http_endpoint + "/otlp", "http/protobuf")
        try:
            for _ in range(3):
                agent.traces.export(ended_spans(2))
                agent.logs.export(_logs(1))
            assert agent.traces.force_flush(30_000) and agent.logs.force_flush(30_000)
            assert agent.metrics.export(_metrics()) == MetricExportResult.FAILURE
        finally:
            agent.close()
    assert agent.all_dropped("traces") == {"unimplemented": 6}
    assert agent.all_dropped("logs") == {"unimplemented": 3}
    assert agent.all_dropped("metrics") == {"unimplemented": 4}
    for signal in ("traces", "logs", "metrics"):
        said = _said(caplog, signal, "does not take")
        assert len(said) == 1, said
        assert "HTTP 404" in said[0] and f"/otlp/v1/{signal}" in said[0] and "TRADEOBS_OTLP_ENDPOINT" in said[0]


def _backend_refuses(cfg: dict[str, Any], env: dict[str, str]) -> None:
    """Traces go, with no sending queue, to an OTLP/HTTP backend that answers 400: the collector's own logs
    receiver, sent spans (it cannot parse them as log records). The refusal comes back to the agent."""
    cfg["exporters"]["otlp_http/refusing"] = {
        "traces_endpoint": f"http://{env['TRADEOBS_OTLP_HTTP_ENDPOINT']}/v1/logs",
        "sending_queue": {"enabled": False},
        "retry_on_failure": {"enabled": False},
    }
    cfg["service"]["pipelines"]["traces"]["exporters"] = ["otlp_http/refusing"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_data_the_collector_rejects_is_dropped_at_once_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    caplog.set_level(logging.WARNING, logger="tradeobs")
    answer = "INVALID_ARGUMENT" if protocol == "grpc" else "HTTP 400"
    with _collector(tmp_path / "collector", _backend_refuses) as col:
        agent = _Agent(_endpoint(col, protocol), protocol)
        try:
            for _ in range(3):
                agent.traces.export(ended_spans(2))
            agent.logs.export(_logs(2))
            assert agent.traces.force_flush(30_000), "the spans were held back"
            assert agent.logs.force_flush(30_000)
        finally:
            agent.close()
    assert agent.all_dropped("traces") == {"rejected": 6}
    assert agent.exported("logs") == 2
    said = _said(caplog, "traces", "rejected traces")
    assert len(said) == 1, said
    assert answer in said[0] and 'reason="rejected"' in said[0] and agent.targets["traces"] in said[0]


def test_the_start_up_probe_names_the_setting_and_the_collectors_answer(tmp_path: Path) -> None:
    """``tradeobs doctor``'s collector check (``otlp_probe``) against the same collectors: it said "are otlp_headers
    right?" without the collector's answer or the variable to set, and called a receiver with no logs pipeline (HTTP
    404) "not an OTLP receiver"."""
    from tradeobs_agent._internal.otlp_probe import probe
    from tradeobs_agent.config import otlp_for

    workdir = tmp_path / "auth"
    workdir.mkdir()
    env = {**collector_env(workdir, dead_endpoint()), "TRADEOBS_COLLECTOR_TOKEN": secrets.token_urlsafe(24)}
    said: dict[str, str] = {}
    with _collector(workdir, overlays=(AUTH_OVERLAY,), env=env) as col:
        for protocol in PROTOCOLS:
            settings, _ = resolve_settings(
                otlp_endpoint=_endpoint(col, protocol), otlp_protocol=protocol, otlp_headers="authorization=Bearer no"
            )
            result = probe(otlp_for(settings, "traces"), "traces", timeout=5.0)
            assert result.ok is False
            said[protocol] = result.detail
    with _collector(tmp_path / "traces-only", _traces_only) as col:
        settings, _ = resolve_settings(otlp_endpoint=col.otlp_http_endpoint, otlp_protocol="http/protobuf")
        for signal in ("traces", "logs"):
            result = probe(otlp_for(settings, signal), signal, timeout=5.0)
            said[signal] = result.detail
            assert result.ok is (signal == "traces"), result
    for protocol, answer in (("grpc", "UNAUTHENTICATED"), ("http/protobuf", "HTTP 401")):
        detail = said[protocol]
        assert answer in detail and "TRADEOBS_OTLP_HEADERS" in detail and "does not match" in detail, detail
        assert env["TRADEOBS_COLLECTOR_TOKEN"] not in detail
    assert "no OTLP/HTTP receiver for logs at /v1/logs" in said["logs"] and "no logs pipeline" in said["logs"], said


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_service_stopped_while_its_token_is_refused_gives_up_at_once_and_says_why(
    tmp_path: Path, protocol: str
) -> None:
    """An agent process (``auth_probe.py``: ``init()``, one span, ``shutdown(timeout=5)``) with a wrong token. Before,
    its shutdown sent the span again until 90% of its bound (the collector answers, so it was not given up) and
    the last line said only "1 spans not delivered"; now an exporter whose last export was refused for its
    credentials gives up at once, and that line says why."""
    from .test_collector_auth import _probe

    workdir = tmp_path / "collector"
    workdir.mkdir()
    env = {**collector_env(workdir, dead_endpoint()), "TRADEOBS_COLLECTOR_TOKEN": secrets.token_urlsafe(24)}
    with _collector(workdir, overlays=(AUTH_OVERLAY,), env=env) as col:
        r = _probe(
            {
                "TRADEOBS_OTLP_ENDPOINT": _endpoint(col, protocol),
                "TRADEOBS_OTLP_PROTOCOL": protocol,
                "TRADEOBS_OTLP_HEADERS": f"authorization=Bearer {secrets.token_urlsafe(24)}",
            },
            "refused-at-exit",
            tmp_path / "agent",
        )
    assert r["exported"] == 0 and r["dropped"] == 1, r
    last = [ln for ln in r["stderr"].splitlines() if "tradeobs shutdown:" in ln and "spans not delivered" in ln]
    assert len(last) == 1 and "given up at once, the collector refuses the credentials" in last[0], r["stderr"][-3000:]
    assert "TRADEOBS_OTLP_HEADERS" in last[0]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_collector_that_takes_everything_answers_no_partial_success_the_agent_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    """The agent reads OTLP ``partial_success`` (tests/unit/internal/test_partial_success.py): against the real
    collector, which takes every item, it counts none as ``rejected_by_server`` and says nothing; what it counts as
    exported is what it sent."""
    caplog.set_level(logging.WARNING, logger="tradeobs")
    with _collector(tmp_path / "collector") as col:
        agent = _Agent(_endpoint(col, protocol), protocol)
        try:
            agent.traces.export(ended_spans(7))
            agent.logs.export(_logs(5))
            assert agent.metrics.export(_metrics()) == MetricExportResult.SUCCESS
            assert agent.traces.force_flush(30_000) and agent.logs.force_flush(30_000)
        finally:
            agent.close()
    assert [agent.exported(s) for s in ("traces", "logs", "metrics")] == [7, 5, 4]
    for signal in ("traces", "logs", "metrics"):
        assert agent.dropped(signal, "rejected_by_server") == 0 and not agent.all_dropped(signal)
    assert not [r.getMessage() for r in caplog.records if r.name == "tradeobs"]
