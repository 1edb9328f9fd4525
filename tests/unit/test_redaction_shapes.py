"""Secrets known by their shape (an Alpaca key id with no key word near it) and websocket auth messages are masked,
and nothing the demo service logs or puts on its spans is: its every log line and attribute value, through the
agent's rules and the collector's (translated to RE2, read here as Python reads them: tests/unit/test_secrets_keys.py
has the texts, tests/integration/test_redaction_values.py sends them through the real collector)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from starlette.testclient import TestClient

from tests.unit.test_secrets_keys import collector_text
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
