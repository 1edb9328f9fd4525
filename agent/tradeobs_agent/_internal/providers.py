"""Build the three OTel providers from :class:`Settings`. One function per signal."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace import sampling as s
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from .._config_report import ConfigReport
from .._errors import internal_error, warn_once
from .._version import __version__
from ..config import OtlpTarget, Settings, otlp_for, under_pytest
from ..metrics import DEFAULT_LATENCY_BOUNDS, Registry, SelfMetrics, Snapshot
from . import bridge, otel_private
from .exporters import CountingLogExporter, CountingMetricExporter, CountingSpanExporter, Retry, reachable
from .ids import PrivateRandomIdGenerator
from .otel_private import BatchLogRecordProcessor, LoggerProvider, LogRecordExporter, SimpleLogRecordProcessor

_log = logging.getLogger("tradeobs")
SCOPE = InstrumentationScope("tradeobs", __version__)


def build_sampler(settings: Settings) -> s.Sampler:
    ratio = settings.traces_sampler_arg
    factories: dict[str, Callable[[], s.Sampler]] = {
        "always_on": lambda: s.ALWAYS_ON,
        "always_off": lambda: s.ALWAYS_OFF,
        "traceidratio": lambda: s.TraceIdRatioBased(ratio),
        "parentbased_always_on": lambda: s.ParentBased(s.ALWAYS_ON),
        "parentbased_always_off": lambda: s.ParentBased(s.ALWAYS_OFF),
        "parentbased_traceidratio": lambda: s.ParentBased(s.TraceIdRatioBased(ratio)),
    }
    return factories[settings.traces_sampler]()


# Each exporter's gRPC channel keeps its own connection (the three signals go to one collector). With gRPC's
# default, process-wide subchannel pool the channels share one connection and its reconnect back-off: while the
# collector is down, the metrics exporter's periodic attempts keep that back-off growing (towards gRPC's 120 s),
# and a span exporter that opens a fresh channel inherits it, so delivery resumed 15-20 s after a collector that
# had been down for minutes came back (measured; ~1-2 s with these options). Reconnect back-off is capped at the
# sender's own (``delivery._BACKOFF_MAX``).
GRPC_CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_reconnect_backoff_ms", 5000),
)


def quiet_grpc_core() -> None:
    """gRPC's C core logs on stderr by itself, past Python's logging and the agent's duplicate filter; grpcio prints
    its INFO lines too unless ``GRPC_VERBOSITY`` says otherwise: against a collector whose TLS certificate is not
    trusted, one ``Handshake failed ... CERTIFICATE_VERIFY_FAILED`` line per connection attempt, about 1.5 a second
    for as long as it lasts (measured: 30 lines in 20 s), while the failure is already said once and counted. Its
    errors stay (``ERROR``, gRPC's own default of old). gRPC reads the variable when it is first imported: set only
    then, and only if the environment did not choose."""
    if "grpc" not in sys.modules:
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def _otlp_exporter(settings: Settings, signal: str) -> tuple[Any, str]:
    t = otlp_for(settings, signal)
    if t.protocol == "grpc":
        quiet_grpc_core()
        from opentelemetry.exporter.otlp.proto.grpc import metric_exporter, trace_exporter

        grpc_cls: Any = {
            "traces": trace_exporter.OTLPSpanExporter,
            "metrics": metric_exporter.OTLPMetricExporter,
            "logs": otel_private.otlp_log_exporter_class("grpc"),
        }[signal]
        exporter = grpc_cls(
            endpoint=t.endpoint,
            insecure=t.insecure,
            headers=dict(t.headers),
            timeout=t.timeout,
            channel_options=GRPC_CHANNEL_OPTIONS,
        )
        return _pinned(exporter, t), t.shown
    from opentelemetry.exporter.otlp.proto.http import metric_exporter as hm
    from opentelemetry.exporter.otlp.proto.http import trace_exporter as ht

    http_cls: Any = {
        "traces": ht.OTLPSpanExporter,
        "metrics": hm.OTLPMetricExporter,
        "logs": otel_private.otlp_log_exporter_class("http/protobuf"),
    }[signal]
    return _pinned(http_cls(endpoint=t.endpoint, headers=dict(t.headers), timeout=t.timeout), t), t.shown


def _pinned(exporter: Any, t: OtlpTarget) -> Any:
    """``exporter`` sending the resolved headers only: not also the ``OTEL_EXPORTER_OTLP_*HEADERS`` the SDK reads on
    its own, which would bypass the precedence (a platform's token sent to an endpoint a service chose)."""
    if not otel_private.pin_otlp_headers(exporter, t.protocol, t.headers):
        warn_once(
            "otlp:headers_not_pinned",
            "tradeobs: this OpenTelemetry SDK's OTLP exporter could not be limited to the configured otlp_headers; "
            "it may also send OTEL_EXPORTER_OTLP_HEADERS / OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS as it reads them",
        )
    return exporter


ExportMode = Literal["on", "off", "not_configured"]


def otlp_mode(settings: Settings, report: ConfigReport) -> ExportMode:
    """Whether the agent exports over OTLP: ``on``, ``off`` (``otlp_enabled=false``), or ``not_configured``.

    ``not_configured`` is the embedded default, expected rather than an error: nothing configures OTLP (no
    endpoint, no ``otlp_enabled``, from any source) and no collector listens at the default endpoint (or
    ``trading_mode`` is ``backtest``: then none is looked for). The
    agent then works on its own (Prometheus endpoint, live stream, JSON logs, the trace file) and says so once
    (:func:`say_not_configured`).
    A configured endpoint is always used, reachable or not (failures there are real problems, counted).
    """
    if not settings.otlp_enabled:
        return "off"
    configured = any(
        report.source(name) != "default" for name in ("otlp_enabled", "otlp_endpoint", "otlp_protocol")
    ) or bool(settings.otlp_per_signal)
    if configured:
        return "on"
    if settings.trading_mode == "backtest":  # a backtest's simulated orders and P&L are no service's: not looked for
        return "not_configured"
    if under_pytest():  # a test's orders are no service's either (config._PYTEST_DEFAULTS)
        return "not_configured"
    if any(reachable(otlp_for(settings, signal).endpoint) for signal in ("traces", "metrics", "logs")):
        return "on"
    return "not_configured"


def say_not_configured(settings: Settings) -> None:
    """The embedded default, said once (info) by ``init()`` once its log pipeline runs, so it is in the system log:
    said from :func:`otlp_mode`, before any handler of the agent existed, it reached nobody."""
    if settings.trading_mode == "backtest":
        _log.info(
            "tradeobs: trading_mode=backtest: no OpenTelemetry Collector looked for, no Prometheus endpoint unless "
            "configured; traces, metrics and logs stay local (JSON logs, trace file, tradeobs_agent.testing). "
            "Set TRADEOBS_OTLP_ENDPOINT to export (under a service name of its own: its P&L and alerts are then "
            "the backtest's)."
        )
        return
    if under_pytest() and settings.trading_mode != "backtest":
        _log.info(
            "tradeobs: under pytest (tradeobs_pytest): no OpenTelemetry Collector looked for, no Prometheus "
            "endpoint, no log files, unless configured; tradeobs_agent.testing.capture() reads what the test records."
        )
        return
    _log.info(
        "tradeobs: no OpenTelemetry Collector configured and none at %s; traces, metrics and logs stay local "
        "(Prometheus endpoint, live stream, JSON logs, trace file). Set TRADEOBS_OTLP_ENDPOINT to export.",
        otlp_for(settings, "traces").shown,
    )


_BACKTEST_WORDS = ("backtest", "replay")


def say_backtest_exports(settings: Settings) -> bool:
    """``trading_mode=backtest`` told to export over OTLP (a configured endpoint) under a service name that does not
    say it is a backtest or a replay: warned once (also on stderr when the log does not reach it). Through the
    collector the series are labelled by ``job`` (``service.namespace``/``service.name``) and ``instance``, and by
    ``trading_mode`` (the shipped config's ``transform/trading_mode``), which the shipped rules and dashboards use to
    leave backtests out; a collector without it, or rules of the deployment's own that aggregate by ``job``, add the
    run's simulated orders and P&L to the live service's and can page on-call, and its traces and logs are under the
    live service's name. Returns whether it warned."""
    if settings.trading_mode != "backtest":
        return False
    names = (settings.service_name, str(settings.resource_attributes.get("service.namespace", "")))
    if any(word in name.lower() for name in names for word in _BACKTEST_WORDS):
        return False
    return warn_once(
        "backtest:exports",
        "tradeobs: trading_mode=backtest exports to %s under service.name %r: through the collector its series are "
        'the job of that name, told apart only by the label trading_mode="backtest" (tradeobs\' collector config, '
        "alert rules and dashboards leave it out; a collector without transform/trading_mode or rules of your own "
        "that sum by job add the run's simulated orders and P&L to a live service of this name and can page "
        "on-call), and its traces and logs are under that service's name. Give the run a service name of its own "
        "(e.g. %r) or a collector of its own",
        otlp_for(settings, "metrics").shown,
        settings.service_name,
        f"{settings.service_name}-backtest",
        console=True,
    )


def _retry(settings: Settings) -> Retry:
    return Retry(settings.otlp_retry_items, settings.otlp_retry_max_age)


def build_tracing(
    settings: Settings,
    resource: Resource,
    selfm: SelfMetrics,
    extra: Sequence[SpanExporter] = (),
    *,
    otlp: bool = True,
    batched: Sequence[SpanExporter] = (),
) -> TracerProvider:
    """``otlp``: export over OTLP; ``batched``: more exporters behind batch processors (the trace file);
    ``extra``: exporters called synchronously (``tradeobs_agent.testing``'s in-memory ones)."""
    provider = TracerProvider(
        sampler=build_sampler(settings),
        resource=resource,
        shutdown_on_exit=False,
        id_generator=PrivateRandomIdGenerator(),  # never draws from (or shifts) the application's `random`
    )
    if otlp:
        exporter, target = _otlp_exporter(settings, "traces")
        counting = CountingSpanExporter(exporter, "traces", target, selfm, _retry(settings))
        counting.grouped = True  # its endpoint's outage said once with the other signals' (exporters._Group)
        processor = BatchSpanProcessor(counting, schedule_delay_millis=1000)
        counting.batch = otel_private.batch_processor(processor)
        provider.add_span_processor(processor)
    for exp in batched:
        bsp = BatchSpanProcessor(exp, schedule_delay_millis=1000)
        if hasattr(exp, "batch"):  # the trace file: what its queue holds when a shutdown runs out is said
            exp.batch = otel_private.batch_processor(bsp)
        provider.add_span_processor(bsp)
    for exp in extra:  # in-memory exporters from tradeobs_agent.testing
        provider.add_span_processor(SimpleSpanProcessor(exp))
    return provider


def build_metrics(
    settings: Settings,
    resource: Resource,
    registry: Registry,
    selfm: SelfMetrics,
    extra: Sequence[MetricReader] = (),
    *,
    otlp: bool = True,
    serve_prometheus: bool = True,
    sdk_only: Sequence[MetricReader] = (),
) -> tuple[MeterProvider, PrometheusEndpoint | None]:
    """``serve_prometheus=False``: no endpoint here (in a worker group the leader serves the whole service);
    ``sdk_only``: readers of the SDK's own instruments, without the registry (a worker group's snapshot)."""
    readers: list[MetricReader] = list(extra)
    encoded: MetricReader | None = None  # the agent's OTLP reader, when its exporter has the fast encoder
    if otlp:
        exporter, target = _otlp_exporter(settings, "metrics")
        counting = CountingMetricExporter(exporter, "metrics", target, selfm)
        counting.grouped = True  # its endpoint's outage said once with the other signals' (exporters._Group)
        reader = PeriodicExportingMetricReader(
            counting,
            export_interval_millis=settings.metric_export_interval * 1000,
            export_timeout_millis=settings.otlp_timeout * 1000,
        )
        readers.append(reader)
        encoded = reader if counting.fast_encoding else None
    bridged = list(readers)
    readers.extend(sdk_only)
    serve = settings.prometheus_enabled and serve_prometheus
    prom = PrometheusEndpoint.start(settings, selfm, registry) if serve else None
    if prom is not None:
        readers.append(prom.reader)  # SDK instruments only; the registry is rendered directly
    provider = MeterProvider(metric_readers=readers, resource=resource, shutdown_on_exit=False, views=http_views())
    for r in bridged:
        attach_registry(r, registry, provider, encoded=r is encoded)
    if prom is not None:
        prom.renderer.resource = lambda: otel_private.meter_provider_resource(provider)
    return provider, prom


# The HTTP server instruments' attributes, kept: bounded sets only. The instrumentation also records what the client
# sends (``http.server_name``/``server.address`` from the Host header, ``net.host.port``): a client sending made-up
# Host headers made a series each, until the SDK's 2,000 per instrument put real traffic in one unlabelled
# overflow series. Older (``http.*``) and stable (``http.request.method`` ...) conventions alike.
_HTTP_KEYS = frozenset(
    {
        "http.method",
        "http.status_code",
        "http.target",  # the route template in the older conventions (the instrumentation sets it so)
        "http.scheme",
        "http.flavor",
        "http.request.method",
        "http.response.status_code",
        "http.route",
        "url.scheme",
        "network.protocol.version",
        "error.type",
    }
)
_HTTP_INSTRUMENTS = (
    "http.server.duration",
    "http.server.request.size",
    "http.server.response.size",
    "http.server.active_requests",
    "http.server.request.body.size",
    "http.server.response.body.size",
)


def http_views() -> list[View]:
    """Views for the HTTP server instruments (``instrument_app``): bounded attribute sets, and the request duration
    (stable conventions, seconds) with the latency buckets of the agent's own histograms (100 µs to 10 s; the
    instrumentation's advice starts at 5 ms, where an order-entry API's requests all land in the first bucket)."""
    views = [View(instrument_name=name, attribute_keys=set(_HTTP_KEYS)) for name in _HTTP_INSTRUMENTS]
    views.append(
        View(
            instrument_name="http.server.request.duration",
            attribute_keys=set(_HTTP_KEYS),
            aggregation=ExplicitBucketHistogramAggregation(list(DEFAULT_LATENCY_BOUNDS)),
        )
    )
    return views


def serve_adopted(settings: Settings, registry: Registry, provider: MeterProvider) -> PrometheusEndpoint | None:
    """The embedded endpoint of a process whose meter provider was adopted from the application: the tradeobs
    instruments (trading series, ``tradeobs_agent_*``), rendered from the registry as without adoption, with that
    provider's resource in ``target_info``. Before, an adopted meter provider meant no endpoint at all, and the
    trading series were missing from the ``/metrics`` the docs promise."""
    prom = PrometheusEndpoint.start(
        settings, registry.self_metrics, registry, sdk=False, has_own_reader=has_prometheus_reader(provider)
    )
    if prom is not None:
        prom.renderer.resource = lambda: otel_private.meter_provider_resource(provider)
    return prom


def has_prometheus_reader(provider: MeterProvider) -> bool:
    """Whether ``provider`` (the application's) has opentelemetry-exporter-prometheus's reader: the tradeobs
    instruments are then on the application's own Prometheus exposition as well (the bridge attaches them)."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    return any(isinstance(r, PrometheusMetricReader) for r in otel_private.meter_provider_readers(provider))


def attach_registry(
    reader: MetricReader, registry: Registry, provider: MeterProvider, *, encoded: bool = False
) -> None:
    bridge.attach(reader, registry, lambda: otel_private.meter_provider_resource(provider), SCOPE, encoded=encoded)


def build_logs_provider(
    settings: Settings,
    resource: Resource,
    selfm: SelfMetrics,
    extra: Sequence[LogRecordExporter] = (),
    *,
    otlp: bool = True,
) -> LoggerProvider:
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    if otlp:
        exporter, target = _otlp_exporter(settings, "logs")
        counting = CountingLogExporter(exporter, "logs", target, selfm, _retry(settings))
        counting.grouped = True  # its endpoint's outage said once with the other signals' (exporters._Group)
        log_processor = BatchLogRecordProcessor(counting, schedule_delay_millis=1000)
        counting.batch = otel_private.batch_processor(log_processor)
        provider.add_log_record_processor(log_processor)
    for exp in extra:
        provider.add_log_record_processor(SimpleLogRecordProcessor(exp))
    return provider


class PrometheusEndpoint:
    """The embedded Prometheus pull endpoint: an OTel ``PrometheusMetricReader`` on its own registry.

    A port in use when it starts (the process it replaces is still stopping, or the service was started twice) is
    tried again, every ``RETRY_FIRST`` seconds doubling up to ``RETRY_MAX``, on a thread of its own, until it is
    free or the endpoint is stopped; meanwhile ``url`` is None. Other bind errors (a host that is not this
    machine's, a port that needs privileges) are not retried.
    """

    RETRY_FIRST = 2.0
    RETRY_MAX = 60.0

    def __init__(
        self,
        reader: Any,
        renderer: Any,
        sdk_registry: Any,
        host: str,
        port: int,
        allowed_hosts: tuple[str, ...] = (),
        refused: Callable[[str], None] | None = None,
    ) -> None:
        self.reader = reader
        self.renderer = renderer
        self._sdk_registry = sdk_registry
        self.host = host
        self.port = port
        self.allowed_hosts = allowed_hosts  # prometheus_allowed_hosts: see prometheus.foreign_host
        self._refused = refused
        self._busy: Any = None  # tradeobs.agent.prometheus.port_busy, bound once the port was found in use
        self._who: tuple[str, str, tuple[str, int, str] | None] | None = None  # service, base, group: see claim
        self._record: Any = None  # port_holder.Record: who serves this port, for a second copy of the service
        self._server: Any = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    @property
    def url(self) -> str | None:
        """The endpoint's URL once it listens; None while its port is taken (it is tried again)."""
        if self._server is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    @classmethod
    def start(
        cls,
        settings: Settings,
        selfm: SelfMetrics,
        registry: Registry,
        source: Callable[[], Snapshot] | None = None,
        *,
        sdk: bool = True,
        group: tuple[str, int, str] | None = None,
        has_own_reader: bool = False,
    ) -> PrometheusEndpoint | None:
        """The endpoint on the configured host and port; ``source``: the snapshot it serves instead of the
        registry's own and the SDK reader's (a worker group's leader serves every worker's, merged). ``sdk=False``:
        the registry's instruments only, no SDK reader (a meter provider adopted from the application keeps its
        own instruments on its own readers: a reader cannot be added to it). ``group``: the worker group this process
        leads (its directory's name, starting pid and kind), recorded with the port it serves (``port_holder``), so
        a second copy of the service names it. ``has_own_reader``: the adopted meter provider has a Prometheus reader
        of its own, which shows the tradeobs instruments already. None when it cannot listen there and trying again
        would not help."""
        from .prometheus import Renderer

        prom_registry: Any = None
        reader: Any = None
        if source is None and sdk:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader
            from prometheus_client import CollectorRegistry

            prom_registry = CollectorRegistry(auto_describe=False)
            # No scope labels: tradeobs instruments and SDK instruments carry the same label keys on this endpoint
            # (the Collector adds otel_scope_* labels on its own exposition).
            reader = PrometheusMetricReader(registry=prom_registry, disable_target_info=True, scope_info_enabled=False)
        refused = selfm.prometheus_refused  # no series until a request is refused
        endpoint = cls(
            reader,
            Renderer(registry, source=source),
            prom_registry,
            settings.prometheus_host,
            settings.prometheus_port,
            settings.prometheus_allowed_hosts,
            lambda reason: refused.add(1, {"reason": reason}),
        )
        from .workers.store import default_base

        base = settings.multiprocess_dir or default_base()
        endpoint._who = (settings.service_name, base, group)
        try:
            endpoint._listen(endpoint.port)
        except OSError as exc:
            selfm.exports_failed.add(1, {"signal": "metrics", "exporter": "prometheus_endpoint"})
            retry = exc.errno == errno.EADDRINUSE
            if not retry:
                warn_once(
                    "prometheus:bind",
                    "tradeobs: cannot serve the Prometheus endpoint on %s:%s (%s); continuing without it. "
                    "Set TRADEOBS_PROMETHEUS_PORT (0 = any free port) or TRADEOBS_PROMETHEUS_ENABLED=false",
                    settings.prometheus_host,
                    settings.prometheus_port,
                    exc,
                    console=True,
                )
                return None
            endpoint._busy = selfm.prometheus_port_busy.bind()
            endpoint._busy.set(1)
            # Said where whoever runs the service looks (its console, not only the log files): a worker group's
            # leader logs to system.jsonl only, and gunicorn's output stayed empty while this process's orders (its
            # whole group's) were on no endpoint.
            from . import port_holder

            if port_holder.held_here(endpoint.port):
                # The application's own server on the port the agent was given: no duplicate to stop
                remedy = (
                    "The tradeobs series are on that endpoint already, through your meter provider's Prometheus "
                    "reader: set TRADEOBS_PROMETHEUS_ENABLED=false (or give this endpoint another port: "
                    "TRADEOBS_PROMETHEUS_PORT, 0 = any free port)"
                    if has_own_reader
                    else "To serve the tradeobs series on that endpoint instead, register them in the "
                    "prometheus_client registry it serves: prometheus_client.REGISTRY.register("
                    "agent.prometheus_collector()), and set TRADEOBS_PROMETHEUS_ENABLED=false; or give this endpoint "
                    "another port: TRADEOBS_PROMETHEUS_PORT (0 = any free port)"
                )
            else:
                remedy = (
                    "Stop the duplicate, or give this one another port: TRADEOBS_PROMETHEUS_PORT (0 = any free "
                    "port), or TRADEOBS_PROMETHEUS_ENABLED=false"
                )
            warn_once(
                "prometheus:bind",
                "tradeobs: cannot serve the Prometheus endpoint on %s:%s (%s): %s. Until it is free (trying again "
                "every %g-%g s) this process's metrics%s are on no Prometheus endpoint of the agent's "
                "(tradeobs_agent_prometheus_port_busy 1; the live view still works). %s",
                settings.prometheus_host,
                settings.prometheus_port,
                exc,
                endpoint._holder(),
                cls.RETRY_FIRST,
                cls.RETRY_MAX,
                " (its worker group's)" if source is not None else "",
                remedy,
                console=True,
            )
            threading.Thread(target=endpoint._retry, name="tradeobs-prometheus-bind", daemon=True).start()
        return endpoint

    @staticmethod
    def prepare() -> None:
        """Import what serving a worker group's endpoint takes, ahead of time (a member that may lead calls this):
        in a busy worker taking over the lead, these imports took up to 0.5 s, while nobody served the port."""
        from prometheus_client import generate_latest  # noqa: F401
        from prometheus_client.openmetrics.exposition import generate_latest as _om  # noqa: F401

        from . import prometheus  # noqa: F401

    def _holder(self) -> str:
        """Who serves the port this endpoint could not bind, for its warning (``port_holder.who``)."""
        from . import port_holder

        assert self._who is not None
        service, base, group = self._who
        said = port_holder.who(self.port, service, base, group)
        return f"{said}; this group was started by pid {group[1]}" if group is not None else said

    def _listen(self, port: int) -> None:
        from .prometheus import serve

        with self._lock:
            if self._stopped.is_set():
                return
            server, _ = serve(self.host, port, self.renderer, self._sdk_registry, self.allowed_hosts, self._refused)
            self._server = server
            self.port = server.server_address[1]
            if self._who is not None and port:  # a configured port (0: any free one, which nobody else is given)
                from . import port_holder

                service, base, group = self._who
                self._record = port_holder.claim(self.host, self.port, service, base, group)

    def _retry(self) -> None:
        delay = self.RETRY_FIRST
        while not self._stopped.wait(delay):
            try:
                self._listen(self.port)
            except OSError:
                delay = min(delay * 2, self.RETRY_MAX)
                continue
            if self._server is not None:
                if self._busy is not None:
                    self._busy.set(0)
                _log.info("tradeobs: the Prometheus endpoint serves %s now", self.url)
            return

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def stop(self) -> None:
        with self._lock:
            self._stopped.set()
            server, self._server = self._server, None
            record, self._record = self._record, None
        if record is not None:
            from . import port_holder

            port_holder.release(record)
        if self._busy is not None:
            self._busy.set(0)  # no longer trying (a leader that handed over, a shutdown): nothing this one should serve
        if server is not None:
            # Wake the server's loop now: it looks for a shutdown only every half second, and until it does the
            # port stays bound, accepting nothing (a worker group's next leader could not bind it meanwhile).
            with contextlib.suppress(OSError):
                server.socket.shutdown(socket.SHUT_RDWR)
            server.shutdown()
            server.server_close()

    def forget_after_fork(self) -> None:
        """In a forked child: close this process's copy of the parent's listening socket, without stopping the
        parent's server (its thread is not in the child).

        A child that kept the copy kept the port bound: once the parent exited, a child that took over the worker
        group could not listen there (the port in use by its siblings and itself), and a scrape hung in a backlog
        nobody accepts."""
        server, self._server = self._server, None
        self._record = None  # the parent's, not this child's to remove
        self._lock = threading.Lock()  # another thread may have held it at the fork
        self._stopped = threading.Event()
        self._stopped.set()  # no retry either (the parent's retry thread, if any, is not in the child)
        if server is not None:
            server.socket.close()


def export_step(what: str, fn: Callable[[], object]) -> Callable[[], None]:
    """A provider's ``force_flush``/``shutdown`` as a step of :func:`call_bounded`.

    The SDK raises from these when an exporter timed out or failed (``MeterProvider.shutdown`` with a dead
    collector: "deadline already exceeded"). That is an export outcome, already counted by the counting
    exporters as failed or dropped items, not an error of ours: said once, never raised.
    """

    def step() -> None:
        try:
            fn()
        except Exception as exc:  # an export outcome (see above), counted where the items were dropped
            warn_once(f"agent:{what}:{type(exc).__name__}", "tradeobs %s: %s", what, exc, level=logging.INFO)

    return step


def call_bounded(fns: Sequence[Callable[[], Any]], timeout: float, what: str, say: bool = True) -> bool:
    """Run ``fns`` in order on a daemon thread; give up after ``timeout`` seconds. True if all finished. ``say``:
    warn when it gave up (the agent's shutdown says it itself, with the setting and what was lost)."""
    import threading

    def run() -> None:
        for fn in fns:
            try:
                fn()
            except Exception as exc:  # every step handles its own failures: one that raises is a bug
                internal_error(f"agent.{what}", exc)

    t = threading.Thread(target=run, name=f"tradeobs-{what}", daemon=True)
    try:
        t.start()
    except RuntimeError:
        # "can't create new thread at interpreter shutdown": Python 3.12.0-3.12.1 refuse threads in atexit
        # callbacks (the shutdown at exit). Run the steps here; each bounds its own waits (exporter timeouts,
        # the delivery deadline set by abandon_unreachable).
        run()
        return True
    t.join(timeout)
    if t.is_alive():
        if say:
            _log.warning("tradeobs %s did not finish within %gs; giving up so the process can exit", what, timeout)
        return False
    return True
