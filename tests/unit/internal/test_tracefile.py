"""The local trace file's OTLP/JSON line: the same JSON as the whole request through ``MessageToDict``, made one
span at a time so a batch never holds a Python object tree of all its spans at once."""

from __future__ import annotations

import base64
import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from tradeobs_agent._internal.tracefile import otlp_json


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, str):
        return KeyValue(key=key, value=AnyValue(string_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(int_value=value))


def _span(i: int, parent: bool = True) -> Span:
    s = Span(
        trace_id=i.to_bytes(16, "big"),
        span_id=(i + 1).to_bytes(8, "big"),
        name=f"order.fill {i}",
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=1_700_000_000_000_000_000 + i,
        end_time_unix_nano=1_700_000_000_000_100_000 + i,
        attributes=[_kv("order.id", f"demo-{i}"), _kv("order.qty", 100), _kv("order.price", 101.25)],
        status=Status(code=Status.STATUS_CODE_ERROR, message="rejected") if i % 7 == 0 else None,
    )
    if parent:
        s.parent_span_id = (i + 2).to_bytes(8, "big")
    s.events.add(time_unix_nano=1_700_000_000_000_050_000, name="fill", attributes=[_kv("fill.qty", 50)])
    if i % 5 == 0:
        s.links.add(trace_id=(i + 3).to_bytes(16, "big"), span_id=(i + 4).to_bytes(8, "big"))
    return s


def _request(resources: int, scopes: int, spans: int) -> bytes:
    req = ExportTraceServiceRequest()
    n = 0
    for r in range(resources):
        rs = ResourceSpans(resource=Resource(attributes=[_kv("service.name", f"svc-{r}")]))
        if r % 2:
            rs.schema_url = "https://opentelemetry.io/schemas/1.21.0"
        for sc in range(scopes):
            ss = ScopeSpans(scope=InstrumentationScope(name=f"tradeobs.trading.{sc}", version="1"))
            for _ in range(spans):
                ss.spans.append(_span(n, parent=bool(n % 3)))
                n += 1
            rs.scope_spans.append(ss)
        req.resource_spans.append(rs)
    return req.SerializeToString()


def _whole_request(request: bytes) -> Any:
    """The line as the exporter first made it: the whole request through ``MessageToDict`` at once."""
    data = MessageToDict(ExportTraceServiceRequest.FromString(request), use_integers_for_enums=True)
    for rs in data.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                for obj in (span, *span.get("links", ())):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if obj.get(key):
                            obj[key] = base64.b64decode(obj[key]).hex()
    return data


def test_the_line_is_the_whole_requests_otlp_json_with_hex_ids() -> None:
    request = _request(resources=3, scopes=2, spans=4)
    line = otlp_json(request)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    got = orjson.loads(line)
    assert got == _whole_request(request)
    span = got["resourceSpans"][0]["scopeSpans"][0]["spans"][1]
    assert span["traceId"] == (1).to_bytes(16, "big").hex() and span["spanId"] == (2).to_bytes(8, "big").hex()
    assert got["resourceSpans"][1]["schemaUrl"] == "https://opentelemetry.io/schemas/1.21.0"


def test_a_scope_or_resource_without_spans_still_reads_as_otlp_json() -> None:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.scope_spans.add(scope=InstrumentationScope(name="empty"))
    req.resource_spans.add()  # no resource, no scopes
    got = orjson.loads(otlp_json(req.SerializeToString()))
    assert got["resourceSpans"][0]["scopeSpans"][0]["scope"] == {"name": "empty"}
    assert not got["resourceSpans"][0]["scopeSpans"][0].get("spans")
    assert not got["resourceSpans"][1].get("scopeSpans")


def _peak(make: Callable[[], object]) -> int:
    """Bytes allocated at the peak of ``make()``, over what was allocated before it."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        make()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_a_batch_is_made_a_span_at_a_time_not_as_one_object_tree() -> None:
    """A batch of 512 spans (the batch processor's size) as one ``MessageToDict`` tree held ~15,000 small objects
    at once on the exporter thread: a peak that set the process's allocator high-water mark (CPython keeps an arena
    while one object in it lives), so the service's RSS crept up for minutes. Per span, the peak is the line and
    its pieces, not the tree."""
    request = _request(resources=1, scopes=1, spans=512)
    peak, size = _peak(lambda: otlp_json(request)), len(otlp_json(request))
    tree = _peak(lambda: orjson.dumps(_whole_request(request)))
    assert peak < 3 * size + 64 * 1024, f"peak {peak} bytes for a {size}-byte line (the whole tree: {tree})"
    assert tree > 2 * peak, f"the whole request's tree peaked at {tree} bytes, this at {peak}: nothing to show"
