"""Which collector answers are refusals for good, and of which kind, at the edges the real collector does not answer
(tests/integration/test_collector_refusals.py has 401, 404, 400, UNAUTHENTICATED, UNIMPLEMENTED, INVALID_ARGUMENT).

The agent's span exporter (the SDK's OTLP exporter, wrapped) against a real server on loopback: an HTTP server that
answers every POST with one status, and the OTLP/gRPC fault injector (``tests/faults/otlp_refuser.py``) answering one
code. ``unauthorized`` is kept in the retry buffer (a token can be fixed on the collector's side), ``unimplemented``
and ``rejected`` are dropped at once and counted, and what the OTLP specification leaves open (HTTP 500, gRPC
``INTERNAL``) stays an outage: kept, nothing dropped.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

from tests._util import ended_spans, wait_for
from tests.faults.otlp_refuser import RefusingOtlpServer
from tradeobs_agent._internal.exporters import CountingSpanExporter, Retry
from tradeobs_agent.metrics import Registry


@contextmanager
def _answering(status: int) -> Iterator[str]:
    """An HTTP server on loopback answering every POST with ``status``; its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"refused by the test server"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    finally:
        server.shutdown()
        server.server_close()


def _outcome(inner: object, target: str, kept: bool) -> dict[str, float]:
    """Export 2 spans through the agent's wrapper; once the first attempt failed: what was dropped, by reason, and
    what the retry buffer keeps (``kept``)."""
    reg = Registry()
    exp = CountingSpanExporter(inner, "traces", target, reg.self_metrics, Retry(1000, 300.0))
    failed = reg.self_metrics.exports_failed.bind(signal="traces", exporter=type(inner).__name__)
    try:
        exp.export(ended_spans(2))
        wait_for(lambda: failed.value >= 1, "the refused export")
        if not kept:
            assert exp.force_flush(30_000)
        out = {
            r: v
            for r in ("unauthorized", "unimplemented", "rejected", "expired", "export_failed")
            if (v := reg.self_metrics.items_dropped.bind(signal="traces", reason=r).value)
        }
        out["kept"] = len(exp.delivery or ())
    finally:
        exp.deadline = 0.0
        exp.shutdown()
    return out


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (403, {"kept": 2}),
        (405, {"unimplemented": 2, "kept": 0}),
        (501, {"unimplemented": 2, "kept": 0}),
        (409, {"rejected": 2, "kept": 0}),
        (415, {"rejected": 2, "kept": 0}),
        (500, {"kept": 2}),
    ],
)
def test_an_otlp_http_answer_is_kept_or_dropped_by_its_kind(status: int, expected: dict[str, float]) -> None:
    with _answering(status) as url:
        got = _outcome(HttpSpanExporter(endpoint=url, timeout=5), url, kept="kept" in expected and expected["kept"] > 0)
    assert got == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.PERMISSION_DENIED, {"kept": 2}),
        (grpc.StatusCode.FAILED_PRECONDITION, {"rejected": 2, "kept": 0}),
        (grpc.StatusCode.NOT_FOUND, {"rejected": 2, "kept": 0}),
        (grpc.StatusCode.INTERNAL, {"kept": 2}),
        (grpc.StatusCode.UNKNOWN, {"kept": 2}),
    ],
)
def test_an_otlp_grpc_answer_is_kept_or_dropped_by_its_kind(code: grpc.StatusCode, expected: dict[str, float]) -> None:
    with RefusingOtlpServer() as srv:
        srv.mode = code
        inner = GrpcSpanExporter(endpoint=srv.endpoint, insecure=True, timeout=5)
        got = _outcome(inner, srv.endpoint, kept=expected["kept"] > 0)
    assert got == expected
