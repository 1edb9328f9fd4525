"""Instruments: a name, a unit, a description and their bound series; each snapshots itself as one family."""

from __future__ import annotations

import math
import operator
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import compress
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ..types import AttrKey
from ._series import (
    _BIND,
    _GAUGE_IS_SET,
    _TIMED,
    DEFAULT_BOUNDS,
    DEFAULT_LATENCY_BOUNDS,
    BoundCounter,
    BoundGauge,
    BoundHistogram,
    PrometheusClientName,
    _Series,
)
from .snapshot import (
    AGGREGATIONS,
    Aggregation,
    Family,
    GaugeFamily,
    HistogramFamily,
    HistogramPoint,
    NumberPoint,
    SumFamily,
)

__all__ = ["OVERFLOW_KEY", "Counter", "Gauge", "Histogram", "Instrument", "UpDownCounter"]

OVERFLOW_KEY: AttrKey = (("otel.metric.overflow", True),)

B = TypeVar("B", bound=_Series)

_COUNTS = operator.attrgetter("counts")


class _Owner(Protocol):
    """What an instrument needs from its registry."""

    max_series: int
    max_gauge_series: int

    def normalize(self, instrument: Instrument[Any], attributes: Mapping[str, Any]) -> AttrKey: ...

    def on_overflow(self, instrument: Instrument[Any]) -> None: ...

    def on_invalid(self, instrument: Instrument[Any], what: str, value: object) -> None: ...


class Instrument(Generic[B]):
    """Base of every instrument: binding attribute sets to series, bounded, with an overflow series.

    ``aggregation`` says how the processes of one service combine this instrument's series (see
    :data:`~tradeobs_agent.metrics.snapshot.Aggregation`); ``allowed`` lists what a kind accepts.
    """

    kind = ""
    default_aggregation: Aggregation = "sum"
    allowed: tuple[Aggregation, ...] = ("sum", "pid")

    def __init__(
        self, registry: _Owner, name: str, unit: str, description: str, *, aggregation: Aggregation | None = None
    ) -> None:
        self.registry = registry
        self.name = name
        self.unit = unit
        self.description = description
        self.aggregation: Aggregation = self.check_aggregation(name, aggregation)
        self.declared = aggregation is not None  # False: the kind's default, which a later declaration replaces
        self._series: dict[AttrKey, B] = {}
        self._cache: dict[Any, B] = {}
        self._lock = threading.Lock()
        # How many times one of its series stopped having a value (a gauge's ``unset``): its points are then not
        # just more than before but others. A reader that lays series out by place (``metrics.wire``) reads this
        # before the values, and lays them out again when it moved.
        self.unsets = 0
        # Series zeroed by Registry.restart (tests) that nothing has recorded into since: no point, as a series made
        # now would have none yet; empty (the one check readers make) unless the registry was restarted.
        self._quiet: set[AttrKey] = set()

    # -- binding: all the per-attribute-set work happens here, once
    def bind(self, /, **attributes: Any) -> B:
        """Resolve an attribute set to its series. Do this once, outside the hot loop. (``self`` is positional-only:
        an attribute may be called ``self``.)"""
        return self.bind_key(self.registry.normalize(self, attributes))

    def bind_key(self, key: AttrKey) -> B:
        """The series for an already normalised attribute set."""
        series = self._series.get(key)
        if series is not None:
            return series
        with self._lock:
            series = self._series.get(key)
            if series is None:
                if len(self._series) >= self.limit() and key != OVERFLOW_KEY:
                    return self._overflow()
                series = self._new(key)
                self._series[key] = series
        return series

    def limit(self) -> int:
        """How many attribute sets this instrument binds before new ones go to its overflow series: the registry's
        ``max_series`` (a gauge's: ``max_gauge_series``)."""
        return self.registry.max_series

    def _overflow(self) -> B:
        # Called with self._lock held.
        series = self._series.get(OVERFLOW_KEY)
        if series is None:
            series = self._new(OVERFLOW_KEY)
            self._series[OVERFLOW_KEY] = series
        self.registry.on_overflow(self)
        return series

    def _bound_for(self, attributes: Mapping[str, Any] | None) -> B:
        if attributes is None or (type(attributes) is dict and not attributes):
            return self.bind_key(())
        try:
            cache_key: Any = tuple(attributes.items())
            series = self._cache.get(cache_key)
        except Exception:  # unhashable values, or not a mapping: the slow path (normalize fixes and counts)
            return self.bind_key(self.registry.normalize(self, attributes))
        if series is None:
            series = self.bind_key(self.registry.normalize(self, attributes))
            if len(self._cache) < 4 * self.limit():
                self._cache[cache_key] = series
        return series

    @classmethod
    def check_aggregation(cls, name: str, aggregation: object) -> Aggregation:
        """``aggregation`` if this kind accepts it (``None``: the kind's default); else ``ValueError``."""
        if aggregation is None:
            return cls.default_aggregation
        if aggregation not in cls.allowed:
            allowed = ", ".join(repr(a) for a in cls.allowed)
            raise ValueError(f"{cls.kind} {name!r}: aggregation={aggregation!r} is not one of {allowed}")
        return aggregation  # type: ignore[return-value]

    def _new(self, key: AttrKey) -> B:
        raise NotImplementedError

    def family(self) -> Family | None:
        """This instrument's part of a :class:`~tradeobs_agent.metrics.snapshot.Snapshot` (None: no series)."""
        raise NotImplementedError

    def points(self) -> Iterator[Any]:
        """Each series' point, as :meth:`family` has them, made only as it is read (an unset gauge has none).

        For a reader that writes the points out one at a time (the Prometheus endpoint): it keeps none alive.
        A whole family's points at 1,000 symbols outlive the garbage collections their own allocations set off,
        so they are promoted to the collector's oldest generation, and enough of that starts a full collection
        of the process, which holds the GIL, so the trading thread too, for tens of milliseconds.
        """
        for s in self._shown():
            p = s.point()
            if p is not None:
                yield p

    def stream(self) -> Family | None:
        """:meth:`family`, its ``points`` an iterator of :meth:`points` (read them once, in order), for a reader
        that writes each point out and drops it. None: no series (gauges without a value show only on reading)."""
        raise NotImplementedError

    def write_values(
        self,
        out: list[float],
        fi: int,
        exemplars: list[tuple[Any, ...]] | None,
        layout: list[tuple[AttrKey, int]] | None = None,
    ) -> int:
        """Append this instrument's values to ``out`` in :meth:`family` order, without building a family (the fast
        path of ``metrics.wire``); returns how many points :meth:`family` would have. ``fi`` and ``exemplars``:
        a histogram appends ``(fi, point index, bucket, exemplar tuple)`` for each exemplar it holds (none when
        ``exemplars`` is None). ``layout`` (when given) gets ``(key, start_ns)`` of each series written, in order:
        what the file's layout says of the values just written (a writer asks for it when the shape changed)."""
        raise NotImplementedError

    def invalid(self, what: str, value: object) -> None:
        """A measurement or attribute of this instrument was dropped or fixed (counted, said once)."""
        self.registry.on_invalid(self, what, value)

    def series(self) -> list[B]:
        """Every series (for code that reads series directly; readers use :meth:`Registry.snapshot`)."""
        return list(self._series.values())

    def let_go(self) -> list[tuple[AttrKey, weakref.ref[B]]]:
        """Drop every series, returning weak references to them (``Registry.restart``: those still held elsewhere
        are given back with :meth:`take_back`)."""
        with self._lock:
            held = [(key, weakref.ref(s)) for key, s in self._series.items()]
            self._series = {}
            self._cache = {}
            self._quiet = set()
            self._let_go()
        return held

    def _let_go(self) -> None:
        """What a kind keeps of its series besides ``_series`` (a histogram's last written values)."""

    def take_back(self, key: AttrKey, series: B) -> None:
        """A series :meth:`let_go` dropped that is still held: zeroed, it is this instrument's again, with no point
        until something is recorded into it (a counter bound at import shows in a test that adds to it, not in
        every later test at 0)."""
        series.zero()
        with self._lock:
            self._series.setdefault(key, series)
            self._quiet.add(key)

    def _shown(self) -> list[B]:
        """The series readers show: all of them, but a zeroed one nothing recorded into since (:meth:`take_back`)."""
        series = list(self._series.values())
        quiet = self._quiet
        if not quiet:
            return series
        shown = []
        for s in series:
            if s.key in quiet:
                if s.untouched():
                    continue
                quiet.discard(s.key)
            shown.append(s)
        return shown

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} unit={self.unit!r} series={len(self._series)}>"


class Counter(Instrument[BoundCounter]):
    """A monotonic sum, e.g. orders submitted.

    >>> c = counter("demo.events", unit="{event}")
    >>> c.add(2, {"symbol": "AAPL"}); c.bind(symbol="AAPL").value
    2
    """

    kind = "counter"
    monotonic = True
    if not TYPE_CHECKING:  # prometheus_client's names (type checkers keep reporting them as missing)
        labels = PrometheusClientName(_BIND % "add()")
        inc = PrometheusClientName("use add(amount)")
        dec = PrometheusClientName(
            "a counter only goes up; for a count that goes down use updown_counter(name) and add(-amount)"
        )

    def _new(self, key: AttrKey) -> BoundCounter:
        return BoundCounter(self, key, self.monotonic)

    def add(self, amount: int | float = 1, attributes: Mapping[str, Any] | None = None) -> None:
        self._bound_for(attributes).add(amount)

    def write_values(
        self,
        out: list[float],
        fi: int,
        exemplars: list[tuple[Any, ...]] | None,
        layout: list[tuple[AttrKey, int]] | None = None,
    ) -> int:
        series = self._shown()
        out += [s.value for s in series]
        if layout is not None:
            layout += [(s.key, s.start_ns) for s in series]
        return len(series)

    def stream(self) -> SumFamily | None:
        if not self._series or (self._quiet and not self._shown()):
            return None
        return SumFamily(self.name, self.unit, self.description, self.monotonic, self.points(), self.aggregation)  # type: ignore[arg-type]

    def family(self) -> SumFamily | None:
        points: list[NumberPoint] = [s.point() for s in self._shown()]
        if not points:
            return None
        return SumFamily(self.name, self.unit, self.description, self.monotonic, points, self.aggregation)


class UpDownCounter(Counter):
    """A sum that can go down, e.g. open orders."""

    kind = "updowncounter"
    monotonic = False
    if not TYPE_CHECKING:
        dec = PrometheusClientName("use add(-amount)")


class Gauge(Instrument[BoundGauge]):
    """A value that is set, e.g. position quantity or equity."""

    kind = "gauge"
    if not TYPE_CHECKING:  # prometheus_client's names (type checkers keep reporting them as missing)
        labels = PrometheusClientName(_BIND % "set()")
        inc = PrometheusClientName(_GAUGE_IS_SET % "amount")
        dec = PrometheusClientName(_GAUGE_IS_SET % "-amount")
        set_to_current_time = PrometheusClientName("use set(time.time())")
    default_aggregation: Aggregation = "pid"
    allowed = AGGREGATIONS

    def _new(self, key: AttrKey) -> BoundGauge:
        return BoundGauge(self, key)

    def limit(self) -> int:
        """The registry's ``max_gauge_series``: a gauge's overflow series keeps only the last value set through it,
        so past the limit values are lost (a counter's or histogram's overflow series loses labels, not totals)."""
        return self.registry.max_gauge_series

    def set(self, value: int | float, attributes: Mapping[str, Any] | None = None) -> None:
        self._bound_for(attributes).set(value)

    def unset(self, attributes: Mapping[str, Any] | None = None) -> None:
        """That series has no value until it is set again (:meth:`BoundGauge.unset`)."""
        self._bound_for(attributes).unset()

    def unset_noted(self) -> None:
        """A series of this gauge was unset (:attr:`unsets`). Rare (a position going flat): under the lock, so two
        threads unsetting at once both count."""
        with self._lock:
            self.unsets += 1

    def write_values(
        self,
        out: list[float],
        fi: int,
        exemplars: list[tuple[Any, ...]] | None,
        layout: list[tuple[AttrKey, int]] | None = None,
    ) -> int:
        n = 0
        add = out.append
        for s in list(self._series.values()):
            v = s.value
            if v is not None:  # as family(): a series never set, or unset, is not a point
                add(v)
                add(0.0)  # where the writer puts when the value last changed
                n += 1
                if layout is not None:
                    layout.append((s.key, s.start_ns))
        return n

    def stream(self) -> GaugeFamily | None:
        if not self._series or (self._quiet and not self._shown()):
            return None
        return GaugeFamily(self.name, self.unit, self.description, self.points(), self.aggregation)  # type: ignore[arg-type]

    def family(self) -> GaugeFamily | None:
        points = [p for p in (s.point() for s in list(self._series.values())) if p is not None]
        return GaugeFamily(self.name, self.unit, self.description, points, self.aggregation) if points else None


class Histogram(Instrument[BoundHistogram]):
    """A distribution with explicit bucket bounds, e.g. fill latency in seconds."""

    kind = "histogram"
    if not TYPE_CHECKING:  # prometheus_client's names (type checkers keep reporting them as missing)
        labels = PrometheusClientName(_BIND % "record()")
        observe = PrometheusClientName("use record(value)")
        time = PrometheusClientName(_TIMED)

    def __init__(
        self,
        registry: _Owner,
        name: str,
        unit: str,
        description: str,
        bounds: Sequence[float] | None,
        *,
        aggregation: Aggregation | None = None,
    ) -> None:
        super().__init__(registry, name, unit, description, aggregation=aggregation)
        # write_values' last values: the series, each one's counts, and every series' values in a row
        self._written: tuple[list[BoundHistogram], list[list[int] | None], list[float]] | None = None
        self._written_lock = threading.Lock()
        if bounds is None:
            bounds = self.default_bounds(unit)
        b = tuple(float(x) for x in bounds)
        if any(not math.isfinite(x) for x in b) or list(b) != sorted(set(b)):
            raise ValueError(f"histogram {name!r}: bounds must be finite and strictly increasing, got {bounds!r}")
        self.bounds = b

    @staticmethod
    def default_bounds(unit: str) -> Sequence[float]:
        """The buckets of a histogram declared without ``bounds``: latency buckets for seconds."""
        return DEFAULT_LATENCY_BOUNDS if unit == "s" else DEFAULT_BOUNDS

    def _new(self, key: AttrKey) -> BoundHistogram:
        return BoundHistogram(self, key, self.bounds)

    def _let_go(self) -> None:
        with self._written_lock:
            self._written = None

    def record(self, value: int | float, attributes: Mapping[str, Any] | None = None, exemplar: Any = None) -> None:
        self._bound_for(attributes).record(value, exemplar)

    def write_values(
        self,
        out: list[float],
        fi: int,
        exemplars: list[tuple[Any, ...]] | None,
        layout: list[tuple[AttrKey, int]] | None = None,
    ) -> int:
        """Every series' counts, sum, min and max. The last values written are kept: a series whose counts equal
        the ones kept for it (one C-level compare; counts only grow, and a record changes them first) is not read
        again. At 1,000 symbols, where a publish finds a few dozen of 6,000 latency series changed, that is about
        1 ms instead of 12. Only a changed series is read under its lock."""
        series = self._shown()
        w = len(self.bounds) + 4  # values per series
        with self._written_lock:
            kept = self._written
            if kept is None or kept[0] != series:  # a new or removed series (identity compare, C speed)
                kept = self._written = (series, [None] * len(series), [0.0] * (w * len(series)))
                changed: Iterable[int] = range(len(series))
            else:
                changed = list(compress(range(len(series)), map(operator.ne, map(_COUNTS, series), kept[1])))
            _, counts, values = kept
            for i in changed:
                s = series[i]
                with s._lock:
                    counts[i] = c = list(s.counts)
                    values[i * w : i * w + w] = [*map(float, c), s.sum, s.min, s.max]  # as the file has them
            out += values
        if layout is not None:
            layout += [(s.key, s.start_ns) for s in series]
        if exemplars is not None:
            for pi, s in enumerate(series):
                if s.exemplars:
                    exemplars += [(fi, pi, bucket, e) for bucket, e in list(s.exemplars.items())]
        return len(series)

    def stream(self) -> HistogramFamily | None:
        if not self._series or (self._quiet and not self._shown()):
            return None
        return HistogramFamily(self.name, self.unit, self.description, self.bounds, self.points(), self.aggregation)  # type: ignore[arg-type]

    def family(
        self, reuse: dict[AttrKey, HistogramPoint] | None = None, offer: Callable[[], None] | None = None
    ) -> HistogramFamily | None:
        """Every series' point. With ``reuse`` (a reader's own dict, kept between calls), a series whose count
        has not moved since the point kept there is not copied again: at 1,000 symbols most latency series
        are unchanged from one live tick to the next. ``reuse`` then holds this call's points. (An exemplar
        set by a ``record()`` that raced the copy shows with that series' next change.) ``offer`` is called
        every 64 series with ``reuse`` (a reader on a background thread gives the GIL back in between)."""
        series = self._shown()
        if reuse is None:
            points: list[HistogramPoint] = [s.point() for s in series]
        else:
            points = []
            fresh: dict[AttrKey, HistogramPoint] = {}
            get = reuse.get
            for i, s in enumerate(series):
                p = get(s.key)
                if p is None or p.observed != sum(s.counts):  # a lock-free read: only a change marker
                    p = s.point()
                fresh[s.key] = p
                points.append(p)
                if offer is not None and not i & 63:
                    offer()
            reuse.clear()
            reuse.update(fresh)
        if not points:
            return None
        return HistogramFamily(self.name, self.unit, self.description, self.bounds, points, self.aggregation)
