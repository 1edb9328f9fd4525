"""A tiny OTLP/gRPC server that refuses exports with a chosen status, then accepts and counts: a fault injector.

>>> with RefusingOtlpServer() as srv:                       # doctest: +SKIP
...     srv.mode = grpc.StatusCode.UNAVAILABLE              # every Export() fails with that code
...     srv.mode = None                                     # accept: count the spans, log records, metric points

Our collector answers ``UNAVAILABLE`` when it cannot take data (a pipeline shutting down) and
``RESOURCE_EXHAUSTED`` when its memory limiter refuses; making it do either on demand, for long enough, is not
possible from outside. This server stands in for it: the real OTLP/gRPC services (the ``opentelemetry-proto``
stubs) on a free loopback port, served by grpcio, answering every export with ``mode`` while it is set, and,
when ``mode`` is ``None``, accepting it like a collector and keeping what arrived (span ids of the trading
layer, log record bodies, metric point counts) for the accounting.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests._util import free_port

from .harness import TRADING_SCOPE


class RefusingOtlpServer:
    """OTLP/gRPC traces, metrics and logs services on 127.0.0.1; see the module docstring."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.mode: grpc.StatusCode | None = grpc.StatusCode.UNAVAILABLE
        self.refused: Counter[str] = Counter()  # (signal, code) -> export calls refused
        self.span_ids: set[str] = set()
        self.log_bodies: Counter[str] = Counter()
        self.metric_points = 0
        self.services: set[str] = set()
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(self), self._server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_Logs(self), self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(self), self._server)
        self._server.add_insecure_port(f"127.0.0.1:{self.port}")
        self._server.start()

    def refuse(self, signal: str, context: Any) -> bool:
        """Abort the call with ``mode`` (and count it); False when accepting."""
        mode = self.mode
        if mode is None:
            return False
        with self._lock:
            self.refused[f"{signal} {mode.name}"] += 1
        context.abort(mode, f"fault injector: {mode.name}")
        return True  # not reached: abort raises

    def stop(self) -> None:
        self._server.stop(grace=None).wait(10)

    def __enter__(self) -> RefusingOtlpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _service(resource: Any) -> str:
    for kv in resource.attributes:
        if kv.key == "service.name":
            return str(kv.value.string_value)
    return ""


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, srv: RefusingOtlpServer) -> None:
        self.srv = srv

    def Export(self, request: Any, context: Any) -> Any:
        self.srv.refuse("traces", context)
        with self.srv._lock:
            for rs in request.resource_spans:
                self.srv.services.add(_service(rs.resource))
                for ss in rs.scope_spans:
                    if ss.scope.name == TRADING_SCOPE:
                        self.srv.span_ids.update(s.span_id.hex() for s in ss.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


class _Logs(logs_service_pb2_grpc.LogsServiceServicer):  # type: ignore[misc]
    def __init__(self, srv: RefusingOtlpServer) -> None:
        self.srv = srv

    def Export(self, request: Any, context: Any) -> Any:
        self.srv.refuse("logs", context)
        with self.srv._lock:
            for rl in request.resource_logs:
                for sl in rl.scope_logs:
                    for rec in sl.log_records:
                        self.srv.log_bodies[rec.body.string_value] += 1
        return logs_service_pb2.ExportLogsServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
    def __init__(self, srv: RefusingOtlpServer) -> None:
        self.srv = srv

    def Export(self, request: Any, context: Any) -> Any:
        self.srv.refuse("metrics", context)
        n = 0
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    n += len(getattr(m, kind).data_points) if kind else 0
        with self.srv._lock:
            self.srv.metric_points += n
        return metrics_service_pb2.ExportMetricsServiceResponse()
