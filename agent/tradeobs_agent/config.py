"""Resolve configuration once into one :class:`Settings` object.

>>> settings, report = resolve_settings(service_name="algo-1")
>>> settings.service_name, report.source("service_name")
('algo-1', 'argument')

Precedence, per setting, evaluated at call time (never at import):
explicit argument > ``TRADEOBS_*`` > standard ``OTEL_*`` > config file > default.

One parser per setting (the :data:`FIELDS` table) checks a value wherever it
comes from, so ``tradeobs config check``, ``init()`` and ``live.create_app()``
accept exactly the same values. A bad *explicit* argument raises
:class:`TradeObsConfigError` naming the setting, the value and what is allowed;
an unknown one raises :class:`UnknownSettingError` naming the closest valid
name. A bad environment or file value, an unknown ``TRADEOBS_*`` variable and
an unknown file key are each a :class:`Problem`: logged once as a warning by
``init()`` and the setting falls back to its default, so a typo in the
environment never stops a trading service. ``tradeobs config check`` prints the
same report and exits 1.

An empty value (``TRADEOBS_LOG_DIR=``, ``dir = ""``) means "not set" unless the
setting gives empty a meaning (``Field.empty``: no log files, no auth, ...);
then it means that from every source.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import _parsers as p
from . import environment_variables as ev
from ._config_file import load as _load_file
from ._config_report import ConfigReport, Problem
from ._errors import pytest_plugin_flag
from ._names import did_you_mean
from .exceptions import TradeObsConfigError, UnknownSettingError
from .redaction import default_redactor
from .secret_values import MIN_LENGTH
from .secrets_keys import is_secret_key

__all__ = [
    "FIELDS",
    "ConfigReport",
    "OtlpTarget",
    "Problem",
    "Settings",
    "agent_variables",
    "check_argument",
    "otlp_for",
    "resolve_settings",
]

_log = logging.getLogger("tradeobs.config")

SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
PROTOCOLS = ("grpc", "http/protobuf")
QUEUE_POLICIES = ("drop_newest", "drop_oldest", "block")
TRADING_MODES = ("paper", "live", "backtest")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MULTIPROCESS_MODES = ("auto", "on", "off")
DAY_PNL_MODES = ("change", "reported")


# --------------------------------------------------------------------------- fields


@dataclass(frozen=True)
class Field:
    """One setting: where it comes from and what it accepts.

    ``otel_parse`` reads the standard ``OTEL_*`` fallback when it reads differently
    (milliseconds; booleans as the OpenTelemetry specification reads them). ``empty``,
    when set, is what an empty value means (from any source); otherwise an empty value
    is "not set". ``shown`` masks part of a bad
    value before it is reported (a URL's credentials); ``secret`` masks all of it
    (in errors only where there is no ``shown``; always in ``tradeobs config check``).
    """

    name: str
    env: str
    default: Any
    parse: Callable[[Any], Any]
    help: str
    otel: tuple[str, ...] = ()
    otel_parse: Callable[[Any], Any] | None = None
    secret: bool = False
    empty: str = ""
    shown: Callable[[Any], Any] | None = None  # how a bad value is shown in a problem or an error

    @property
    def allowed(self) -> str:
        return p.allowed(self.parse)


def _f(name: str, default: Any, parse: Callable[[Any], Any], help: str, **kw: Any) -> Field:
    return Field(name=name, env="TRADEOBS_" + name.upper(), default=default, parse=parse, help=help, **kw)


_SECONDS_TIMEOUT = (0.1, 300.0)
_SECONDS_INTERVAL = (0.05, 3600.0)

FIELDS: tuple[Field, ...] = (
    _f("service_name", "tradeobs-service", p.text, "service.name", otel=(ev.OTEL_SERVICE_NAME,)),
    _f(
        "service_version",
        "0.0.0",
        p.text,
        "service.version: your service's release; `tradeobs demo` reports tradeobs' own version when no source sets it",
    ),
    _f("environment", "dev", p.text, "deployment.environment"),
    _f(
        "trading_mode",
        "paper",
        p.choice(TRADING_MODES),
        "trading.mode resource attribute; backtest (a backtest or replay): no collector found by itself, no "
        "Prometheus endpoint and no worker group unless configured",
    ),
    _f("resource_attributes", {}, p.kv_map, "extra resource attributes", otel=(ev.OTEL_RESOURCE_ATTRIBUTES,)),
    _f(
        "sdk_disabled",
        False,
        p.boolean,
        "turn the whole agent into a no-op",
        otel=(ev.OTEL_SDK_DISABLED,),
        otel_parse=p.otel_boolean,
    ),
    _f("otlp_enabled", True, p.boolean, "export traces, metrics and logs over OTLP"),
    _f(
        "otlp_endpoint",
        "",
        p.endpoint,
        "collector endpoint (default per protocol)",
        otel=(ev.OTEL_EXPORTER_OTLP_ENDPOINT,),
        shown=p.without_userinfo,
    ),
    _f("otlp_protocol", "grpc", p.choice(PROTOCOLS), "OTLP transport", otel=(ev.OTEL_EXPORTER_OTLP_PROTOCOL,)),
    _f("otlp_headers", {}, p.headers, "OTLP request headers", otel=(ev.OTEL_EXPORTER_OTLP_HEADERS,), secret=True),
    _f(
        "otlp_timeout",
        10.0,
        p.number(float, *_SECONDS_TIMEOUT, "seconds"),
        "OTLP export timeout, seconds",
        otel=(ev.OTEL_EXPORTER_OTLP_TIMEOUT,),
        otel_parse=p.milliseconds(*_SECONDS_TIMEOUT),
    ),
    _f(
        "otlp_insecure",
        None,
        p.boolean,
        "plain-text gRPC (default: true for http:// endpoints)",
        otel=(ev.OTEL_EXPORTER_OTLP_INSECURE,),
        otel_parse=p.otel_boolean,
    ),
    _f(
        "otlp_retry_items",
        50_000,
        p.number(int, 0, 10_000_000),
        "spans or log records kept per signal while the collector is unreachable (0 = none: a failed batch is dropped)",
    ),
    _f(
        "otlp_retry_max_age",
        300.0,
        p.number(float, 1.0, 86400.0, "seconds"),
        "longest a kept batch waits for the collector before it is dropped, seconds",
    ),
    _f(
        "traces_sampler",
        "parentbased_always_on",
        p.choice(SAMPLERS),
        "trace sampler",
        otel=(ev.OTEL_TRACES_SAMPLER,),
    ),
    _f("traces_sampler_arg", 1.0, p.number(float, 0.0, 1.0), "sampling ratio", otel=(ev.OTEL_TRACES_SAMPLER_ARG,)),
    _f(
        "traces_file",
        "auto",
        p.optional_text,
        "OTLP/JSON lines trace file: a path, or 'auto' (<log_dir>/traces.jsonl when no collector is used)",
        empty="no trace file",
    ),
    _f(
        "metric_export_interval",
        10.0,
        p.number(float, *_SECONDS_INTERVAL, "seconds"),
        "OTLP metric export interval, seconds (under 15 for a crashed instance's gauges to leave the P&L totals once "
        "a new instance replaces it: `tradeobs docs alerts`)",
        otel=(ev.OTEL_METRIC_EXPORT_INTERVAL,),
        otel_parse=p.milliseconds(*_SECONDS_INTERVAL),
    ),
    _f("prometheus_enabled", True, p.boolean, "serve the Prometheus pull endpoint"),
    _f(
        "prometheus_host",
        "127.0.0.1",
        p.text,
        "Prometheus endpoint bind address",
        otel=(ev.OTEL_EXPORTER_PROMETHEUS_HOST,),
    ),
    _f(
        "prometheus_port",
        9464,
        p.number(int, 0, 65535),
        "Prometheus endpoint port (0 = any free port)",
        otel=(ev.OTEL_EXPORTER_PROMETHEUS_PORT,),
    ),
    _f(
        "prometheus_allowed_hosts",
        (),
        p.host_names,
        "host names besides loopback ones the Prometheus endpoint answers on a loopback address (a guard against "
        "DNS rebinding; `tradeobs docs metrics`, Security)",
        empty="loopback names only",
    ),
    _f(
        "max_series",
        2000,
        p.number(int, 1, 1_000_000),
        "distinct attribute sets per counter or histogram before overflow (past it, sets lose their labels)",
    ),
    _f(
        "max_gauge_series",
        20_000,
        p.number(int, 1, 1_000_000),
        "distinct attribute sets per gauge before overflow (past it, the values of new sets are lost)",
    ),
    _f(
        "symbol_allowlist",
        (),
        p.csv,
        "symbols kept as the symbol label; others become 'other'",
        empty="every symbol is kept",
    ),
    _f(
        "contract_multipliers",
        {},
        p.multipliers,
        "contract multipliers declared at init(), as trading.instrument() declares them: notionals are qty * price "
        "* multiplier (ESZ6=50,CLF7=1000); a symbol not declared has 1",
    ),
    _f("logs_enabled", True, p.boolean, "install the non-blocking log pipeline"),
    _f("log_dir", "logs", p.optional_text, "directory for JSON-lines log files", empty="no log files"),
    _f("log_level", "INFO", p.choice(LOG_LEVELS, upper=True), "level for captured logs"),
    _f("log_console", False, p.boolean, "readable console output"),
    _f("log_queue_size", 65536, p.number(int, 16, 10_000_000), "bounded log queue capacity"),
    _f("log_queue_policy", "drop_newest", p.choice(QUEUE_POLICIES), "what to do when the log queue is full"),
    _f(
        "log_block_timeout",
        0.1,
        p.number(float, 0.0, 60, "seconds"),
        "policy 'block': longest wait for queue space, seconds",
    ),
    _f("log_redact_patterns", (), p.regex_list, "extra regexes scrubbed from log messages and attributes"),
    _f("log_max_bytes", 50 * 1024 * 1024, p.number(int, 1024, 1 << 40, "bytes"), "rotate a log file past this size"),
    _f(
        "log_rotate_seconds",
        86400,
        p.number(int, 0, 366 * 86400, "seconds"),
        "rotate a log file after this age (0 = off)",
    ),
    _f("log_backup_count", 10, p.number(int, 0, 10_000), "rotated, gzipped files kept per stream"),
    _f(
        "live_enabled",
        True,
        p.boolean,
        "run the live SSE producer (this process's /telemetry stream; publishing to NATS follows live_nats_url alone)",
    ),
    _f("live_hz", 10.0, p.number(float, 0.1, 100, "frames per second"), "live frames per second"),
    _f("live_max_clients", 5000, p.number(int, 1, 1_000_000), "concurrent stream clients before 503"),
    _f(
        "live_event_buffer",
        2048,
        p.number(int, 16, 10_000_000),
        "trading events (fills, rejects, alerts) the process's event bus keeps for its readers (the live "
        "stream, the worker group, the NATS publisher; each polls it several times a second), about 0.7 KiB "
        "each; older ones are evicted and counted",
    ),
    _f(
        "live_nats_url",
        "",
        p.nats_urls,
        "publish live frames and events to NATS JetStream for `tradeobs live gateway` (needs tradeobs[nats])",
        secret=True,
        empty="not published",
        shown=p.nats_urls_shown,
    ),
    _f(
        "live_token",
        "",
        p.optional_text,
        "secret for signed stream tokens",
        secret=True,
        empty="no authentication",
    ),
    _f(
        "live_session_ttl",
        8 * 3600.0,
        p.number(float, 60.0, 7 * 86400.0, "seconds"),
        "lifetime of the cookie a live_token link is exchanged for (the link's own token is short: a URL is written "
        "down), seconds",
    ),
    _f(
        "live_cors_origins",
        (),
        p.origins,
        "CORS allowlist for the live endpoints",
        empty="no cross-origin access",
    ),
    _f(
        "live_allowed_hosts",
        (),
        p.host_names,
        "host names besides loopback ones the live endpoints answer with no live_token on a loopback address "
        "(a guard against DNS rebinding; `tradeobs docs live`, Security)",
        empty="loopback names only",
    ),
    _f(
        "live_grafana_url",
        "",
        p.base_url,
        "Grafana the live page links orders and fills to (Explore with the trace id, the order drill-down)",
        empty="no links",
        shown=p.without_userinfo,
    ),
    _f(
        "live_money_decimals",
        2,
        p.number(int, 0, 12),
        "decimals the live page shows money with (P&L, equity; notionals and exposure 2 fewer): 2 for an account "
        "kept in dollars, 8 for one kept in BTC (its P&L of +0.0012 read +0.00)",
    ),
    _f(
        "trading_day_start",
        "",
        p.trading_day_start,
        "when the desk's trading day starts, for the live page's day P&L: HH:MM and an IANA zone, e.g. "
        "'17:00 America/New_York' (without a zone: the server's local time; DST days: `tradeobs docs live`)",
        empty="the server's local midnight (time.localtime)",
    ),
    _f(
        "day_pnl",
        "change",
        p.choice(DAY_PNL_MODES),
        "what the live page's day P&L is: change (the P&L minus its value when the trading day started: for a P&L "
        "your service counts from its own start) or reported (the P&L as your service reports it: it resets it when "
        "the trading day starts, as a broker's day P&L does)",
    ),
    _f(
        "multiprocess",
        "auto",
        p.choice_or_boolean(MULTIPROCESS_MODES, "on", "off"),
        "one Prometheus endpoint and live view for all worker processes of a service: auto (gunicorn/uvicorn "
        "workers and fork children are detected), on, or off",
    ),
    _f(
        "multiprocess_dir",
        "",
        p.optional_text,
        "where the worker processes share their snapshots (made if missing; a tradeobs-<uid> directory is made in it)",
        empty="/dev/shm, else the temporary directory",
    ),
    _f("shutdown_timeout", 5.0, p.number(float, 0.0, 300, "seconds"), "upper bound on shutdown(), seconds"),
)
_BY_NAME = {f.name: f for f in FIELDS}


@dataclass(frozen=True)
class Settings:
    """The resolved configuration. Built by :func:`resolve_settings`, read everywhere else."""

    service_name: str = "tradeobs-service"
    service_version: str = "0.0.0"
    environment: str = "dev"
    trading_mode: str = "paper"
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    sdk_disabled: bool = False
    otlp_enabled: bool = True
    otlp_endpoint: str = field(default="", repr=False)  # may hold a user:password
    otlp_protocol: str = "grpc"
    otlp_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    otlp_timeout: float = 10.0
    otlp_insecure: bool | None = None
    otlp_retry_items: int = 50_000
    otlp_retry_max_age: float = 300.0
    traces_sampler: str = "parentbased_always_on"
    traces_sampler_arg: float = 1.0
    traces_file: str = "auto"
    metric_export_interval: float = 10.0
    prometheus_enabled: bool = True
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int = 9464
    prometheus_allowed_hosts: tuple[str, ...] = ()
    max_series: int = 2000
    max_gauge_series: int = 20_000
    symbol_allowlist: tuple[str, ...] = ()
    contract_multipliers: Mapping[str, float] = field(default_factory=dict)
    logs_enabled: bool = True
    log_dir: str = "logs"
    log_level: str = "INFO"
    log_console: bool = False
    log_queue_size: int = 65536
    log_queue_policy: str = "drop_newest"
    log_block_timeout: float = 0.1
    log_redact_patterns: tuple[str, ...] = ()
    log_max_bytes: int = 50 * 1024 * 1024
    log_rotate_seconds: int = 86400
    log_backup_count: int = 10
    live_enabled: bool = True
    live_hz: float = 10.0
    live_max_clients: int = 5000
    live_event_buffer: int = 2048
    live_nats_url: str = field(default="", repr=False)
    live_token: str = field(default="", repr=False)
    live_cors_origins: tuple[str, ...] = ()
    live_session_ttl: float = 8 * 3600.0
    live_allowed_hosts: tuple[str, ...] = ()
    live_grafana_url: str = ""
    live_money_decimals: int = 2
    trading_day_start: str = ""  # "" = the server's local midnight; else "HH:MM" or "HH:MM Area/City"
    day_pnl: str = "change"  # or "reported": the service's P&L resets at the trading day's start
    multiprocess: str = "auto"
    multiprocess_dir: str = ""
    shutdown_timeout: float = 5.0
    # Per-signal OTLP overrides from OTEL_EXPORTER_OTLP_<SIGNAL>_* (signal -> key -> value).
    otlp_per_signal: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)


assert {f.name for f in dataclasses.fields(Settings)} - {"otlp_per_signal"} == set(_BY_NAME), (
    "FIELDS and Settings disagree"
)


# --------------------------------------------------------------------------- variables

_SIGNAL_KEYS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    # key -> (parser for TRADEOBS_OTLP_<SIGNAL>_<KEY>, parser for OTEL_EXPORTER_OTLP_<SIGNAL>_<KEY>)
    "ENDPOINT": (p.endpoint, p.endpoint),
    "PROTOCOL": (p.choice(PROTOCOLS), p.choice(PROTOCOLS)),
    "HEADERS": (p.headers, p.headers),
    "TIMEOUT": (p.number(float, *_SECONDS_TIMEOUT, "seconds"), p.milliseconds(*_SECONDS_TIMEOUT)),
}
_PREFIX = "TRADEOBS_"


def agent_variables() -> frozenset[str]:
    """Every environment variable the agent reads (``TRADEOBS_*`` and the standard ``OTEL_*`` fallbacks)."""
    names = {f.env for f in FIELDS} | {v for f in FIELDS for v in f.otel}
    names |= {v for k, v in vars(ev).items() if k.startswith(("TRADEOBS_", "OTEL_")) and isinstance(v, str)}
    for signal in ev.SIGNALS:
        for key in _SIGNAL_KEYS:
            names |= {f"TRADEOBS_OTLP_{signal.upper()}_{key}", f"OTEL_EXPORTER_OTLP_{signal.upper()}_{key}"}
    return frozenset(names)


def _unknown_variables(env: Mapping[str, str], report: ConfigReport) -> None:
    """A ``TRADEOBS_*`` name nothing reads is a typo: report it with the closest known name (never its value)."""
    known = agent_variables() | ev.OTHER_TRADEOBS_VARIABLES
    suffixes = {k[len(_PREFIX) :]: k for k in known if k.startswith(_PREFIX)}
    for name in sorted(env):
        if not name.upper().startswith(_PREFIX) or name in known:
            continue
        best = did_you_mean(name[len(_PREFIX) :], suffixes, quote=lambda s: suffixes[s])
        report.problems.append(Problem.unknown(name, f"environment variable {name}", best))


def _misspelt_otel_variables(env: Mapping[str, str], report: ConfigReport) -> None:
    """An ``OTEL_*`` name that OpenTelemetry does not read but is a typo or two away from one it does (the OTel
    SDK's and the exporters' names, from the installed packages): one problem naming the closest (never its
    value). Other tools share the prefix: an unknown name that is not that close is none of the agent's business."""
    names = [n for n in env if n.upper().startswith("OTEL_")]
    if not names:
        return
    from ._otel_env import near_miss, otel_variables

    known = otel_variables() | agent_variables()
    for name in sorted(names):
        if name in known:
            continue
        best = near_miss(name, known)
        if best is not None:
            text = f"environment variable {name} is not one OpenTelemetry reads, and is ignored; did you mean {best}?"
            report.problems.append(Problem(name, None, f"environment variable {name}", best, text))


# --------------------------------------------------------------------------- resolve


def check_argument(name: str, value: Any) -> Any:
    """``value`` for setting ``name`` parsed exactly as ``init()`` parses it; raises :class:`TradeObsConfigError`.

    >>> check_argument("live_cors_origins", ["https://desk.example"])
    ('https://desk.example',)
    """
    f = _BY_NAME[name]
    try:
        return f.parse(value)
    except ValueError as exc:
        raise TradeObsConfigError(name, _shown(f, value), str(exc)) from None
    except Exception as exc:  # a hostile value (a mapping whose items' str() raises): still the setting's error
        allowed = f"a value this setting can read ({type(exc).__name__} reading it)"
        raise TradeObsConfigError(name, "<redacted>" if f.secret else value, allowed) from None


def _shown(f: Field, raw: Any) -> Any:
    """A bad value as a problem or an error shows it: all masked for a secret setting, its URL credentials masked
    (``Field.shown``), and any text scrubbed as the logs are (``api_key=...``, a ``Bearer`` token, a known secret
    value): a problem is printed on stderr and by ``tradeobs config check``, where no log redaction runs."""
    if f.secret and f.shown is None:
        return "<redacted>"
    shown = f.shown(raw) if f.shown else raw
    return default_redactor().text(shown) if isinstance(shown, str) else shown


def resolve_settings(
    env: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    *,
    config_file_label: str = "config_file",
    **explicit: Any,
) -> tuple[Settings, ConfigReport]:
    """Resolve every setting. Raises :class:`TradeObsConfigError` only for explicit arguments.

    ``config_file_label`` is how the caller names ``config_file`` in problems (``--file`` for the CLI).
    """
    env = os.environ if env is None else env
    if config_file is not None and not isinstance(config_file, str | os.PathLike):
        raise TradeObsConfigError(config_file_label, config_file, "a path (a str or an os.PathLike)")
    report = ConfigReport()
    for name in sorted(explicit):
        if name not in _BY_NAME:
            hint = did_you_mean(name, _BY_NAME) or "see `tradeobs docs configuration`"
            raise UnknownSettingError(f"unknown setting {name!r}; {hint}", name, explicit[name], hint)
    _unknown_variables(env, report)
    _misspelt_otel_variables(env, report)
    file_values = _load_file(config_file, config_file_label, env, _BY_NAME, report)
    values: dict[str, Any] = {}
    for f in FIELDS:
        values[f.name] = _resolve_one(f, explicit, env, file_values, report)
    values["otlp_per_signal"] = _per_signal(env, report)
    _printed_by_the_sdk(env, report)
    _identity_from_attributes(values, report)
    _backtest_defaults(values, report)
    _pytest_defaults(values, report)
    settings = Settings(**values)
    _endpoint_shape(settings, report)
    return settings, report


# What a backtest (or replay) does not do unless configured to: it is no service. Its Prometheus endpoint took the
# port the live service's scrape job names (so the service, started later, served nothing), a group of parallel
# backtests merged their unrelated runs as one service's workers, and a collector found at localhost:4317 received
# its simulated P&L and orders under the service's name, where they paged on-call (and again when the run ended:
# TradingServiceTelemetryMissing). OTLP's part is in ``providers.otlp_mode``: no collector is looked for.
_BACKTEST_DEFAULTS = {"prometheus_enabled": False, "multiprocess": "off"}


def _printed_by_the_sdk(env: Mapping[str, str], report: ConfigReport) -> None:
    """A bad ``OTEL_RESOURCE_ATTRIBUTES`` holding a secret, with the OTel SDK imported before ``tradeobs_agent``: the
    SDK printed the bad pair on stderr as it is before the agent could mask its line (``_otel_env``). Said once,
    masked, beside the bad value, with what to do; the line itself cannot be taken back."""
    var = ev.OTEL_RESOURCE_ATTRIBUTES
    raw = env.get(var, "")
    if not raw or not any(p.setting == "resource_attributes" and p.source == var for p in report.problems):
        return
    from . import _otel_env

    shown = default_redactor().text(raw)
    if shown == raw or not _otel_env.sdk_loaded_first():
        return
    report.problems.append(
        Problem(
            "resource_attributes",
            shown,
            var,
            "key=value pairs",
            f"the OpenTelemetry SDK was imported before tradeobs_agent and may have printed {var}'s bad pair on "
            f"stderr unmasked (as 'Invalid key value resource attribute pair ...'; here: {shown!r}); tradeobs cannot "
            f"take that line back: write {var} as comma-separated key=value pairs, keep secrets out of it, and "
            "import tradeobs_agent before opentelemetry.sdk",
        )
    )


# The OTLP specification's default ports: a gRPC client at the HTTP port (or the other way round) fails every
# export, and only as "export failed" (gRPC to an HTTP/1 server gives no reason of its own).
_PORT_OF = {"grpc": 4317, "http/protobuf": 4318}
_WIRE = {"grpc": "gRPC", "http/protobuf": "HTTP"}
_SIGNAL_PATH = re.compile(r"/v1/(traces|metrics|logs)/?$")


def _endpoint_shape(settings: Settings, report: ConfigReport) -> None:
    """An OTLP endpoint that is valid as a URL but cannot work as it is used: the other protocol's well-known port
    (4317 gRPC, 4318 HTTP), a signal's path in the generic endpoint (the agent appends ``/v1/<signal>`` for
    OTLP/HTTP: ``.../v1/traces/v1/traces``), or a per-signal OTLP/HTTP endpoint without one (used as given: 404).
    Each is said once, as a problem, before a single export fails; the value is still used."""
    if not settings.otlp_enabled:
        return
    said: set[str] = set()
    for signal in ev.SIGNALS:
        per = settings.otlp_per_signal.get(signal, {})
        protocol = per.get("protocol", settings.otlp_protocol)
        p_name = f"otlp_{signal}_protocol" if "protocol" in per else "otlp_protocol"
        if "endpoint" in per:
            endpoint, e_name = per["endpoint"], f"otlp_{signal}_endpoint"
        elif settings.otlp_endpoint:
            endpoint, e_name = settings.otlp_endpoint, "otlp_endpoint"
        else:
            continue  # the protocol's own default endpoint
        message = _endpoint_mismatch(endpoint, e_name, report.source(e_name), protocol, p_name, report, signal)
        if message and message not in said:
            said.add(message)
            report.problems.append(Problem(e_name, shown_url(endpoint), report.source(e_name), "", message))


def _endpoint_mismatch(
    endpoint: str, e_name: str, e_source: str, protocol: str, p_name: str, report: ConfigReport, signal: str
) -> str:
    """What is wrong with sending ``signal`` to ``endpoint`` over ``protocol`` ('' when nothing is seen)."""
    u = urllib.parse.urlsplit(endpoint)
    shown = shown_url(endpoint)
    where = f"{e_name} {shown!r} (from {e_source})"
    try:
        port = u.port
    except ValueError:  # the parser refused it already
        return ""
    other = "http/protobuf" if protocol == "grpc" else "grpc"
    if port == _PORT_OF[other]:
        variable = "TRADEOBS_OTLP_PROTOCOL" if p_name == "otlp_protocol" else f"TRADEOBS_OTLP_{signal.upper()}_PROTOCOL"
        return (
            f"{where} is the OTLP/{_WIRE[other]} port ({port}), but {p_name} {protocol!r} (from "
            f"{report.source(p_name)}) sends OTLP/{_WIRE[protocol]}: every export would fail. Set {variable}={other}, "
            f"or give the collector's OTLP/{_WIRE[protocol]} port ({_PORT_OF[protocol]})"
        )
    if protocol != "http/protobuf":
        return ""
    path = u.path.rstrip("/")
    if e_name == "otlp_endpoint" and _SIGNAL_PATH.search(u.path):
        base = urllib.parse.urlunsplit(u._replace(path=_SIGNAL_PATH.sub("", u.path), query="", fragment=""))
        return (
            f"{where} ends with a signal's path, but it is the receiver's base URL: the agent appends /v1/<signal> "
            f"over OTLP/HTTP, so traces would go to {shown_url(_signal_url(endpoint, 'traces'))!r} (404). Give the "
            f"base URL ({shown_url(base)!r}), or per-signal endpoints (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, ...), "
            "which are used as given"
        )
    if e_name != "otlp_endpoint" and not path:
        return (
            f"{where} has no path, and a per-signal endpoint is used exactly as given over OTLP/HTTP (the collector "
            f"answers 404 at '/'): add /v1/{signal} ({shown_url(_signal_url(endpoint, signal))!r}), or set the "
            f"generic endpoint (TRADEOBS_OTLP_ENDPOINT), to which the agent appends it"
        )
    return ""


# What a process under a test suite does not do unless configured to (tradeobs' pytest plugin, tradeobs_pytest, turns
# this on): a bot that calls init() at import, imported by its tests, bound the Prometheus port (pytest-xdist's
# workers fought for it, each losing one saying so), wrote logs/ into the project (one system.jsonl shared by every
# worker), and looked for a collector at localhost:4317. OTLP's part is in ``providers.otlp_mode``.
_PYTEST_DEFAULTS = {"prometheus_enabled": False, "multiprocess": "off", "log_dir": ""}
PYTEST_SOURCE = "default (under pytest: tradeobs_pytest)"
_under_pytest = False


def use_pytest_defaults(on: bool) -> None:
    """Whether ``init()`` takes the defaults of a process under a test suite (``_PYTEST_DEFAULTS``: no Prometheus
    endpoint, no worker group, no log files, no collector looked for) for the settings nothing configures, outside
    tradeobs' pytest plugin (which turns them on by itself: :func:`under_pytest`)."""
    global _under_pytest
    _under_pytest = bool(on)


def under_pytest() -> bool:
    """:func:`use_pytest_defaults` is on, or tradeobs' pytest plugin runs this process's tests with its defaults (its
    ini option ``tradeobs_pytest_defaults``, true unless set to false)."""
    return _under_pytest or pytest_plugin_flag("TEST_DEFAULTS")


def _pytest_defaults(values: dict[str, Any], report: ConfigReport) -> None:
    if not under_pytest():
        return
    for name, value in _PYTEST_DEFAULTS.items():
        if report.source(name) == "default":
            values[name] = value
            report.sources[name] = PYTEST_SOURCE


def _backtest_defaults(values: dict[str, Any], report: ConfigReport) -> None:
    if values["trading_mode"] != "backtest":
        return
    for name, value in _BACKTEST_DEFAULTS.items():
        if report.source(name) == "default":
            values[name] = value
            report.sources[name] = "default (trading_mode=backtest)"


# The settings the resource's identity attributes come from, and the attribute(s) that name each (first wins).
_IDENTITY_ATTRIBUTES = {
    "service_name": ("service.name",),
    "service_version": ("service.version",),
    "environment": ("deployment.environment.name", "deployment.environment"),
}


def _identity_from_attributes(values: dict[str, Any], report: ConfigReport) -> None:
    """As in the OTel spec, ``service.name``, ``service.version`` and ``deployment.environment[.name]`` in the
    resource attributes (``OTEL_RESOURCE_ATTRIBUTES``) count when no source sets the setting itself: they were
    replaced by the defaults (a platform's ``deployment.environment=prod`` was exported as ``dev``)."""
    attrs = values["resource_attributes"]
    for name, keys in _IDENTITY_ATTRIBUTES.items():
        key = next((k for k in keys if str(attrs.get(k, "")).strip()), None)
        if key is None or report.source(name) != "default" or any(p.setting == name for p in report.problems):
            continue
        source = f"{report.source('resource_attributes')} ({key})"
        try:
            values[name] = _BY_NAME[name].parse(attrs[key])
        except ValueError as exc:
            report.problems.append(Problem(name, _shown(_BY_NAME[name], attrs[key]), source, str(exc)))
            continue
        report.sources[name] = source


def _given(f: Field, raw: Any) -> bool:
    """Whether ``raw`` sets ``f``: an empty string only does when the setting gives empty a meaning."""
    return not (isinstance(raw, str) and not raw.strip()) or bool(f.empty)


def _resolve_one(
    f: Field, explicit: Mapping[str, Any], env: Mapping[str, str], file_values: Mapping[str, Any], report: ConfigReport
) -> Any:
    if f.name in explicit and explicit[f.name] is not None:
        value = check_argument(f.name, explicit[f.name])
        report.sources[f.name] = "argument"
        return value
    candidates: list[tuple[str, Any, Callable[[Any], Any]]] = []
    if f.env in env and _given(f, env[f.env]):
        candidates.append((f.env, env[f.env], f.parse))
    for var in f.otel:  # the OTel spec: an empty OTEL_* variable is unset
        if env.get(var, "").strip():
            candidates.append((var, env[var], f.otel_parse or f.parse))
    if f.name in file_values and _given(f, file_values[f.name]):
        candidates.append((f"file {report.config_file}", file_values[f.name], f.parse))
    for source, raw, parse in candidates:
        try:
            value = parse(raw)
        except (ValueError, TypeError, ArithmeticError) as exc:
            shown = _shown(f, raw)
            allowed = str(exc) if isinstance(exc, ValueError) else p.allowed(parse)
            report.problems.append(Problem(f.name, shown, source, allowed))
            break  # a bad value at the highest present source falls back to the default, as documented
        report.sources[f.name] = source
        return value
    report.sources[f.name] = "default"
    return f.default


def _per_signal(env: Mapping[str, str], report: ConfigReport) -> dict[str, dict[str, Any]]:
    """The per-signal variables: each overrides its generic setting for one signal, unless that setting is an
    explicit ``init()`` argument, which wins over every variable (as an argument to an SDK exporter does)."""
    out: dict[str, dict[str, Any]] = {}
    for signal in ev.SIGNALS:
        for key, (ours, standard) in _SIGNAL_KEYS.items():
            if report.source(f"otlp_{key.lower()}") == "argument":
                continue
            sig = signal.upper()
            for var, parse in ((f"TRADEOBS_OTLP_{sig}_{key}", ours), (f"OTEL_EXPORTER_OTLP_{sig}_{key}", standard)):
                raw = env.get(var, "").strip()
                if not raw:
                    continue
                try:
                    out.setdefault(signal, {})[key.lower()] = parse(raw)
                    report.sources[f"otlp_{signal}_{key.lower()}"] = var
                except ValueError as exc:
                    shown = "<redacted>" if key == "HEADERS" else default_redactor().text(p.without_userinfo(raw))
                    report.problems.append(Problem(f"otlp_{signal}_{key.lower()}", shown, var, str(exc)))
                break
    return out


# --------------------------------------------------------------------------- OTLP per signal


@dataclass(frozen=True)
class OtlpTarget:
    """Where and how one signal is exported over OTLP."""

    endpoint: str
    protocol: str
    headers: Mapping[str, str] = field(repr=False)
    timeout: float
    insecure: bool

    @property
    def shown(self) -> str:
        """The endpoint as messages, reports and ``doctor`` show it (:func:`shown_url`)."""
        return str(shown_url(self.endpoint))


def shown_url(raw: Any) -> Any:
    """A URL as reports, messages and ``doctor`` show it: a ``user:password@`` replaced, and the rest scrubbed as the
    logs are (``?api_key=...``, ``?token=...``, a known secret value: ``[REDACTED]``)."""
    shown = p.without_userinfo(raw)
    return default_redactor().text(shown) if isinstance(shown, str) else shown


def _default_endpoint(protocol: str) -> str:
    """The OTLP spec's default endpoint for ``protocol`` (gRPC 4317, HTTP 4318, on localhost)."""
    return "http://localhost:4317" if protocol == "grpc" else "http://localhost:4318"


def otlp_for(settings: Settings, signal: str) -> OtlpTarget:
    """The OTLP target for ``signal`` (``traces``, ``metrics`` or ``logs``).

    Per-signal variables win over the generic ones (per-signal headers replace the generic headers). As the
    OTLP spec says, a generic ``http/protobuf`` endpoint gets ``/v1/<signal>`` appended to its path (a query
    string stays after it); a per-signal endpoint is used as given.
    """
    per = settings.otlp_per_signal.get(signal, {})
    protocol = per.get("protocol", settings.otlp_protocol)
    if "endpoint" in per:
        endpoint = per["endpoint"]
    else:
        base = settings.otlp_endpoint or _default_endpoint(protocol)
        endpoint = base if protocol == "grpc" else _signal_url(base, signal)
    # Replaced, not merged, as the SDK reads OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS: a signal sent elsewhere with its
    # own headers does not also carry the generic ones (a platform's token to a vendor's endpoint).
    headers = per.get("headers", settings.otlp_headers)
    if protocol == "grpc":
        endpoint, headers = _grpc_userinfo(endpoint, headers)
    insecure = settings.otlp_insecure if settings.otlp_insecure is not None else endpoint.startswith("http://")
    return OtlpTarget(endpoint, protocol, headers, per.get("timeout", settings.otlp_timeout), insecure)


def _signal_url(base: str, signal: str) -> str:
    """``base`` with ``/v1/<signal>`` appended to its path; its query string (``?api_key=...``) kept after it.

    >>> _signal_url("https://collector.example:4318/otlp/?api_key=k", "metrics")
    'https://collector.example:4318/otlp/v1/metrics?api_key=k'
    """
    u = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit(u._replace(path=u.path.rstrip("/") + f"/v1/{signal}"))


def _grpc_userinfo(endpoint: str, headers: Mapping[str, str]) -> tuple[str, Mapping[str, str]]:
    """A gRPC endpoint's ``user:password@`` as the ``authorization: Basic`` header an OTLP/HTTP exporter would send
    for it (requests does), the endpoint without it. gRPC has no credentials in its target: kept there, every
    export failed ("Misformatted domain name"). Headers that already authorize are left as they are."""
    bare, credential = p.url_basic_auth(endpoint)
    if credential is None or any(k.lower() == "authorization" for k in headers):
        return bare, headers
    return bare, {**headers, "authorization": "Basic " + credential}


def _url_credentials(urls: str) -> list[str]:
    """The ``user:password`` (or token) of each URL in ``urls`` (comma-separated), the password on its own, and the
    value of each query parameter whose name is secret (``?api_key=...``, as some OTLP services take their key)."""
    out: list[str] = []
    for url in urls.split(","):
        parts = urllib.parse.urlsplit(url.strip())
        out.extend(value for name, value in urllib.parse.parse_qsl(parts.query) if is_secret_key(name))
        netloc = parts.netloc
        if "@" not in netloc:
            continue
        userinfo = netloc.rpartition("@")[0]
        out.append(userinfo)
        out.append(p.basic_credential(userinfo))  # as a gRPC endpoint's credentials are sent (otlp_for)
        _, sep, password = userinfo.partition(":")
        if sep:
            out.extend([password, urllib.parse.unquote(password)])
    return out


def secret_setting_values(settings: Settings) -> list[str]:
    """The secret values held by settings, for ``secret_values`` to mask: ``live_token``, each OTLP header
    whose name is secret (``authorization``, ``x-api-key``), with the credential after a ``Bearer``/``Basic``
    scheme on its own as well, and the ``user:password`` and secret query values (``?api_key=``) of the OTLP
    endpoints and NATS URLs."""
    out = [settings.live_token] if settings.live_token else []
    endpoints = [settings.otlp_endpoint, *(per.get("endpoint", "") for per in settings.otlp_per_signal.values())]
    for urls in (*endpoints, settings.live_nats_url):
        out.extend(_url_credentials(urls))
    maps = [settings.otlp_headers, *(per.get("headers", {}) for per in settings.otlp_per_signal.values())]
    for headers in maps:
        for name, value in headers.items():
            if not is_secret_key(name):
                continue
            out.append(value)
            scheme, _, credential = value.strip().partition(" ")
            if credential and scheme.lower() in ("bearer", "basic"):
                out.append(credential)
    return [v.strip() for v in out if len(v.strip()) >= MIN_LENGTH]


def describe(settings: Settings, report: ConfigReport) -> list[tuple[str, str, str]]:
    """Rows ``(setting, shown value, source)`` for ``tradeobs config check``; secrets are masked."""
    rows = []
    for f in FIELDS:
        value = getattr(settings, f.name)
        shown = ("<set>" if value else "<unset>") if f.secret else repr(value)
        if f.name == "resource_attributes":  # masked as they are in the resource itself (api_key=..., a URL's password)
            shown = repr(default_redactor().attributes(value))
        if f.name == "otlp_endpoint":  # a user:password in it is masked; the default depends on the protocol
            shown = repr(shown_url(value)) if value else ""
            shown = shown or f"'' ({settings.otlp_protocol}: {_default_endpoint(settings.otlp_protocol)})"
        rows.append((f.name, shown, report.source(f.name)))
    for signal, per in settings.otlp_per_signal.items():
        for key, value in per.items():
            shown = "<set>" if key == "headers" else repr(shown_url(value) if key == "endpoint" else value)
            rows.append((f"otlp_{signal}_{key}", shown, report.source(f"otlp_{signal}_{key}")))
    return rows
