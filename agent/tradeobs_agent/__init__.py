"""tradeobs: OpenTelemetry observability for Python trading systems.

>>> import tradeobs_agent
>>> agent = tradeobs_agent.init(service_name="algo-1")        # doctest: +SKIP
>>> fills = tradeobs_agent.counter("trading.orders.filled", unit="{order}")
>>> fills.bind(symbol="AAPL", side="buy").add(1)

Only the public API is re-exported here; implementation lives in small modules.
"""

from __future__ import annotations

# _as_main before anything else: under `python -m tradeobs_agent`, Ctrl-C while the package loads exits 130 without a
# traceback. _otel_env next: it masks the OTel SDK's line about a bad OTEL_RESOURCE_ATTRIBUTES pair, printed as the SDK
# loads.
from . import _as_main, _otel_env, trading  # noqa: F401
from ._version import __version__
from .agent import Agent, get_agent, init, is_initialized, shutdown
from .exceptions import TradeObsConfigError, TradeObsError
from .instrumentation import instrument_app
from .logs import correlate, get_logger
from .metrics import counter, gauge, get_registry, histogram, timed, updown_counter
from .options import (
    LiveOptions,
    LogOptions,
    MetricsOptions,
    OtlpOptions,
    PrometheusOptions,
    TracingOptions,
)
from .secret_values import register_secret
from .trading import TradingTelemetry

_LAZY = ("live", "demo", "testing")  # heavier submodules, imported on first use: tradeobs_agent.live.create_app()


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Agent",
    "LiveOptions",
    "LogOptions",
    "MetricsOptions",
    "OtlpOptions",
    "PrometheusOptions",
    "TracingOptions",
    "TradeObsConfigError",
    "TradeObsError",
    "TradingTelemetry",
    "__version__",
    "correlate",
    "counter",
    "gauge",
    "get_agent",
    "get_logger",
    "get_registry",
    "histogram",
    "init",
    "instrument_app",
    "is_initialized",
    "live",
    "register_secret",
    "shutdown",
    "timed",
    "trading",
    "updown_counter",
]
