"""The real collector masks secrets a service without the agent sends NESTED in maps and lists, and in the span and
log record fields that are text but no attribute.

OTTL does not recurse, so the collector's redaction (``collector/otel-collector.yaml``, ``transform/redact``)
flattens every attribute map first (``{"broker": {"api_key": ...}}`` -> ``broker.api_key``, a list's items
``process.command_args.1``), then deletes the secret-named entries and masks the values, as for top-level ones.
Before, all of these reached the trace and log files as sent: a plain OTel SDK service's
``logger.emit(body={"req": {...}}, attributes={"broker": {...}})``, its ``process.command_args`` resource attribute
(``--broker.password=...``), a Go/Java service's kvlist span attributes, scope attributes, a list body, the span name
(``GET /v2/orders?api_key=...``), the span status message (the Python SDK writes the exception there:
``OperationalError: ... postgresql://bot:pw@db``), span event names and a log record's event name; an exemplar's
filtered attributes reached an OTLP metrics exporter as sent (the Prometheus exporter writes only its trace and span
ids).

Not reached (no OTTL path in the pinned v0.161): span link attributes; the test leaves them out of its check.

The processor runs with ``error_mode: ignore``: a statement that FAILED on a record would leave that record's values
unmasked, with a warning in the collector's log only. No statement fails on anything an OTLP sender can send
(``test_no_redaction_statement_fails_on_odd_values``, and every test here checks the log): the statements only use
functions that skip what they cannot read instead of failing (``replace_pattern`` and ``replace_all_patterns`` a
value that is no string, ``flatten``/``delete_matching_keys`` take any map, a log body only where ``IsMap``/``IsList``
says it is one), on fixed paths, with literal regexes compiled at start. What is skipped is not masked: a BYTES value
(a Python SDK takes ``span.set_attribute("request.body", request.body)``) reaches the stores as sent.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

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
from .test_redaction_values import file_config, read_spans

pytestmark = pytest.mark.integration

SECRET = "Zq7Secret0Value"  # in every secret below; nothing else holds it


def _s(v: str) -> dict[str, Any]:
    return {"stringValue": v}


def _kv(k: str, v: dict[str, Any]) -> dict[str, Any]:
    return {"key": k, "value": v}


def _kvlist(**kvs: dict[str, Any]) -> dict[str, Any]:
    return {"kvlistValue": {"values": [_kv(k, v) for k, v in kvs.items()]}}


def _array(*vs: dict[str, Any]) -> dict[str, Any]:
    return {"arrayValue": {"values": list(vs)}}


# A map as a Go or Java service's structured logger, or another team's SDK, sends it: secret-named entries, secret
# values under innocent names, two levels down, next to values that must stay.
NESTED = _kvlist(
    api_key=_s(SECRET),
    venue=_s("NYSE"),
    dsn=_s(f"postgres://bot:{SECRET}@db:5432/trades"),
    deep=_kvlist(password=_s(SECRET), note=_s(f"retry with token={SECRET}"), qty={"intValue": "100"}),
    account=_s(f"PA3X9Y{SECRET}"),
)
ARGS = _array(_s("java"), _s(f"--broker.password={SECRET}"), _s(f"https://bot:{SECRET}@broker.example/"))
NESTED_PLAIN = {
    "api_key": SECRET,
    "venue": "NYSE",
    "dsn": f"postgres://bot:{SECRET}@db:5432/trades",
    "deep": {"password": SECRET, "note": f"retry with token={SECRET}", "qty": 100},
    "account": f"PA3X9Y{SECRET}",
}


def _post(endpoint: str, path: str, doc: dict[str, Any]) -> None:
    req = urllib.request.Request(endpoint + path, json.dumps(doc).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200, path


def _raw_otlp(endpoint: str, service: str) -> None:
    """Plain OTLP/HTTP JSON, as a Go or Java service (any OTLP sender) may shape it."""
    now = time.time_ns()
    resource = {"attributes": [_kv("service.name", _s(service)), _kv("process.command_args", ARGS), _kv("cfg", NESTED)]}
    scope = {"name": "raw", "attributes": [_kv("note", _s(f"password={SECRET}")), _kv("m", NESTED)]}
    span = {
        "traceId": uuid.uuid4().hex,
        "spanId": uuid.uuid4().hex[:16],
        "name": f"GET /v2/orders?api_key={SECRET}",
        "kind": 2,
        "startTimeUnixNano": str(now - 1000),
        "endTimeUnixNano": str(now),
        "attributes": [_kv("where", _s("raw")), _kv("broker", NESTED), _kv("args", ARGS)],
        "events": [{"timeUnixNano": str(now), "name": f"retry password={SECRET}", "attributes": [_kv("ctx", NESTED)]}],
        "links": [{"traceId": uuid.uuid4().hex, "spanId": uuid.uuid4().hex[:16], "attributes": [_kv("m", NESTED)]}],
        "status": {"code": 2, "message": f"connect to postgresql://bot:{SECRET}@db failed; token={SECRET}"},
    }
    _post(
        endpoint,
        "/v1/traces",
        {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": scope, "spans": [span]}]}]},
    )
    records = [
        {
            "timeUnixNano": str(now),
            "body": _kvlist(msg=_s("login"), req=NESTED),
            "attributes": [_kv("where", _s("raw map body")), _kv("extra", NESTED), _kv("args", ARGS)],
            "eventName": f"broker.login password={SECRET}",
        },
        {
            "timeUnixNano": str(now),
            "body": _array(_s("login"), _s(f"password={SECRET}"), NESTED),
            "attributes": [_kv("where", _s("raw list body"))],
        },
    ]
    logs = {"resourceLogs": [{"resource": resource, "scopeLogs": [{"scope": scope, "logRecords": records}]}]}
    _post(endpoint, "/v1/logs", logs)
    # an exemplar's filtered attributes: the measurement's attributes a view dropped from the point
    exemplar = {
        "asInt": "1",
        "timeUnixNano": str(now),
        "traceId": span["traceId"],
        "spanId": span["spanId"],
        "filteredAttributes": [_kv("where", _s("exemplar")), _kv("broker", NESTED), _kv("args", ARGS)],
    }
    point = {
        "asInt": "1",
        "timeUnixNano": str(now),
        "startTimeUnixNano": str(now - 10**9),
        "attributes": [_kv("broker", NESTED)],
        "exemplars": [exemplar],
    }
    metric = {"name": "raw_calls", "sum": {"dataPoints": [point], "aggregationTemporality": 2, "isMonotonic": True}}
    metrics = {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"scope": scope, "metrics": [metric]}]}]}
    _post(endpoint, "/v1/metrics", metrics)


def _python_sdk(endpoint: str, service: str) -> None:
    """A plain Python OTel SDK service (no agent): a dict body and attribute, its command line, an exception."""
    resource = Resource.create({"service.name": service, "process.command_args": ["bot.py", f"--password={SECRET}"]})
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True)))
    with pytest.raises(ConnectionError):  # noqa: SIM117 - the span records the exception as it leaves
        with tp.get_tracer("sdk").start_as_current_span("connect", attributes={"where": "sdk"}):
            raise ConnectionError(f"could not connect to postgresql://bot:{SECRET}@db:5432/trades")
    lp.get_logger("sdk").emit(
        body={"msg": "order sent", "req": NESTED_PLAIN}, attributes={"where": "sdk", "broker": NESTED_PLAIN}
    )
    assert tp.force_flush() and lp.force_flush()
    tp.shutdown()
    lp.shutdown()


def _leaks(doc: Any, path: str = "") -> list[str]:
    """Where ``SECRET`` is in an OTLP JSON document (span links left out: not reached, see the module's doc)."""
    if isinstance(doc, dict):
        return [p for k, v in doc.items() if k != "links" for p in _leaks(v, f"{path}/{k}")]
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in _leaks(v, f"{path}[{i}]")]
    return [f"{path} = {doc[:80]}"] if isinstance(doc, str) and SECRET in doc else []


def send_nested(workdir: Path, config: Path) -> dict[str, Any]:
    """Send the nested secrets through a collector running ``config``; what its file exporters and Prometheus
    page hold: {"leaks": [where SECRET is], "spans", "logs", "page"}."""
    workdir.mkdir(parents=True, exist_ok=True)
    service = f"nested-{uuid.uuid4().hex[:8]}"
    with start_collector(workdir, f"127.0.0.1:{free_port()}", config=file_config(workdir, config)) as c:
        _raw_otlp(c.otlp_http_endpoint, service)
        _python_sdk(f"http://{c.otlp_grpc_endpoint}", service)

        def everything() -> tuple[list[dict[str, Any]], list[dict[str, Any]], str] | None:
            spans = [s for s in read_spans(workdir / "traces.jsonl") if "where" in s["_attributes"]]
            logs = [r for r in read_otlp_json_logs(c.logs_file) if "where" in r["_attributes"]]
            status, body = http_get(f"{c.prometheus_exporter_url}/metrics")
            page = body.decode()
            if len(spans) < 2 or len(logs) < 3 or status != 200 or "raw_calls" not in page:
                return None
            return spans, logs, page

        spans, logs, page = wait_for(everything, "2 spans, 3 log records, raw_calls", procs=(c.proc,))
        wait_for(lambda: _exemplars(workdir / "metrics.jsonl"), "raw_calls' exemplar in metrics.jsonl", procs=(c.proc,))
    assert failed_statements(c.proc.log_path) == []  # each statement ran on each record
    leaks = []
    for name in ("traces.jsonl", "logs.jsonl", "metrics.jsonl"):
        for line in (workdir / name).read_text().splitlines():
            leaks += [f"{name}{p}" for p in _leaks(json.loads(line))]
    leaks += [f"page: {line}" for line in page.splitlines() if SECRET in line]
    return {
        "leaks": leaks,
        "spans": spans,
        "logs": logs,
        "page": page,
        "exemplars": _exemplars(workdir / "metrics.jsonl"),
    }


def _exemplars(path: Path) -> list[dict[str, Any]]:
    """The filtered attributes of raw_calls' exemplars in the metrics file (OTLP JSON lines)."""
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written right now
        for rm in doc.get("resourceMetrics", []):
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    for p in m.get("sum", {}).get("dataPoints", []) if m["name"] == "raw_calls" else []:
                        out += [_attrs(e.get("filteredAttributes", [])) for e in p.get("exemplars", [])]
    return out


# What send_nested's nested attributes read after the collector (span and exemplar alike): flattened, masked, the
# secret names deleted, what is not secret kept under its flattened name.
NESTED_MASKED = {
    "broker.venue": "NYSE",
    "broker.dsn": "postgres://bot:[REDACTED]@db:5432/trades",
    "broker.deep.note": "retry with token=[REDACTED]",
    "broker.deep.qty": 100,
    "args.0": "java",
    "args.1": "--broker.password=[REDACTED]",
    "args.2": "https://bot:[REDACTED]@broker.example/",
}


def test_secrets_nested_in_maps_and_lists_and_in_names_and_status_are_masked(tmp_path: Path) -> None:
    got = send_nested(tmp_path / "collector", COLLECTOR_CONFIG)
    assert got["leaks"] == []
    # what is not secret stays, under its flattened name
    raw_span = next(s for s in got["spans"] if s["_attributes"]["where"] == "raw")
    assert raw_span["_attributes"] == {"where": "raw", **NESTED_MASKED}
    assert raw_span["name"] == "GET /v2/orders?api_key=[REDACTED]"
    assert raw_span["status"]["message"] == "connect to postgresql://bot:[REDACTED]@db failed; token=[REDACTED]"
    assert raw_span["events"][0]["name"] == "retry password=[REDACTED]"
    sdk_span = next(s for s in got["spans"] if s["_attributes"]["where"] == "sdk")
    assert sdk_span["status"]["message"] == (
        "ConnectionError: could not connect to postgresql://bot:[REDACTED]@db:5432/trades"
    )
    by_where = {r["_attributes"]["where"]: r for r in got["logs"]}
    assert _attrs(by_where["raw map body"]["body"]["kvlistValue"]["values"]) == {
        "msg": "login",
        "req.venue": "NYSE",
        "req.dsn": "postgres://bot:[REDACTED]@db:5432/trades",
        "req.deep.note": "retry with token=[REDACTED]",
        "req.deep.qty": 100,
    }
    assert by_where["raw map body"]["eventName"] == "broker.login password=[REDACTED]"
    assert _attrs(by_where["raw list body"]["body"]["kvlistValue"]["values"])["body.1"] == "password=[REDACTED]"
    assert by_where["sdk"]["_attributes"]["broker.venue"] == "NYSE"
    assert by_where["sdk"]["_resource"]["process.command_args.1"] == "--password=[REDACTED]"
    assert 'broker_venue="NYSE"' in got["page"]
    # an exemplar's filtered attributes, which reach an OTLP metrics exporter (a gateway tier, a debug exporter;
    # the Prometheus page carries only an exemplar's trace and span ids): flattened, masked, secret names deleted
    assert got["exemplars"] == [{"where": "exemplar", **NESTED_MASKED}]


FAILED_STATEMENT = "failed to execute statement"  # the transform processor's warning (ottl StatementSequence)


def failed_statements(log: Path) -> list[str]:
    """The collector log's lines saying an OTTL statement failed on a record (which then went on unmasked)."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if FAILED_STATEMENT in line]
    fields = [json.loads(line.split("\t")[-1]) for line in lines]  # zap's console line ends with its fields
    return [f"{f.get('statement', '')[:100]}: {f.get('error')}" for f in fields]


def _deep(value: dict[str, Any], levels: int, wrap: Any) -> dict[str, Any]:
    for i in range(levels):
        value = wrap(i, value)
    return value


def _bytes(text: str) -> dict[str, Any]:
    return {"bytesValue": base64.b64encode(text.encode()).decode()}


# Every shape of value OTLP allows, with a secret in each text: what a statement could trip on (a type it does not
# expect, a map or list where a string was, a deep nesting, a long value, an empty value or key, a duplicate key).
ODD = {
    "bytes": _bytes(f"password={SECRET}"),  # not masked: see the module's doc
    "empty": {},
    "nan": {"doubleValue": "NaN"},
    "deep_map": _deep(_s(f"password={SECRET}"), 100, lambda i, v: _kvlist(**{f"l{i}": v})),
    "deep_list": _deep(_s(f"token={SECRET}"), 100, lambda i, v: _array(v)),
    "mixed": _array(_kvlist(password=_s(SECRET), n={"intValue": "7"}), _array(_s(f"token={SECRET}"), {})),
    "nul": _s(f"a\u0000password={SECRET}"),
    "long": _s("x" * 64 * 1024 + f" password={SECRET}"),
    "url.full": _kvlist(q=_s(f"https://bot:{SECRET}@h/?key={SECRET}")),  # a URL attribute that is a map
    "url.query": {"intValue": "1"},
    "dup": _s(f"api_key={SECRET}"),
}


def _odd_attributes(where: str) -> list[dict[str, Any]]:
    return [
        _kv("where", _s(where)),
        *(_kv(k, v) for k, v in ODD.items()),
        _kv("dup", _s("innocent")),  # the same key twice
        _kv("", _s(f"password={SECRET}")),  # an empty key
    ]


def _invalid_utf8_spans(service: str) -> bytes:
    """OTLP protobuf whose strings (a span name, a value, a key) are not UTF-8, as a C or Go sender may write them."""
    mark = "\x01MK\x01"  # as long as what replaces it: the lengths in the message stay right
    kvs = [("where", "not utf-8"), ("msg", f"{mark} token={SECRET}"), (mark, "x")]
    span = Span(
        trace_id=uuid.uuid4().bytes,
        span_id=uuid.uuid4().bytes[:8],
        name=f"{mark} password={SECRET}",
        start_time_unix_nano=time.time_ns() - 1000,
        end_time_unix_nano=time.time_ns(),
        attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in kvs],
    )
    resource = {"attributes": [KeyValue(key="service.name", value=AnyValue(string_value=service))]}
    req = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=[span])])]
    )
    return req.SerializeToString().replace(mark.encode(), b"\xff\xfe\xc3(")


def test_no_redaction_statement_fails_on_odd_values(tmp_path: Path) -> None:
    """No redaction statement fails (and lets its record pass unmasked) on any value shape a sender can send: the
    collector logs no failed statement, every record arrives, and no secret text is left in the stores."""
    workdir = tmp_path / "collector"
    workdir.mkdir()
    service = f"odd-{uuid.uuid4().hex[:8]}"
    now = time.time_ns()
    resource = {"attributes": [_kv("service.name", _s(service)), *_odd_attributes("resource")]}
    scope = {"name": "odd", "attributes": _odd_attributes("scope")}
    span = {
        "traceId": uuid.uuid4().hex,
        "spanId": uuid.uuid4().hex[:16],
        "name": f"GET /?api_key={SECRET}",
        "startTimeUnixNano": str(now - 1000),
        "endTimeUnixNano": str(now),
        "attributes": _odd_attributes("span"),
        "events": [{"timeUnixNano": str(now), "name": "e", "attributes": _odd_attributes("event")}],
        "status": {"code": 2, "message": f"token={SECRET}"},
    }
    # each odd value as a log body too, and one record with the odd attributes
    records = [
        {"timeUnixNano": str(now), "body": v, "attributes": [_kv("where", _s(f"body {k}"))]} for k, v in ODD.items()
    ]
    records.append({"timeUnixNano": str(now), "body": _s("x"), "attributes": _odd_attributes("log")})
    exemplar = {"asInt": "1", "timeUnixNano": str(now), "filteredAttributes": _odd_attributes("exemplar")}
    point = {"asInt": "1", "timeUnixNano": str(now), "attributes": _odd_attributes("point"), "exemplars": [exemplar]}
    metric = {"name": "odd_calls", "sum": {"dataPoints": [point], "aggregationTemporality": 2, "isMonotonic": True}}
    with start_collector(workdir, f"127.0.0.1:{free_port()}", config=file_config(workdir)) as c:
        _post(
            c.otlp_http_endpoint,
            "/v1/traces",
            {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": scope, "spans": [span]}]}]},
        )
        _post(
            c.otlp_http_endpoint,
            "/v1/logs",
            {"resourceLogs": [{"resource": resource, "scopeLogs": [{"scope": scope, "logRecords": records}]}]},
        )
        _post(
            c.otlp_http_endpoint,
            "/v1/metrics",
            {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"scope": scope, "metrics": [metric]}]}]},
        )
        req = urllib.request.Request(
            c.otlp_http_endpoint + "/v1/traces",
            _invalid_utf8_spans(service),
            {"Content-Type": "application/x-protobuf"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200

        def everything() -> str | None:
            spans = [s for s in read_spans(workdir / "traces.jsonl") if "where" in s["_attributes"]]
            logs = [r for r in read_otlp_json_logs(c.logs_file) if "where" in r["_attributes"]]
            page = http_get(f"{c.prometheus_exporter_url}/metrics")[1].decode(errors="replace")
            metrics = workdir / "metrics.jsonl"
            done = len(spans) == 2 and len(logs) == len(records) and "odd_calls" in page
            return page if done and metrics.exists() and "odd_calls" in metrics.read_text(errors="replace") else None

        page = wait_for(everything, f"2 spans, {len(records)} log records, odd_calls", procs=(c.proc,))
    assert failed_statements(c.proc.log_path) == []
    leaks = [f"page: {line[-120:]}" for line in page.splitlines() if SECRET in line]
    for name in ("traces.jsonl", "logs.jsonl", "metrics.jsonl"):
        for line in (workdir / name).read_text(errors="replace").splitlines():
            leaks += [f"{name}{p}" for p in _leaks(json.loads(line))]
    assert leaks == []


def test_a_flattened_auth_message_has_its_key_deleted_beside_a_secret_entry(tmp_path: Path) -> None:
    """A websocket auth message as a map attribute or body (flattened: ``ws.message.key``) or as separate attributes
    (``ws.message.key`` beside ``ws.message.secret``, as a Python SDK span must carry it) passed its key id through:
    only the secret-named entry was deleted. Now the ``key``/``params`` entry of a map that has a ``secret``,
    ``passphrase`` or ``signature`` entry is deleted too; a cache's ``key`` in a record without one stays."""
    workdir = tmp_path / "collector"
    workdir.mkdir()
    service = f"plain-sdk-{uuid.uuid4().hex[:8]}"
    key_id, cb_key = "my-paper-key-id-0001", "cb-key-0002"
    with start_collector(workdir, f"127.0.0.1:{free_port()}", config=file_config(workdir)) as c:
        resource = Resource.create({"service.name": service})
        endpoint = f"http://{c.otlp_grpc_endpoint}"
        tp = TracerProvider(resource=resource)
        tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
        lp = LoggerProvider(resource=resource)
        lp.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True)))
        flat = {"ws.message.action": "auth", "ws.message.key": key_id, "ws.message.secret": "s3cr3t-flat"}
        with tp.get_tracer("plain").start_as_current_span("ws.auth", attributes={"i": 0, **flat}) as span:
            span.add_event("sent", {"type": "subscribe", "key": cb_key, "passphrase": "pp-123456"})
        with tp.get_tracer("plain").start_as_current_span("cache.get", attributes={"i": 1, "cache.key": "AAPL"}):
            pass
        message = {"action": "auth", "key": key_id, "secret": "s3cr3t-map"}
        logger = lp.get_logger("plain")
        logger.emit(body="ws send", attributes={"i": 0, "ws.message": message})
        logger.emit(body={"ws": message, "venue": "alpaca"}, attributes={"i": 1})
        logger.emit(body="cache", attributes={"i": 2, "cache": {"key": "MSFT", "hits": 3}})
        assert tp.force_flush() and lp.force_flush()
        tp.shutdown()
        lp.shutdown()

        def everything() -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
            spans = [s for s in read_spans(workdir / "traces.jsonl") if "i" in s["_attributes"]]
            logs = [r for r in read_otlp_json_logs(c.logs_file) if r["_resource"].get("service.name") == service]
            return (spans, logs) if len(spans) == 2 and len(logs) == 3 else None

        spans, logs = wait_for(everything, "2 spans and 3 log records", timeout=DATA_TIMEOUT, procs=(c.proc,))
    by_i = {s["_attributes"]["i"]: s for s in spans}
    assert by_i[0]["_attributes"] == {"i": 0, "ws.message.action": "auth"}
    assert by_i[0]["events"][0]["_attributes"] == {"type": "subscribe"}
    assert by_i[1]["_attributes"] == {"i": 1, "cache.key": "AAPL"}
    recs = {r["_attributes"]["i"]: r for r in logs}
    assert recs[0]["_attributes"] == {"i": 0, "ws.message.action": "auth"}
    assert _attrs(recs[1]["body"]["kvlistValue"]["values"]) == {"ws.action": "auth", "venue": "alpaca"}
    assert recs[2]["_attributes"] == {"i": 2, "cache.key": "MSFT", "cache.hits": 3}
    assert failed_statements(c.proc.log_path) == []
