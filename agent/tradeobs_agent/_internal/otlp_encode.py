"""OTLP/protobuf encoding of spans and log records straight to bytes, several times cheaper than the reference.

>>> data = encode_spans(readable_spans)                          # doctest: +SKIP
>>> ExportTraceServiceRequest.FromString(data) == reference.encode_spans(readable_spans)   # doctest: +SKIP
True

Intentional divergence from ``opentelemetry-exporter-otlp-proto-common``, and
why: its ``encode_spans`` builds a protobuf message object per span, per
attribute and per attribute value through Python calls (about 25 us per span),
on the export thread that shares the GIL with the trading thread. This module
writes the same ``ExportTraceServiceRequest`` wire format directly: fields in
field-number order, proto3 defaults omitted and the same sub-messages present
(``status``, ``scope``, ``resource``) as the reference encoder sets, so a parse
of these bytes equals the reference message (``tests/unit/test_otlp_encode.py``).
Log records (:func:`encode_logs`) are encoded the same way.
Resources, scopes, attribute keys and string/int/bool attribute values are
encoded once and cached (bounded).

Anything unexpected (a type the reference encoder would reject, a broken
span) raises; callers fall back to the reference encoder for that batch.

Secrets are scrubbed here, once per distinct value, before a value is encoded
and cached (``_internal/scrub.py``): attribute values (of spans, events, links,
log records, resources and scopes), span and event names, status descriptions
and SDK log bodies. A new known secret value clears the caches.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from opentelemetry.sdk.metrics.export import Gauge, Histogram, Sum
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.span import DEFAULT_TRACE_STATE

from .. import secret_values
from ..redaction import default_redactor, flat_auth_fields
from . import fastpath, otel_private
from .gil import Slices
from .scrub import scrub_logs, scrub_metrics, scrub_spans, scrub_text

__all__ = [
    "Encoded",
    "FamilyData",
    "encode_family",
    "encode_log_record",
    "encode_logs",
    "encode_metric_requests",
    "encode_metrics",
    "encode_spans",
    "encode_step_span",
    "install_fast_log_encoding",
    "install_fast_metric_encoding",
    "install_fast_span_encoding",
]

_pack_q = struct.Struct("<Q").pack
_pack_d = struct.Struct("<d").pack
_pack_i = struct.Struct("<I").pack
_MAX_CACHE = 8192
_FLAGS_LOCAL = b"\x85\x01" + _pack_i(0x100)  # field 16 fixed32: SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_FLAGS_REMOTE = b"\x85\x01" + _pack_i(0x300)  # ... | SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
_LINK_FLAGS_LOCAL = b"\x35" + _pack_i(0x100)  # Link field 6 fixed32
_LINK_FLAGS_REMOTE = b"\x35" + _pack_i(0x300)
_EMPTY_STATUS = b"\x7a\x00"
_DOUBLE_VALUE = b"\x12\x09\x21"  # KeyValue field 2, length 9: AnyValue field 4 (double), fixed64


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _ld(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field."""
    n = len(payload)
    return tag + (bytes((n,)) if n < 0x80 else _varint(n)) + payload


def _str(tag: bytes, s: str) -> bytes:
    return _ld(tag, s.encode("utf-8", "replace")) if s else b""  # a lone surrogate: '?', not a lost batch


# --------------------------------------------------------------------------- attributes

# (field tag, key, type, value) -> field bytes, in two generations of _KV_GENERATION entries: when the current one is
# full it becomes the old one and the one before is dropped, and a hit in the old one is carried into the current one.
# Values that repeat (symbols, sides, venues) stay; one-off values (order ids) pass through. Its memory is bounded at
# about 0.4 MiB and reached in about 35 s at the soak's load (a single 8,192-entry cache cleared when full took
# 1.6 MiB and 140 s to fill: the soak saw it as RSS growing after the first minute).
_KV_GENERATION = 1024
_kv_cache: dict[tuple[bytes, str, type, Any], bytes] = {}
_kv_old: dict[tuple[bytes, str, type, Any], bytes] = {}
_key_cache: dict[str, bytes] = {}
# field tag -> key -> a float attribute's field up to its 8 value bytes (tag, length, KeyValue.key, the AnyValue's
# header), for keys whose values are not secret: the floats' fast path
_float_prefixes: dict[bytes, dict[str, bytes]] = {}
_secrets_version = -1
_redactor = default_redactor()


def _fresh() -> None:
    """Drop every cached encoding when the known secret values changed (they hold scrubbed values)."""
    global _secrets_version
    v = secret_values.version()
    if v != _secrets_version:
        _kv_cache.clear()
        _kv_old.clear()
        _name_cache.clear()
        _resource_cache.clear()
        _scope_cache.clear()
        _float_prefixes.clear()
        _series_attrs.clear()
        _series_attrs_old.clear()
        _secrets_version = v


def _clean(key: str, v: Any) -> Any:
    """``v`` as it may leave the process: masked under a secret name, scrubbed text, secrets out of sequences."""
    if _redactor.is_secret_key(key):
        return secret_values.MASK
    if isinstance(v, str):
        return scrub_text(v) if len(v) >= 5 else v
    if isinstance(v, int) and not isinstance(v, bool):
        return secret_values.MASK if secret_values.int_is_secret(v) else v
    if isinstance(v, Mapping):  # a log record's attribute through the OTel logs API: {"broker": {"api_key": ...}}
        return _redactor.value(key, v)
    if isinstance(v, bytes):  # the collector cannot read bytes: masked here or nowhere
        return _redactor.octets(v)
    if isinstance(v, Sequence):
        if len(v) == 2 and _redactor.is_secret_pair(v[0], v[1]):
            return [v[0], secret_values.MASK]  # a header as a pair, ["Authorization", "Bearer ..."]
        return [
            scrub_text(x)
            if isinstance(x, str)
            else _redactor.value("", x)
            if isinstance(x, Mapping | list | tuple | bytes)
            else x
            for x in v
        ]
    return v


def _any_value(v: Any) -> bytes:
    """An ``AnyValue`` message body (the oneof field is always written, even for default values)."""
    if v is None:
        return b""
    if isinstance(v, bool):
        return b"\x10\x01" if v else b"\x10\x00"
    if isinstance(v, str):
        return _ld(b"\x0a", v.encode("utf-8", "replace"))
    if isinstance(v, int):
        if not -(1 << 63) <= v < (1 << 63):
            raise ValueError("int attribute out of int64 range")
        return b"\x18" + _varint(v & 0xFFFFFFFFFFFFFFFF)
    if isinstance(v, float):
        return b"\x21" + _pack_d(v)
    if isinstance(v, bytes):
        return _ld(b"\x3a", v)
    if isinstance(v, Sequence):
        return _ld(b"\x2a", b"".join(_ld(b"\x0a", _any_value(x)) for x in v))
    if isinstance(v, Mapping):
        return _ld(b"\x32", b"".join(_ld(b"\x0a", _key_value(str(k), x)) for k, x in v.items()))
    raise TypeError(f"invalid attribute value type {type(v).__name__}")


def _key_value(key: str, v: Any) -> bytes:
    k = _key_cache.get(key)
    if k is None:
        k = _str(b"\x0a", key)
        if len(_key_cache) < _MAX_CACHE:
            _key_cache[key] = k
    return k + _ld(b"\x12", _any_value(v))


def _kv_keep(ck: tuple[bytes, str, type, Any], b: bytes) -> dict[tuple[bytes, str, type, Any], bytes]:
    """Put ``b`` in the current generation (a new one when it is full); returns the current generation."""
    global _kv_cache, _kv_old
    cache = _kv_cache
    if len(cache) >= _KV_GENERATION:
        _kv_old, _kv_cache = cache, {}
        cache = _kv_cache
    cache[ck] = b
    return cache


def _attributes(tag: bytes, attrs: Mapping[str, Any] | None) -> bytes:
    """Repeated ``KeyValue`` field ``tag``, one entry per attribute."""
    if not attrs:
        return b""
    parts = []
    cache = _kv_cache
    floats = _float_prefixes.get(tag)
    if floats is None:
        floats = _float_prefixes.setdefault(tag, {})
    flat = flat_auth_fields(attrs)  # ws.message.key beside ws.message.secret: masked, not looked up in the caches
    for key, v in attrs.items():
        if flat is not None and key in flat:
            parts.append(_ld(tag, _key_value(key, secret_values.MASK)))
            continue
        t = type(v)
        if t is float:  # prices, quantities: rarely repeat, not worth a cache entry; written inline
            prefix = floats.get(key)
            if prefix is None and not _redactor.is_secret_key(key):
                k = _str(b"\x0a", key)
                n = len(k) + len(_DOUBLE_VALUE) + 8  # KeyValue.value = AnyValue{double_value}, 9 bytes
                prefix = tag + (bytes((n,)) if n < 0x80 else _varint(n)) + k + _DOUBLE_VALUE
                if len(floats) < _MAX_CACHE:
                    floats[key] = prefix
            if prefix is not None:
                parts.append(prefix + _pack_d(v))
                continue
        ck = (tag, key, t, v) if t is str or t is int or t is bool else None
        if ck is not None:
            b = cache.get(ck)
            if b is None:
                b = _kv_old.get(ck)
                if b is None:
                    b = _ld(tag, _key_value(key, _clean(key, v)))  # scrubbed once per distinct value
                cache = _kv_keep(ck, b)
            parts.append(b)
        else:
            parts.append(_ld(tag, _key_value(key, _clean(key, v))))
    return b"".join(parts)


# --------------------------------------------------------------------------- spans

_SPAN_KIND = {0: b"\x30\x01", 1: b"\x30\x02", 2: b"\x30\x03", 3: b"\x30\x04", 4: b"\x30\x05"}
_SPAN_KIND_BY_MEMBER = {k: _SPAN_KIND[k.value] for k in SpanKind}  # no enum ``.value`` descriptor per span
_INTERNAL_KIND = _SPAN_KIND_BY_MEMBER[SpanKind.INTERNAL]
_UNSET_CODE = StatusCode.UNSET
_name_cache: dict[str, bytes] = {}
_span_fields = otel_private.readable_span_fields


def _trace_state(ts: Any) -> str:
    return ",".join(f"{k}={v}" for k, v in ts.items()) if ts is not None else ""


def _status(status: Any) -> bytes:
    if status is None:
        return b""
    code_enum = status.status_code
    desc = status.description
    if code_enum is _UNSET_CODE and not desc:
        return _EMPTY_STATUS
    code = code_enum.value
    if not code and not desc:
        return _EMPTY_STATUS
    body = (_str(b"\x12", scrub_text(desc)) if desc else b"") + (b"\x18" + _varint(code) if code else b"")
    return _ld(b"\x7a", body)


def _event(e: Any) -> bytes:
    body = (
        (b"\x09" + _pack_q(e.timestamp) if e.timestamp else b"")
        + _str(b"\x12", scrub_text(e.name) if e.name else e.name)
        + _attributes(b"\x1a", e.attributes)
        + (b"\x20" + _varint(e.dropped_attributes) if e.dropped_attributes else b"")
    )
    return _ld(b"\x5a", body)


def _link(link: Any) -> bytes:
    ctx = link.context
    dropped = link.dropped_attributes
    body = (
        b"\x0a\x10"
        + ctx.trace_id.to_bytes(16, "big")
        + b"\x12\x08"
        + ctx.span_id.to_bytes(8, "big")
        + _attributes(b"\x22", link.attributes)
        + (b"\x28" + _varint(dropped) if dropped else b"")
        + (_LINK_FLAGS_REMOTE if ctx.is_remote else _LINK_FLAGS_LOCAL)
    )
    return _ld(b"\x6a", body)


def _name_bytes(name: str) -> bytes:
    """``Span.name`` (field 5), cached (bounded)."""
    nb = _name_cache.get(name)
    if nb is None:
        nb = _str(b"\x2a", scrub_text(name) if name else name)
        if len(_name_cache) < _MAX_CACHE:
            _name_cache[name] = nb
    return nb


def _span(sp: Any) -> bytes:
    ctx, parent, name, kind, start, end, attributes, events, links, status, _, _ = _span_fields(sp)
    nb = _name_bytes(name)
    parts = [b"\x0a\x10", ctx.trace_id.to_bytes(16, "big"), b"\x12\x08", ctx.span_id.to_bytes(8, "big")]
    ts = ctx.trace_state
    if ts:
        parts.append(_str(b"\x1a", _trace_state(ts)))
    if parent:
        parts.append(b"\x22\x08")
        parts.append(parent.span_id.to_bytes(8, "big"))
    parts.append(nb)
    kb = _SPAN_KIND_BY_MEMBER.get(kind)
    parts.append(kb if kb is not None else _SPAN_KIND[kind.value])
    if start:
        parts.append(b"\x39" + _pack_q(start))
    if end:
        parts.append(b"\x41" + _pack_q(end))
    parts.append(_attributes(b"\x4a", attributes))
    dropped = sp.dropped_attributes
    if dropped:
        parts.append(b"\x50" + _varint(dropped))
    if events:
        parts.extend(_event(e) for e in events)
    dropped = sp.dropped_events
    if dropped:
        parts.append(b"\x60" + _varint(dropped))
    if links:
        parts.extend(_link(link) for link in links)
    dropped = sp.dropped_links
    if dropped:
        parts.append(b"\x70" + _varint(dropped))
    parts.append(_status(status))
    parts.append(_FLAGS_REMOTE if parent and parent.is_remote else _FLAGS_LOCAL)
    return _ld(b"\x12", b"".join(parts))  # ScopeSpans.spans (field 2)


UNSET_STATUS = Status(StatusCode.UNSET)
"""The unset status the trading layer gives its spans (``trading/_spans.py``), whose bytes
:func:`encode_step_span` knows."""
_pack_times = struct.Struct("<BQBQ").pack  # Span.start_time_unix_nano and end_time_unix_nano (fields 7, 8: fixed64)


def encode_step_span(
    trace_id: int,
    span_id: int,
    trace_state: Any,
    parent_span_id: int | None,
    name: str,
    start: int,
    end: int,
    attributes: Mapping[str, Any] | None,
    status: Any,
) -> bytes:
    """What :func:`_span` writes for a span of kind INTERNAL with a local parent (or none), no events, links or
    dropped attributes: the trading layer's order and step spans (``trading/_spans.py``), encoded where they end."""
    if secret_values.version() != _secrets_version:
        _fresh()
    nb = _name_cache.get(name)
    if nb is None:
        nb = _name_bytes(name)
    head = b"\x0a\x10" + trace_id.to_bytes(16, "big") + b"\x12\x08" + span_id.to_bytes(8, "big")
    if trace_state is not None and trace_state is not DEFAULT_TRACE_STATE and trace_state:
        head += _str(b"\x1a", _trace_state(trace_state))
    if parent_span_id is not None:
        head += b"\x22\x08" + parent_span_id.to_bytes(8, "big")
    if start and end:
        times = _pack_times(0x39, start, 0x41, end)
    else:
        times = (b"\x39" + _pack_q(start) if start else b"") + (b"\x41" + _pack_q(end) if end else b"")
    body = b"".join(
        (
            head,
            nb,
            _INTERNAL_KIND,
            times,
            _attributes(b"\x4a", attributes) if attributes else b"",
            _EMPTY_STATUS if status is UNSET_STATUS else _status(status),
            _FLAGS_LOCAL,
        )
    )
    n = len(body)
    return b"\x12" + (bytes((n,)) if n < 0x80 else _varint(n)) + body  # ScopeSpans.spans (field 2)


_scope_cache: dict[Any, bytes] = {}
_resource_cache: dict[int, tuple[Any, bytes]] = {}


def _scope(scope: Any) -> bytes:
    """``ScopeSpans.scope`` (always present) plus ``schema_url``, without the spans."""
    b = _scope_cache.get(scope)
    if b is None:
        if scope is None:
            b = b"\x0a\x00"
        else:
            name, version = _str(b"\x0a", scope.name), _str(b"\x12", scope.version or "")
            b = _ld(b"\x0a", name + version + _attributes(b"\x1a", scope.attributes))
        if len(_scope_cache) < _MAX_CACHE:
            _scope_cache[scope] = b
    return b


def _resource(resource: Any) -> bytes:
    hit = _resource_cache.get(id(resource))
    if hit is not None and hit[0] is resource:
        return hit[1]
    b = _ld(b"\x0a", _attributes(b"\x0a", resource.attributes))
    if len(_resource_cache) >= 64:
        _resource_cache.clear()
    _resource_cache[id(resource)] = (resource, b)
    return b


class Encoded:
    """One span or log record already written as its ``ScopeSpans``/``ScopeLogs`` entry, with its resource
    and scope: exporters with the fast encoder take these in a batch like SDK items (``encode_log_record``)."""

    __slots__ = ("data", "resource", "scope")

    def __init__(self, data: bytes, resource: Any, scope: Any) -> None:
        self.data = data
        self.resource = resource
        self.scope = scope


def _request(items: Sequence[Any], resource_scope: Any, encode: Any) -> bytes:
    """``resource_<x>`` entries of an export request; ``encode(item)`` gives the scope's field-2 entry.

    Grouped resource -> scope -> items in first-seen order, like the reference encoders' dicts;
    a resource object is compared with the earlier groups (==) once, then found by identity.
    :class:`Encoded` items bring their entry with them.
    """
    _fresh()
    merged: list[tuple[Any, dict[Any, list[bytes]]]] = []
    by_id: dict[int, dict[Any, list[bytes]]] = {}
    for item in items:
        if type(item) is Encoded:
            res, scope, data = item.resource, item.scope, item.data
        else:
            res, scope = resource_scope(item)
            data = encode(item)
        scopes = by_id.get(id(res))
        if scopes is None:
            for other, other_scopes in merged:
                if other == res:
                    scopes = other_scopes
                    break
            else:
                scopes = {}
                merged.append((res, scopes))
            by_id[id(res)] = scopes
        scopes.setdefault(scope or None, []).append(data)
    out = []
    for res, scopes in merged:
        body = [_resource(res)]
        for scope, encoded in scopes.items():
            schema = scope.schema_url if scope is not None else ""
            body.append(_ld(b"\x12", _scope(scope) + b"".join(encoded) + _str(b"\x1a", schema or "")))
        body.append(_str(b"\x1a", res.schema_url or ""))
        out.append(_ld(b"\x0a", b"".join(body)))
    return b"".join(out)


def _span_resource_scope(sp: Any) -> tuple[Any, Any]:
    fields = _span_fields(sp)
    return fields[10], fields[11]


def encode_spans(spans: Sequence[Any]) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` for SDK ``ReadableSpan`` s."""
    return _request(spans, _span_resource_scope, _span)


# --------------------------------------------------------------------------- logs


def _log(readable: Any) -> bytes:
    rec = readable.log_record
    body = rec.body
    return encode_log_record(
        rec.timestamp,
        rec.observed_timestamp,
        getattr(rec.severity_number, "value", None),
        rec.severity_text,
        _redactor.body(body),  # the pipeline's own records are scrubbed already; the OTel logs API's are not
        rec.attributes,
        int(rec.trace_flags),
        rec.trace_id,
        rec.span_id,
        readable.dropped_attributes,
        scrub_text(rec.event_name) if rec.event_name else rec.event_name,
    )


_SEVERITY_NUMBERS = {n: b"\x10" + _varint(n) for n in range(1, 25)}  # LogRecord.severity_number (field 2)
_severity_texts: dict[str, bytes] = {}  # LogRecord.severity_text (field 3), by text (bounded)


def encode_log_record(
    timestamp: int | None,
    observed: int | None,
    severity_number: int | None,
    severity_text: str | None,
    body: Any,
    attributes: Mapping[str, Any] | None,
    flags: int,
    trace_id: int | None,
    span_id: int | None,
    dropped: int = 0,
    event_name: str | None = None,
) -> bytes:
    """One ``ScopeLogs.log_records`` entry (field 2) from a log record's fields."""
    sev = b""
    if severity_number:
        sev = _SEVERITY_NUMBERS.get(severity_number) or b"\x10" + _varint(severity_number)
    txt = b""
    if severity_text:
        txt = _severity_texts.get(severity_text) or b""
        if not txt:
            txt = _str(b"\x1a", severity_text)
            if len(_severity_texts) < 64:
                _severity_texts[severity_text] = txt
    if type(body) is str:  # the pipeline's records: LogRecord.body (field 5) = AnyValue{string_value}, as _any_value
        v = body.encode("utf-8", "replace")
        n = len(v)
        value = b"\x0a" + (bytes((n,)) if n < 0x80 else _varint(n)) + v
        n = len(value)
        body_field = b"\x2a" + (bytes((n,)) if n < 0x80 else _varint(n)) + value
    else:
        body_field = _ld(b"\x2a", _any_value(body))
    data = b"".join(
        (
            b"\x09" + _pack_q(timestamp) if timestamp else b"",
            sev,
            txt,
            body_field,
            _attributes(b"\x32", attributes) if attributes else b"",
            b"\x38" + _varint(dropped) if dropped else b"",
            b"\x45" + _pack_i(flags) if flags else b"",
            b"\x4a\x10" + trace_id.to_bytes(16, "big") if trace_id else b"",
            b"\x52\x08" + span_id.to_bytes(8, "big") if span_id else b"",
            b"\x59" + _pack_q(observed) if observed else b"",
            _str(b"\x62", event_name) if event_name else b"",
        )
    )
    n = len(data)
    return b"\x12" + (bytes((n,)) if n < 0x80 else _varint(n)) + data  # ScopeLogs.log_records (field 2)


def _log_resource_scope(readable: Any) -> tuple[Any, Any]:
    return readable.resource, readable.instrumentation_scope


def encode_logs(batch: Sequence[Any]) -> bytes:
    """The serialized ``ExportLogsServiceRequest`` for SDK ``ReadableLogRecord`` s."""
    return _request(batch, _log_resource_scope, _log)


# --------------------------------------------------------------------------- metrics

_pack_sq = struct.Struct("<q").pack


def _exemplar(tag: bytes, time_ns: int, value: Any, span_id: int | None, trace_id: int | None, attrs: bytes) -> bytes:
    """One ``Exemplar`` entry of field ``tag``: the trace and span ids only when both are set, as the reference."""
    head = b"\x11" + _pack_q(time_ns) if time_ns else b""
    ids = b""
    if span_id is not None and trace_id is not None:
        ids = b"\x22\x08" + span_id.to_bytes(8, "big") + b"\x2a\x10" + trace_id.to_bytes(16, "big")
    if isinstance(value, float):
        return _ld(tag, head + b"\x19" + _pack_d(value) + ids + attrs)
    if isinstance(value, int):
        return _ld(tag, head + ids + b"\x31" + _pack_sq(value) + attrs)
    raise ValueError("Exemplar value must be an int or float")


def _exemplars(tag: bytes, exemplars: Sequence[Any] | None) -> bytes:
    """Repeated ``Exemplar`` field ``tag`` from SDK exemplars."""
    if not exemplars:
        return b""
    return b"".join(
        _exemplar(tag, e.time_unix_nano, e.value, e.span_id, e.trace_id, _attributes(b"\x3a", e.filtered_attributes))
        for e in exemplars
    )


def _number_point(p: Any, start: bool) -> bytes:
    """A ``NumberDataPoint`` body; a gauge's has no start time in the reference encoder."""
    parts = []
    if start and p.start_time_unix_nano:
        parts.append(b"\x11" + _pack_q(p.start_time_unix_nano))
    if p.time_unix_nano:
        parts.append(b"\x19" + _pack_q(p.time_unix_nano))
    v = p.value
    if not isinstance(v, int):
        parts.append(b"\x21" + _pack_d(v))
    parts.append(_exemplars(b"\x2a", p.exemplars))
    if isinstance(v, int):
        parts.append(b"\x31" + _pack_sq(v))
    parts.append(_attributes(b"\x3a", p.attributes))
    return b"".join(parts)


def _bounds(bounds: Sequence[float]) -> bytes:
    """``HistogramDataPoint.explicit_bounds``, packed (the same for every point of a family)."""
    return _ld(b"\x3a", struct.pack(f"<{len(bounds)}d", *bounds)) if bounds else b""


def _histogram_body(
    times: bytes,
    count: int,
    total: float | None,
    counts: Sequence[int],
    bounds: bytes,
    exemplars: bytes,
    attrs: bytes,
    lo: float | None,
    hi: float | None,
) -> bytes:
    """A ``HistogramDataPoint`` body from its start and time fields (``times``, encoded), its values, and its
    bounds, exemplars and attributes already encoded; ``None`` for sum, min or max leaves that field out."""
    parts = [times]
    if count:
        parts.append(b"\x21" + _pack_q(count))
    if total is not None:
        parts.append(b"\x29" + _pack_d(total))
    if counts:
        parts.append(_ld(b"\x32", struct.pack(f"<{len(counts)}Q", *counts)))
    parts += (bounds, exemplars, attrs)
    if lo is not None:
        parts.append(b"\x59" + _pack_d(lo))
    if hi is not None:
        parts.append(b"\x61" + _pack_d(hi))
    return b"".join(parts)


def _histogram_point(p: Any) -> bytes:
    start, time_ns = p.start_time_unix_nano, p.time_unix_nano
    times = (b"\x11" + _pack_q(start) if start else b"") + (b"\x19" + _pack_q(time_ns) if time_ns else b"")
    exemplars, attrs = _exemplars(b"\x42", p.exemplars), _attributes(b"\x4a", p.attributes)
    return _histogram_body(
        times, p.count, p.sum, p.bucket_counts, _bounds(p.explicit_bounds), exemplars, attrs, p.min, p.max
    )


class _Parts(NamedTuple):
    """A ``Metric`` body in pieces: ``head`` (name, description, unit), then the data field ``tag`` holding the
    ``points`` (each a ``data_points`` entry) and ``tail`` (temporality, monotonic). No points: ``head`` alone."""

    head: bytes
    tag: bytes
    points: list[bytes]
    tail: bytes

    def bodies(self, budget: int) -> list[bytes]:
        """The body, or several with the same head and a share of the points each, none longer than ``budget``
        bytes (a single point longer than that goes alone)."""
        head, tag, points, tail = self
        if not points:
            return [head]
        fixed = len(head) + len(tag) + 5 + len(tail)  # 5: the data field's length, at most 5 varint bytes
        out: list[bytes] = []
        start, size = 0, fixed
        for i, pt in enumerate(points):
            if size + len(pt) > budget and i > start:
                out.append(head + _ld(tag, b"".join(points[start:i]) + tail))
                start, size = i, fixed
            size += len(pt)
        out.append(head + _ld(tag, b"".join(points[start:]) + tail))
        return out


def _metric(m: Any, offer: Callable[[], None]) -> _Parts | None:
    """A ``Metric`` body's parts. Sums, gauges and explicit-bucket histograms; any other kind raises (the reference
    encoder takes that batch). ``None``: a registry instrument with no point (left out, as from a snapshot)."""
    d = m.data
    if type(d) is FamilyData:
        family = d.take()
        if family is None:
            return None
        parts, d.count = _family_parts(family, d.now_ns, offer)
        return parts if d.count else None
    kind = _METRIC_KINDS.get(type(d))
    if kind is None:
        raise TypeError(f"unsupported metric data {type(d).__name__}")
    head = _str(b"\x0a", m.name) + _str(b"\x12", m.description or "") + _str(b"\x1a", m.unit or "")
    points = d.data_points
    if not points:  # the reference sets the data field only from a point
        return _Parts(head, b"", [], b"")
    body = []
    if kind == "sum":
        for p in points:
            body.append(_ld(b"\x0a", _number_point(p, True)))
            offer()
        temporality = int(d.aggregation_temporality)
        tail = (b"\x10" + _varint(temporality) if temporality else b"") + (b"\x18\x01" if d.is_monotonic else b"")
        return _Parts(head, b"\x3a", body, tail)
    if kind == "gauge":
        for p in points:
            body.append(_ld(b"\x0a", _number_point(p, False)))
            offer()
        return _Parts(head, b"\x2a", body, b"")
    for p in points:
        body.append(_ld(b"\x0a", _histogram_point(p)))
        offer()
    temporality = int(d.aggregation_temporality)
    return _Parts(head, b"\x4a", body, b"\x10" + _varint(temporality) if temporality else b"")


# The registry's families (``metrics.Snapshot``), written straight from their points: no OTel point objects per
# series (at 1,000 symbols, 18,000 of them a collection, enough garbage to set off a full garbage collection of the
# whole process at every export). A series' attribute bytes are cached by its instrument and key (the registry's
# series identity: a key alone is not, as ``(("x", 1),) == (("x", True),)``), two generations as above.
_series_attrs: dict[tuple[bytes, str, Any], bytes] = {}
_series_attrs_old: dict[tuple[bytes, str, Any], bytes] = {}
_SERIES_GENERATION = 32768


def _series_attributes(tag: bytes, name: str, key: Any, attrs: Mapping[str, Any]) -> bytes:
    global _series_attrs, _series_attrs_old
    ck = (tag, name, key)
    b = _series_attrs.get(ck)
    if b is None:
        b = _series_attrs_old.get(ck)
        if b is None:
            b = _attributes(tag, attrs)
        if len(_series_attrs) >= _SERIES_GENERATION:
            _series_attrs_old, _series_attrs = _series_attrs, {}
        _series_attrs[ck] = b
    return b


def _family_number(p: Any, start: bool, now: bytes, name: str) -> bytes:
    v = p.value
    head = b"\x11" + _pack_q(p.start_ns) + now if start and p.start_ns else now
    value = b"\x31" + _pack_sq(v) if isinstance(v, int) else b"\x21" + _pack_d(v)
    return head + value + _series_attributes(b"\x3a", name, p.key, p.attributes)


def _family_histogram(p: Any, bounds: bytes, now: bytes, name: str) -> bytes:
    n = p.observed
    times = b"\x11" + _pack_q(p.start_ns) + now if p.start_ns else now
    # the registry's Exemplar(value, time_ns, trace_id, span_id): a sampled span's, no filtered attributes
    exemplars = b"".join(
        _exemplar(b"\x42", e.time_ns, e.value, e.span_id, e.trace_id, b"") for e in p.exemplars.values()
    )
    attrs = _series_attributes(b"\x4a", name, p.key, p.attributes)
    lo, hi = (p.min, p.max) if n else (0.0, 0.0)
    return _histogram_body(times, n, p.sum, p.counts, bounds, exemplars, attrs, lo, hi)


def encode_family(family: Any, now_ns: int, offer: Callable[[], None]) -> tuple[bytes, int]:
    """A registry family's ``Metric`` body, as ``bridge.OtelMetrics`` then :func:`encode_metrics` would write it
    (cumulative, ``time_unix_nano`` the snapshot's), and how many points it has. Its ``points`` are read once, in
    order, each written and dropped (``Instrument.stream``). No point: the name, description and unit alone."""
    parts, n = _family_parts(family, now_ns, offer)
    return parts.bodies(sys.maxsize)[0], n


def _family_parts(family: Any, now_ns: int, offer: Callable[[], None]) -> tuple[_Parts, int]:
    """:func:`encode_family`'s body in parts, and how many points it has."""
    name = family.name
    head = _str(b"\x0a", name) + _str(b"\x12", family.description) + _str(b"\x1a", family.unit)
    now = b"\x19" + _pack_q(now_ns) if now_ns else b""
    body = []
    kind = family.kind
    if kind == "histogram":
        packed = _bounds(family.bounds)
        for p in family.points:
            body.append(_ld(b"\x0a", _family_histogram(p, packed, now, name)))
            offer()
        return _Parts(head, b"\x4a", body, _CUMULATIVE), len(body)
    start = kind != "gauge"
    for p in family.points:
        body.append(_ld(b"\x0a", _family_number(p, start, now, name)))
        offer()
    if kind == "gauge":
        return _Parts(head, b"\x2a", body, b""), len(body)
    return _Parts(head, b"\x3a", body, _CUMULATIVE + (b"\x18\x01" if family.monotonic else b"")), len(body)


_CUMULATIVE = b"\x10\x02"  # Sum/Histogram.aggregation_temporality = CUMULATIVE


class FamilyData:
    """A registry instrument standing in for an OTel ``Metric.data`` in the agent's own OTLP export
    (``bridge.attach(..., encoded=True)``). Its family (``metrics.Family``) is read only when it is encoded
    (:meth:`take`, from ``Instrument.stream``), each point written straight to bytes by :func:`encode_family`
    and dropped: one point is alive at a time, not a family's nor the whole registry's, so an export's garbage
    dies young instead of reaching the garbage collector's oldest generation (whose full collections stop the
    trading thread too). ``otel`` makes the OTel data for any other path (the reference encoder's fallback).
    ``data_points`` has the number of points the last encoding found (for counting)."""

    __slots__ = ("_otel", "_source", "count", "now_ns")

    aggregation_temporality = 2  # AggregationTemporality.CUMULATIVE: the registry's data always is

    def __init__(self, source: Callable[[], Any], now_ns: int, otel: Callable[[Any, int], Any]) -> None:
        self._source, self.now_ns, self._otel, self.count = source, now_ns, otel, 0

    def take(self) -> Any:
        """The family now (``None`` when it has no series); its points are read once."""
        self.count = 0
        return self._source()

    @property
    def data_points(self) -> range:
        return range(self.count)

    def otel(self, family: Any) -> Any:
        return self._otel(family, self.now_ns)


_METRIC_KINDS: dict[type, str] = {Sum: "sum", Gauge: "gauge", Histogram: "histogram"}


MAX_REQUEST_BYTES = 3 << 20
"""The largest metrics export request the agent sends, 3 MiB: gRPC servers take at most 4 MiB a message unless told
otherwise (the OpenTelemetry Collector's OTLP receiver among them: ``max_recv_msg_size_mib``), and refuse a larger one
whole (``RESOURCE_EXHAUSTED``), with every point in it. A larger export is sent as several requests."""


def encode_metrics(data: Any) -> bytes:
    """The serialized ``ExportMetricsServiceRequest`` for an SDK ``MetricsData``, as one request whatever its size
    (:func:`encode_metric_requests` splits it)."""
    requests = encode_metric_requests(data, sys.maxsize)
    return requests[0] if requests else b""


def encode_metric_requests(data: Any, max_bytes: int = MAX_REQUEST_BYTES) -> list[bytes]:
    """``data`` as serialized ``ExportMetricsServiceRequest`` messages of at most ``max_bytes`` each (a point larger
    than that alone excepted); one when it fits, none for no resource.

    A request that would pass ``max_bytes`` is closed, and the next one starts with the same resource, scope and
    metric (name, description, unit, temporality) and the points that did not fit: split requests hold every point
    once, and each is a whole request a receiver takes on its own.

    It runs on the metric reader's thread: it gives the GIL back to the trading thread between points
    (``gil.Slices``), where the reference encoder held it for the whole request (about 10 ms for the demo's
    few hundred series, far more at 1,000 symbols). Each ``ResourceMetrics`` is written as its own entry.
    """
    _fresh()
    offer = Slices().offer
    requests: list[bytes] = []
    done: list[bytes] = []  # the request being filled: its finished ResourceMetrics entries
    done_size = 0
    for rm in data.resource_metrics:
        res = rm.resource
        res_head, res_tail = _resource(res), _str(b"\x1a", res.schema_url or "")
        scopes: list[bytes] = []  # this resource's finished ScopeMetrics entries in the request being filled
        scopes_size = 0
        for sm in rm.scope_metrics:
            scope = sm.scope
            scope_head = _scope(scope)
            scope_tail = _str(b"\x1a", (scope.schema_url if scope is not None else "") or "")
            # what this scope's metrics share a request with besides each other (12: two fields' tags and lengths)
            frame = len(res_head) + len(res_tail) + len(scope_head) + len(scope_tail) + 12
            metrics: list[bytes] = []
            size = 0
            for m in sm.metrics:
                parts = _metric(m, offer)
                if parts is None:
                    continue
                for mb in parts.bodies(max_bytes - frame - 5):  # 5: the metric entry's length varint
                    entry = _ld(b"\x12", mb)
                    if done_size + scopes_size + frame + size + len(entry) > max_bytes and (metrics or scopes or done):
                        if metrics:
                            scopes.append(_ld(b"\x12", scope_head + b"".join(metrics) + scope_tail))
                        if scopes:
                            done.append(_ld(b"\x0a", res_head + b"".join(scopes) + res_tail))
                        requests.append(b"".join(done))
                        done, done_size, scopes, scopes_size, metrics, size = [], 0, [], 0, [], 0
                    metrics.append(entry)
                    size += len(entry)
            entry = _ld(b"\x12", scope_head + b"".join(metrics) + scope_tail)
            scopes.append(entry)
            scopes_size += len(entry)
        entry = _ld(b"\x0a", res_head + b"".join(scopes) + res_tail)
        done.append(entry)
        done_size += len(entry)
    if done:
        requests.append(b"".join(done))
    return requests


def _plain(data: Any) -> Any:
    """``data`` with every :class:`FamilyData` replaced by its OTel data (for the reference encoder)."""
    import dataclasses

    def metrics(ms: Sequence[Any]) -> list[Any]:
        out = []
        for m in ms:
            if type(m.data) is FamilyData:
                family = m.data.take()
                if family is None:
                    continue
                otel = m.data.otel(family)
                m.data.count = len(otel.data_points)
                if not m.data.count:
                    continue
                m = dataclasses.replace(m, data=otel)
            out.append(m)
        return out

    rms = [
        dataclasses.replace(
            rm, scope_metrics=[dataclasses.replace(sm, metrics=metrics(sm.metrics)) for sm in rm.scope_metrics]
        )
        for rm in data.resource_metrics
    ]
    return dataclasses.replace(data, resource_metrics=rms)


_ENCODING_ERRORS = (TypeError, ValueError, AttributeError, KeyError, OverflowError, RecursionError, struct.error)


def _reference_fallback(
    encode: Callable[[Sequence[Any]], bytes], scrub: Callable[[Sequence[Any]], Sequence[Any]] = list
) -> Callable[[Callable[[Any], Any]], Any]:
    """``translate(reference)``: our encoder, and for a batch it cannot handle, the exporter's reference one
    (given the batch through ``scrub`` first: the reference encoder does not scrub)."""

    def translate(reference: Callable[[Any], Any]) -> Callable[[Sequence[Any]], bytes]:
        def encoded(data: Sequence[Any]) -> bytes:
            try:
                return encode(data)
            except _ENCODING_ERRORS:
                # A value the fast encoder does not take (the reference one may, or may reject it the same
                # way): SDK items by the reference encoder, Encoded items are already bytes. Two serialized
                # requests one after the other parse as one request with both lists of resource entries.
                plain = [d for d in data if type(d) is not Encoded]
                pre = [d for d in data if type(d) is Encoded]
                out: bytes = reference(scrub(plain)).SerializeToString() if plain else b""
                return out + _request(pre, None, None) if pre else out

        return encoded

    return translate


def install_fast_log_encoding(exporter: Any) -> bool:
    """Like :func:`install_fast_span_encoding`, for an OTLP log exporter (gRPC or HTTP)."""
    if not fastpath.decide("encoder", exporter).exact:
        return False
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

    translate = _reference_fallback(encode_logs, scrub_logs)
    if _http(exporter):
        return otel_private.install_raw_http_encoding(exporter, translate, "logs")
    path = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
    return otel_private.install_raw_grpc_stub(exporter, translate, path, ExportLogsServiceResponse.FromString)


def install_fast_metric_encoding(exporter: Any) -> bool:
    """Like :func:`install_fast_span_encoding`, for an OTLP metric exporter (gRPC or HTTP): an export larger than
    :data:`MAX_REQUEST_BYTES` goes as several requests (:func:`encode_metric_requests`)."""
    if not fastpath.decide("encoder", exporter).exact:
        return False
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse

    def translate(reference: Callable[[Any], Any]) -> Callable[[Any], bytes | list[bytes]]:
        def encoded(data: Any) -> bytes | list[bytes]:
            try:
                requests = encode_metric_requests(data)
                return requests[0] if len(requests) == 1 else requests  # several: sent one after the other
            except _ENCODING_ERRORS:  # a kind or value the fast encoder does not take: the reference's turn
                return reference(scrub_metrics(_plain(data))).SerializeToString()  # type: ignore[no-any-return]

        return encoded

    if _http(exporter):
        return otel_private.install_raw_http_encoding(exporter, translate, "metrics")
    path = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
    return otel_private.install_raw_grpc_stub(exporter, translate, path, ExportMetricsServiceResponse.FromString)


def install_fast_span_encoding(exporter: Any) -> bool:
    """Make an OTLP span exporter (gRPC or HTTP) encode with :func:`encode_spans`; True if installed.

    The encoded bytes go to gRPC as they are: the exporter's stub is replaced by one
    with no request serializer (the stock stub would need the bytes parsed into a
    request message first, only to serialize it again). Over OTLP/HTTP they go to the
    exporter's own HTTP client (``otel_private.install_raw_http_encoding``). A batch the
    fast encoder cannot handle is encoded by the reference encoder instead.
    """
    if not fastpath.decide("encoder", exporter).exact:
        return False
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    translate = _reference_fallback(encode_spans, scrub_spans)
    if _http(exporter):
        return otel_private.install_raw_http_encoding(exporter, translate, "traces")
    path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    return otel_private.install_raw_grpc_stub(exporter, translate, path, ExportTraceServiceResponse.FromString)


def _http(exporter: Any) -> bool:
    return ".proto.http." in type(exporter).__module__
