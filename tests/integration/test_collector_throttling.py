"""What otelcol-tradeobs answers when its memory_limiter refuses: no throttling hint (docs/collector.md says so).

The agent honours OTLP throttling hints (HTTP ``Retry-After``, gRPC ``RetryInfo``; tests/faults/test_throttle_hints.py)
but the collector this project ships sends none when it is over its memory limit: OTLP/HTTP ``503`` without
``Retry-After``, OTLP/gRPC ``UNAVAILABLE`` without status details. Against it the agent's back-off applies. A
collector release that starts sending a hint fails this test: then docs/collector.md and docs/agent.md change.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

from tests._util import dead_endpoint

from .procs import start_collector, wait_for

pytestmark = pytest.mark.integration

_REQUEST = trace_service_pb2.ExportTraceServiceRequest(
    resource_spans=[
        trace_pb2.ResourceSpans(
            scope_spans=[trace_pb2.ScopeSpans(spans=[trace_pb2.Span(trace_id=b"t" * 16, span_id=b"s" * 8, name="x")])]
        )
    ]
)


def _http_export(url: str) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(
        f"{url}/v1/traces", data=_REQUEST.SerializeToString(), headers={"Content-Type": "application/x-protobuf"}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_the_memory_limiter_refuses_without_a_throttling_hint(tmp_path: Path) -> None:
    # 4 MiB: the collector is over its limit from the start, so its memory_limiter refuses every export.
    limits = {"TRADEOBS_MEMORY_LIMIT_MIB": "4", "TRADEOBS_MEMORY_SPIKE_LIMIT_MIB": "1"}
    with start_collector(tmp_path, dead_endpoint(), extra_env=limits) as col:
        status, headers, body = wait_for(
            lambda: (r := _http_export(col.otlp_http_endpoint))[0] != 200 and r, "the memory_limiter to refuse"
        )
        with grpc.insecure_channel(col.otlp_grpc_endpoint) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                stub.Export(_REQUEST, timeout=5)
        error: Any = refused.value
    answer = status_pb2.Status.FromString(body)
    assert status == 503 and answer.code == grpc.StatusCode.UNAVAILABLE.value[0], (status, answer)
    assert "high memory usage" in answer.message and not answer.details
    assert "retry-after" not in {k.lower() for k in headers}, headers
    assert error.code() == grpc.StatusCode.UNAVAILABLE and "high memory usage" in error.details()
    trailers = dict(error.trailing_metadata() or ())
    assert "grpc-status-details-bin" not in trailers and "google.rpc.retryinfo-bin" not in trailers, trailers
