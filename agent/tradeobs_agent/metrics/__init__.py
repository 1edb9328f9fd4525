"""In-process instruments with a bound fast path; one snapshot feeds every reader.

>>> fills = counter("trading.orders.filled", unit="{order}", description="Filled orders")
>>> aapl_buy = fills.bind(symbol="AAPL", side="buy")   # once, outside the loop
>>> aapl_buy.add(1)                                    # per event: a lock-free add
>>> aapl_buy.value
1

Why not the OTel SDK's synchronous instruments? ``Counter.add(1, attrs)`` in the
SDK hashes the attribute dict, walks the views and takes several locks on
every call (about 5 us). Here the attribute set is resolved once, at
``bind()``, into a series object that holds its own value. Every reader (the
OTel ``MetricReader`` s for OTLP via ``_internal.bridge``, the Prometheus
endpoint, the live stream's frames) reads :meth:`Registry.snapshot`, a copy of
these same series, so every reader sees exactly the values recorded.

Values are cumulative from the series' creation; that is what Prometheus and
the default OTLP temporality want.

Bad input never raises into the caller: negative or non-finite counter adds,
NaN gauge values and non-numeric values are dropped, counted in
``tradeobs.agent.measurements.invalid`` and warned about once per instrument.
Attribute values that are not ``str``/``bool``/``int``/``float`` are turned into
strings, and strings longer than :data:`MAX_ATTR_LEN` are truncated. Past the
instrument's series limit (the registry's ``max_series``; a gauge's ``max_gauge_series``, whose overflow
series keeps one value) new attribute sets share one overflow series,
``otel.metric.overflow=true``, as the OTel SDK specifies.

Several processes of one service (gunicorn/uvicorn workers) each keep their
own registry; :func:`~tradeobs_agent.metrics.snapshot.merge` combines their
snapshots, each instrument by its declared ``aggregation`` (``sum`` for
counters and histograms; for a gauge ``sum``, ``max``, ``min``, ``last``,
``entry`` (an average entry price, weighted by the processes' quantities) or
``pid``, the default: one series per process with a ``pid`` label).

Modules: ``_series`` (bound series, the hot path), ``_instruments``,
``_registry``, ``snapshot`` (the read model and the merge), ``wire`` (a
snapshot as bytes another process reads), ``_self`` (the agent's own
metrics), ``_timed``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._instruments import OVERFLOW_KEY, Counter, Gauge, Histogram, Instrument, UpDownCounter
from ._registry import MAX_ATTR_LEN, Registry, get_registry, reset_registry
from ._self import SelfMetrics
from ._series import (
    DEFAULT_BOUNDS,
    DEFAULT_LATENCY_BOUNDS,
    BoundCounter,
    BoundGauge,
    BoundHistogram,
    bucket_quantile,
)
from ._timed import timed
from .snapshot import (
    AGGREGATIONS,
    Aggregation,
    Exemplar,
    Family,
    GaugeFamily,
    HistogramFamily,
    HistogramPoint,
    NumberPoint,
    Part,
    Snapshot,
    SnapshotVisitor,
    SumFamily,
    merge,
)

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_BOUNDS",
    "DEFAULT_LATENCY_BOUNDS",
    "MAX_ATTR_LEN",
    "OVERFLOW_KEY",
    "Aggregation",
    "BoundCounter",
    "BoundGauge",
    "BoundHistogram",
    "Counter",
    "Exemplar",
    "Family",
    "Gauge",
    "GaugeFamily",
    "Histogram",
    "HistogramFamily",
    "HistogramPoint",
    "Instrument",
    "NumberPoint",
    "Part",
    "Registry",
    "SelfMetrics",
    "Snapshot",
    "SnapshotVisitor",
    "SumFamily",
    "UpDownCounter",
    "bucket_quantile",
    "counter",
    "gauge",
    "get_registry",
    "histogram",
    "merge",
    "reset_registry",
    "timed",
    "updown_counter",
]


def counter(name: str, unit: str = "", description: str = "") -> Counter:
    """Get or create a monotonic counter. ``unit`` follows UCUM (``s``, ``By``, ``{order}``).

    >>> counter("myapp.fills", unit="{fill}").bind(symbol="AAPL", side="buy").add(1)
    """
    return get_registry().counter(name, unit, description)


def updown_counter(name: str, unit: str = "", description: str = "") -> UpDownCounter:
    """Get or create an up-down counter: a sum that can go down, e.g. open orders.

    >>> open_orders = updown_counter("myapp.orders.open", unit="{order}").bind(venue="paper")
    >>> open_orders.add(1); open_orders.add(-1)
    """
    return get_registry().updown_counter(name, unit, description)


def gauge(name: str, unit: str = "", description: str = "", *, aggregation: Aggregation | None = None) -> Gauge:
    """Get or create a gauge (last value wins).

    >>> gauge("myapp.cash", unit="{USD}", aggregation="sum").bind(account="paper").set(100_000.0)

    ``aggregation`` is how the worker processes of one service combine it on the shared Prometheus endpoint
    and live view: ``"sum"``, ``"max"``, ``"min"``, ``"last"`` (the value set most recently in any process),
    ``"entry"`` (an average entry price ``<prefix>.avg_price`` beside a signed ``<prefix>.quantity`` gauge of the same
    attributes: the cost over the quantity of the processes' books, none when they are on both sides; see
    :func:`~tradeobs_agent.metrics.snapshot.entry_price`) or ``"pid"`` (the default: one series per process, with
    a ``pid`` label).
    """
    return get_registry().gauge(name, unit, description, aggregation=aggregation)


def histogram(name: str, unit: str = "", description: str = "", bounds: Sequence[float] | None = None) -> Histogram:
    """Get or create a histogram. Seconds (``unit="s"``) get latency buckets from 100 us to 10 s.

    >>> histogram("myapp.quote.age", unit="s").bind(venue="paper").record(0.002)
    """
    return get_registry().histogram(name, unit, description, bounds)
