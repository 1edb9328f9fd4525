"""Resolve configuration once into one :class:`Settings` object.

>>> settings, report = resolve_settings(service_name="algo-1")
>>> settings.service_name, report.source("service_name")
('algo-1', 'argument')

Precedence, per setting, evaluated at call time (never at import):
explicit argument > ``TRADEOBS_*`` > standard ``OTEL_*`` > config file > default.

A bad *explicit* argument raises :class:`TradeObsConfigError` naming the setting,
the value and what is allowed. A bad environment or file value is a
:class:`Problem`: it is logged once as a warning with the same facts and the
setting falls back to its default, so a typo in the environment never stops a
trading service. ``tradeobs config check`` prints the same report.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import environment_variables as ev
from .exceptions import TradeObsConfigError

__all__ = [
    "FIELDS",
    "ConfigReport",
    "OtlpTarget",
    "Problem",
    "Settings",
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
TRADING_MODES = ("paper", "live")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


# --------------------------------------------------------------------------- parsers
# Each parser takes a raw value (a string from env, or a typed value from an
# argument or the TOML file) and returns the typed value or raises ValueError
# whose message says what is allowed.


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    s = str(raw).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ValueError("a boolean (true/false)")


def _number(kind: type, lo: float, hi: float) -> Callable[[Any], Any]:
    allowed = f"{'an integer' if kind is int else 'a number'} in [{lo:g}, {hi:g}]"

    def parse(raw: Any) -> Any:
        if isinstance(raw, bool):
            raise ValueError(allowed)
        try:
            val = kind(raw.strip() if isinstance(raw, str) else raw)
        except (TypeError, ValueError):
            raise ValueError(allowed) from None
        if not (lo <= val <= hi) or val != val:
            raise ValueError(allowed)
        return val

    parse.allowed = allowed  # type: ignore[attr-defined]
    return parse


def _choice(options: tuple[str, ...], upper: bool = False) -> Callable[[Any], str]:
    allowed = "one of: " + ", ".join(options)

    def parse(raw: Any) -> str:
        if not isinstance(raw, str):
            raise ValueError(allowed)
        s = raw.strip().upper() if upper else raw.strip().lower()
        if s not in options:
            raise ValueError(allowed)
        return s

    return parse


def _text(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 255:
        raise ValueError("a non-empty string of at most 255 characters")
    return raw.strip()


def _optional_text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError("a string")
    return raw.strip()


def _endpoint(raw: Any) -> str:
    allowed = "a URL such as http://localhost:4317"
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(allowed)
    s = raw.strip()
    if "://" not in s:
        s = "http://" + s
    u = urllib.parse.urlparse(s)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ValueError(allowed)
    try:
        u.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(allowed) from None
    return s


def _kv_map(raw: Any) -> dict[str, str]:
    """``k=v,k2=v2`` (W3C baggage-like, URL-decoded) or a mapping."""
    allowed = "comma-separated key=value pairs"
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    if not isinstance(raw, str):
        raise ValueError(allowed)
    out: dict[str, str] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(allowed)
        out[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return out


def _csv(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, (list, tuple)):
        return tuple(str(x).strip() for x in raw if str(x).strip())
    if not isinstance(raw, str):
        raise ValueError("a comma-separated list")
    return tuple(x.strip() for x in raw.split(",") if x.strip())


def _regex_list(raw: Any) -> tuple[str, ...]:
    """Regular expressions: a list, or a string holding a JSON array or a single pattern."""
    allowed = "a list of valid regular expressions (env: a JSON array, or one pattern)"
    if isinstance(raw, str):
        s = raw.strip()
        if s.startswith("["):
            import json

            try:
                raw = json.loads(s)
            except ValueError:
                raise ValueError(allowed) from None
        else:
            raw = [s] if s else []
    if not isinstance(raw, (list, tuple)) or not all(isinstance(x, str) for x in raw):
        raise ValueError(allowed)
    import re

    for pattern in raw:
        try:
            re.compile(pattern)
        except re.error:
            raise ValueError(allowed) from None
    return tuple(raw)


def _ms_to_s(raw: str) -> float:
    return float(raw) / 1000.0


# --------------------------------------------------------------------------- fields


@dataclass(frozen=True)
class Field:
    """One setting: where it comes from and what it accepts."""

    name: str
    env: str
    default: Any
    parse: Callable[[Any], Any]
    help: str
    otel: tuple[str, ...] = ()
    otel_convert: Callable[[str], Any] | None = None
    secret: bool = False

    @property
    def allowed(self) -> str:
        try:
            self.parse(object())
        except ValueError as exc:
            return str(exc)
        except Exception:  # pragma: no cover - parsers only raise ValueError
            pass
        return "see docs/configuration.md"


def _f(name: str, default: Any, parse: Callable[[Any], Any], help: str, **kw: Any) -> Field:
    return Field(name=name, env="TRADEOBS_" + name.upper(), default=default, parse=parse, help=help, **kw)


FIELDS: tuple[Field, ...] = (
    _f("service_name", "tradeobs-service", _text, "service.name", otel=(ev.OTEL_SERVICE_NAME,)),
    _f("service_version", "0.0.0", _text, "service.version"),
    _f("environment", "dev", _text, "deployment.environment"),
    _f("trading_mode", "paper", _choice(TRADING_MODES), "trading.mode resource attribute"),
    _f("resource_attributes", {}, _kv_map, "extra resource attributes", otel=(ev.OTEL_RESOURCE_ATTRIBUTES,)),
    _f("sdk_disabled", False, _bool, "turn the whole agent into a no-op", otel=(ev.OTEL_SDK_DISABLED,)),
    _f("otlp_enabled", True, _bool, "export traces, metrics and logs over OTLP"),
    _f(
        "otlp_endpoint",
        "",
        _endpoint,
        "collector endpoint (default per protocol)",
        otel=(ev.OTEL_EXPORTER_OTLP_ENDPOINT,),
    ),
    _f("otlp_protocol", "grpc", _choice(PROTOCOLS), "OTLP transport", otel=(ev.OTEL_EXPORTER_OTLP_PROTOCOL,)),
    _f("otlp_headers", {}, _kv_map, "OTLP request headers", otel=(ev.OTEL_EXPORTER_OTLP_HEADERS,), secret=True),
    _f(
        "otlp_timeout",
        10.0,
        _number(float, 0.1, 300),
        "OTLP export timeout, seconds",
        otel=(ev.OTEL_EXPORTER_OTLP_TIMEOUT,),
        otel_convert=_ms_to_s,
    ),
    _f(
        "otlp_insecure",
        None,
        _bool,
        "plain-text gRPC (default: true for http:// endpoints)",
        otel=(ev.OTEL_EXPORTER_OTLP_INSECURE,),
    ),
    _f("traces_sampler", "parentbased_always_on", _choice(SAMPLERS), "trace sampler", otel=(ev.OTEL_TRACES_SAMPLER,)),
    _f("traces_sampler_arg", 1.0, _number(float, 0.0, 1.0), "sampling ratio", otel=(ev.OTEL_TRACES_SAMPLER_ARG,)),
    _f(
        "metric_export_interval",
        10.0,
        _number(float, 0.05, 3600),
        "OTLP metric export interval, seconds",
        otel=(ev.OTEL_METRIC_EXPORT_INTERVAL,),
        otel_convert=_ms_to_s,
    ),
    _f("prometheus_enabled", True, _bool, "serve the Prometheus pull endpoint"),
    _f(
        "prometheus_host",
        "127.0.0.1",
        _text,
        "Prometheus endpoint bind address",
        otel=(ev.OTEL_EXPORTER_PROMETHEUS_HOST,),
    ),
    _f(
        "prometheus_port",
        9464,
        _number(int, 0, 65535),
        "Prometheus endpoint port (0 = any free port)",
        otel=(ev.OTEL_EXPORTER_PROMETHEUS_PORT,),
    ),
    _f("max_series", 2000, _number(int, 1, 1_000_000), "distinct attribute sets per instrument before overflow"),
    _f("symbol_allowlist", (), _csv, "symbols kept as the symbol label; others become 'other' (empty = all)"),
    _f("logs_enabled", True, _bool, "install the non-blocking log pipeline"),
    _f("log_dir", "logs", _optional_text, "directory for JSON-lines log files (empty = no files)"),
    _f("log_level", "INFO", _choice(LOG_LEVELS, upper=True), "level for captured logs"),
    _f("log_console", False, _bool, "readable console output"),
    _f("log_queue_size", 65536, _number(int, 16, 10_000_000), "bounded log queue capacity"),
    _f("log_queue_policy", "drop_newest", _choice(QUEUE_POLICIES), "what to do when the log queue is full"),
    _f("log_block_timeout", 0.1, _number(float, 0.0, 60), "policy 'block': longest wait for queue space, seconds"),
    _f("log_redact_patterns", (), _regex_list, "extra regexes scrubbed from log messages and attributes"),
    _f("log_max_bytes", 50 * 1024 * 1024, _number(int, 1024, 1 << 40), "rotate a log file past this size"),
    _f("log_rotate_seconds", 86400, _number(int, 0, 366 * 86400), "rotate a log file after this age (0 = off)"),
    _f("log_backup_count", 10, _number(int, 0, 10_000), "rotated, gzipped files kept per stream"),
    _f("live_enabled", True, _bool, "run the live SSE producer"),
    _f("live_hz", 10.0, _number(float, 0.1, 100), "live frames per second"),
    _f("live_max_clients", 5000, _number(int, 1, 1_000_000), "concurrent stream clients before 503"),
    _f("live_token", "", _optional_text, "secret for signed stream tokens (empty = no auth)", secret=True),
    _f("live_cors_origins", (), _csv, "CORS allowlist for the live endpoints"),
    _f("shutdown_timeout", 5.0, _number(float, 0.0, 300), "upper bound on shutdown(), seconds"),
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
    otlp_endpoint: str = ""
    otlp_protocol: str = "grpc"
    otlp_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    otlp_timeout: float = 10.0
    otlp_insecure: bool | None = None
    traces_sampler: str = "parentbased_always_on"
    traces_sampler_arg: float = 1.0
    metric_export_interval: float = 10.0
    prometheus_enabled: bool = True
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int = 9464
    max_series: int = 2000
    symbol_allowlist: tuple[str, ...] = ()
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
    live_token: str = field(default="", repr=False)
    live_cors_origins: tuple[str, ...] = ()
    shutdown_timeout: float = 5.0
    # Per-signal OTLP overrides from OTEL_EXPORTER_OTLP_<SIGNAL>_* (signal -> key -> value).
    otlp_per_signal: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)


assert {f.name for f in dataclasses.fields(Settings)} - {"otlp_per_signal"} == set(_BY_NAME), (
    "FIELDS and Settings disagree"
)


@dataclass(frozen=True)
class Problem:
    """A bad value from the environment or the config file, and what was used instead."""

    setting: str
    value: Any
    source: str
    allowed: str

    def __str__(self) -> str:
        return (
            f"ignoring {self.source} value {self.value!r} for {self.setting}: expected {self.allowed}; "
            f"using the default"
        )


@dataclass
class ConfigReport:
    """Where each setting came from, and every problem found while resolving."""

    sources: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    config_file: str | None = None

    def source(self, name: str) -> str:
        return self.sources.get(name, "default")


# --------------------------------------------------------------------------- file


def _load_file(path_arg: str | None, env: Mapping[str, str], report: ConfigReport) -> dict[str, Any]:
    explicit = path_arg or env.get(ev.TRADEOBS_CONFIG_FILE)
    candidates = [Path(explicit)] if explicit else [Path("tradeobs.toml"), Path("pyproject.toml")]
    for path in candidates:
        if not path.is_file():
            if explicit:
                report.problems.append(Problem("config_file", str(path), "TRADEOBS_CONFIG_FILE", "an existing file"))
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            report.problems.append(Problem("config_file", str(path), "file", f"valid TOML ({exc})"))
            return {}
        if path.name == "pyproject.toml" and not explicit:
            data = data.get("tool", {}).get("tradeobs", {})
            if not data:
                continue
        elif "tool" in data and "tradeobs" in data.get("tool", {}):
            data = data["tool"]["tradeobs"]
        report.config_file = str(path)
        flat: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, dict) and key not in ("resource_attributes", "otlp_headers"):
                for sub, subval in value.items():  # [otlp] endpoint = ... -> otlp_endpoint
                    flat[f"{key}_{sub}"] = subval
            else:
                flat[key] = value
        for key in list(flat):
            if key not in _BY_NAME:
                report.problems.append(Problem(key, flat.pop(key), f"file {path}", "a known setting name"))
        return flat
    return {}


# --------------------------------------------------------------------------- resolve


def resolve_settings(
    env: Mapping[str, str] | None = None,
    config_file: str | None = None,
    **explicit: Any,
) -> tuple[Settings, ConfigReport]:
    """Resolve every setting. Raises :class:`TradeObsConfigError` only for explicit arguments."""
    env = os.environ if env is None else env
    report = ConfigReport()
    unknown = set(explicit) - set(_BY_NAME)
    if unknown:
        name = sorted(unknown)[0]
        raise TradeObsConfigError(name, explicit[name], "a known setting name (see docs/configuration.md)")
    file_values = _load_file(config_file, env, report)
    values: dict[str, Any] = {}
    for f in FIELDS:
        values[f.name] = _resolve_one(f, explicit, env, file_values, report)
    values["otlp_per_signal"] = _per_signal(env, report)
    # As in the OTel spec, service.name in the resource attributes counts when nothing names the service directly.
    attr_name = values["resource_attributes"].get("service.name")
    if attr_name and report.source("service_name") == "default":
        values["service_name"] = attr_name
        report.sources["service_name"] = report.source("resource_attributes")
    return Settings(**values), report


def _resolve_one(
    f: Field, explicit: Mapping[str, Any], env: Mapping[str, str], file_values: Mapping[str, Any], report: ConfigReport
) -> Any:
    if f.name in explicit and explicit[f.name] is not None:
        raw = explicit[f.name]
        try:
            value = f.parse(raw)
        except ValueError as exc:
            raise TradeObsConfigError(f.name, raw, str(exc)) from None
        report.sources[f.name] = "argument"
        return value
    candidates: list[tuple[str, Any, Callable[[Any], Any]]] = []
    if env.get(f.env, "").strip():
        candidates.append((f.env, env[f.env], f.parse))
    for var in f.otel:
        if env.get(var, "").strip():
            conv = f.otel_convert
            parse = f.parse if conv is None else _compose(f.parse, conv)
            candidates.append((var, env[var], parse))
    if f.name in file_values:
        candidates.append((f"file {report.config_file}", file_values[f.name], f.parse))
    for source, raw, parse in candidates:
        try:
            value = parse(raw)
        except (ValueError, TypeError, ArithmeticError) as exc:
            shown = "<redacted>" if f.secret else raw
            report.problems.append(
                Problem(f.name, shown, source, str(exc) if isinstance(exc, ValueError) else f.allowed)
            )
            break  # a bad value at the highest present source falls back to the default, as documented
        report.sources[f.name] = source
        return value
    report.sources[f.name] = "default"
    return f.default


def _compose(parse: Callable[[Any], Any], convert: Callable[[str], Any]) -> Callable[[Any], Any]:
    def parse_converted(raw: Any) -> Any:
        return parse(convert(raw))

    return parse_converted


_SIGNAL_KEYS: dict[str, Callable[[Any], Any]] = {
    "ENDPOINT": _endpoint,
    "PROTOCOL": _choice(PROTOCOLS),
    "HEADERS": _kv_map,
    "TIMEOUT": _compose(_number(float, 0.1, 300), _ms_to_s),
}


def _per_signal(env: Mapping[str, str], report: ConfigReport) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for signal in ev.SIGNALS:
        for key, parse in _SIGNAL_KEYS.items():
            for var in (f"TRADEOBS_OTLP_{signal.upper()}_{key}", f"OTEL_EXPORTER_OTLP_{signal.upper()}_{key}"):
                raw = env.get(var, "").strip()
                if not raw:
                    continue
                try:
                    out.setdefault(signal, {})[key.lower()] = parse(raw)
                    report.sources[f"otlp_{signal}_{key.lower()}"] = var
                except (ValueError, TypeError):
                    shown = "<redacted>" if key == "HEADERS" else raw
                    report.problems.append(Problem(f"otlp_{signal}_{key.lower()}", shown, var, _allowed(parse)))
                break
    return out


def _allowed(parse: Callable[[Any], Any]) -> str:
    try:
        parse(object())
    except ValueError as exc:
        return str(exc)
    except Exception:
        pass
    return "a valid value"


# --------------------------------------------------------------------------- OTLP per signal


@dataclass(frozen=True)
class OtlpTarget:
    """Where and how one signal is exported over OTLP."""

    endpoint: str
    protocol: str
    headers: Mapping[str, str] = field(repr=False)
    timeout: float
    insecure: bool


def otlp_for(settings: Settings, signal: str) -> OtlpTarget:
    """The OTLP target for ``signal`` (``traces``, ``metrics`` or ``logs``).

    Per-signal variables win over the generic ones. As the OTLP spec says, a
    generic ``http/protobuf`` endpoint gets ``/v1/<signal>`` appended; a
    per-signal endpoint is used as given.
    """
    per = settings.otlp_per_signal.get(signal, {})
    protocol = per.get("protocol", settings.otlp_protocol)
    if "endpoint" in per:
        endpoint = per["endpoint"]
    else:
        base = settings.otlp_endpoint or ("http://localhost:4317" if protocol == "grpc" else "http://localhost:4318")
        endpoint = base if protocol == "grpc" else base.rstrip("/") + f"/v1/{signal}"
    headers = {**settings.otlp_headers, **per.get("headers", {})}
    insecure = settings.otlp_insecure if settings.otlp_insecure is not None else endpoint.startswith("http://")
    return OtlpTarget(endpoint, protocol, headers, per.get("timeout", settings.otlp_timeout), insecure)


def describe(settings: Settings, report: ConfigReport) -> list[tuple[str, str, str]]:
    """Rows ``(setting, shown value, source)`` for ``tradeobs config check``; secrets are masked."""
    rows = []
    for f in FIELDS:
        value = getattr(settings, f.name)
        shown = ("<set>" if value else "<unset>") if f.secret else repr(value)
        rows.append((f.name, shown, report.source(f.name)))
    for signal, per in settings.otlp_per_signal.items():
        for key, value in per.items():
            shown = "<set>" if key == "headers" else repr(value)
            rows.append((f"otlp_{signal}_{key}", shown, report.source(f"otlp_{signal}_{key}")))
    return rows
