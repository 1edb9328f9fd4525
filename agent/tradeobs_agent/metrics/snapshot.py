"""The one read model: what every reader of the registry reads.

>>> from tradeobs_agent.metrics import Registry
>>> reg = Registry()
>>> reg.counter("orders", "{order}").bind(side="buy").add(2)
>>> snap = reg.snapshot()
>>> fam = snap.get("orders")
>>> fam.kind, [(p.attributes, p.value) for p in fam.points]
('counter', [({'side': 'buy'}, 2)])

:meth:`Registry.snapshot` applies pending writes (the trading journal) and the
collect hooks, then copies every series into these small immutable records.
The OTel bridge (OTLP and test readers), the Prometheus endpoint and the live
stream's frames all read a :class:`Snapshot`; none of them touches an
instrument or a series. A reader that needs different things per kind of
family implements :class:`SnapshotVisitor`, and :meth:`Snapshot.accept` calls
the method for each family's kind, so the kinds are listed in one place and
mypy checks that every reader handles every kind.

Values are cumulative since each series' ``start_ns``. Histogram ``counts`` are
per bucket (not cumulative), one more than ``bounds`` (the last is ``+Inf``).
A snapshot is plain data: it can be merged with another process's (sum of
counters and histograms, per-gauge aggregation) or serialised.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Generic, Literal, NamedTuple, Protocol, TypeAlias, TypeVar

from ..types import AttrKey

__all__ = [
    "Exemplar",
    "Family",
    "GaugeFamily",
    "HistogramFamily",
    "HistogramPoint",
    "NumberPoint",
    "Snapshot",
    "SnapshotVisitor",
    "SumFamily",
]

AttrValue: TypeAlias = str | bool | int | float
R = TypeVar("R", covariant=True)


class Exemplar(NamedTuple):
    """A measurement that came with a sampled span: links a bucket to its trace."""

    value: float
    time_ns: int
    trace_id: int
    span_id: int


class NumberPoint(NamedTuple):
    """One series of a counter, up-down counter or gauge."""

    key: AttrKey  # the normalised attribute set (hashable; readers cache per key)
    attributes: Mapping[str, AttrValue]
    start_ns: int
    value: int | float


class HistogramPoint(NamedTuple):
    """One series of a histogram: a consistent copy of its buckets."""

    key: AttrKey
    attributes: Mapping[str, AttrValue]
    start_ns: int
    counts: Sequence[int]  # per bucket, len(bounds) + 1
    observed: int  # values recorded: the sum of ``counts``
    sum: float
    min: float  # +inf while empty
    max: float  # -inf while empty
    exemplars: Mapping[int, Exemplar]  # bucket index -> latest exemplar in it


class SumFamily(NamedTuple):
    """A counter (``monotonic``) or an up-down counter."""

    name: str
    unit: str
    description: str
    monotonic: bool
    points: Sequence[NumberPoint]

    @property
    def kind(self) -> Literal["counter", "updowncounter"]:
        return "counter" if self.monotonic else "updowncounter"

    def accept(self, visitor: SnapshotVisitor[R]) -> R:
        return visitor.sum(self)


class GaugeFamily(NamedTuple):
    """A gauge: the last value set per series."""

    name: str
    unit: str
    description: str
    points: Sequence[NumberPoint]

    @property
    def kind(self) -> Literal["gauge"]:
        return "gauge"

    def accept(self, visitor: SnapshotVisitor[R]) -> R:
        return visitor.gauge(self)


class HistogramFamily(NamedTuple):
    """A histogram with explicit bucket ``bounds``."""

    name: str
    unit: str
    description: str
    bounds: tuple[float, ...]
    points: Sequence[HistogramPoint]

    @property
    def kind(self) -> Literal["histogram"]:
        return "histogram"

    @property
    def signed(self) -> bool:
        """Buckets below zero: the OpenMetrics rules for such histograms apply (no ``_sum``)."""
        return bool(self.bounds) and self.bounds[0] < 0

    def accept(self, visitor: SnapshotVisitor[R]) -> R:
        return visitor.histogram(self)


Family: TypeAlias = SumFamily | GaugeFamily | HistogramFamily


class SnapshotVisitor(Protocol, Generic[R]):
    """What a reader does with each kind of family (see :meth:`Snapshot.accept`)."""

    def sum(self, family: SumFamily) -> R: ...

    def gauge(self, family: GaugeFamily) -> R: ...

    def histogram(self, family: HistogramFamily) -> R: ...


class Snapshot:
    """Every family with at least one series, in creation order, as of ``time_ns``."""

    __slots__ = ("_index", "families", "time_ns")

    def __init__(self, time_ns: int, families: Sequence[Family]) -> None:
        self.time_ns = time_ns
        self.families = families
        self._index: dict[str, Family] | None = None

    def __repr__(self) -> str:
        return f"Snapshot(time_ns={self.time_ns}, families={list(self.families)!r})"

    def get(self, name: str) -> Family | None:
        index = self._index
        if index is None:
            index = self._index = {f.name: f for f in self.families}
        return index.get(name)

    def numbers(self, name: str) -> Sequence[NumberPoint]:
        """The points of the counter, up-down counter or gauge ``name`` (none if absent or a histogram)."""
        f = self.get(name)
        return f.points if f is not None and not isinstance(f, HistogramFamily) else ()

    def histogram(self, name: str) -> HistogramFamily | None:
        """The histogram ``name`` (None if absent or not a histogram)."""
        f = self.get(name)
        return f if isinstance(f, HistogramFamily) else None

    def accept(self, visitor: SnapshotVisitor[R]) -> Iterator[R]:
        """``visitor``'s method for each family's kind, in order."""
        for f in self.families:
            yield f.accept(visitor)
