"""The real collector deletes exactly the attribute names the agent treats as secret, and masks
``key=value`` in log bodies for exactly the keys the agent masks (one list: tradeobs_agent/secrets_keys.py); an
Alpaca key id with no key word near it and a websocket auth message's key reach Jaeger masked as the agent masks them.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tests.unit.test_secrets_keys import _SHAPES, _SHAPES_KEPT, key_corpus, text_corpus
from tradeobs_agent.logs import Redactor
from tradeobs_agent.redaction import MASK

from .procs import Stack, jaeger_trace, read_otlp_json_logs, span_tags

pytestmark = pytest.mark.integration


def _one_span_through_jaeger(stack: Stack, resource: dict[str, str], attrs: dict[str, str]) -> dict[str, Any]:
    """One span with ``attrs``, and an event with them, sent by a plain SDK service (no agent) through the
    collector: its trace as Jaeger v2's query API returns it."""
    limits = SpanLimits(max_span_attributes=len(attrs) + 1, max_event_attributes=len(attrs) + 1)
    tp = TracerProvider(resource=Resource.create(resource), span_limits=limits)
    tp.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"http://{stack.otlp_grpc_endpoint}", insecure=True))
    )
    with tp.get_tracer("redaction").start_as_current_span("keys", attributes=attrs) as span:
        span.add_event("evt", attrs)
        trace_id = format(span.get_span_context().trace_id, "032x")
    assert tp.force_flush()
    tp.shutdown()
    trace: dict[str, Any] = stack.wait_for(lambda: jaeger_trace(stack.jaeger_query_url, trace_id), f"trace {trace_id}")
    return trace


def test_collector_deletes_exactly_the_keys_the_agent_masks(stack: Stack) -> None:
    service = f"redaction-{uuid.uuid4().hex[:10]}"
    names = key_corpus()
    attrs = {n: f"value-of-{n}" for n in names}
    trace = _one_span_through_jaeger(stack, {"service.name": service, **attrs}, attrs)
    (jspan,) = trace["spans"]
    # what the agent masks in this map: the secret names, and (the map has secret entries) a flattened auth
    # message's key names, order.key (the collector sees only names, and deletes them in such a map)
    masked = Redactor().attributes(attrs)
    expected_kept = {n for n in names if masked[n] != MASK}
    assert expected_kept and len(expected_kept) < len(names)
    kept_span = set(span_tags(jspan)) & set(names)
    kept_event = {f["key"] for f in jspan["logs"][0]["fields"]} & set(names)
    process = trace["processes"][jspan["processID"]]
    kept_resource = {t["key"] for t in process["tags"]} & set(names)
    assert kept_span == expected_kept, sorted(kept_span ^ expected_kept)
    assert kept_event == expected_kept, sorted(kept_event ^ expected_kept)
    assert kept_resource == expected_kept, sorted(kept_resource ^ expected_kept)


def test_collector_masks_the_same_text_keys_as_the_agent(stack: Stack) -> None:
    service = f"redaction-{uuid.uuid4().hex[:10]}"
    lp = LoggerProvider(resource=Resource.create({"service.name": service}))
    lp.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"http://{stack.otlp_grpc_endpoint}", insecure=True))
    )
    marker = uuid.uuid4().hex
    keys = text_corpus()
    for key in keys:
        lp.get_logger("redaction").emit(body=f"{marker} {key} sent {key}=s3cr3tvalue qty=5")
    assert lp.force_flush()
    lp.shutdown()

    def mine() -> list[str] | None:
        got = [str(r["body"]["stringValue"]) for r in read_otlp_json_logs(stack.logs_file) if marker in str(r["body"])]
        return got if len(got) == len(keys) else None

    bodies = stack.wait_for(mine, f"{len(keys)} log records {marker}")
    redactor = Redactor()
    by_key = {b.split()[1]: b for b in bodies}
    for key in keys:
        # masked alike, with the same marker: the same line in the agent's file and in the collector's copy
        assert by_key[key] == f"{marker} {key} sent {redactor.text(f'{key}=s3cr3tvalue')} qty=5", (key, by_key[key])


def test_a_key_id_by_its_shape_and_an_auth_messages_key_reach_jaeger_masked(stack: Stack) -> None:
    """From a service without the agent (a plain SDK), through the collector, read back from Jaeger v2's query API."""
    texts = [t for t, _ in _SHAPES] + _SHAPES_KEPT
    attrs = {f"note.{i}": t for i, t in enumerate(texts)}
    (jspan,) = _one_span_through_jaeger(stack, {"service.name": f"shapes-{uuid.uuid4().hex[:10]}"}, attrs)["spans"]
    tags = span_tags(jspan)
    fields = {f["key"]: f["value"] for f in jspan["logs"][0]["fields"]}
    agent = Redactor(known_values=False)
    for i, text in enumerate(texts):
        assert tags[f"note.{i}"] == fields[f"note.{i}"] == agent.text(text), text
    for i, (text, secret) in enumerate(_SHAPES):
        assert secret not in tags[f"note.{i}"] + fields[f"note.{i}"], text
