"""A tiny OTLP server that refuses exports with a chosen status, then accepts and counts: a fault injector.

>>> with RefusingOtlpServer() as srv:                       # doctest: +SKIP
...     srv.mode = grpc.StatusCode.UNAVAILABLE              # every Export() fails with that code
...     srv.mode = None                                     # accept: count the spans, log records, metric points
...     srv.partial = (2, "too many attributes")            # accept, but answer OTLP partial success: the last 2
...                                                         # items of each export rejected (not kept, counted)
...     srv.plan = [None, grpc.StatusCode.UNAVAILABLE]      # the next calls' modes, one each, before ``mode``
>>> RefusingOtlpServer("http/protobuf")                     # doctest: +SKIP
... # the same over OTLP/HTTP (protobuf) on /v1/traces, /v1/logs, /v1/metrics: a refusal is HTTP 503 (UNAVAILABLE),
... # 429 (RESOURCE_EXHAUSTED) or 400 (any other code)

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
    """OTLP traces, metrics and logs services on 127.0.0.1 (``grpc`` or ``http/protobuf``); see the module docstring."""

    def __init__(self, protocol: str = "grpc") -> None:
        self.protocol = protocol
        self.mode: grpc.StatusCode | None = grpc.StatusCode.UNAVAILABLE
        self.partial: tuple[int, str] | None = None  # (items rejected per export, error_message)
        self.plan: list[grpc.StatusCode | None] = []  # the modes of the next Export calls, taken one a call, then mode
        self.refused: Counter[str] = Counter()  # (signal, code) -> export calls refused
        self.rejected: Counter[str] = Counter()  # signal -> items answered as rejected (partial success)
        self.accepted: Counter[str] = Counter()  # signal -> items taken (spans, log records, metric points)
        self.span_ids: set[str] = set()
        self.log_bodies: Counter[str] = Counter()
        self.metric_points = 0
        self.services: set[str] = set()
        self._lock = threading.Lock()
        self._server: Any = None
        self._http: Any = None
        self._traces, self._logs, self._metrics = _Traces(self), _Logs(self), _Metrics(self)
        if protocol == "grpc":
            self.port = free_port()
            self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
            trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self._traces, self._server)
            logs_service_pb2_grpc.add_LogsServiceServicer_to_server(self._logs, self._server)
            metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self._metrics, self._server)
            self._server.add_insecure_port(f"127.0.0.1:{self.port}")
            self._server.start()
        else:
            self._http = _http_twin(self)
            self.port = self._http.server_address[1]
            threading.Thread(target=self._http.serve_forever, name="refusing-otlp-http", daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def rejects(self, signal: str, n: int) -> int:
        """How many of an accepted export's ``n`` items are answered as rejected (the last ones; counted)."""
        partial = self.partial
        k = min(n, partial[0]) if partial is not None else 0
        if k:
            with self._lock:
                self.rejected[signal] += k
        with self._lock:
            self.accepted[signal] += n - k
        return k

    def answer(self, response: Any, rejected: int) -> Any:
        """``response`` with its ``partial_success`` set while :attr:`partial` is (the rejected count and message)."""
        partial = self.partial
        if partial is not None:
            ps = response.partial_success
            field = next(f.name for f in ps.DESCRIPTOR.fields if f.name.startswith("rejected_"))
            setattr(ps, field, rejected)
            ps.error_message = partial[1]
        return response

    def refuse(self, signal: str, context: Any) -> bool:
        """Abort the call with ``mode`` (and count it); False when accepting."""
        with self._lock:
            mode = self.plan.pop(0) if self.plan else self.mode
        if mode is None:
            return False
        with self._lock:
            self.refused[f"{signal} {mode.name}"] += 1
        context.abort(mode, f"fault injector: {mode.name}")
        return True  # not reached: abort raises

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait(10)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()

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
        spans = [(ss.scope.name, s) for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
        rejected = self.srv.rejects("traces", len(spans))
        with self.srv._lock:
            for rs in request.resource_spans:
                self.srv.services.add(_service(rs.resource))
            for scope, span in spans[: len(spans) - rejected]:
                if scope == TRADING_SCOPE:
                    self.srv.span_ids.add(span.span_id.hex())
        return self.srv.answer(trace_service_pb2.ExportTraceServiceResponse(), rejected)


class _Logs(logs_service_pb2_grpc.LogsServiceServicer):  # type: ignore[misc]
    def __init__(self, srv: RefusingOtlpServer) -> None:
        self.srv = srv

    def Export(self, request: Any, context: Any) -> Any:
        self.srv.refuse("logs", context)
        records = [rec for rl in request.resource_logs for sl in rl.scope_logs for rec in sl.log_records]
        rejected = self.srv.rejects("logs", len(records))
        with self.srv._lock:
            for rec in records[: len(records) - rejected]:
                self.srv.log_bodies[rec.body.string_value] += 1
        return self.srv.answer(logs_service_pb2.ExportLogsServiceResponse(), rejected)


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
        rejected = self.srv.rejects("metrics", n)
        with self.srv._lock:
            self.srv.metric_points += n - rejected
        return self.srv.answer(metrics_service_pb2.ExportMetricsServiceResponse(), rejected)


class _Refused(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code


class _HttpContext:
    """What the servicers use of a gRPC context, for the HTTP twin: ``abort`` raises :class:`_Refused`."""

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise _Refused(code, details)


_HTTP_STATUS = {grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.RESOURCE_EXHAUSTED: 429}


def _http_twin(srv: RefusingOtlpServer) -> Any:
    """The same services over OTLP/HTTP (protobuf bodies, gzip taken), on a free loopback port."""
    import gzip
    import http.server

    routes = {
        "/v1/traces": (srv._traces, trace_service_pb2.ExportTraceServiceRequest),
        "/v1/logs": (srv._logs, logs_service_pb2.ExportLogsServiceRequest),
        "/v1/metrics": (srv._metrics, metrics_service_pb2.ExportMetricsServiceRequest),
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            route = routes.get(self.path)
            if route is None:
                return self._reply(404, b"not found", "text/plain")
            service, request_class = route
            request = request_class()
            request.ParseFromString(body)
            try:
                response = service.Export(request, _HttpContext())
            except _Refused as refused:
                return self._reply(_HTTP_STATUS.get(refused.code, 400), str(refused).encode(), "text/plain")
            self._reply(200, response.SerializeToString(), "application/x-protobuf")

        def _reply(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)


class ThrottlingOtlpServer:
    """An OTLP server that refuses the first ``refusals`` exports with a throttling hint, then accepts (the span
    names of trace exports are kept; metrics exports are taken and not read).

    ``protocol`` ``grpc``: grpcio's server answers ``code`` (``RESOURCE_EXHAUSTED`` or ``UNAVAILABLE``) with a
    ``google.rpc.Status`` whose details hold a ``google.rpc.RetryInfo`` of ``delay`` seconds, in the
    ``grpc-status-details-bin`` trailer, as a collector does (grpc-go's ``status.WithDetails``; built by hand:
    grpcio-status is not installed). ``http/protobuf``: an HTTP server answers ``status`` (429 or 503) with
    ``Retry-After: <retry_after>`` (seconds, or an HTTP date). ``arrivals`` holds ``time.monotonic()`` and
    ``time.time()`` of every export received, and whether it was refused; ``accepted`` the span names taken.
    """

    def __init__(
        self,
        protocol: str,
        refusals: int,
        delay: float = 2.0,
        code: grpc.StatusCode = grpc.StatusCode.RESOURCE_EXHAUSTED,
        status: int = 429,
        retry_after: str | None = None,
    ) -> None:
        self.protocol = protocol
        self.refusals = refusals
        self.delay = delay
        self.code = code
        self.status = status
        self.retry_after = retry_after if retry_after is not None else f"{delay:g}"
        self.arrivals: list[tuple[float, float, bool]] = []
        self.accepted: list[str] = []
        self._lock = threading.Lock()
        self._grpc: Any = None
        self._http: Any = None
        if protocol == "grpc":
            self.port = free_port()
            self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
            trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_ThrottledTraces(self), self._grpc)
            metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_ThrottledMetrics(self), self._grpc)
            self._grpc.add_insecure_port(f"127.0.0.1:{self.port}")
            self._grpc.start()
        else:
            import http.server

            srv = self

            class Handler(http.server.BaseHTTPRequestHandler):
                def do_POST(self) -> None:
                    body = self.rfile.read(int(self.headers.get("content-length", "0")))
                    if srv._arrived():
                        self.send_response(srv.status)
                        self.send_header("Retry-After", srv.retry_after)
                        self.send_header("content-length", "0")
                        self.end_headers()
                        return
                    if self.path.endswith("/v1/traces"):
                        request = trace_service_pb2.ExportTraceServiceRequest()
                        request.ParseFromString(body)
                        srv._take(request)
                    reply = b""  # an empty Export*ServiceResponse
                    self.send_response(200)
                    self.send_header("content-type", "application/x-protobuf")
                    self.send_header("content-length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)

                def log_message(self, *args: Any) -> None:
                    pass

            self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            self.port = self._http.server_address[1]
            threading.Thread(target=self._http.serve_forever, name="throttling-otlp-http", daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def _arrived(self) -> bool:
        """Note an export's arrival; True when it is to be refused."""
        import time

        with self._lock:
            refuse = sum(1 for a in self.arrivals if a[2]) < self.refusals
            self.arrivals.append((time.monotonic(), time.time(), refuse))
        return refuse

    def _take(self, request: Any) -> None:
        with self._lock:
            for rs in request.resource_spans:
                for ss in rs.scope_spans:
                    self.accepted.extend(s.name for s in ss.spans)

    def throttle(self, context: Any) -> None:
        """A gRPC export arrived: while refusing, abort it with ``code`` and the ``RetryInfo`` in its status details."""
        if self._arrived():
            context.set_trailing_metadata((("grpc-status-details-bin", self.status_details()),))
            context.abort(self.code, "throttled by the test server")

    def status_details(self) -> bytes:
        """A ``google.rpc.Status`` of ``code`` with a ``RetryInfo`` of ``delay`` in its details, serialized."""
        from google.rpc import error_details_pb2, status_pb2

        info = error_details_pb2.RetryInfo()
        info.retry_delay.seconds = int(self.delay)
        info.retry_delay.nanos = int((self.delay - int(self.delay)) * 1e9)
        status = status_pb2.Status(code=self.code.value[0], message="throttled by the test server")
        status.details.add().Pack(info)
        return status.SerializeToString()

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=None).wait(10)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()

    def __enter__(self) -> ThrottlingOtlpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _ThrottledTraces(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    def __init__(self, srv: ThrottlingOtlpServer) -> None:
        self.srv = srv

    def Export(self, request: Any, context: Any) -> Any:
        self.srv.throttle(context)
        self.srv._take(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _ThrottledMetrics(metrics_service_pb2_grpc.MetricsServiceServicer):  # type: ignore[misc]
    def __init__(self, srv: ThrottlingOtlpServer) -> None:
        self.srv = srv

    def Export(self, request: Any, context: Any) -> Any:
        self.srv.throttle(context)
        return metrics_service_pb2.ExportMetricsServiceResponse()
