"""Option groups for ``init()``. Every field defaults to ``None`` (= not given, resolve it).

A misspelt keyword names the closest valid one (``OtlpOptions(endpont=...)``:
"did you mean 'endpoint'?"); the config file uses the same group names as
sections (``[otlp] endpoint = ...``, ``[logs] dir = ...``).

>>> import tradeobs_agent
>>> agent = tradeobs_agent.init(  # doctest: +SKIP
...     service_name="algo-1",
...     otlp=OtlpOptions(endpoint="http://collector:4317"),
...     prometheus=PrometheusOptions(port=9464),
...     live=False,                     # False switches a subsystem off
... )
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from ._names import keywords_checked_class

__all__ = ["LiveOptions", "LogOptions", "MetricsOptions", "OtlpOptions", "PrometheusOptions", "TracingOptions"]


@keywords_checked_class
@dataclass(frozen=True)
class OtlpOptions:
    endpoint: str | None = None
    protocol: str | None = None
    headers: Mapping[str, str] | None = None
    timeout: float | None = None
    insecure: bool | None = None
    retry_items: int | None = None
    retry_max_age: float | None = None
    enabled: bool | None = None  # the subsystem's switch, as otlp=False / otlp=True


@keywords_checked_class
@dataclass(frozen=True)
class PrometheusOptions:
    host: str | None = None
    port: int | None = None
    allowed_hosts: Sequence[str] | None = None
    enabled: bool | None = None  # the subsystem's switch, as otlp=False / otlp=True


@keywords_checked_class
@dataclass(frozen=True)
class TracingOptions:
    sampler: str | None = None
    sampler_arg: float | None = None
    file: str | None = None


@keywords_checked_class
@dataclass(frozen=True)
class MetricsOptions:
    export_interval: float | None = None
    max_series: int | None = None
    max_gauge_series: int | None = None
    symbol_allowlist: Sequence[str] | None = None
    contract_multipliers: Mapping[str, float] | None = None


@keywords_checked_class
@dataclass(frozen=True)
class LogOptions:
    dir: str | None = None
    level: str | None = None
    console: bool | None = None
    queue_size: int | None = None
    queue_policy: str | None = None
    max_bytes: int | None = None
    rotate_seconds: int | None = None
    backup_count: int | None = None
    block_timeout: float | None = None
    redact_patterns: Sequence[str] | None = None
    enabled: bool | None = None  # the subsystem's switch, as otlp=False / otlp=True


@keywords_checked_class
@dataclass(frozen=True)
class LiveOptions:
    hz: float | None = None
    max_clients: int | None = None
    event_buffer: int | None = None
    token: str | None = None
    session_ttl: float | None = None
    cors_origins: Sequence[str] | None = None
    allowed_hosts: Sequence[str] | None = None
    grafana_url: str | None = None
    nats_url: str | None = None
    money_decimals: int | None = None
    enabled: bool | None = None  # the subsystem's switch, as otlp=False / otlp=True


# group argument -> (option class, settings prefix, setting that False switches off, renames)
_GROUPS: dict[str, tuple[type, str, str | None, dict[str, str]]] = {
    "otlp": (OtlpOptions, "otlp_", "otlp_enabled", {"enabled": "otlp_enabled"}),
    "prometheus": (PrometheusOptions, "prometheus_", "prometheus_enabled", {"enabled": "prometheus_enabled"}),
    "tracing": (TracingOptions, "traces_", None, {}),
    "metrics": (MetricsOptions, "", None, {"export_interval": "metric_export_interval"}),
    "logs": (LogOptions, "log_", "logs_enabled", {"enabled": "logs_enabled"}),
    "live": (LiveOptions, "live_", "live_enabled", {"enabled": "live_enabled"}),
}


# The field a bare value given for a whole group most likely meant: init(otlp="http://c:4317"), init(prometheus=9465).
_SHORTHANDS: dict[str, tuple[str, type]] = {
    "otlp": ("endpoint", str),
    "prometheus": ("port", int),
    "logs": ("dir", str),
}


def grouped_setting(name: str) -> str | None:
    """How a setting that belongs to an option group is given to ``init()``, or ``None`` for any other name.

    The settings table names settings flat (``prometheus_port``, ``log_dir``), and so do the variables
    (``TRADEOBS_PROMETHEUS_PORT``); ``init()`` takes them in their group, and a newcomer writes the flat name first.

    >>> grouped_setting("prometheus_port")
    'prometheus=PrometheusOptions(port=...)'
    >>> grouped_setting("live_enabled")
    'live=False'
    >>> grouped_setting("service_name") is None
    True
    """
    for arg, (cls, prefix, switch, renames) in _GROUPS.items():
        if name == switch:
            return f"{arg}=False"
        for f in fields(cls):
            if renames.get(f.name, prefix + f.name) == name:
                return f"{arg}={cls.__name__}({f.name}=...)"
    return None


def flatten(groups: Mapping[str, Any]) -> dict[str, Any]:
    """Turn ``otlp=OtlpOptions(endpoint=...)`` / ``live=False`` into flat setting names.

    >>> flatten({"otlp": OtlpOptions(endpoint="http://c:4317"), "live": False, "logs": True})
    {'otlp_endpoint': 'http://c:4317', 'live_enabled': False, 'logs_enabled': True}
    """
    from .exceptions import TradeObsConfigError, shown_value

    flat: dict[str, Any] = {}
    for arg, value in groups.items():
        if value is None:
            continue
        cls, prefix, switch, renames = _GROUPS[arg]
        if isinstance(value, bool):
            if switch is None or value is True:
                if switch is not None:
                    flat[switch] = True
                continue
            flat[switch] = False
            continue
        if not isinstance(value, cls):
            allowed = f"{'an' if cls.__name__[0] in 'AEIOU' else 'a'} {cls.__name__}, True or False"
            field, kind = _SHORTHANDS.get(arg, ("", type(None)))  # init(otlp="http://c:4317"): say how it is given
            if type(value) is kind:
                allowed += f"; for the {field}: {arg}={cls.__name__}({field}={shown_value(value)})"
            raise TradeObsConfigError(arg, value, allowed)
        # Options configure the subsystem, they do not switch it on: TRADEOBS_OTLP_ENABLED=false (or the file's
        # `otlp = false`) still turns off the OTLP of a service whose code passes OtlpOptions(endpoint=...), as the
        # file's [otlp] section reads; `otlp=True` or OtlpOptions(enabled=True) is the explicit switch.
        for f in fields(value):  # type: ignore[arg-type]
            v = getattr(value, f.name)
            if v is not None:
                flat[renames.get(f.name, prefix + f.name)] = v
    return flat
