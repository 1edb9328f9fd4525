"""The real collector masks the agent's secret VALUE formats for a service that does not run the agent.

A plain OpenTelemetry SDK service (no ``tradeobs_agent``: as a Go or Java service would) sends each text of
``value_corpus()`` (a Google key in ``?key=``, a Binance ``&signature=``, Stripe/GitHub/Slack/OpenAI keys, a PEM
private key, a JWT, ``password=...``, ...; and the trading look-alikes the agent keeps: ``key=AAPL``,
``desk_live_pnl``, order ids) as a log body, a log record attribute, a span attribute and a span event attribute,
each under an innocent key (``http.url``, ``message``), through ``collector/otel-collector.yaml``'s own
redaction processors; what the collector's file exporters wrote must read exactly as the agent's redaction
would have written it: each secret masked with ``[REDACTED]``, each look-alike intact.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tests.unit.test_secrets_keys import value_corpus
from tradeobs_agent.redaction import Redactor

from .procs import (
    COLLECTOR_CONFIG,
    DATA_TIMEOUT,
    _attrs,
    free_port,
    http_get,
    read_otlp_json_logs,
    start_collector,
    wait_for,
)

pytestmark = pytest.mark.integration


def file_config(workdir: Path, config: Path = COLLECTOR_CONFIG) -> Path:
    """``config`` as it is (its redaction processors included), traces, logs and metrics written to files."""
    cfg = yaml.safe_load(config.read_text())
    cfg["exporters"]["file/traces"] = {
        "path": str(workdir / "traces.jsonl"),
        "format": "json",
        "flush_interval": "200ms",
    }
    # metrics to a file too (OTLP JSON, as a gateway tier or an OTLP metrics store receives them: exemplars with
    # their filtered attributes, which the Prometheus page leaves out)
    cfg["exporters"]["file/metrics"] = {
        "path": str(workdir / "metrics.jsonl"),
        "format": "json",
        "flush_interval": "200ms",
    }
    pipelines = cfg["service"]["pipelines"]
    pipelines["traces"]["exporters"] = ["file/traces"]
    pipelines["logs"]["exporters"] = ["file/logs"]
    pipelines["metrics"]["exporters"] = [*pipelines["metrics"]["exporters"], "file/metrics"]
    path = workdir / "otel-collector.files.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def read_spans(path: Path) -> list[dict[str, Any]]:
    """Spans from the file exporter (OTLP JSON lines), with "_attributes" and each event's "_attributes"."""
    spans: list[dict[str, Any]] = []
    if not path.exists():
        return spans
    for line in path.read_text(errors="replace").splitlines():  # a sender may send strings that are no UTF-8
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written right now
        for rs in doc.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    span["_attributes"] = _attrs(span.get("attributes", []))
                    for ev in span.get("events", []):
                        ev["_attributes"] = _attrs(ev.get("attributes", []))
                    spans.append(span)
    return spans


def send_and_read(
    workdir: Path, config: Path, texts: list[str], keys: tuple[str, str] = ("http.url", "message")
) -> dict[str, dict[int, str]]:
    """Send each of ``texts`` through a collector running ``config``, as a log body and under ``keys`` (the span
    attribute's, then the span event's and the log record's); {where: {index: what it wrote}}."""
    span_key, key = keys
    workdir.mkdir(parents=True, exist_ok=True)
    with start_collector(workdir, f"127.0.0.1:{free_port()}", config=file_config(workdir, config)) as c:
        endpoint = f"http://{c.otlp_grpc_endpoint}"
        resource = Resource.create({"service.name": f"plain-sdk-{uuid.uuid4().hex[:8]}"})
        tp = TracerProvider(resource=resource)
        tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
        lp = LoggerProvider(resource=resource)
        lp.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True)))
        tracer, logger = tp.get_tracer("plain"), lp.get_logger("plain")
        for i, text in enumerate(texts):
            # innocent keys: only the value says it is a secret
            with tracer.start_as_current_span(f"call-{i}", attributes={"i": i, span_key: text}) as span:
                span.add_event("sent", {key: text})
            logger.emit(body=text, attributes={"i": i, key: text})
        assert tp.force_flush() and lp.force_flush()
        tp.shutdown()
        lp.shutdown()

        def everything() -> dict[str, dict[int, str]] | None:
            spans = [s for s in read_spans(workdir / "traces.jsonl") if "i" in s["_attributes"]]
            logs = [r for r in read_otlp_json_logs(c.logs_file) if "i" in r["_attributes"]]
            if len(spans) < len(texts) or len(logs) < len(texts):
                return None
            return {
                "span attribute": {s["_attributes"]["i"]: s["_attributes"][span_key] for s in spans},
                "span event attribute": {s["_attributes"]["i"]: s["events"][0]["_attributes"][key] for s in spans},
                "log body": {r["_attributes"]["i"]: r["body"]["stringValue"] for r in logs},
                "log attribute": {r["_attributes"]["i"]: r["_attributes"][key] for r in logs},
            }

        return wait_for(everything, f"{len(texts)} spans and log records", timeout=DATA_TIMEOUT, procs=(c.proc,))


def test_a_service_without_the_agent_gets_its_secret_values_masked_as_the_agent_masks_them(tmp_path: Path) -> None:
    masked, kept = value_corpus()
    agent = Redactor(known_values=False)
    # also what the agent itself sends: masked already, it must come out as it is
    kept = [*kept, *(agent.text(t) for t, _ in masked)]
    texts = [t for t, _ in masked] + kept
    # the span attribute is http.url: a URL attribute, where "key=AAPL" at the start is a query parameter
    keys = {"span attribute": "http.url", "span event attribute": "message", "log attribute": "message"}
    got = send_and_read(tmp_path / "collector", COLLECTOR_CONFIG, texts)
    wrong = []
    for where, values in got.items():
        assert sorted(values) == list(range(len(texts))), where
        key = keys.get(where, "")
        for i, (text, secret) in enumerate(masked):
            if secret in values[i] or values[i] != agent.value(key, text):
                wrong.append((where, text, values[i]))
        for i, text in enumerate(kept, start=len(masked)):
            if values[i] != agent.value(key, text) or (key != "http.url" and values[i] != text):
                wrong.append((where, text, values[i]))
    assert wrong == []


@pytest.mark.parametrize("keys", [("url.query", "url.query"), ("url.full", "http.target"), ("http.url", "url.query")])
def test_a_url_query_attribute_is_masked_from_its_first_parameter_and_a_message_keeps_key_aapl(
    tmp_path: Path, keys: tuple[str, str]
) -> None:
    """OTel's url.query holds the query without "?": ``key=AIza...&sig=...``. The collector masks its first parameter
    as the agent does (``Redactor.value``); the same text as a log body (a message: "key=AAPL" is a word) is kept."""
    agent = Redactor(known_values=False)
    texts = [
        "key=" + "k" * 8 + "123abc&symbol=AAPL",
        "sig=AbC%2Fd%3D&se=2030&sp=r",
        "signature=9f86d081884c7d65&timestamp=1700000000",
        "symbol=AAPL&key=k-abc123&sig=zz9",
        "key=[REDACTED]&sig=[REDACTED]",  # the agent's own output: as it is
        "symbol=AAPL&limit=10",
    ]
    got = send_and_read(tmp_path / "collector", COLLECTOR_CONFIG, texts, keys)
    expected = [
        "key=[REDACTED]&symbol=AAPL",
        "sig=[REDACTED]&se=2030&sp=r",
        "signature=[REDACTED]&timestamp=1700000000",
        "symbol=AAPL&key=[REDACTED]&sig=[REDACTED]",
        "key=[REDACTED]&sig=[REDACTED]",
        "symbol=AAPL&limit=10",
    ]
    span_key, key = keys
    assert [got["span attribute"][i] for i in range(len(texts))] == expected
    assert [agent.value(span_key, t) for t in texts] == expected
    for where in ("span event attribute", "log attribute"):
        assert [got[where][i] for i in range(len(texts))] == expected, where
    assert [agent.value(key, t) for t in texts] == expected
    # a log body is a message: only the parameters after "&" are query parameters there
    assert [got["log body"][i] for i in range(len(texts))] == [agent.text(t) for t in texts]
    assert got["log body"][0] == texts[0]


# A label value and a resource attribute value holding a secret under an innocent key, as a service without the
# agent sends them; and trading values that must stay as they are.
_LABEL_SECRETS = [
    ("GET /v2/account?api_key=k-1234567890&symbol=AAPL", "k-1234567890"),
    ("postgres://bot:pw123secret@db:5432/trades", "pw123secret"),
    ("retry with Bearer 9f86d081884c7d659a2feaa0c55ad015", "9f86d081884c7d659a2feaa0c55ad015"),
]
_LABEL_KEPT = ["cid-42", "AAPL", "187.25", "mean-reversion", "key_figure=1"]


def test_metric_label_values_and_resource_attribute_values_are_masked_as_the_agent_masks_them(tmp_path: Path) -> None:
    """Before, the collector deleted secret-NAMED data point and resource attributes but masked no VALUE there: a
    plain OTel SDK service's ``endpoint="...?api_key=..."`` label reached the Prometheus page, and its
    ``db.url=postgres://bot:pw@...`` resource attribute reached ``target_info`` and the trace and log files."""
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    agent = Redactor(known_values=False)
    workdir = tmp_path / "collector"
    workdir.mkdir()
    service = f"plain-sdk-{uuid.uuid4().hex[:8]}"
    resource_attrs: dict[str, str] = {f"note.{i}": text for i, (text, _) in enumerate(_LABEL_SECRETS)}
    resource_attrs |= {f"kept.{i}": text for i, text in enumerate(_LABEL_KEPT)}
    with start_collector(workdir, f"127.0.0.1:{free_port()}", config=file_config(workdir)) as c:
        endpoint = f"http://{c.otlp_grpc_endpoint}"
        resource = Resource.create({"service.name": service, **resource_attrs})
        reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint, insecure=True), 60_000)
        mp = MeterProvider(resource=resource, metric_readers=[reader])
        counter = mp.get_meter("plain").create_counter("plain_calls")
        for i, (text, _) in enumerate([*_LABEL_SECRETS, *((t, "") for t in _LABEL_KEPT)]):
            counter.add(1, {"i": str(i), "endpoint": text})
        tp = TracerProvider(resource=resource)
        tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
        with tp.get_tracer("plain").start_as_current_span("call"):
            pass
        lp = LoggerProvider(resource=resource)
        lp.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True)))
        lp.get_logger("plain").emit(body="hello")
        assert mp.force_flush() and tp.force_flush() and lp.force_flush()
        mp.shutdown()
        tp.shutdown()
        lp.shutdown()

        def page() -> str | None:
            status, body = http_get(f"{c.prometheus_exporter_url}/metrics")
            text = body.decode()
            return text if status == 200 and "plain_calls" in text and "target_info" in text else None

        prom = wait_for(page, "the service's series and target_info on the collector's page", procs=(c.proc,))

        def resources() -> list[dict[str, Any]] | None:
            spans = [s for s in read_spans_resources(workdir / "traces.jsonl") if s.get("service.name") == service]
            logs = [
                r["_resource"]
                for r in read_otlp_json_logs(c.logs_file)
                if r["_resource"].get("service.name") == service
            ]
            return [spans[0], logs[0]] if spans and logs else None

        span_resource, log_resource = wait_for(resources, "the span and the log record", procs=(c.proc,))
    for text, secret in _LABEL_SECRETS:
        assert secret not in prom, text
        assert f'endpoint="{agent.text(text)}"' in prom, text
    for resource_seen in (span_resource, log_resource):
        assert {k: v for k, v in resource_seen.items() if k in resource_attrs} == {
            k: agent.text(v) for k, v in resource_attrs.items()
        }
    for text in _LABEL_KEPT:
        assert f'endpoint="{text}"' in prom, text
    for i, (text, _) in enumerate(_LABEL_SECRETS):
        assert f'note_{i}="{agent.text(text)}"' in prom, text  # target_info


def read_spans_resources(path: Path) -> list[dict[str, Any]]:
    """The resource attributes of each batch of spans the file exporter wrote."""
    out: list[dict[str, Any]] = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue
        out.extend(_attrs(rs.get("resource", {}).get("attributes", [])) for rs in doc.get("resourceSpans", []))
    return out


def test_a_map_body_has_its_secret_keys_deleted_and_its_values_masked(tmp_path: Path) -> None:
    """A structured log body (a map, as a Go or Java service's structured logger sends) passed the collector as it
    was: ``{"password": ..., "msg": "login api_key=..."}`` reached the log store. Now its top-level entries are
    treated as attributes are (secret-named ones deleted, values masked); nested maps are not reached (OTTL does not
    recurse) and trading fields stay."""
    workdir = tmp_path / "collector"
    workdir.mkdir()
    service = f"plain-sdk-{uuid.uuid4().hex[:8]}"
    with start_collector(workdir, f"127.0.0.1:{free_port()}", config=file_config(workdir)) as c:
        lp = LoggerProvider(resource=Resource.create({"service.name": service}))
        endpoint = f"http://{c.otlp_grpc_endpoint}"
        lp.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True)))
        body = {
            "password": "hunter2mapbody",
            "msg": "login api_key=abcmap123 for cid-42",
            "db": "postgres://bot:pw123map@db/x",
            "order_id": "cid-42",
            "symbol": "AAPL",
            "px": 187.25,
        }
        lp.get_logger("plain").emit(body=body)
        assert lp.force_flush()
        lp.shutdown()

        def record() -> dict[str, Any] | None:
            recs = [r for r in read_otlp_json_logs(c.logs_file) if r["_resource"].get("service.name") == service]
            return recs[0] if recs else None

        rec = wait_for(record, "the log record", procs=(c.proc,))
    got = _attrs(rec["body"]["kvlistValue"]["values"])
    assert got == {
        "msg": "login api_key=[REDACTED] for cid-42",
        "db": "postgres://bot:[REDACTED]@db/x",
        "order_id": "cid-42",
        "symbol": "AAPL",
        "px": 187.25,
    }
