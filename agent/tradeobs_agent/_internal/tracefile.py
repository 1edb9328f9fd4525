"""Order traces in a local file as OTLP/JSON lines, for when no collector is used.

>>> exporter = TraceFileExporter(write=lambda lines: sink.write("traces", lines))   # doctest: +SKIP

Each export writes one line: an ``ExportTraceServiceRequest`` in the OTLP/JSON
encoding (lowerCamelCase field names, trace and span ids as hex, enums as
integers), the format the Collector's ``otlpjsonfile`` receiver and file
exporter use, so a file can be replayed into a collector later
(``otelcol --config`` with an ``otlpjsonfile`` receiver) or read with ``jq``:

    jq -c '.resourceSpans[].scopeSpans[].spans[] | {name, traceId, attributes}' logs/traces.jsonl

The agent writes it through the log file sink, so it is rotated, gzipped and
pruned like the JSON logs (``TRADEOBS_LOG_MAX_BYTES``, ``..._ROTATE_SECONDS``,
``..._BACKUP_COUNT``), and a full disk is counted, never raised. It takes the
spans already OTLP-encoded by the agent's fast path (``fast_encoding``), so the
trading layer's spans cost nothing extra on the applier thread; the JSON is made
on the batch processor's thread.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .._text import right_sized
from .otlp_encode import encode_spans

__all__ = ["TraceFileExporter", "otlp_json"]

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(obj: dict[str, Any]) -> None:
    for key in _ID_FIELDS:
        v = obj.get(key)
        if v:
            obj[key] = base64.b64decode(v).hex()


def otlp_json(request: bytes) -> bytes:
    """A serialized ``ExportTraceServiceRequest`` as one OTLP/JSON line.

    The JSON ``MessageToDict`` makes of the whole request (ids as hex), made one span at a time: a batch of 512
    spans as one dict tree held ~15,000 small objects at once (2.9 MB for a 270 kB line), a peak that raised the
    process's allocator high-water mark (CPython keeps an arena while one object in it lives), so a service's RSS
    crept up for minutes. Per span, what is held is the line's pieces (each sized to its length: orjson's own
    output keeps a 4 kB buffer, see :func:`right_sized`).
    """
    msg = ExportTraceServiceRequest.FromString(request)
    out = [b'{"resourceSpans":[']
    for i, rs in enumerate(msg.resource_spans):
        if i:
            out.append(b",")
        out.append(_head(rs, "scope_spans", b"scopeSpans"))
        for j, ss in enumerate(rs.scope_spans):
            if j:
                out.append(b",")
            out.append(_head(ss, "spans", b"spans"))
            for k, span in enumerate(ss.spans):
                data = MessageToDict(span, use_integers_for_enums=True)
                _hex_ids(data)
                for link in data.get("links", ()):
                    _hex_ids(link)
                if k:
                    out.append(b",")
                out.append(right_sized(orjson.dumps(data)))
            out.append(b"]}")
        out.append(b"]}")
    out.append(b"]}\n")
    return b"".join(out)


def _head(msg: Any, field: str, json_name: bytes) -> bytes:
    """``msg`` as JSON without its repeated ``field``, left open at that field's list: ``{"scope":{...},"spans":[``."""
    rest = type(msg)()
    rest.CopyFrom(msg)
    rest.ClearField(field)
    head: bytes = orjson.dumps(MessageToDict(rest, use_integers_for_enums=True))
    return head[:-1] + (b"," if len(head) > 2 else b"") + b'"' + json_name + b'":['


class TraceFileExporter(SpanExporter):
    """Writes each batch as one OTLP/JSON line through ``write(lines)`` (the log file sink)."""

    fast_encoding = True  # takes otlp_encode.Encoded items as well as SDK spans

    def __init__(self, write: Callable[[list[bytes]], object]) -> None:
        self._write = write
        self._closed = False
        self.batch: Any = None  # the SDK batch processor in front of it (set by providers.build_tracing)

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        if self._closed or not spans:
            return SpanExportResult.FAILURE if self._closed else SpanExportResult.SUCCESS
        self._write([otlp_json(encode_spans(spans))])
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._closed = True

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True
