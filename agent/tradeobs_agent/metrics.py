"""In-process instruments with a bound fast path; one state feeds every reader.

>>> fills = counter("trading.orders.filled", unit="{order}", description="Filled orders")
>>> aapl_buy = fills.bind(symbol="AAPL", side="buy")   # once, outside the loop
>>> aapl_buy.add(1)                                    # per event: a lock and an add
>>> aapl_buy.value
1

Why not the OTel SDK's synchronous instruments? ``Counter.add(1, attrs)`` in the
SDK hashes the attribute dict, walks the views and takes several locks on
every call (about 5 us). Here the attribute set is resolved once, at
``bind()``, into a series object that holds its own value. Readers (the OTel
``MetricReader``s for OTLP and the Prometheus endpoint, via
``_internal.bridge``, and the live stream's frames) read these same objects,
so every reader sees exactly the values recorded.

Values are cumulative from the series' creation; that is what Prometheus and
the default OTLP temporality want.

Bad input never raises into the caller: negative or non-finite counter adds,
NaN gauge values and non-numeric values are dropped, counted in
``tradeobs.agent.measurements.invalid`` and warned about once per instrument.
Attribute values that are not ``str``/``bool``/``int``/``float`` are turned into
strings, and strings longer than :data:`MAX_ATTR_LEN` are truncated. Past the
instrument's series limit new attribute sets share one overflow series,
``otel.metric.overflow=true``, as the OTel SDK specifies.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ContextDecorator
from typing import Any, Generic, TypeVar

from opentelemetry.trace import SpanContext

from ._internal.once import warn_once
from .types import AttrKey

__all__ = [
    "DEFAULT_LATENCY_BOUNDS",
    "MAX_ATTR_LEN",
    "BoundCounter",
    "BoundGauge",
    "BoundHistogram",
    "Counter",
    "Gauge",
    "Histogram",
    "Registry",
    "UpDownCounter",
    "bucket_quantile",
    "counter",
    "gauge",
    "get_registry",
    "histogram",
    "timed",
    "updown_counter",
]

_INF = math.inf
MAX_ATTR_LEN = 256
OVERFLOW_KEY: AttrKey = (("otel.metric.overflow", True),)
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_./\-]{0,254}$")

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


# --------------------------------------------------------------------------- bound series


class _Series:
    __slots__ = ("_instrument", "attributes", "key", "start_ns")

    def __init__(self, instrument: _Instrument[Any], key: AttrKey) -> None:
        self._instrument = instrument
        self.key = key
        self.attributes: dict[str, Any] = dict(key)
        self.start_ns = time.time_ns()


class BoundCounter(_Series):
    """One attribute set of a :class:`Counter` (or :class:`UpDownCounter`).

    ``add(1)``, the common case, is lock-free and exact: it advances an
    ``itertools.count``, whose ``__next__`` runs in C under the GIL and so is
    atomic. :attr:`inc` is that C call itself (``bound.inc()`` == ``bound.add(1)``)
    for the hottest paths, e.g. one call per market data tick. Other amounts
    take a lock (``+=`` on an attribute is several bytecodes and a thread switch
    between them would lose updates).
    :attr:`value` combines both. (Free-threaded CPython builds would need the
    lock on the unit path too; tradeobs targets the default GIL build.)
    """

    __slots__ = ("_lo", "_lock", "_reads", "_sum", "_tick", "inc")

    def __init__(self, instrument: _Instrument[Any], key: AttrKey, monotonic: bool) -> None:
        super().__init__(instrument, key)
        self._sum: int | float = 0
        self._lock = threading.Lock()
        self._lo = 0 if monotonic else -_INF
        self._tick = self.inc = itertools.count().__next__
        self._reads = 0

    def add(self, amount: int | float = 1) -> None:
        """Add ``amount`` (must be finite, and non-negative for a monotonic counter)."""
        try:
            if amount == 1:
                self._tick()
                return
            if self._lo <= amount < _INF:
                with self._lock:
                    self._sum += amount
                return
        except Exception:  # TypeError, or an odd type whose comparison raises
            pass
        self._instrument._invalid("value", amount)

    @property
    def value(self) -> int | float:
        """The cumulative value: every amount added so far."""
        with self._lock:
            # Each read also advances the count, so unit adds = position - reads so far.
            ones = self._tick() - self._reads
            self._reads += 1
            return self._sum + ones


class BoundGauge(_Series):
    """One attribute set of a :class:`Gauge`: the last value set wins."""

    __slots__ = ("value",)

    def __init__(self, instrument: _Instrument[Any], key: AttrKey) -> None:
        super().__init__(instrument, key)
        self.value: float | None = None

    def set(self, value: int | float) -> None:
        try:
            if -_INF < value < _INF:
                self.value = value
                return
        except TypeError:
            pass
        self._instrument._invalid("value", value)


class BoundHistogram(_Series):
    """One attribute set of a :class:`Histogram`, with explicit bucket bounds.

    ``record(v, exemplar=span_or_context)`` keeps, per bucket, the latest
    measurement that came with a sampled span, so a latency spike links to its trace.
    """

    __slots__ = ("_bounds", "_lock", "counts", "exemplars", "max", "min", "sum")

    def __init__(self, instrument: _Instrument[Any], key: AttrKey, bounds: Sequence[float]) -> None:
        super().__init__(instrument, key)
        self._bounds = bounds
        self._lock = threading.Lock()
        self.counts = [0] * (len(bounds) + 1)
        self.sum: float = 0.0
        self.min: float = _INF
        self.max: float = -_INF
        self.exemplars: dict[int, tuple[float, int, int, int]] = {}

    def record(self, value: int | float, exemplar: Any = None) -> None:
        """Record ``value``; ``exemplar`` is an optional ``Span`` or ``SpanContext``."""
        try:
            if -_INF < value < _INF:
                i = bisect_left(self._bounds, value)
                with self._lock:
                    self.counts[i] += 1
                    self.sum += value
                    if value < self.min:
                        self.min = value
                    if value > self.max:
                        self.max = value
                if exemplar is not None:
                    self._exemplar(i, value, exemplar)
                return
        except TypeError:
            pass
        self._instrument._invalid("value", value)

    def _exemplar(self, bucket: int, value: float, span: Any) -> None:
        try:
            ctx = span if type(span) is SpanContext else span.get_span_context()
            if type(ctx) is SpanContext:  # a 6-tuple: unpacked without its four properties
                trace_id, span_id, _, flags, _, valid = ctx
            else:
                trace_id, span_id, flags, valid = ctx.trace_id, ctx.span_id, ctx.trace_flags, ctx.is_valid
            # sampled flag (bit 0) set implies a recorded span; is_valid excludes the all-zero ids.
            if flags & 1 and valid:
                self.exemplars[bucket] = (value, time.time_ns(), trace_id, span_id)
        except Exception:  # not a span or span context: no exemplar, and never raise
            pass

    @property
    def count(self) -> int:
        return sum(self.counts)

    def snapshot(self) -> tuple[list[int], float, float, float]:
        """A consistent ``(counts, sum, min, max)`` copy."""
        with self._lock:
            return list(self.counts), self.sum, self.min, self.max

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


B = TypeVar("B", bound=_Series)


# --------------------------------------------------------------------------- instruments


class _Instrument(Generic[B]):
    kind = ""

    def __init__(self, registry: Registry, name: str, unit: str, description: str) -> None:
        self.registry = registry
        self.name = name
        self.unit = unit
        self.description = description
        self._series: dict[AttrKey, B] = {}
        self._cache: dict[Any, B] = {}
        self._lock = threading.Lock()

    # -- binding: all the per-attribute-set work happens here, once
    def bind(self, **attributes: Any) -> B:
        """Resolve an attribute set to its series. Do this once, outside the hot loop."""
        return self._bind_key(self.registry.normalize(self, attributes))

    def _bind_key(self, key: AttrKey) -> B:
        series = self._series.get(key)
        if series is not None:
            return series
        with self._lock:
            series = self._series.get(key)
            if series is None:
                if len(self._series) >= self.registry.max_series and key != OVERFLOW_KEY:
                    return self._overflow(key)
                series = self._new(key)
                self._series[key] = series
        return series

    def _overflow(self, key: AttrKey) -> B:
        # Called with self._lock held.
        series = self._series.get(OVERFLOW_KEY)
        if series is None:
            series = self._new(OVERFLOW_KEY)
            self._series[OVERFLOW_KEY] = series
        self.registry.on_overflow(self)
        return series

    def _bound_for(self, attributes: Mapping[str, Any] | None) -> B:
        if not attributes:
            return self._bind_key(())
        try:
            cache_key: Any = tuple(attributes.items())
            series = self._cache.get(cache_key)
        except TypeError:  # unhashable values: take the slow path every time
            return self.bind(**attributes)
        if series is None:
            series = self.bind(**attributes)
            if len(self._cache) < 4 * self.registry.max_series:
                self._cache[cache_key] = series
        return series

    def _new(self, key: AttrKey) -> B:
        raise NotImplementedError

    def _invalid(self, what: str, value: Any) -> None:
        self.registry.on_invalid(self, what, value)

    def series(self) -> list[B]:
        """Every series, for readers."""
        return list(self._series.values())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} unit={self.unit!r} series={len(self._series)}>"


class Counter(_Instrument[BoundCounter]):
    """A monotonic sum, e.g. orders submitted.

    >>> c = counter("demo.events", unit="{event}")
    >>> c.add(2, {"symbol": "AAPL"}); c.bind(symbol="AAPL").value
    2
    """

    kind = "counter"
    monotonic = True

    def _new(self, key: AttrKey) -> BoundCounter:
        return BoundCounter(self, key, self.monotonic)

    def add(self, amount: int | float = 1, attributes: Mapping[str, Any] | None = None) -> None:
        self._bound_for(attributes).add(amount)


class UpDownCounter(Counter):
    """A sum that can go down, e.g. open orders."""

    kind = "updowncounter"
    monotonic = False


class Gauge(_Instrument[BoundGauge]):
    """A value that is set, e.g. position quantity or equity."""

    kind = "gauge"

    def _new(self, key: AttrKey) -> BoundGauge:
        return BoundGauge(self, key)

    def set(self, value: int | float, attributes: Mapping[str, Any] | None = None) -> None:
        self._bound_for(attributes).set(value)


class Histogram(_Instrument[BoundHistogram]):
    """A distribution with explicit bucket bounds, e.g. fill latency in seconds."""

    kind = "histogram"

    def __init__(
        self, registry: Registry, name: str, unit: str, description: str, bounds: Sequence[float] | None
    ) -> None:
        super().__init__(registry, name, unit, description)
        if bounds is None:
            bounds = DEFAULT_LATENCY_BOUNDS if unit == "s" else DEFAULT_BOUNDS
        b = tuple(float(x) for x in bounds)
        if any(not math.isfinite(x) for x in b) or list(b) != sorted(set(b)):
            raise ValueError(f"histogram {name!r}: bounds must be finite and strictly increasing, got {bounds!r}")
        self.bounds = b

    def _new(self, key: AttrKey) -> BoundHistogram:
        return BoundHistogram(self, key, self.bounds)

    def record(self, value: int | float, attributes: Mapping[str, Any] | None = None, exemplar: Any = None) -> None:
        self._bound_for(attributes).record(value, exemplar)


# --------------------------------------------------------------------------- registry


class Registry:
    """Holds every instrument. One per process (see :func:`get_registry`); tests may make their own."""

    def __init__(self, max_series: int = 2000, symbol_allowlist: Sequence[str] = ()) -> None:
        self.max_series = max_series
        self.symbol_allowlist: frozenset[str] = frozenset(symbol_allowlist)
        self._instruments: dict[str, _Instrument[Any]] = {}
        self._lock = threading.Lock()
        self.start_ns = time.time_ns()
        self._selfm: Any = None
        self._hooks: list[Callable[[], None]] = []
        self._flush_hooks: list[Callable[[], Any]] = []

    def add_flush_hook(self, hook: Callable[[], Any]) -> None:
        """Call ``hook`` before anything reads this registry: it applies writes still pending
        (``TradingTelemetry`` records through a journal, see ``trading/_journal.py``). Added once."""
        if hook not in self._flush_hooks:
            self._flush_hooks.append(hook)

    def flush(self) -> None:
        """Apply every pending write, so a read now sees every value recorded before it."""
        for hook in list(self._flush_hooks):
            try:
                hook()
            except Exception:
                pass

    def add_collect_hook(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` before every collection (e.g. to set queue-size gauges)."""
        self._hooks.append(hook)

    def remove_collect_hook(self, hook: Callable[[], None]) -> None:
        if hook in self._hooks:
            self._hooks.remove(hook)

    def run_collect_hooks(self) -> None:
        """Before a collection: apply pending writes, then the collect hooks (e.g. queue-size gauges)."""
        self.flush()
        for hook in list(self._hooks):
            try:
                hook()
            except Exception:
                pass

    # -- creation
    def _get_or_create(self, cls: type[Any], name: str, unit: str, description: str, *extra: Any) -> Any:
        existing = self._instruments.get(name)
        if existing is not None:
            if type(existing) is not cls:
                raise ValueError(f"instrument {name!r} already exists as a {existing.kind}, not a {cls.kind}")
            return existing
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(f"invalid instrument name {name!r}: expected a letter, then up to 254 of [A-Za-z0-9_./-]")
        if not isinstance(unit, str) or len(unit) > 63 or not unit.isascii():
            warn_once(
                f"unit:{name}", "instrument %r: unit %r is not ASCII of at most 63 chars; using no unit", name, unit
            )
            self.self_metrics().invalid.add(1, {"instrument": name, "reason": "unit"})
            unit = ""
        with self._lock:
            existing = self._instruments.get(name)
            if existing is None:
                existing = cls(self, name, unit, description or "", *extra)
                self._instruments[name] = existing
        return existing

    def counter(self, name: str, unit: str = "", description: str = "") -> Counter:
        return self._get_or_create(Counter, name, unit, description)  # type: ignore[no-any-return]

    def updown_counter(self, name: str, unit: str = "", description: str = "") -> UpDownCounter:
        return self._get_or_create(UpDownCounter, name, unit, description)  # type: ignore[no-any-return]

    def gauge(self, name: str, unit: str = "", description: str = "") -> Gauge:
        return self._get_or_create(Gauge, name, unit, description)  # type: ignore[no-any-return]

    def histogram(
        self, name: str, unit: str = "", description: str = "", bounds: Sequence[float] | None = None
    ) -> Histogram:
        return self._get_or_create(Histogram, name, unit, description, bounds)  # type: ignore[no-any-return]

    def instruments(self) -> list[_Instrument[Any]]:
        return list(self._instruments.values())

    def get(self, name: str) -> _Instrument[Any] | None:
        return self._instruments.get(name)

    def __iter__(self) -> Iterator[_Instrument[Any]]:
        return iter(self.instruments())

    # -- attributes
    def normalize(self, instrument: _Instrument[Any], attributes: Mapping[str, Any]) -> AttrKey:
        items: list[tuple[str, str | bool | int | float]] = []
        for k, v in attributes.items():
            if not isinstance(k, str):
                k = str(k)
            if isinstance(v, str):
                if len(v) > MAX_ATTR_LEN:
                    self.on_invalid(instrument, "attribute_truncated", k)
                    v = v[:MAX_ATTR_LEN]
            elif isinstance(v, bool | int):
                pass
            elif isinstance(v, float):
                if not math.isfinite(v):
                    v = str(v)
            else:
                self.on_invalid(instrument, "attribute_coerced", k)
                v = _safe_str(v)[:MAX_ATTR_LEN]
            if k == "symbol" and self.symbol_allowlist and v not in self.symbol_allowlist:
                v = "other"
            items.append((k, v))
        items.sort(key=lambda kv: kv[0])
        return tuple(items)

    # -- self-observation
    def self_metrics(self) -> Any:
        if self._selfm is None:
            from ._internal.selfmetrics import SelfMetrics

            self._selfm = SelfMetrics(self)
        return self._selfm

    def on_overflow(self, instrument: _Instrument[Any]) -> None:
        self.self_metrics().metric_overflow.add(1, {"instrument": instrument.name})
        warn_once(
            f"overflow:{instrument.name}",
            "instrument %r passed its limit of %d attribute sets; further sets go to the "
            "otel.metric.overflow series (raise TRADEOBS_MAX_SERIES or use a symbol allowlist)",
            instrument.name,
            self.max_series,
        )

    def on_invalid(self, instrument: _Instrument[Any], what: str, value: Any) -> None:
        try:
            self.self_metrics().invalid.add(1, {"instrument": instrument.name, "reason": what})
            warn_once(
                f"invalid:{instrument.name}:{what}",
                "instrument %r: dropped or fixed %s %s",
                instrument.name,
                what,
                _safe_str(value)[:80],
            )
        except Exception:  # never raise into the caller, even from here
            pass


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


_REGISTRY = Registry()


def get_registry() -> Registry:
    """The process-wide registry that ``init()`` connects to the exporters."""
    return _REGISTRY


def _reset_registry() -> None:
    global _REGISTRY
    _REGISTRY = Registry()


def counter(name: str, unit: str = "", description: str = "") -> Counter:
    """Get or create a monotonic counter. ``unit`` follows UCUM (``s``, ``By``, ``{order}``)."""
    return _REGISTRY.counter(name, unit, description)


def updown_counter(name: str, unit: str = "", description: str = "") -> UpDownCounter:
    """Get or create an up-down counter."""
    return _REGISTRY.updown_counter(name, unit, description)


def gauge(name: str, unit: str = "", description: str = "") -> Gauge:
    """Get or create a gauge (last value wins)."""
    return _REGISTRY.gauge(name, unit, description)


def histogram(name: str, unit: str = "", description: str = "", bounds: Sequence[float] | None = None) -> Histogram:
    """Get or create a histogram. Seconds (``unit="s"``) get latency buckets from 100 us to 10 s."""
    return _REGISTRY.histogram(name, unit, description, bounds)


# --------------------------------------------------------------------------- @timed


class timed(ContextDecorator):
    """Time a block or function into a seconds histogram, optionally inside a span.

    >>> @timed("strategy.decision.duration", strategy="momentum")
    ... def decide(): return 42
    >>> decide()
    42
    >>> with timed("risk.check.duration", span=True):
    ...     pass

    The histogram is recorded even if the block raises; with ``span=True`` the
    span records the exception and gets an error status, and the measurement
    carries the span as its exemplar.
    """

    def __init__(self, name: str, *, span: bool | str = False, description: str = "", **attributes: Any) -> None:
        self._hist = histogram(name, unit="s", description=description or f"Duration of {name}")
        self._bound = self._hist.bind(**attributes)
        self._span_name = (span if isinstance(span, str) else name) if span else None
        self._local = threading.local()

    def _start(self) -> tuple[float, Any, Any]:
        cm = span = None
        if self._span_name is not None:
            from opentelemetry import trace

            cm = trace.get_tracer("tradeobs").start_as_current_span(self._span_name)
            span = cm.__enter__()
        return time.perf_counter(), cm, span

    def _stop(self, token: tuple[float, Any, Any], exc: Any) -> None:
        start, cm, span = token
        self._bound.record(time.perf_counter() - start, span)
        if cm is not None:
            cm.__exit__(*exc)

    def __enter__(self) -> timed:
        self._local.__dict__.setdefault("stack", []).append(self._start())
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop(self._local.stack.pop(), exc)

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:  # type: ignore[override]
        import functools
        import inspect

        if inspect.iscoroutinefunction(func):
            # Coroutines interleave on one thread, so each call keeps its own token.
            @functools.wraps(func)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                token = self._start()
                exc: tuple[Any, Any, Any] = (None, None, None)
                try:
                    return await func(*args, **kwargs)
                except BaseException as e:
                    exc = (type(e), e, e.__traceback__)
                    raise
                finally:
                    self._stop(token, exc)

            return wrapper
        return super().__call__(func)
