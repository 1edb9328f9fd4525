"""Bound series: one attribute set of an instrument, holding its own value (the hot path).

>>> c = Registry().counter("orders").bind(side="buy")     # doctest: +SKIP
>>> c.add(1); c.value                                      # doctest: +SKIP
1
"""

from __future__ import annotations

import itertools
import math
import numbers
import sys
import threading
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry.trace import SpanContext

from ..types import AttrKey
from ._clock import points_ns
from .snapshot import Exemplar, HistogramPoint, NumberPoint

__all__ = [
    "DEFAULT_BOUNDS",
    "DEFAULT_LATENCY_BOUNDS",
    "BoundCounter",
    "BoundGauge",
    "BoundHistogram",
    "bucket_quantile",
]

_INF = math.inf
_FMAX = sys.float_info.max  # an int past it (10**400) is finite, but no float, sum or exposition can hold it
_new = tuple.__new__

# Seconds; fine at the low end where order latencies live, up to 10 s.
DEFAULT_LATENCY_BOUNDS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
DEFAULT_BOUNDS: tuple[float, ...] = (0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000)


class _Reporter(Protocol):
    """What a series tells its instrument: a measurement it dropped."""

    def invalid(self, what: str, value: object) -> None: ...


class _GaugeOwner(_Reporter, Protocol):
    """What a gauge series also tells its instrument: one of its series stopped having a value."""

    def unset_noted(self) -> None: ...


class PrometheusClientName:
    """prometheus_client's name for a call tradeobs names otherwise (``Counter.labels`` is ``bind``): reading it
    raises the AttributeError there would be, saying which call to use.

    A class attribute, not ``__getattr__``: a class with ``__getattr__`` takes a slower path for every attribute
    read, the hot path's ``bound.add`` included. Defined under ``if not TYPE_CHECKING`` in each class, so type
    checkers still report ``counter.labels(...)`` as the missing attribute it is.
    """

    __slots__ = ("hint", "name")

    def __init__(self, hint: str) -> None:
        self.hint = hint
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        cls = owner if obj is None else type(obj)
        name = self.name
        text = f"{getattr(cls, '__name__', '?')!r} object has no attribute {name!r} (prometheus_client's {name}()): "
        raise AttributeError(text + self.hint, name=name, obj=obj)


_BIND = "use bind(**labels), once, outside the hot loop, then %s on the series it returns"
_GAUGE_IS_SET = "a gauge holds the last value set: use set(value), or updown_counter(name) and add(%s)"
_TIMED = "use tradeobs_agent.timed(name), a decorator or with block"


class _Series:
    # __weakref__: Registry.restart keeps only the series something still holds
    __slots__ = ("__weakref__", "_instrument", "attributes", "key", "start_ns")

    def __init__(self, instrument: _Reporter, key: AttrKey) -> None:
        self._instrument = instrument
        self.key = key
        self.attributes: dict[str, Any] = dict(key)
        self.start_ns = points_ns()  # never after a point's time (a series made just before a step back)

    def point(self) -> Any:
        """This series' point in a snapshot (``None``: none yet)."""
        raise NotImplementedError

    def zero(self) -> None:
        """No measurement any more, from now on (``Registry.restart``)."""
        raise NotImplementedError

    def untouched(self) -> bool:
        """Nothing recorded since :meth:`zero` (what a reader then leaves out)."""
        raise NotImplementedError


class BoundCounter(_Series):
    """One attribute set of a :class:`Counter` (or :class:`UpDownCounter`).

    ``add(1)``, the common case, is lock-free and exact: it advances an
    ``itertools.count``, whose ``__next__`` runs in C under the GIL and so is
    atomic. :attr:`inc` is that C call itself (``bound.inc()`` == ``bound.add(1)``)
    for the hottest paths, e.g. one call per market data tick; what it returns
    is that count's internal position, not the counter's value (read
    :attr:`value`), so it is typed ``object``: use it as a statement. Other amounts
    take a lock (``+=`` on an attribute is several bytecodes and a thread switch
    between them would lose updates).
    :attr:`value` combines both. (Free-threaded CPython builds would need the
    lock on the unit path too; tradeobs targets the default GIL build.)
    """

    __slots__ = ("_lo", "_lock", "_reads", "_sum", "_tick", "inc")
    # ``add(1)`` as one C call. It returns ``itertools.count``'s position, which reads of ``value`` advance too (5
    # incs, a scrape, one more inc returned 6, the value being 6): nothing to use, hence ``object``, not ``int``.
    inc: Callable[[], object]
    if not TYPE_CHECKING:
        dec = PrometheusClientName("use add(-amount) (an updown_counter's series; a counter only goes up)")

    def __init__(self, instrument: _Reporter, key: AttrKey, monotonic: bool) -> None:
        super().__init__(instrument, key)
        self._sum: int | float = 0
        self._lock = threading.Lock()
        self._lo = 0 if monotonic else -_FMAX
        self._tick = self.inc = itertools.count().__next__
        self._reads = 0

    def add(self, amount: int | float = 1) -> None:
        """Add ``amount`` (must be finite, and non-negative for a monotonic counter)."""
        try:
            if amount == 1:
                self._tick()
                return
            n = amount if type(amount) is int or type(amount) is float else _number(amount)
            if n is not None and self._lo <= n <= _FMAX:
                with self._lock:
                    self._sum += n
                return
        except Exception:  # TypeError, or an odd type whose comparison raises: a dropped measurement
            self._instrument.invalid("value", amount)
            return
        self._instrument.invalid("value", amount)

    @property
    def value(self) -> int | float:
        """The cumulative value: every amount added so far."""
        with self._lock:
            # Each read also advances the count, so unit adds = position - reads so far.
            ones = self._tick() - self._reads
            self._reads += 1
            return self._sum + ones

    def point(self) -> NumberPoint:
        return _new(NumberPoint, (self.key, self.attributes, self.start_ns, self.value))  # type: ignore[no-any-return]

    def zero(self) -> None:
        """Back to 0, a new start (``Registry.restart``); this object, held by whoever bound it, keeps counting."""
        with self._lock:
            self._reads = self._tick() + 1  # the unit adds so far are read as none
            self._sum = 0
            self.start_ns = points_ns()

    def untouched(self) -> bool:
        return self.value == 0


class BoundGauge(_Series):
    """One attribute set of a :class:`Gauge`: the last value set wins; :meth:`unset` takes it away."""

    __slots__ = ("_owner", "value")
    if not TYPE_CHECKING:
        inc = PrometheusClientName(_GAUGE_IS_SET % "amount")
        dec = PrometheusClientName(_GAUGE_IS_SET % "-amount")
        set_to_current_time = PrometheusClientName("use set(time.time())")

    def __init__(self, instrument: _GaugeOwner, key: AttrKey) -> None:
        super().__init__(instrument, key)
        self._owner = instrument
        self.value: float | None = None  # None: no value (never set, or unset): no point

    def set(self, value: int | float) -> bool:
        """Set the value; ``False`` when it was no value (NaN, an infinity, not a number): dropped and counted."""
        try:
            n = value if type(value) is int or type(value) is float else _number(value)
            if n is not None and -_FMAX <= n <= _FMAX:
                self.value = n
                return True
        except Exception:  # not a number, or one whose comparison raises (Decimal NaN): dropped and counted
            self._instrument.invalid("value", value)
            return False
        self._instrument.invalid("value", value)
        return False

    def unset(self) -> None:
        """No value any more, until the next :meth:`set`: the series has no point, as before its first set (no
        sample at the Prometheus endpoint, no point in OTLP, none in a worker's file for the group's merge). For a
        value that stopped meaning anything, such as a flat position's average entry price; NaN instead would be
        a measurement (dropped and counted as bad input), and a number would be a lie."""
        if self.value is not None:
            self.value = None  # first: a reader that then sees the instrument's count unchanged sees the value gone
            self._owner.unset_noted()

    def zero(self) -> None:
        """No value, as before its first set (``Registry.restart``)."""
        self.unset()
        self.start_ns = points_ns()

    def untouched(self) -> bool:
        return self.value is None

    def point(self) -> NumberPoint | None:
        v = self.value
        return None if v is None else _new(NumberPoint, (self.key, self.attributes, self.start_ns, v))  # type: ignore[no-any-return]


class BoundHistogram(_Series):
    """One attribute set of a :class:`Histogram`, with explicit bucket bounds.

    ``record(v, exemplar=span_or_context)`` keeps, per bucket, the latest
    measurement that came with a sampled span, so a latency spike links to its trace.
    """

    __slots__ = ("_bounds", "_lock", "counts", "exemplars", "max", "min", "sum")
    if not TYPE_CHECKING:
        observe = PrometheusClientName("use record(value)")
        time = PrometheusClientName(_TIMED)

    def __init__(self, instrument: _Reporter, key: AttrKey, bounds: Sequence[float]) -> None:
        super().__init__(instrument, key)
        self._bounds = bounds
        self._lock = threading.Lock()
        self.counts = [0] * (len(bounds) + 1)
        self.sum: float = 0.0
        self.min: float = _INF
        self.max: float = -_INF
        # bucket -> (value, time_ns, trace_id, span_id): a plain tuple on the hot path, an Exemplar in snapshots
        self.exemplars: dict[int, tuple[float, int, int, int]] = {}

    def record(self, value: int | float, exemplar: Any = None) -> None:
        """Record ``value``; ``exemplar`` is an optional ``Span`` or ``SpanContext``."""
        n = value if type(value) is int or type(value) is float else _number(value)
        try:
            if n is not None and -_FMAX <= n <= _FMAX:
                i = bisect_left(self._bounds, n)
                with self._lock:
                    self.counts[i] += 1
                    self.sum += n
                    if n < self.min:
                        self.min = n
                    if n > self.max:
                        self.max = n
                if exemplar is not None:
                    self._exemplar(i, n, exemplar)
                return
        except TypeError:  # not a number: dropped and counted
            self._instrument.invalid("value", value)
            return
        self._instrument.invalid("value", value)

    def _exemplar(self, bucket: int, value: float, span: Any) -> None:
        try:
            ctx = span if type(span) is SpanContext else span.get_span_context()
            if type(ctx) is SpanContext:  # a 6-tuple: unpacked without its four properties
                trace_id, span_id, _, flags, _, valid = ctx
            else:
                trace_id, span_id, flags, valid = ctx.trace_id, ctx.span_id, ctx.trace_flags, ctx.is_valid
        except Exception:  # not a span or span context (or a hostile one): the value is kept, the exemplar not
            self._instrument.invalid("exemplar", span)
            return
        # sampled flag (bit 0) set implies a recorded span; is_valid excludes the all-zero ids.
        if flags & 1 and valid:
            # its time from the points' clock, which never goes back: Prometheus refuses an exemplar older than the
            # series' newest as out of order
            self.exemplars[bucket] = (value, points_ns(), trace_id, span_id)

    def zero(self) -> None:
        """No measurement, a new start (``Registry.restart``)."""
        with self._lock:
            self.counts = [0] * len(self.counts)
            self.sum, self.min, self.max = 0.0, _INF, -_INF
            self.exemplars = {}
            self.start_ns = points_ns()

    def untouched(self) -> bool:
        return not any(self.counts)

    @property
    def bounds(self) -> Sequence[float]:
        return self._bounds

    @property
    def count(self) -> int:
        return sum(self.counts)

    def snapshot(self) -> tuple[list[int], float, float, float]:
        """A consistent ``(counts, sum, min, max)`` copy."""
        with self._lock:
            return list(self.counts), self.sum, self.min, self.max

    def point(self) -> HistogramPoint:
        with self._lock:
            counts = list(self.counts)
            total, lo, hi = self.sum, self.min, self.max
        return _new(  # type: ignore[no-any-return]
            HistogramPoint,
            (
                self.key,
                self.attributes,
                self.start_ns,
                counts,
                sum(counts),
                total,
                lo,
                hi,
                {i: _new(Exemplar, e) for i, e in list(self.exemplars.items())},
            ),
        )

    def quantile(self, q: float) -> float | None:
        """Estimate the ``q`` quantile by linear interpolation within buckets (as PromQL does)."""
        counts, _, lo, hi = self.snapshot()
        return bucket_quantile(self._bounds, counts, lo, hi, q)


def bucket_quantile(bounds: Sequence[float], counts: Sequence[int], lo: float, hi: float, q: float) -> float | None:
    """The ``q`` quantile of bucket ``counts`` over ``bounds``, interpolating linearly within a bucket
    (as PromQL's ``histogram_quantile``) and clamped to the observed ``[lo, hi]``. ``None`` when empty.

    >>> bucket_quantile([1.0, 2.0], [0, 4, 0], 1.2, 1.8, 0.5)
    1.5
    """
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, c in enumerate(counts):
        if c and seen + c >= rank:
            lower = bounds[i - 1] if i > 0 else min(lo, bounds[0] if bounds else lo)
            upper = bounds[i] if i < len(bounds) else hi
            lower, upper = max(lower, lo), min(upper, hi)
            return lower + (upper - lower) * ((rank - seen) / c)
        seen += c
    return hi


def _number(value: object) -> int | float | None:
    """An int or float for a number of another type (``bool``, ``Decimal``, numpy scalars and ``bool_``), or None
    (a string is not a number here: ``"3"`` is a caller's bug, dropped and counted like any other non-number)."""
    if isinstance(value, int):
        return int(value)
    if isinstance(value, numbers.Number):
        try:
            return float(value)  # type: ignore[arg-type]
        except Exception:  # complex, or a Number whose __float__ raises: not a measurement
            return None
    t = type(value)
    if t.__module__ == "numpy" and t.__name__ in ("bool", "bool_"):  # numpy's bool (bool_ before 2.0) is no Number
        return int(bool(value))  # 1 or 0, as a Python bool is
    return None
