"""The log worker's output for a fixed input, byte for byte: the JSON line and the OTLP log record entry.

Speed work on the worker (``RecordBuilder.build``, ``dumps``, ``otel_attributes``, ``OtlpSink._encoded``) must not
change a byte of what it writes; ``data/worker_output.txt`` holds what the code wrote before such work (made by
``UPDATE_WORKER_OUTPUT=1``, only for a change of output that is meant)."""

from __future__ import annotations

import logging
import os
import types
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, InMemoryLogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from tradeobs_agent._text import right_sized
from tradeobs_agent.logs import _sinks, links
from tradeobs_agent.logs._capture import PRINTED, Captured
from tradeobs_agent.logs._format import RecordBuilder, dumps
from tradeobs_agent.logs._sinks import OtlpSink, otel_attributes
from tradeobs_agent.logs.redact import Redactor
from tradeobs_agent.metrics import Registry

GOLDEN = Path(__file__).parent / "data" / "worker_output.txt"
T0 = 1_765_000_000_123_456_789
OBSERVED = 1_765_000_001_000_000_001


class _Thread:
    name = "MainThread"


def _ctx(trace_id: int, span_id: int, sampled: bool = True) -> Any:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else 0)
    return trace.set_span_in_context(NonRecordingSpan(SpanContext(trace_id, span_id, False, flags)))


def _entries() -> list[Captured]:
    """The shapes the demo and services log: an order's lines with correlation ids, a span current, Decimal and
    mapping arguments, every kind of extra value, a secret, a format error, an odd level, a long message."""
    th = _Thread()
    ctx = _ctx(0x0123456789ABCDEF0123456789ABCDEF, 0x1122334455667788)
    unsampled = _ctx(0xFEDCBA9876543210FEDCBA9876543210, 0x8877665544332211, sampled=False)
    extra_all: dict[str, Any] = {
        "symbol": "SYM08",
        "qty": 25,
        "px": 107.98841234,
        "ok": True,
        "none": None,
        "tags": ["a", "b", 3],
        "obj": {"k": 1, "n": [1.5, None]},
        "big": 2**70,
        "password": "hunter2",
        "note": "token=abcdef0123456789abcdef0123456789",
        "stream": "audit",
        "timestamp": "not the record's",
    }
    return [
        Captured(
            T0,
            logging.INFO,
            "tradeobs.execution",
            "order %s filled %s %s @ %.4f",
            ("demo-2", 25.0, "SYM08", 107.98841234),
            {"symbol": "SYM08", "side": "buy"},
            None,
            ctx,
            {"order_id": "demo-2", "symbol": "SYM08"},
            1,
            th,
            None,
        ),
        Captured(
            T0 + 1_000,
            logging.INFO,
            "tradeobs.strategy",
            "signal %s %s %s @ %.2f",
            ("buy", 50.0, "SYM03", 103.25),
            {"symbol": "SYM03"},
            None,
            None,
            {"order_id": "demo-3"},
            1,
            th,
            None,
        ),
        Captured(
            T0 + 2_000_000_000,
            logging.WARNING,
            "app.risk",
            "limit %s at %s",
            ("gross", Decimal("0.95")),
            None,
            None,
            unsampled,
            None,
            0,
            None,
            None,
        ),
        Captured(
            T0 + 3_000,
            logging.ERROR,
            "app",
            "%(user)s used %(password)s",
            ({"user": "u1", "password": "p"},),
            extra_all,
            None,
            ctx,
            None,
            2,
            th,
            None,
        ),
        Captured(T0 + 4_000, logging.DEBUG, "app.x", "bad %d", ("nan-int",), None, None, None, None, 0, None, None),
        Captured(
            T0 + 5_000, 5, "app", "odd level", None, {f"k{i}": i for i in range(70)}, None, None, None, 0, None, None
        ),
        Captured(
            T0 + 6_000,
            logging.CRITICAL,
            "uvicorn.error",
            "é" * 300 + " Bearer abc.def.ghi",
            None,
            PRINTED,
            None,
            None,
            None,
            0,
            None,
            None,
        ),
        Captured(
            T0 + 7_000,
            logging.INFO,
            "tradeobs.logs",
            b"bytes \xff message",
            None,
            None,
            None,
            None,
            {"venue": "paper", "order_id": 12},
            0,
            None,
            None,
        ),
    ]


def _output(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(_sinks, "time", types.SimpleNamespace(time_ns=lambda: OBSERVED))
    order_sc = SpanContext(
        0xA0A0A0A0B0B0B0B0C0C0C0C0D0D0D0D0, 0x0102030405060708, False, TraceFlags(TraceFlags.SAMPLED)
    )
    # the trading layer's resolver puts an order's lines on its trace: here "demo-3" names a fixed one
    monkeypatch.setattr(links, "resolvers", (("order_id", lambda v, cur: order_sc if v == "demo-3" else None),))
    provider = LoggerProvider(resource=Resource.create({"service.name": "svc"}), shutdown_on_exit=False)
    provider.add_log_record_processor(
        BatchLogRecordProcessor(InMemoryLogRecordExporter(), schedule_delay_millis=60_000)
    )
    sink = OtlpSink(provider, Registry().counter("errors").bind())
    builder = RecordBuilder(Redactor(), {"service.name": "svc", "service.instance.id": "i-1"})
    out = []
    try:
        for _ in range(2):  # twice: the second pass goes through the builder's remembered texts and time prefix
            for e in _entries():
                b = builder.build(e)
                attrs = otel_attributes(b.fields)
                out.append(right_sized(dumps(b.fields)).decode())
                out.append(sink._encoded(b, attrs).data.hex())
    finally:
        provider.shutdown()
    return "\n".join(out) + "\n"


def test_the_worker_writes_the_same_bytes_for_a_fixed_input(monkeypatch: pytest.MonkeyPatch) -> None:
    got = _output(monkeypatch)
    if os.environ.get("UPDATE_WORKER_OUTPUT") == "1":
        GOLDEN.write_text(got)
    want = GOLDEN.read_text()
    assert got.splitlines() == want.splitlines()
    assert got == want
