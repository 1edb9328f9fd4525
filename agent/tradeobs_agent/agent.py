"""``init()`` / ``shutdown()`` and the :class:`Agent` they manage.

>>> import tradeobs_agent
>>> agent = tradeobs_agent.init(service_name="algo-1")   # doctest: +SKIP
>>> agent.prometheus_url                                 # doctest: +SKIP
'http://127.0.0.1:9464/metrics'

``init()`` is a short list of steps: resolve settings, build the resource,
build tracing, metrics and logs, join the worker group (multi-process mode,
see ``_internal/workers``), then hook fork and exit. It is idempotent (a
second call warns and returns the same :class:`Agent`), never blocks on the
network (exporters connect lazily; a dead collector costs one warning and
counts), and ``shutdown()`` is bounded by ``shutdown_timeout`` even when the
collector is down.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import inspect
import logging
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from . import events, secret_values
from . import metrics as _metrics
from ._errors import handlers_reached, internal_error, warn_once
from ._internal import gil, otel_private, providers, workers
from ._internal.exporters import (
    abandon_unreachable,
    failing_targets,
    flush_deliveries,
    give_up_all,
    install_duplicate_filter,
    remove_duplicate_filter,
    settle_deliveries,
    take_shutdown_losses,
)
from ._internal.otel_private import LoggerProvider
from ._internal.resource import build_resource, new_instance_id
from ._internal.workers import join, pool_child
from ._internal.workers.detect import uvicorn_exits_on_sigterm, uvicorn_server
from ._internal.workers.store import publish_meta
from ._names import closest, keywords_checked_with
from ._trading_day import TradingDay
from .config import FIELDS, ConfigReport, Settings, resolve_settings, secret_setting_values
from .logs._early import EarlyRecords
from .logs.tracefile import TraceFile
from .options import (
    LiveOptions,
    LogOptions,
    MetricsOptions,
    OtlpOptions,
    PrometheusOptions,
    TracingOptions,
    flatten,
    grouped_setting,
)

__all__ = ["Agent", "export_state", "get_agent", "init", "is_initialized", "shutdown"]

_log = logging.getLogger("tradeobs")
_lock = threading.RLock()
_agent: Agent | None = None
_closing: Agent | None = None  # the agent whose shutdown() last began (_flush_then_terminate)
_inits = 0  # how many agents init() started in this process (a pool child that ran it drops nothing)


@dataclass
class Agent:
    """Everything ``init()`` built. Get it back with :func:`get_agent`."""

    settings: Settings
    report: ConfigReport
    resource: Resource
    registry: _metrics.Registry
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    logger_provider: LoggerProvider | None = None
    prometheus: providers.PrometheusEndpoint | None = None
    logs: Any = None
    live: Any = None
    nats: Any = None  # the live publisher to NATS (live_nats_url), a tradeobs_agent.live.nats.NatsPublisher
    traces_file: Any = None
    group: workers.Group | None = None  # multi-process mode: this process's worker group
    export: str = "on"  # OTLP: "on", "off" (otlp_enabled=false) or "not_configured" (the embedded default)
    adopted: frozenset[str] = frozenset()  # the signals ("traces", "metrics", "logs") whose providers were already set
    reinit: bool = False  # adopted the providers of an agent shut down earlier in this process (see init())
    adopted_resource: Resource | None = None  # the resource of the providers adopted from the application
    disabled: bool = False
    pid: int = field(default_factory=os.getpid)
    _dup_filter: Any = None
    _fork_store: workers.Store | None = None  # a process that forks after init(): the group it is forming
    # gunicorn's arbiter with --preload: it starts the workers and is none of them (no group, no endpoint); its
    # workers join their group at the fork, with the SDK reader made here for them (workers.starts_workers)
    _starter: bool = False
    _sdk_reader: InMemoryMetricReader | None = None
    _mp_exit_hooked: bool = False  # shutdown() registered for the exit of multiprocessing's children
    _closed: bool = False
    _crashed: bool = False  # the main thread ended on an uncaught exception (_shutdown_at_exit)
    _stopping_on: int = 0  # the thread running shutdown() while it runs (_flush_then_terminate)
    _stopped: threading.Event = field(default_factory=threading.Event)  # shutdown() has returned
    _term_after: bool = False  # a SIGTERM came while this shutdown ran on the main thread: it ends the process after

    @property
    def prometheus_url(self) -> str | None:
        return self.prometheus.url if self.prometheus else None

    @property
    def instance_id(self) -> str:
        return str(self.resource.attributes.get("service.instance.id", ""))

    def prometheus_collector(self) -> Any:
        """The tradeobs instruments (the trading series, ``tradeobs_agent_*``) as a prometheus_client collector, for
        a service that already serves a prometheus_client registry on a port of its own:
        ``prometheus_client.REGISTRY.register(agent.prometheus_collector())`` (with ``prometheus_enabled=False``, so
        that one endpoint shows them). The same names, labels and values as the embedded endpoint, without its
        exemplars and ``target_info``; not the OpenTelemetry API's instruments (the SDK's)."""
        from ._internal.prometheus import PrometheusCollector

        return PrometheusCollector(self.registry)

    def tracer(self, name: str = "tradeobs") -> trace.Tracer:
        if self.tracer_provider is None:
            return trace.NoOpTracer()
        return self.tracer_provider.get_tracer(name)

    def force_flush(self, timeout: float = 5.0) -> bool:
        """Export everything buffered now; bounded by ``timeout`` seconds."""
        ms = int(timeout * 1000)
        deadline = time.monotonic() + timeout
        steps: list[Any] = [self.registry.flush]  # pending trading calls become spans and values first
        if self.logs is not None:
            steps.append(lambda: self.logs.flush(timeout))
        for p in (self.tracer_provider, self.meter_provider, self.logger_provider):
            if p is not None:
                steps.append(providers.export_step("flush", functools.partial(p.force_flush, ms)))
        steps.append(lambda: flush_deliveries(deadline - time.monotonic()))  # batches kept through an outage
        return providers.call_bounded(steps, timeout, "flush")

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush and stop everything, within ``timeout`` seconds (default: the ``shutdown_timeout`` setting)."""
        global _agent, _closing
        with _lock:
            if self._closed:
                return True
            self._closed = True
            if _agent is self:
                _agent = None
            _closing, self._stopping_on = self, threading.get_ident()
        try:
            return self._shutdown(timeout)
        finally:
            self._stopping_on = 0
            self._stopped.set()
            if self._term_after:  # the SIGTERM that came meanwhile (_flush_then_terminate) ends the process now
                _terminate_now()

    def _shutdown(self, timeout: float | None) -> bool:
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        # A planned stop, told apart from a crash: the last export carries it, and TradingServiceTelemetryMissing
        # skips an instance that sent it (docs/alerts.md). A kill never gets here; an uncaught exception does (at
        # exit) and is no planned stop (_shutdown_at_exit).
        if not self._crashed:
            self.registry.self_metrics.stopped.set(1)
        if self.group is not None:  # a leader whose whole group is being replaced: until a new worker can lead
            self.group.hand_over_before_exit()
        ms = max(1, int(timeout * 1000))
        # Exporters whose collector does not answer give up at once (counted); the others may deliver what they
        # keep until 90% of the bound, leaving the rest for the providers' own shutdown.
        end = time.monotonic() + timeout
        deadline = end - 0.1 * timeout
        # The last spans and records may wait for room in their export queues, on any thread, until that deadline
        gil.stopping(True, within=0.9 * timeout)
        steps: list[Any] = [lambda: abandon_unreachable(deadline), _end_open_orders, self.registry.flush]
        if self.live is not None:
            steps.append(self.live.stop)
        if self.nats is not None:
            steps.append(self.nats.stop)  # after the flush: the last events go out
        group = self.group
        if group is not None:  # a last snapshot (this worker's counts outlive it), then leave; stops its endpoint
            steps.append(lambda: group.close(min(2.0, timeout / 2)))
        if self.logs is not None:
            steps.append(lambda: self.logs.shutdown(timeout))
        # A provider adopted from the application is not ours to shut down, but what it holds is flushed: when the
        # agent's SIGTERM handler ends the process, no atexit runs, and the provider's own shutdown never comes.
        if self.tracer_provider is not None:
            if "traces" in self.adopted:
                steps.append(providers.export_step("flush", functools.partial(self.tracer_provider.force_flush, ms)))
            else:
                steps.append(providers.export_step("shutdown", self.tracer_provider.shutdown))
        if self.logger_provider is not None:
            if "logs" in self.adopted:
                steps.append(providers.export_step("flush", functools.partial(self.logger_provider.force_flush, ms)))
            else:
                steps.append(providers.export_step("shutdown", self.logger_provider.shutdown))
        # Metrics last: their final export carries what the span and log exporters counted as dropped just now.
        if self.meter_provider is not None:
            if "metrics" in self.adopted:
                steps.append(providers.export_step("flush", functools.partial(self.meter_provider.force_flush, ms)))
            else:
                steps.append(providers.export_step("shutdown", lambda: self.meter_provider.shutdown(ms)))  # type: ignore[union-attr]
        if self.traces_file is not None:
            steps.append(self.traces_file.close)
        if self.prometheus is not None and group is None:
            steps.append(self.prometheus.stop)
        ok = providers.call_bounded(steps, timeout, "shutdown", say=False)  # said below, once, with what was lost
        if not ok:
            give_up_all()  # what is still kept is counted now: the process may exit right after this returns
            _last_word(True, *_unwritten_line(self, timeout))
        else:  # a batch still being sent gets what is left of the bound to come back, else it is counted now
            settle_deliveries(end - time.monotonic())
        _say_losses(take_shutdown_losses(), gave_up=not ok)
        if self._dup_filter is not None:
            remove_duplicate_filter(self._dup_filter)
        return ok


def _last_word(gave_up: bool, msg: str, *args: object) -> None:
    """A line of the agent's last word at exit. When the shutdown ran out of its bound (``gave_up``), the log
    pipeline has stopped and the process exits next: the line would stay in its queue, so it is printed on stderr
    as well (a process killed on a loaded machine said nothing at all of what it lost)."""
    _log.warning(msg, *args)
    if gave_up and not _said_by_last_resort(_log):  # printed once, not twice (a script ending, its pipeline gone)
        with contextlib.suppress(OSError, ValueError):  # stderr closed or gone (a daemon)
            print(msg % args if args else msg, file=sys.stderr, flush=True)


def _said_by_last_resort(logger: logging.Logger) -> bool:
    """Whether a WARNING of ``logger`` is printed on stderr by Python's last resort: no handler takes it (the log
    pipeline's capture is off the root once it stopped)."""
    last = logging.lastResort
    if last is None or last.level > logging.WARNING or not logger.isEnabledFor(logging.WARNING):
        return False
    return next(iter(handlers_reached(logger)), None) is None


def _unwritten_line(agent: Agent, timeout: float) -> tuple[str, ...]:
    """The shutdown ran out of its bound: the one line that says so, with what never reached the local files,
    counted as dropped now (a machine too loaded to write it all in time), for :func:`_last_word`. Before
    (2026-12-07) two lines said it ("tradeobs shutdown did not finish within 5s; giving up so the process can exit",
    then this one), the second ending "not written before the process exits: nothing kept for the local files" when
    the local files had everything: read as a loss."""
    parts = _unwritten(agent)
    if not parts:
        return (
            "tradeobs shutdown did not finish within its bound (shutdown_timeout, TRADEOBS_SHUTDOWN_TIMEOUT: %s s): "
            "giving up so the process can exit; the local files have everything",
            f"{timeout:g}",
        )
    return (
        "tradeobs shutdown did not finish within its bound (shutdown_timeout, TRADEOBS_SHUTDOWN_TIMEOUT: %s s): "
        "giving up so the process can exit; not written to the local files: %s",
        f"{timeout:g}",
        "; ".join(parts),
    )


def _unwritten(agent: Agent) -> list[str]:
    """What the local files never got when the shutdown ran out of its bound, counted as dropped now."""
    from .trading._journal import get_journal

    parts = []
    if agent.logs is not None and (n := agent.logs.abandon()):
        where = f" to {agent.settings.log_dir}" if agent.settings.log_dir else ""
        parts.append(f'{n} log records{where} (tradeobs.agent.logs.dropped{{reason="shutdown"}})')
    if agent.traces_file is not None and (n := agent.traces_file.abandon()):
        parts.append(f'{n} spans to {agent.traces_file.path} (tradeobs.agent.items.dropped{{reason="shutdown"}})')
    if n := len(get_journal()):
        parts.append(f"{n} trading records not yet made into spans and metrics")
    return parts


def _say_losses(losses: dict[tuple[str, str], tuple[int, str | None]], *, gave_up: bool = False) -> None:
    """The agent's last word: what it could not deliver before the process exits (also counted in
    ``tradeobs.agent.items.dropped{reason="shutdown"}``, exported with the last metrics when the collector
    answers; this line is what remains when it does not), and why its collector was given up at once if it was
    (refused, or a host name that did not resolve within the check's short bound, or it refuses the credentials)."""
    for (kind, target), (n, why) in sorted(losses.items()):
        _last_word(
            gave_up,
            "tradeobs shutdown: %d %s not delivered to %s (%scounted in tradeobs.agent.items.dropped"
            '{signal="%s", reason="shutdown"})',
            n,
            {"traces": "spans", "logs": "log records"}.get(kind, "items"),
            target,
            "" if why is None else f"given up at once, {why}; ",
            kind,
        )


def _grouped_hint(name: str) -> str | None:
    """``init(prometheus_port=9999)``: the settings table's name for a setting of an option group. Before, the answer
    was "did you mean 'prometheus'?", which did not say how to give a port (nor the value: it may be a secret)."""
    how = grouped_setting(name)
    said = f"the setting {name} is"
    if how is None:
        # Misspelt (init(log_dri=...), init(prometheus_prot=...)): the closest of init()'s keywords and the grouped
        # settings' flat names. Before, only the keywords were looked at: "did you mean 'prometheus'?" for a
        # misspelt port, and nothing at all for log_dri or otlp_endpiont.
        keywords = set(inspect.signature(init).parameters)
        best = closest(name, keywords | {f.name for f in FIELDS if grouped_setting(f.name) is not None})
        if best is None or best in keywords:
            return None  # the keyword's own "did you mean"
        name, how, said = best, grouped_setting(best), f"did you mean the setting {best}? It is"
    env = next((f.env for f in FIELDS if f.name == name), None)
    return f"{said} given in its option group: init({how})" + (f", or with {env}" if env else "")


@keywords_checked_with(_grouped_hint)  # init(servce_name=...) -> "did you mean 'service_name'?"
def init(
    service_name: str | None = None,
    *,
    service_version: str | None = None,
    environment: str | None = None,
    trading_mode: str | None = None,
    resource_attributes: dict[str, str] | None = None,
    trading_day_start: str | None = None,
    day_pnl: str | None = None,
    otlp: OtlpOptions | bool | None = None,
    prometheus: PrometheusOptions | bool | None = None,
    tracing: TracingOptions | None = None,
    metrics: MetricsOptions | None = None,
    logs: LogOptions | bool | None = None,
    live: LiveOptions | bool | None = None,
    shutdown_timeout: float | None = None,
    config_file: str | os.PathLike[str] | None = None,
    span_exporters: Sequence[Any] = (),
    metric_readers: Sequence[MetricReader] = (),
    log_exporters: Sequence[Any] = (),
) -> Agent:
    """Set up traces, metrics and logs for this process and return the :class:`Agent`.

    ``init("my-bot")`` is ``init(service_name="my-bot")``; every other argument is a keyword.

    Explicit arguments win over ``TRADEOBS_*``, then ``OTEL_*``, then the config
    file, then defaults. A bad explicit argument raises :class:`TradeObsConfigError`;
    a bad environment or file value warns once and uses the default.
    ``span_exporters``, ``metric_readers`` and ``log_exporters`` add extra
    destinations (``tradeobs_agent.testing`` uses them).
    """
    global _agent
    explicit = flatten(
        {"otlp": otlp, "prometheus": prometheus, "tracing": tracing, "metrics": metrics, "logs": logs, "live": live}
    )
    explicit.update(
        service_name=service_name,
        service_version=service_version,
        environment=environment,
        trading_mode=trading_mode,
        resource_attributes=resource_attributes,
        trading_day_start=trading_day_start,
        day_pnl=day_pnl,
        shutdown_timeout=shutdown_timeout,
    )
    with _lock:
        if _agent is not None:
            extras = dict(span_exporters=span_exporters, metric_readers=metric_readers, log_exporters=log_exporters)
            _init_again(_agent, resolve_settings(config_file=config_file, **explicit)[0], extras)
            return _agent
        early = EarlyRecords.attach()  # what is said before the log pipeline runs reaches the JSON logs too
        try:
            return _init(early, config_file, explicit, span_exporters, metric_readers, log_exporters)
        finally:
            early.detach()


def _init(
    early: EarlyRecords,
    config_file: str | os.PathLike[str] | None,
    explicit: dict[str, Any],
    span_exporters: Sequence[Any],
    metric_readers: Sequence[MetricReader],
    log_exporters: Sequence[Any],
) -> Agent:
    global _agent, _inits
    settings, report = resolve_settings(config_file=config_file, **explicit)
    publish_meta(_group_meta)  # a worker group's members compare their declared contract multipliers
    if settings.contract_multipliers:  # before anything is built: a conflicting one raises
        from .trading import contracts

        contracts.configure(settings.contract_multipliers)
    _inits += 1
    gil.watch_this_thread()  # the trading thread: background slices skip their GIL offer while it is idle
    gil.stopping(False)
    _learn_secrets(settings)
    registry = _metrics.get_registry()
    registry.max_series = settings.max_series
    registry.max_gauge_series = settings.max_gauge_series
    registry.self_metrics.stopped.unset()  # an agent started again after a shutdown() is running (its crash pages)
    events.get_bus().resize(settings.live_event_buffer)
    resource = build_resource(settings)
    agent = Agent(settings, report, resource, registry)
    if settings.sdk_disabled:
        agent.disabled = True
        _log.info("tradeobs: SDK disabled by configuration; the agent is a no-op")
    else:
        _build(agent, span_exporters, metric_readers, log_exporters, early)
        _start_nats(agent)
    _say_problems(agent)
    if agent.reinit:
        # On stderr too (console=True): said only in the log files, a script that restarts its agent after a
        # shutdown() ran on with no traces and no /metrics, and nothing on its terminal said so.
        kept = agent.resource.attributes.get("service.name")
        warn_once(
            "init:after_shutdown",
            "tradeobs: init() after shutdown() in the same process: OpenTelemetry's global providers are set once "
            "per process, so this agent adopts the ones the first agent shut down: no traces are exported, and "
            "there is no Prometheus endpoint or trace file%s. Call init() once per process and shutdown() at exit.",
            f" (and service.name stays {kept!r})" if kept != agent.settings.service_name else "",
            console=True,
        )
    _configure_trading(agent)
    _agent = agent
    _watch_late_providers()
    atexit.register(_shutdown_at_exit)
    _flush_on_sigterm()
    _install_fork_hook(agent)
    _install_start_hook()
    return agent


def _init_again(agent: Agent, settings: Settings, extras: dict[str, Sequence[Any]]) -> None:
    """``init()`` called while an agent runs: the same agent is returned and this call's settings are not applied.

    A notebook re-runs its ``init()`` cell as a habit: with the same settings nothing is lost, and that is said only
    in the system log. Settings that differ are warned about each time they differ otherwise (before, the warning was
    said once per process, so after one plain re-run a cell edited to another port or service name was ignored
    without a word), with their names (never their values: a token may be among them)."""
    differ = [f.name for f in fields(Settings) if getattr(settings, f.name) != getattr(agent.settings, f.name)]
    differ += [name for name, given in extras.items() if given]
    if not differ:
        _log.info("tradeobs: init() called again with the same settings; the running agent is returned")
        return
    interactive = hasattr(sys, "ps1") or sys.flags.interactive
    name = agent.settings.service_name
    text = (
        f"tradeobs_agent.init() called again; returning the existing agent (service.name {name!r}): the settings "
        f"of this call are not applied ({', '.join(differ)} differ). "
        + ("Restart the kernel (or the interpreter) to apply them" if interactive else "Call init() once")
    )
    # Said once per distinct call: the key holds what differs, by value (the text does not show values).
    key = "init:twice:" + str(hash(tuple((n, repr(getattr(settings, n, extras.get(n)))) for n in differ)))
    # The agent's own records are not echoed on stderr: with no console handler this was said only in the system
    # log, and a second init() with other settings (another service name, an endpoint) went unnoticed.
    if warn_once(key, "%s", text) and agent.logs is not None and not agent.logs.on_console():
        print(f"tradeobs: {secret_values.mask(text)}", file=sys.stderr)


class _LateProvider(logging.Filter):
    """On the OpenTelemetry loggers that refuse a second global provider: a provider the application sets after
    ``init()`` is refused by OpenTelemetry with ``Overriding of current TracerProvider is not allowed``, and nothing
    says that the application's exporters will then receive nothing, nor what to do. The agent says it once per
    signal (on stderr too when the log does not reach the console). The SDK's own line is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        provider = otel_private.PROVIDER_OVERRIDE_LOGGERS.get(record.name)
        agent = _agent
        if provider is None or agent is None or agent.disabled or record.msg != _OVERRIDE.format(provider):
            return True
        if provider == "MeterProvider":
            instead = "pass your readers to init(metric_readers=[...])"
        elif provider == "LoggerProvider":
            instead = "add your log record processors to agent.logger_provider"
        else:
            instead = "add your span processors to agent.tracer_provider (add_span_processor)"
        warn_once(
            f"init:late_provider:{provider}",
            "tradeobs: a %s was set after tradeobs_agent.init(): OpenTelemetry keeps the first one set, the agent's, "
            "so yours receives nothing and what it was for goes where the agent's %s sends it. Set yours up before "
            "init() (the agent adopts it), or %s (`tradeobs docs agent`, 'Zero-code instrumentation, or your own "
            "tracer provider')",
            provider,
            provider,
            instead,
            console=True,
        )
        return True


_OVERRIDE = otel_private.PROVIDER_OVERRIDE_MESSAGE
_late_provider = _LateProvider()


def _watch_late_providers() -> None:
    """Put :class:`_LateProvider` on OpenTelemetry's loggers, once per process (after the agent set its own
    providers, so its own set-up is never taken for the application's)."""
    for name in otel_private.PROVIDER_OVERRIDE_LOGGERS:
        lg = logging.getLogger(name)
        if _late_provider not in lg.filters:
            lg.addFilter(_late_provider)


def _say_problems(agent: Agent) -> None:
    """Each configuration problem, once: logged after the log pipeline started (so it is in the system log and OTLP,
    with known secret values masked), and on stderr as well when nothing would print it there."""
    problems = agent.report.problems
    for problem in problems:
        _log.warning("tradeobs config: %s", problem)
        kind = "bad_value" if problem.value is not None else "unknown_name"
        agent.registry.self_metrics.config_problems.bind(kind=kind).add(1)
    if problems and agent.logs is not None and not agent.logs.on_console():
        for problem in problems:
            print(f"tradeobs config: {secret_values.mask(str(problem))}", file=sys.stderr)


def _learn_secrets(settings: Settings) -> None:
    """The secret values to mask from here on: the environment's, and the agent's own secret settings'."""
    secret_values.learn_environment()
    for value in secret_setting_values(settings):
        secret_values.register_secret(value)


def _end_open_orders() -> None:
    """Orders still open at shutdown end (outcome ``closed``), so their root spans are exported with the rest."""
    from .trading.telemetry import end_open_orders

    end_open_orders()


def _configure_trading(agent: Agent | None) -> None:
    """The trading layer's defaults: the symbol allowlist, and order traces on the agent's tracer provider."""
    from .trading import defaults

    if agent is None:
        defaults.configure()
        return
    ref = weakref.ref(agent)

    def provider() -> TracerProvider | None:
        a = ref()
        return a.tracer_provider if a is not None and not a._closed else None

    defaults.configure(symbol_allowlist=agent.settings.symbol_allowlist, tracer_provider=provider)


def _build(
    agent: Agent,
    span_exporters: Sequence[Any],
    readers: Sequence[MetricReader],
    log_exps: Sequence[Any],
    early: EarlyRecords,
) -> None:
    settings, resource, registry = agent.settings, agent.resource, agent.registry
    selfm = registry.self_metrics
    agent._dup_filter = install_duplicate_filter(selfm)
    # Multi-process mode: a worker of gunicorn/uvicorn (or a fork child) shares one endpoint and live view.
    agent._starter = workers.starts_workers(settings.multiprocess)
    later: list[Callable[[], object]] = []  # what to say once the log pipeline runs
    key = None if agent._starter else workers.detect(settings.multiprocess)
    store = workers.open_store(settings, key, later)
    grouped = store is not None or agent._starter
    if store is not None:  # a recycled worker reads the SDK check its group's first worker stored (_remembered)
        otel_private.remember_in(settings.multiprocess_dir or workers.default_base())
    sdk_reader = InMemoryMetricReader() if grouped else None  # the SDK's instruments, for the group
    adopted = agent.adopted = _adopt_existing(agent)
    # The providers built for the signals not adopted describe the service as the adopted ones do (see
    # _adopt_existing): before, they kept the agent's own resource, read before adoption, so a service whose tracer
    # provider said service.name 'shop' had its metrics (Prometheus job, target_info) and logs under
    # 'tradeobs-service', with another service.instance.id than its traces.
    resource = agent.resource
    if adopted != _SIGNALS:
        agent.export = providers.otlp_mode(settings, agent.report)
        otlp = agent.export == "on"
        if "traces" not in adopted:
            agent.traces_file = TraceFile.for_settings(settings, agent.export, selfm)
            files = [agent.traces_file.exporter] if agent.traces_file is not None else []
            agent.tracer_provider = providers.build_tracing(
                settings, resource, selfm, span_exporters, otlp=otlp, batched=files
            )
        if "metrics" not in adopted:
            agent.meter_provider, agent.prometheus = providers.build_metrics(
                settings,
                resource,
                registry,
                selfm,
                readers,
                otlp=otlp,
                serve_prometheus=not grouped,  # in a group the leader serves every worker's metrics
                sdk_only=[sdk_reader] if sdk_reader is not None else (),
            )
        if "logs" not in adopted:
            agent.logger_provider = providers.build_logs_provider(settings, resource, selfm, log_exps, otlp=otlp)
        _set_globals(agent, adopted)
    if "metrics" in adopted and not grouped and not agent.reinit and settings.prometheus_enabled:
        # The application's meter provider: the endpoint serves the tradeobs instruments all the same (in a worker
        # group the leader serves them, see join.start_group)
        agent.prometheus = providers.serve_adopted(settings, registry, agent.meter_provider)  # type: ignore[arg-type]
    # The log pipeline first: what the worker group says as it starts (which worker leads, a directory it cannot
    # use) is then in the system log and OTLP too; before, it was logged before any handler of the agent's existed
    if settings.logs_enabled and agent.logger_provider is not None:
        from .logs import install_logging

        agent.logs = install_logging(agent)
    early.hand_to(agent.logs)  # what was said before (a Prometheus port in use): in the JSON logs too
    for say in later:
        say()
    reader = sdk_reader if "metrics" not in agent.adopted else None
    if store is not None:
        agent.group = join.start_group(agent, store, reader, baseline=registry.fork_baseline)
    elif agent._starter:
        agent._sdk_reader = reader
    # Said once the log pipeline runs, so they are in the system log too (before it, they reached nobody).
    if agent.export == "not_configured":
        providers.say_not_configured(settings)
    elif agent.export == "on":
        providers.say_backtest_exports(settings)
    if adopted:
        _say_adopted(agent)
        _say_resource_kept(agent)
        _say_trading_mode_missing(agent)
    if agent._starter:
        _log.info(
            "tradeobs multiprocess: pid %d is gunicorn's arbiter (the application is preloaded): its workers share "
            "one endpoint and live view; it serves neither and is not counted as a worker",
            os.getpid(),
        )


def _start_nats(agent: Agent) -> None:
    """With ``live_nats_url`` set: publish live frames and events to NATS, off the trading thread. Whatever
    ``live_enabled`` says: the publisher builds its frames from the registry and the event bus, not from this
    process's own live stream (``live_enabled`` switches that one, the ``/telemetry`` endpoint)."""
    s = agent.settings
    agent.nats = None
    if not s.live_nats_url:
        return
    try:
        import nats  # noqa: F401 - the optional dependency, checked here so the message names it

        # The one import of the live layer from here (declared in pyproject.toml's layers contract).
        from .live.nats import NatsPublisher
    except ImportError:
        warn_once(
            "live:nats:missing",
            "tradeobs: live_nats_url is set but nats-py is not installed (pip install 'tradeobs[nats]'); "
            "live frames and events are not published",
        )
        return
    agent.nats = NatsPublisher(
        s.live_nats_url,
        service=s.service_name,
        instance=agent.instance_id,
        hz=s.live_hz,
        registry=agent.registry,
        trading_day=TradingDay.parse(s.trading_day_start).with_pnl(s.day_pnl),  # its frames' day P&L, as the page's
    )
    agent.nats.start()


def _adopt_existing(agent: Agent) -> frozenset[str]:
    """The signals whose OpenTelemetry providers were already set and are used as they are.

    Each signal on its own: an SDK ``TracerProvider``, ``MeterProvider`` or ``LoggerProvider`` that is already the
    global one (``opentelemetry-instrument``, or the application's own set-up before ``init()``) is adopted. A signal
    whose provider was not set is built as usual: a service that set only its own tracer provider keeps the
    Prometheus endpoint and the log pipeline (they were silently missing). Before, a meter or logger provider was
    adopted only along with a tracer provider: one set alone was left to the application, and the agent's own,
    refused by OpenTelemetry ("Overriding of current MeterProvider is not allowed", on stderr with no word of what it
    meant), was not the global one."""
    from opentelemetry import metrics as otel_metrics

    adopted: set[str] = set()
    resource = None
    tp = trace.get_tracer_provider()
    if isinstance(tp, TracerProvider):
        if tp in _installed:  # our own, from an agent shut down earlier in this process
            agent.reinit = True
        adopted.add("traces")
        agent.tracer_provider = tp
        resource = tp.resource
    mp = otel_metrics.get_meter_provider()
    if isinstance(mp, MeterProvider):
        adopted.add("metrics")
        agent.meter_provider = mp
        for reader in otel_private.meter_provider_readers(mp):
            providers.attach_registry(reader, agent.registry, mp)
        resource = resource or otel_private.meter_provider_resource(mp)
    lp = otel_private.get_logger_provider()
    if isinstance(lp, LoggerProvider):
        adopted.add("logs")
        agent.logger_provider = lp
        resource = resource or lp.resource
    if resource is not None:
        # What the agent builds (the providers of the signals not adopted, the JSON logs, the Prometheus endpoint's
        # target_info) describes the service as the application's providers do: their attributes win (service.name,
        # service.instance.id, yours), and the agent's own are kept where theirs have none (trading.mode, which the
        # collector puts on every series as the trading_mode label, deployment.environment)
        agent.adopted_resource = resource
        agent.resource = agent.resource.merge(resource)
    return frozenset(adopted)


_SIGNALS = frozenset({"traces", "metrics", "logs"})


def _say_adopted(agent: Agent) -> None:
    adopted = agent.adopted
    built = [name for name in ("traces", "metrics", "logs") if name not in adopted]
    what = []
    if "traces" in adopted:
        what.append("spans, order traces included, go to that tracer provider's processors (not to the agent's OTLP "
                    "exporter or trace file)")  # fmt: skip
    if "metrics" in adopted:
        what.append(_adopted_metrics(agent))
    if "logs" in adopted:
        what.append("the log pipeline sends its records over OTLP through that logger provider")
    _log.info(
        "tradeobs: OpenTelemetry providers were already set (zero-code instrumentation, or your own set-up before "
        "init()); adopting them for %s instead of installing new ones: %s%s",
        " and ".join(name for name in ("traces", "metrics", "logs") if name in adopted),
        "; ".join(what),
        f"; the agent's own providers for {' and '.join(built)}" if built else "",
    )


def _adopted_metrics(agent: Agent) -> str:
    """What becomes of the metrics with the application's meter provider: its readers export the tradeobs
    instruments, and the agent's Prometheus endpoint still serves them (not that provider's own instruments)."""
    text = "tradeobs instruments export through that meter provider's readers"
    if agent.reinit:
        return text + "; no Prometheus endpoint (init() after shutdown())"
    if not agent.settings.prometheus_enabled:
        return text + "; no Prometheus endpoint (prometheus_enabled=false)"
    if agent.group is not None or agent._starter:
        where = "the worker group's shared endpoint"
    elif agent.prometheus is None:
        return text + "; the agent's Prometheus endpoint could not listen (said above)"
    else:
        s = agent.settings
        where = agent.prometheus_url or f"{s.prometheus_host}:{s.prometheus_port}, once the port is free"
    text += (
        f", and the agent's Prometheus endpoint ({where}) serves them too (the trading series and tradeobs_agent_*; "
        "your provider's own instruments stay on its readers)"
    )
    mp = agent.meter_provider
    if isinstance(mp, MeterProvider) and providers.has_prometheus_reader(mp):
        text += (
            "; your PrometheusMetricReader shows the tradeobs instruments as well: scrape one of the two, or set "
            "TRADEOBS_PROMETHEUS_ENABLED=false to keep only yours"
        )
    return text


def _say_resource_kept(agent: Agent) -> None:
    """An adopted provider brings its resource, which the agent uses for everything: a ``service.name`` set for the
    agent (``init(service_name=...)``, the environment, the config file) that differs from it is not applied, and
    the JSON logs, the order traces and the metrics named the service otherwise than it was told, silently."""
    if agent.report.source("service_name") == "default" or agent.reinit:
        return  # after a shutdown() the providers are the first agent's, not the application's: said with the reinit
    adopted_name = agent.resource.attributes.get("service.name")
    if adopted_name != agent.settings.service_name:
        warn_once(
            "init:resource_kept",
            "tradeobs: service.name %r (from %s) is not applied: the OpenTelemetry providers adopted from the "
            "application carry their own resource, service.name %r, which every signal uses. Give both the same "
            "name (Resource.create({'service.name': ...}) or OTEL_SERVICE_NAME)",
            agent.settings.service_name,
            agent.report.source("service_name"),
            adopted_name,
            console=True,
        )


def _say_trading_mode_missing(agent: Agent) -> None:
    """The application's tracer or meter provider, adopted, has a resource without the agent's ``trading.mode`` (or
    with another): what goes through it (the order traces, the trading series) carries no ``trading_mode`` label, or
    another, through the collector. Before, nothing said so: a backtest run under ``opentelemetry-instrument``
    exported its series without ``trading_mode="backtest"``, so the alert rules that leave backtests out paged for
    them, and the dashboards' ``trading_mode`` filter did not find the service."""
    through = [name for name in ("traces", "metrics") if name in agent.adopted]
    if not through or agent.reinit or agent.adopted_resource is None:
        return
    mode = agent.settings.trading_mode
    theirs = agent.adopted_resource.attributes.get("trading.mode")
    if theirs == mode:
        return
    warn_once(
        "init:trading_mode_missing",
        "tradeobs: the OpenTelemetry providers adopted from the application (%s) have %s in their resource, and "
        "this agent's trading_mode is %r (from %s): their %s carry %s through the collector (the alert rules leave "
        'out only trading_mode="backtest"). Add it to their resource: OTEL_RESOURCE_ATTRIBUTES=trading.mode=%s '
        "(read by opentelemetry-instrument and Resource.create()), or Resource.create({'trading.mode': %r, ...})",
        " and ".join(through),
        "no trading.mode" if theirs is None else f"trading.mode {theirs!r}",
        mode,
        agent.report.source("trading_mode"),
        "spans (order traces included) and metrics (the trading series included)"
        if through == ["traces", "metrics"]
        else ("spans (order traces included)" if through == ["traces"] else "metrics (the trading series included)"),
        "no trading_mode label" if theirs is None else f"trading_mode={theirs!r}",
        mode,
        mode,
        console=True,
    )


_installed: weakref.WeakSet[Any] = weakref.WeakSet()  # the tracer providers tradeobs made global in this process


def _set_globals(agent: Agent, adopted: frozenset[str] = frozenset()) -> None:
    """Make the providers the agent built the global ones (not those it adopted: they already are)."""
    from opentelemetry import metrics as otel_metrics

    if "traces" not in adopted:
        _installed.add(agent.tracer_provider)
        trace.set_tracer_provider(agent.tracer_provider)  # type: ignore[arg-type]
    if "metrics" not in adopted:
        otel_metrics.set_meter_provider(agent.meter_provider)  # type: ignore[arg-type]
    if "logs" not in adopted:
        otel_private.set_logger_provider(agent.logger_provider)  # type: ignore[arg-type]


def forget() -> None:
    """Drop the reference to the agent without shutting it down (``tradeobs_agent.testing.reset`` uses this)."""
    global _agent
    with _lock:
        _agent = None
    _configure_trading(None)


def export_state() -> str:
    """Where telemetry goes, for health views: ``ok`` (OTLP exporting), ``failing`` (OTLP, last export failed),
    ``not_configured`` (the embedded default: no collector configured or running), ``off``, or ``no_agent``."""
    agent = _agent
    if agent is None:
        return "no_agent"
    if agent.export != "on":
        return agent.export
    return "failing" if failing_targets() else "ok"


def get_agent() -> Agent | None:
    """The running agent, or ``None``."""
    return _agent


def is_initialized() -> bool:
    return _agent is not None


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop the agent within ``timeout`` seconds. Safe to call twice."""
    agent = _agent
    return True if agent is None else agent.shutdown(timeout)


def _shutdown_at_exit() -> None:
    agent = _agent
    if agent is not None and agent.pid == os.getpid():
        exc = _uncaught_at_exit()
        if exc is not None:
            # A crash, not a planned stop: before, the exit's shutdown() marked it stopped, and
            # TradingServiceTelemetryMissing left a service that died of an exception alone. And the exception was
            # only on stderr: in no log file and no log store. Written now; the shutdown below delivers it.
            agent._crashed = True
            if agent.logs is not None:
                agent.logs.uncaught(exc, ending=True)
        agent.shutdown()


def _uncaught_at_exit() -> BaseException | None:
    """The exception that ended the main thread, if one did: Python sets ``sys.last_exc`` (3.12; ``last_value``
    before) when it prints an uncaught exception, before ``atexit`` runs. ``SystemExit`` never sets it (a
    ``sys.exit(1)`` reads as a normal exit); ``KeyboardInterrupt`` (Ctrl-C) is a stop the operator asked for. An
    interactive session prints every error and goes on: it is left out."""
    if hasattr(sys, "ps1") or sys.flags.interactive:
        return None
    exc = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    if not isinstance(exc, BaseException) or isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return None
    return exc


def _flush_on_sigterm() -> None:
    """SIGTERM (``kill``, systemd, ``docker stop``) ends a Python process without running ``atexit``, so a script
    stopped that way lost what the agent still held: the last log lines, spans and metric points, uncounted. When
    nothing handles SIGTERM yet (its handler is the default), the agent's handler flushes within the
    ``shutdown_timeout`` setting, then lets the signal end the process as it would have (the same exit status). A
    handler the application (or its server: uvicorn, gunicorn) installs, before or after ``init()``, is left alone
    or replaces this one; their own clean exit runs ``atexit``. uvicorn's, found at ``init()``, ends the process by
    SIGTERM once its server has stopped: the agent shuts down first (:func:`_flush_when_uvicorn_stops`)."""
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers are set from the main thread only
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            server = uvicorn_server()
            if server is not None:
                _flush_when_uvicorn_stops(server)
            return
        signal.signal(signal.SIGTERM, _flush_then_terminate)
    except (ValueError, OSError) as exc:  # e.g. a subinterpreter: SIGTERM keeps its default
        warn_once("agent.sigterm", "tradeobs: cannot flush on SIGTERM (%s); shutdown() runs at a normal exit", exc)


def _flush_when_uvicorn_stops(server: Any) -> None:
    """``init()`` while uvicorn serves (an app factory, ``uvicorn --factory``; each worker of ``uvicorn --workers``;
    ``init()`` in a lifespan or a request): SIGTERM's handler is uvicorn's, which, once the server has stopped, puts
    back the handler it found (the default) and raises SIGTERM again: the process ended without ``atexit``, and
    what the agent still held (the last metric points, spans and log lines, the clean stop's
    ``tradeobs_agent_stopped 1``) was lost, uncounted. The agent now shuts down when that server has stopped
    (its requests finished, its lifespan shut down) on a SIGTERM, within ``shutdown_timeout``, before the signal
    ends the process; a server stopped otherwise (Ctrl-C, ``should_exit`` set by the application) is left to the
    shutdown at exit."""
    if getattr(server.shutdown, "_tradeobs_flush", False):
        return  # init() again under the same server (after testing.reset()): wrapped once
    stop = server.shutdown

    async def shutdown(*args: Any, **kwargs: Any) -> None:
        try:
            await stop(*args, **kwargs)
        finally:
            if uvicorn_exits_on_sigterm(server):
                await _shutdown_off_the_loop()

    shutdown._tradeobs_flush = True  # type: ignore[attr-defined]
    server.shutdown = shutdown


async def _shutdown_off_the_loop() -> None:
    """The agent's shutdown on a thread of its own, awaited within its bound: the server's event loop stays free
    for what the shutdown may wait on (the live view's streams)."""
    import asyncio

    agent = _agent
    if agent is None or agent.pid != os.getpid():
        return
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def run() -> None:
        try:
            agent.shutdown()
        finally:
            with contextlib.suppress(RuntimeError):  # the loop closed: the bound passed, the process is ending
                loop.call_soon_threadsafe(done.set)

    threading.Thread(target=run, name="tradeobs-sigterm", daemon=True).start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), _shutdown_bound(agent))


def _flush_then_terminate(signum: int, frame: Any) -> None:
    agent, closing = _agent, _closing
    if agent is not None and agent.pid == os.getpid():
        # On a thread of its own, waited for at most the shutdown bound (and a second): the signal may have come
        # while this main thread held a lock the flush needs, and then the process still ends in time.
        flush = threading.Thread(target=agent.shutdown, name="tradeobs-sigterm", daemon=True)
        flush.start()
        flush.join(_shutdown_bound(agent))
    elif closing is not None and closing.pid == os.getpid() and not closing._stopped.is_set():
        # A shutdown() already running: a multiprocessing child's exit (Pool.terminate() sends SIGTERM to workers
        # that are already exiting, in their exit's shutdown), atexit, the application's own call, or a second
        # SIGTERM. Before, the process was ended in the middle of it, and what it had not yet written (the child's
        # last counts, log lines and spans) was lost, uncounted. Interrupted on this thread, it cannot finish while
        # this handler waits: it ends the process when it returns. On another thread: waited for, within its bound.
        if closing._stopping_on == threading.get_ident():
            closing._term_after = True
            return
        closing._stopped.wait(_shutdown_bound(closing))
    _terminate_now()


def _shutdown_bound(agent: Agent) -> float:
    """How long a SIGTERM waits for ``agent``'s shutdown: its bound, the lead's handover, a second."""
    wait = workers.HANDOVER_WAIT if agent.group is not None else 0.0  # hand_over_before_exit() comes first
    return agent.settings.shutdown_timeout + wait + 1.0


def _terminate_now() -> None:
    """End this process by SIGTERM, as it would have ended without the agent's handler (the same exit status)."""
    for stream in (sys.stdout, sys.stderr):  # what the process printed (a pool child's output), as at an exit
        with contextlib.suppress(OSError, ValueError, AttributeError):  # closed, gone, or replaced by None
            stream.flush()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_fork_hook(agent: Agent) -> None:
    # Registered per agent, after its providers exist, so it runs after the SDK's own
    # after-fork hooks (which give the resource a fresh process identity) and has the last word.
    if not hasattr(os, "register_at_fork"):
        return
    ref = weakref.ref(agent)

    def current() -> Agent | None:
        a = ref()
        return a if a is not None and a is _agent else None

    def before() -> None:
        a = current()
        if a is not None:
            _shutdown_at_multiprocessing_exit(a)
            _before_fork(a)

    def parent() -> None:
        a = current()
        if a is not None:
            _after_fork_in_parent(a)

    def child() -> None:
        a = current()
        if a is not None:
            _after_fork_in_child(a)

    os.register_at_fork(before=before, after_in_parent=parent, after_in_child=child)


def _install_start_hook() -> None:
    """A process that starts ``multiprocessing`` children after ``init()`` forms a worker group with them, whatever
    the start method. With ``fork`` the fork hook above does it; ``spawn`` and ``forkserver`` start a child without
    forking this process (a new interpreter, or a fork of the fork server), so no fork hook runs here: the children,
    which find this process as their parent, formed a group of their own, whose leader could not serve the port this
    process held, and their counts were on no endpoint. ``BaseProcess.start`` (``Process``, ``Pool`` and
    ``ProcessPoolExecutor`` workers, every context) is wrapped once per interpreter; it forms the group before the
    child starts, as ``_before_fork`` does, then starts it as before. ``multiprocessing.process`` is imported with
    the agent (``workers.detect``)."""
    process = sys.modules.get("multiprocessing.process")
    base = getattr(process, "BaseProcess", None)
    start = getattr(base, "start", None)
    if base is None or start is None or getattr(start, "_tradeobs_forms_group", False):
        return

    @functools.wraps(start)
    def start_in_group(self: Any) -> None:
        agent = _agent
        if agent is not None and agent.pid == os.getpid() and not agent.disabled:
            if agent.group is None:
                _form_group(agent)
            # a spawn or forkserver child has no agent of its own: told once if it records without init(), on its
            # stderr and, through the group's directory, on this process's /metrics
            group = agent.group
            if group is not None:
                group.children_started = True
            report = str(group.store.path) if group is not None else ""
            pool_child.mark(self, agent.pid, agent.settings.service_name, report)
        start(self)

    start_in_group._tradeobs_forms_group = True  # type: ignore[attr-defined]
    base.start = start_in_group


def _form_group(agent: Agent) -> None:
    """This process, which ran ``init()`` alone, starts a child that is not a fork of it: it forms the group now,
    as around a fork (it leads: it already serves the port)."""
    _before_fork(agent)
    _after_fork_in_parent(agent)


def _shutdown_at_multiprocessing_exit(agent: Agent) -> None:
    """A ``multiprocessing`` child (fork start method, ``Process`` and ``Pool`` workers) ends with ``os._exit()``
    once its target returns, so ``atexit``, where ``shutdown()`` flushes, never runs there: what the child logged
    or traced in its last moments (up to the log worker's 0.2 s poll, the batch processors' 5 s) was lost,
    uncounted. multiprocessing runs its own exit finalizers first: the agent's shutdown joins them in each child
    it starts. Registered with ``register_after_fork`` because multiprocessing clears the finalizers a child
    inherits before it calls those. ``multiprocessing.util`` is imported by then when multiprocessing forks, and
    never imported here."""
    util = sys.modules.get("multiprocessing.util")
    if util is None or agent._mp_exit_hooked:
        return
    agent._mp_exit_hooked = True
    util.register_after_fork(agent, _finalize_in_multiprocessing_child)


def _finalize_in_multiprocessing_child(agent: Agent) -> None:
    util = sys.modules["multiprocessing.util"]
    util.Finalize(None, _shutdown_at_multiprocessing_child_exit, exitpriority=0)
    _watch_the_childs_run()


_child_uncaught: list[BaseException] = []  # what escaped this multiprocessing child's run() (_watch_the_childs_run)


def _watch_the_childs_run() -> None:
    """Called in the child before its ``run()`` (multiprocessing's after-fork callbacks): what escapes ``run()`` is
    kept for the child's exit. multiprocessing catches it, prints it and exits 1; Python 3.11 and 3.12 run the
    child's finalizers with it still in flight (``sys.exc_info()``), 3.13 only after it was handled, so it is
    taken where it escapes: the process object's ``run`` is wrapped for this child (an attribute of the instance;
    the class and the parent's object are untouched)."""
    process = sys.modules.get("multiprocessing.process")
    current = process.current_process() if process is not None else None
    run = getattr(current, "run", None)
    if current is None or run is None or getattr(run, "_tradeobs_watched", False):
        return

    def watched_run(*args: Any, **kwargs: Any) -> Any:
        try:
            return run(*args, **kwargs)
        except BaseException as exc:
            _child_uncaught.append(exc)
            raise

    watched_run._tradeobs_watched = True  # type: ignore[attr-defined]
    try:
        current.run = watched_run  # type: ignore[method-assign]
    except (AttributeError, TypeError) as exc:  # a Process subclass with __slots__ or a read-only run: unwatched
        warn_once("agent.mp_run", "tradeobs: cannot watch this multiprocessing child's run() (%s)", exc)


def _shutdown_at_multiprocessing_child_exit() -> None:
    """A ``multiprocessing`` child's exit: an exception that escaped its target (:func:`_watch_the_childs_run`, or
    still in flight here on Python 3.11 and 3.12). multiprocessing prints it on stderr and exits 1: before, it was in
    no log, and the exit's ``shutdown()`` marked the child cleanly stopped. ``SystemExit`` and ``KeyboardInterrupt``
    are no crash, as in the main process."""
    agent = _agent
    if agent is None or agent.pid != os.getpid():
        return
    exc = _child_uncaught[-1] if _child_uncaught else sys.exc_info()[1]
    if exc is not None and not isinstance(exc, (KeyboardInterrupt, SystemExit)):
        agent._crashed = True
        if agent.logs is not None:
            process = sys.modules.get("multiprocessing")
            name = process.current_process().name if process is not None else str(os.getpid())
            agent.logs.uncaught(exc, ending=True, process=name)
    agent.shutdown()


def _before_fork(agent: Agent) -> None:
    """A process that forks after ``init()`` forms a worker group with its children (it leads it: it already
    serves the Prometheus endpoint). Taken before the fork so the children find the group led."""
    try:
        if agent.group is not None:
            agent.group.before_fork()  # its thread is between two steps while the fork happens
        elif agent._starter:
            return  # gunicorn's arbiter: each worker joins the group by itself (_after_fork_in_child)
        elif agent._fork_store is None and not agent.disabled and agent.settings.multiprocess != "off":
            agent._fork_store = store = workers.open_store(agent.settings, workers.this_process())
            if store is not None:
                store.try_lead()
    except OSError as exc:  # the shared directory failed under us: the children go on as single processes
        warn_once("agent:fork_group", "tradeobs multiprocess: cannot form a worker group before fork: %s", exc)
    except Exception as exc:  # never break the fork
        internal_error("agent.before_fork", exc)


def _after_fork_in_parent(agent: Agent) -> None:
    try:
        if agent.group is not None:
            agent.group.after_fork_parent()
        elif agent._fork_store is not None:
            store, agent._fork_store = agent._fork_store, None
            agent.group = join.start_group(agent, store, None, adopt=agent.prometheus)
            if agent.live is not None and hasattr(agent.live, "_join_group"):
                agent.live._join_group()
    except Exception as exc:  # never break the parent
        internal_error("agent.after_fork_parent", exc)


def _after_fork_in_child(agent: Agent) -> None:
    """Each worker is its own instance: new ``service.instance.id`` and pid on every signal.

    The SDK restarts its own export threads after a fork. The Prometheus endpoint's listening socket belongs
    to the parent; the child joins the parent's worker group (the group's leader serves every worker's
    metrics), counting only what it records itself.
    """
    try:
        update = Resource({"service.instance.id": new_instance_id(), "process.pid": os.getpid()})
        agent.resource = agent.resource.merge(update)
        agent.pid = os.getpid()
        for p in (agent.tracer_provider, agent.meter_provider, agent.logger_provider):
            if p is not None:
                otel_private.update_resource(p, update)
        if agent.prometheus is not None:  # the parent's; its port must not stay bound here (see forget_after_fork)
            agent.prometheus.forget_after_fork()
            agent.prometheus = None
        if agent.logs is not None:
            agent.logs.after_fork()
        if agent.traces_file is not None:
            agent.traces_file.after_fork()
        if agent.nats is not None:  # threads do not survive fork: the child publishes as its own instance
            _start_nats(agent)
        inherited = agent.group.store if agent.group is not None else agent._fork_store
        if agent.group is not None:
            agent.group.forget_after_fork()
            agent.group = None
        agent._fork_store = None
        key, reader = None, None
        if inherited is not None:
            inherited.forget_after_fork()
            key = inherited.key
        elif agent._starter:  # a worker of gunicorn's arbiter, which ran init() with --preload
            agent._starter = False
            found = workers.detect(agent.settings.multiprocess)
            # only a worker (Arbiter.spawn_worker) joins: not a child that re-executes gunicorn (USR2)
            key, reader = (found, agent._sdk_reader) if found is not None and found.kind == "gunicorn" else (None, None)
            agent._sdk_reader = None
        if key is not None:
            store = workers.open_store(agent.settings, key)
            if store is not None:
                agent.group = join.start_group(agent, store, reader, baseline=agent.registry.fork_baseline)
                if agent.live is not None and hasattr(agent.live, "_join_group"):
                    agent.live.group = None
                    agent.live._join_group()
    except Exception as exc:  # never break the child process
        internal_error("agent.after_fork", exc)


# A spawn or forkserver child of a process that ran init(): says once if it records without calling init() itself
pool_child.initialised = lambda: _inits > 0


_group_meta_built: tuple[int, dict[str, Any]] = (-1, {})


def _group_meta() -> dict[str, Any]:
    """What this process's snapshot file tells the other members of its worker group: its declared contract
    multipliers (a worker that forgot one reported it at 1x among others at 50x, silently: ``Store``). Built again
    only once a declaration changed the table (``contracts.version``), not at each snapshot (up to five a second):
    the same object until then, which the store also keeps its meta by. Treat it as read-only."""
    global _group_meta_built
    from .trading import contracts

    version = contracts.version()
    built = _group_meta_built
    if built[0] != version:
        built = _group_meta_built = (version, {"multipliers": contracts.multipliers()})
    return built[1]
