"""Secrets out of spans before they leave the process: names, attributes, events, links, status, resource, scope.

>>> scrubbed = scrub_spans(spans)        # on the batch processor's export thread   # doctest: +SKIP

The same rules as the log pipeline (:mod:`tradeobs_agent.redaction`): an attribute
whose *name* is secret gets the value ``[REDACTED]``; string values (a URL with
``?api_key=...``, an exception message, a stack trace) are scrubbed of
``key=value`` secrets, credentials and every known secret value
(:mod:`tradeobs_agent.secret_values`), and bytes values as their text
(``Redactor.octets``: the collector cannot read bytes); a 2-item sequence that is a (name, value)
pair with a secret name (``["Authorization", "Bearer ..."]``,
``Redactor.is_secret_pair``) gets its value masked, other sequences their items
scrubbed.

Two places do it, both on the export side, never on the thread that ends a span:

* the fast OTLP encoder (``otlp_encode``: OTLP/gRPC, the trace file, the trading
  layer's pre-encoded spans) scrubs each distinct value once, when it first
  encodes it (its caches hold the scrubbed bytes; a new secret clears them);
* :func:`scrub_spans` here, for exporters without that encoder (OTLP/HTTP, and a
  batch the fast encoder hands to the reference one): it returns the spans
  unchanged when nothing is secret, else copies of the ones that changed.

Exporters passed to ``init(span_exporters=...)`` (in-process test exporters) see
spans as recorded.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, Status

from .. import secret_values
from ..redaction import URL_ATTRIBUTES, default_redactor, flat_auth_fields
from .otel_private import readable_span_fields

__all__ = [
    "scrub_attributes",
    "scrub_labels",
    "scrub_logs",
    "scrub_metrics",
    "scrub_resource",
    "scrub_scope",
    "scrub_spans",
    "scrub_text",
]

_MAX_CACHE = 4096
_SAME = "\x00same"  # a cached "unchanged" (a scrubbed text never equals it: it starts with NUL)
_text_cache: dict[str, str] = {}
_resource_cache: dict[int, tuple[Resource, Resource]] = {}
_scope_cache: dict[int, tuple[InstrumentationScope, InstrumentationScope]] = {}
_version = -1


def _fresh() -> None:
    """Forget cached results when the known secret values changed."""
    global _version
    v = secret_values.version()
    if v != _version:
        _text_cache.clear()
        _resource_cache.clear()
        _scope_cache.clear()
        _version = v


def scrub_text(s: str) -> str:
    """``s`` scrubbed (cached per distinct short string)."""
    hit = _text_cache.get(s)
    if hit is not None:
        return s if hit is _SAME else hit  # ``s`` itself when unchanged: callers compare by identity
    out = default_redactor().text(s)
    if out == s:
        out = s
    if len(s) <= 256:
        if len(_text_cache) >= _MAX_CACHE:
            _text_cache.clear()
        _text_cache[s] = _SAME if out is s else out
    return out


def _value(key: str, v: Any) -> Any:
    red = default_redactor()
    if red.is_secret_key(key):
        return secret_values.MASK
    if type(v) is str:
        if len(v) < 5:
            return v
        out = scrub_text(v)
        if key in URL_ATTRIBUTES:  # url.query's first parameter (no "?" before it)
            out = red.query_start(out)
            return v if out == v else out
        return out
    if type(v) is tuple or type(v) is list:
        if len(v) == 2 and red.is_secret_pair(v[0], v[1]):  # a header as a pair, ["Authorization", "Bearer ..."]
            return v if v[1] == secret_values.MASK else (v[0], secret_values.MASK)
        items = [
            scrub_text(x)
            if type(x) is str
            else red.value("", x)
            if isinstance(x, Mapping | list | tuple | bytes | bytearray)
            else x
            for x in v
        ]
        return tuple(items) if any(a is not b and a != b for a, b in zip(items, v, strict=True)) else v
    if isinstance(v, Mapping):  # a log record's attribute through the OTel logs API: {"broker": {"api_key": ...}}
        out = red.value(key, v)
        return v if out == v else out
    if type(v) is int and secret_values.int_is_secret(v):
        return secret_values.MASK
    if type(v) is bytes:  # the collector cannot read bytes: masked here or nowhere
        return red.octets(v)
    return v


def scrub_attributes(attrs: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``attrs`` itself when nothing in it is secret, else a scrubbed copy (a ``BoundedAttributes`` keeps its
    dropped count)."""
    if not attrs:
        return attrs
    changed: dict[str, Any] | None = None
    for k, v in attrs.items():
        nv = _value(k, v)
        if nv is not v:
            if changed is None:
                changed = dict(attrs)
            changed[k] = nv
    flat = flat_auth_fields(attrs)  # ws.message.key beside ws.message.secret
    if flat is not None:
        if changed is None:
            changed = dict(attrs)
        for k in flat:
            changed[k] = secret_values.MASK
    if changed is None:
        return attrs
    if isinstance(attrs, BoundedAttributes):
        bounded = BoundedAttributes(attributes=changed, immutable=True, max_value_len=attrs.max_value_len)
        bounded.dropped = attrs.dropped
        return bounded
    return changed


def scrub_labels(labels: Mapping[str, str]) -> Mapping[str, str]:
    """A Prometheus sample's labels (an SDK instrument's on the agent's own ``/metrics``): ``labels`` itself when
    nothing in it is secret, else a scrubbed copy (a secret-named label's value ``[REDACTED]``)."""
    _fresh()
    return scrub_attributes(labels) or labels


def scrub_resource(resource: Resource) -> Resource:
    """``resource``, or a scrubbed copy (cached per resource object)."""
    _fresh()
    hit = _resource_cache.get(id(resource))
    if hit is not None and hit[0] is resource:
        return hit[1]
    attrs = scrub_attributes(resource.attributes)
    out = resource if attrs is resource.attributes else Resource(dict(attrs or {}), resource.schema_url)
    if len(_resource_cache) >= 64:
        _resource_cache.clear()
    _resource_cache[id(resource)] = (resource, out)
    return out


def scrub_scope(scope: InstrumentationScope | None) -> InstrumentationScope | None:
    """``scope`` (a tracer's, meter's or logger's: ``get_tracer("broker", attributes={...})``), or a copy with its
    attributes scrubbed (cached per scope object). The fast encoder scrubs them as it encodes (``otlp_encode``);
    the reference one, which takes over with the fast paths off (``fastpath``), sent them as they were."""
    if scope is None or not scope.attributes:
        return scope
    hit = _scope_cache.get(id(scope))
    if hit is not None and hit[0] is scope:
        return hit[1]
    attrs = scrub_attributes(scope.attributes)
    out = (
        scope
        if attrs is scope.attributes
        else InstrumentationScope(scope.name, scope.version, scope.schema_url, dict(attrs or {}))
    )
    if len(_scope_cache) >= 64:
        _scope_cache.clear()
    _scope_cache[id(scope)] = (scope, out)
    return out


def _span(sp: ReadableSpan) -> ReadableSpan:
    ctx, parent, name, kind, start, end, attributes, events, links, status, resource, scope = readable_span_fields(sp)
    new_name = scrub_text(name) if name else name
    new_attrs = scrub_attributes(attributes)
    new_events = _events(events)
    new_links = _links(links)
    new_status = status
    if status is not None and status.description:
        desc = scrub_text(status.description)
        if desc is not status.description:
            new_status = Status(status.status_code, desc)
    new_resource = scrub_resource(resource) if resource is not None else resource
    new_scope = scrub_scope(scope)
    if (
        new_name is name
        and new_attrs is attributes
        and new_events is events
        and new_links is links
        and new_status is status
        and new_resource is resource
        and new_scope is scope
    ):
        return sp
    return ReadableSpan(
        name=new_name,
        context=ctx,
        parent=parent,
        resource=new_resource,
        attributes=new_attrs,
        events=new_events,
        links=new_links,
        kind=kind,
        status=new_status,
        start_time=start,
        end_time=end,
        instrumentation_scope=new_scope,
    )


def _events(events: Sequence[Event]) -> Sequence[Event]:
    if not events:
        return events
    out = []
    changed = False
    for e in events:
        name = scrub_text(e.name) if e.name else e.name
        attrs = scrub_attributes(e.attributes)
        if name is e.name and attrs is e.attributes:
            out.append(e)
        else:
            changed = True
            out.append(Event(name, attrs, e.timestamp))
    return tuple(out) if changed else events


def _links(links: Sequence[Link]) -> Sequence[Link]:
    if not links:
        return links
    out = []
    changed = False
    for link in links:
        attrs = scrub_attributes(link.attributes)
        if attrs is link.attributes:
            out.append(link)
        else:
            changed = True
            out.append(Link(link.context, attrs))
    return tuple(out) if changed else links


def scrub_spans(spans: Sequence[Any]) -> Sequence[Any]:
    """``spans`` with every ``ReadableSpan`` scrubbed; the same sequence when nothing changed. Pre-encoded
    items (``otlp_encode.Encoded``) were scrubbed when they were encoded and pass through."""
    _fresh()
    out: list[Any] | None = None
    for i, sp in enumerate(spans):
        if not isinstance(sp, ReadableSpan):
            continue
        new = _span(sp)
        if new is not sp:
            if out is None:
                out = list(spans)
            out[i] = new
    return spans if out is None else out


def scrub_logs(batch: Sequence[Any]) -> Sequence[Any]:
    """``batch`` (SDK ``ReadableLogRecord`` s) with bodies (text, dict, list), attributes and resources scrubbed;
    the same sequence when nothing changed. The log pipeline's records were scrubbed on its worker already; this is
    for the exporters without the fast encoder (OTLP/HTTP) and records emitted through the OTel logs API."""
    _fresh()
    red = default_redactor()
    out: list[Any] | None = None
    for i, readable in enumerate(batch):
        rec = getattr(readable, "log_record", None)
        if rec is None:
            continue
        body = rec.body
        new_body = red.body(body)
        new_attrs = scrub_attributes(rec.attributes)
        res = readable.resource
        new_res = scrub_resource(res) if res is not None else res
        event_name = getattr(rec, "event_name", None)
        new_event_name = scrub_text(event_name) if event_name else event_name
        scope = getattr(readable, "instrumentation_scope", None)
        new_scope = scrub_scope(scope)
        if (
            new_body is body
            and new_attrs is rec.attributes
            and new_res is res
            and new_event_name is event_name
            and new_scope is scope
        ):
            continue
        new_rec = copy.copy(rec)
        new_rec.body = new_body
        new_rec.attributes = new_attrs
        if new_event_name is not event_name:
            new_rec.event_name = new_event_name
        if out is None:
            out = list(batch)
        scoped = {} if new_scope is scope else {"instrumentation_scope": new_scope}
        out[i] = dataclasses.replace(readable, log_record=new_rec, resource=new_res, **scoped)
    return batch if out is None else out


def _exemplar(e: Any) -> Any:
    """``e``, or a copy with its filtered attributes scrubbed."""
    attrs = scrub_attributes(e.filtered_attributes)
    return e if attrs is e.filtered_attributes else dataclasses.replace(e, filtered_attributes=attrs)


def _points(points: Sequence[Any]) -> Sequence[Any]:
    out: list[Any] | None = None
    for i, p in enumerate(points):
        attrs = scrub_attributes(p.attributes)
        exemplars = p.exemplars
        new_ex = [_exemplar(e) for e in exemplars]
        if attrs is p.attributes and all(a is b for a, b in zip(new_ex, exemplars, strict=True)):
            continue
        if out is None:
            out = list(points)
        out[i] = dataclasses.replace(p, attributes=attrs, exemplars=new_ex)
    return points if out is None else out


def scrub_metrics(data: Any) -> Any:
    """An SDK ``MetricsData`` with point and exemplar attributes, scopes and resources scrubbed, for the reference
    encoder (the fast one, ``otlp_encode.encode_metrics``, scrubs as it encodes); ``data`` when nothing changed.
    The registry masks its own series' attributes when they are bound; this covers the SDK's instruments."""
    _fresh()
    changed = False
    resource_metrics = []
    for rm in data.resource_metrics:
        scope_metrics = []
        for sm in rm.scope_metrics:
            metrics = []
            for m in sm.metrics:
                points = _points(m.data.data_points)
                if points is not m.data.data_points:
                    changed = True
                    m = dataclasses.replace(m, data=dataclasses.replace(m.data, data_points=points))
                metrics.append(m)
            scope = scrub_scope(sm.scope)
            changed = changed or scope is not sm.scope
            scope_metrics.append(dataclasses.replace(sm, scope=scope, metrics=metrics))
        res = scrub_resource(rm.resource)
        changed = changed or res is not rm.resource
        resource_metrics.append(dataclasses.replace(rm, resource=res, scope_metrics=scope_metrics))
    return dataclasses.replace(data, resource_metrics=resource_metrics) if changed else data
