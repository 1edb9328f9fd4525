"""Secrets known by their shape (an Alpaca key id with no key word near it) and websocket auth messages are masked,
and nothing the demo service logs or puts on its spans is: its every log line and attribute value, through the
agent's rules and the collector's (translated to RE2, read here as Python reads them: tests/unit/test_secrets_keys.py
has the texts, tests/integration/test_redaction_values.py sends them through the real collector)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from starlette.testclient import TestClient

from tests.unit.test_secrets_keys import collector_text
from tradeobs_agent._internal.otlp_encode import encode_spans
from tradeobs_agent._internal.scrub import scrub_spans
from tradeobs_agent.demo import DemoConfig, create_app
from tradeobs_agent.redaction import MASK, Redactor
from tradeobs_agent.testing import capture


def test_an_auth_message_logged_as_a_dict_has_its_key_masked_and_another_dict_keeps_its_key() -> None:
    r = Redactor(known_values=False)
    got = r.attributes(
        {
            "alpaca": {"action": "auth", "key": "my-paper-key", "secret": "s3cr3t"},
            "polygon": {"action": "auth", "params": "polyKEY12345abc"},
            "coinbase": {"type": "subscribe", "key": "cbkey", "passphrase": "pp", "channels": ["full"]},
            "cache": {"key": "AAPL", "value": 187.5},
            "subscribe": {"action": "subscribe", "key": "bars"},
        }
    )
    assert got == {
        "alpaca": {"action": "auth", "key": MASK, "secret": MASK},
        "polygon": {"action": "auth", "params": MASK},
        "coinbase": {"type": "subscribe", "key": MASK, "passphrase": MASK, "channels": ["full"]},
        "cache": {"key": "AAPL", "value": 187.5},
        "subscribe": {"action": "subscribe", "key": "bars"},
    }
    # a bare key id of Alpaca's shape, anywhere, and the auth message as text (the agent's and the collector's rules)
    for text, secret in [
        ("API key PKABCDEF1234567890XY rejected", "PKABCDEF1234567890XY"),
        (str({"action": "auth", "key": "my-paper-key", "secret": "s3cr3t"}), "my-paper-key"),
    ]:
        assert secret not in r.text(text) and r.text(text) == collector_text(text)


def _strings(v: Any) -> Iterator[str]:
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):
        for x in v.values():
            yield from _strings(x)
    elif isinstance(v, list | tuple):
        for x in v:
            yield from _strings(x)


def test_nothing_the_demo_logs_or_puts_on_its_spans_is_masked() -> None:
    """The false-positive check: order ids, symbols, trace and span ids, UUIDs, prices, the demo's messages."""
    with capture() as cap:
        app = create_app(DemoConfig(symbols=6, tick_hz=50, orders_hz=40, seed=11))
        with TestClient(app) as client:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (cap.metric_value("trading.orders.filled") or 0) < 20:
                time.sleep(0.1)
            client.post("/api/orders", json={"symbol": "AAPL", "side": "buy", "qty": 10})
        spans, logs = cap.spans(), cap.logs()
    values: list[str] = []
    for s in spans:
        values += [s.name, format(s.context.trace_id, "032x"), format(s.context.span_id, "016x")]
        values += _strings(dict(s.attributes or {}))
        for ev in s.events:
            values += [ev.name, *_strings(dict(ev.attributes or {}))]
        for link in s.links:
            values += [format(link.context.trace_id, "032x"), *_strings(dict(link.attributes or {}))]
    for rec in logs:
        values += [*_strings(rec.log_record.body), *_strings(dict(rec.log_record.attributes or {}))]
    assert len(spans) >= 20 and len(logs) >= 20 and len(values) >= 500, (len(spans), len(logs), len(values))
    r = Redactor(known_values=False)
    changed = sorted({v for v in values if MASK in v or r.text(v) != v or collector_text(v) != v})
    assert changed == []


def test_a_flattened_auth_message_has_its_key_masked_on_every_path() -> None:
    """The same auth message as separate attributes (a span cannot carry a map: ``ws.message.key`` beside
    ``ws.message.secret``) kept its key id on the agent's spans, span events and log records; only the secret-named
    entry was masked. A ``key`` in a map without a secret entry or an auth action under its prefix stays."""
    flat = {"ws.message.action": "auth", "ws.message.key": "my-paper-key-id-0001", "ws.message.secret": "s3cr3t-1"}
    polygon = {"ws.action": "auth", "ws.params": "polyKEY12345abcdef", "cache.key": "AAPL"}
    coinbase = {"type": "subscribe", "key": "cb-key-0002", "passphrase": "pp-123456"}
    kept = {"cache.key": "MSFT", "ws.action": "subscribe", "ws.params": "T.AAPL", "order.type": "auth"}
    secrets = ("my-paper-key-id-0001", "polyKEY12345abcdef", "cb-key-0002", "s3cr3t-1", "pp-123456")
    with capture() as cap:
        from opentelemetry import trace

        import tradeobs_agent

        tracer = trace.get_tracer("ws")
        with tracer.start_as_current_span("ws.auth", attributes={**flat, "i": 0}) as span:
            span.add_event("sent", coinbase)
        with tracer.start_as_current_span("ws.auth", attributes={**polygon, "i": 1}):
            pass
        with tracer.start_as_current_span("cache.get", attributes={**kept, "i": 2}):
            pass
        log = tradeobs_agent.get_logger("ws")
        log.info("ws send", extra=flat)
        log.info("cache", extra=kept)
        raw = [s for s in cap.spans() if s.attributes and "i" in s.attributes]
        logs = cap.logs()
    # both export paths: the SDK exporters' scrubbing and the agent's own OTLP encoder
    scrubbed = {s.attributes["i"]: (dict(s.attributes), dict(s.events[0].attributes) if s.events else None)
                for s in scrub_spans(raw)}  # fmt: skip
    encoded = {}
    for rs in ExportTraceServiceRequest.FromString(encode_spans(raw)).resource_spans:
        for ss in rs.scope_spans:
            for sp in ss.spans:
                a = {kv.key: _pb(kv.value) for kv in sp.attributes}
                ev = {kv.key: _pb(kv.value) for kv in sp.events[0].attributes} if sp.events else None
                encoded[a["i"]] = (a, ev)
    assert scrubbed == encoded == {
        0: ({"ws.message.action": "auth", "ws.message.key": MASK, "ws.message.secret": MASK, "i": 0},
            {"type": "subscribe", "key": MASK, "passphrase": MASK}),
        1: ({"ws.action": "auth", "ws.params": MASK, "cache.key": "AAPL", "i": 1}, None),
        2: ({**kept, "i": 2}, None),
    }  # fmt: skip
    attrs = [dict(r.log_record.attributes or {}) for r in logs]
    assert not [a for a in attrs if any(s in str(v) for v in a.values() for s in secrets)], attrs
    assert [a["cache.key"] for a in attrs if "cache.key" in a] == ["MSFT"]
    r = Redactor(known_values=False)
    assert r.attributes(polygon) == {"ws.action": "auth", "ws.params": MASK, "cache.key": "AAPL"}
    assert r.attributes(kept) == kept


def _pb(v: AnyValue) -> Any:
    return getattr(v, v.WhichOneof("value") or "string_value")


class _Name(str):
    pass


def test_flat_auth_fields_give_the_same_answer_once_every_name_is_known() -> None:
    """The answer for a map of names already seen (a set look-up) is the one the names gave the first time."""
    from collections import OrderedDict

    from tradeobs_agent.redaction import flat_auth_fields

    cases = [
        ({"shape.symbol": "AAPL", "shape.side": "buy", "shape.qty": 1.0}, None),
        ({"shape.action": "auth", "shape.key": "PK123", "shape.symbol": "AAPL"}, ["shape.key"]),
        ({"shape.key": "PK123", "shape.secret": "s", "shape.side": "buy"}, ["shape.key"]),
        ({"shape.key": "AAPL", "shape.symbol": "AAPL"}, None),  # a key with no secret nor auth beside it
        ({"shape.symbol": "AAPL", "shape.action": "subscribe", "shape.key": "x"}, None),
        ({_Name("shape.key"): "PK", "shape.secret": "s"}, None),  # a str subclass is not looked at, as before
        ({"shape.symbol": "AAPL", 7: "seven"}, None),
    ]
    for _ in range(2):  # first: the names learned; then: known
        for attrs, want in cases:
            assert flat_auth_fields(attrs) == want, attrs
            assert flat_auth_fields(OrderedDict(attrs)) == want, attrs  # not a dict: the loop
    # a name first seen with nothing around it, then beside a secret entry
    assert flat_auth_fields({"shape.later.key": "PK"}) is None
    assert flat_auth_fields({"shape.later.key": "PK", "shape.later.passphrase": "p"}) == ["shape.later.key"]
