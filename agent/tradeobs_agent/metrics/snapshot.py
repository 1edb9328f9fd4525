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
A snapshot is plain data: :func:`merge` combines the snapshots of the processes
of one service (counters and histograms summed, each gauge by the aggregation its
instrument declares, see :data:`AGGREGATIONS`), and ``metrics/wire.py`` turns
one into bytes another process can read.

>>> a, b = Registry(), Registry()
>>> a.counter("orders").bind(side="buy").add(2); b.counter("orders").bind(side="buy").add(3)
>>> merged = merge([Part(a.snapshot(), pid=11, live=True), Part(b.snapshot(), pid=12, live=False)])
>>> merged.numbers("orders")[0].value      # a counter keeps what an exited process counted
5
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Generic, Literal, NamedTuple, Protocol, TypeAlias, TypeVar

from .._errors import warn_once
from ..types import AttrKey

__all__ = [
    "AGGREGATIONS",
    "FALLBACKS",
    "FIRST_AGGREGATIONS",
    "PID_LABEL",
    "Aggregation",
    "Exemplar",
    "Family",
    "GaugeFamily",
    "HistogramFamily",
    "HistogramPoint",
    "NumberPoint",
    "Part",
    "Snapshot",
    "SnapshotVisitor",
    "SumFamily",
    "entry_price",
    "merge",
    "merged_entry",
    "quantity_of",
    "settle",
    "settle_declared",
    "subtract",
]

AttrValue: TypeAlias = str | bool | int | float
R = TypeVar("R", covariant=True)

Aggregation: TypeAlias = Literal["sum", "max", "min", "last", "pid", "entry"]
"""How an instrument's series combine across the processes of one service (:func:`merge`).

``sum`` adds them up; ``max``/``min`` keep the largest/smallest; ``last`` keeps the value that changed most
recently; ``pid`` keeps every process's own series, told apart by a ``pid`` attribute; ``entry`` is an average
entry price (see :func:`entry_price`), weighted by the quantity each process holds in the same series of the
gauge named as it with ``quantity`` for its last part (:func:`quantity_of`). Counters and histograms are ``sum``
(or ``pid``), gauges any of the six (``pid`` unless declared)."""
AGGREGATIONS: tuple[Aggregation, ...] = ("sum", "max", "min", "last", "pid", "entry")
PID_LABEL = "pid"

FIRST_AGGREGATIONS: tuple[Aggregation, ...] = ("sum", "max", "min", "last", "pid")
"""The aggregations every release of the agent knows (multi-process mode's first): a worker group in a rolling
deploy mixes releases, and a leader refuses a snapshot whose family names one it does not know. A later one is
written beside its stand-in (:data:`FALLBACKS`), which is what such a leader reads (``metrics/wire.py``)."""

FALLBACKS: dict[str, Aggregation] = {"entry": "last"}
"""Each aggregation added after :data:`FIRST_AGGREGATIONS`: the one an earlier leader merges it by instead (what the
earlier releases declared for those gauges: ``trading.position.avg_price`` was ``last``). A reader that meets an
aggregation it does not know at all uses ``sum`` for a counter or histogram (never dropped), ``pid`` for the rest."""


_A = TypeVar("_A", bound=str)


def settle(counts_all: bool, declared: Sequence[_A]) -> _A:
    """The aggregation of a family whose processes declare different ones (``declared``, distinct, in the order met;
    releases of the agent mixed in a rolling deploy, or an instrument changed between them). A counter or histogram
    (``counts_all``) is summed when any declares ``sum``: its counts stay in the totals, exited processes' too. A
    gauge takes the later aggregation over its stand-in (``entry`` over ``last``: the release that declares ``last``
    only did not know ``entry``); otherwise the first met.

    >>> settle(False, ["last", "entry"]), settle(True, ["pid", "sum"]), settle(False, ["max", "min"])
    ('entry', 'sum', 'max')
    """
    if len(declared) == 1:
        return declared[0]
    if counts_all:
        summed = next((a for a in declared if a == "sum"), None)
        if summed is not None:
            return summed
    stand_ins = {FALLBACKS[a] for a in declared if a in FALLBACKS}
    return next((a for a in declared if a not in stand_ins), declared[0])


def quantity_of(name: str) -> str:
    """The gauge whose series weigh the ``entry`` gauge ``name``'s: ``trading.position.avg_price`` ->
    ``trading.position.quantity`` (the same attribute sets: symbol, strategy and venue)."""
    return name.rpartition(".")[0] + ".quantity" if "." in name else "quantity"


def entry_price(prices: Sequence[float], quantities: Sequence[float]) -> float | None:
    """The average entry price of books held together, from each one's average entry and signed quantity: the
    cost over the quantity, ``sum(price * |qty|) / sum(|qty|)``, when every book is on one side; ``None`` when books
    are on both sides (a long and a short net to what is left after one offsets the other, and the entry price of
    that depends on which fills the broker matched, which no book knows) or all are flat. A flat book
    (quantity 0) and one with a price or quantity not finite are left out; one book left: its price exactly.

    >>> entry_price([10.0, 14.0], [100.0, 300.0]), entry_price([50.0, 52.0], [100.0, -40.0])
    (13.0, None)
    """
    cost = weight = 0.0
    long = short = False
    first: float | None = None
    same = True
    for p, q in zip(prices, quantities, strict=True):
        if not q or not math.isfinite(q) or not math.isfinite(p):
            continue
        if q > 0:
            long = True
        else:
            short, q = True, -q
        if first is None:
            first = p
        elif p != first:
            same = False
        cost += p * q
        weight += q
    if (long and short) or first is None:
        return None
    return first if same else cost / weight


NO_QUANTITY = -math.inf
"""A process's quantity in :func:`merged_entry` when it has no series of the quantity gauge for the attribute set."""


def merged_entry(prices: Sequence[float], stamps: Sequence[float], quantities: Sequence[float]) -> float | None:
    """Aggregation ``entry`` of one series over the live processes that have it: :func:`entry_price` of their
    prices and quantities; when none of them has a quantity series (:data:`NO_QUANTITY`: an ``entry`` gauge of
    one's own with no ``quantity`` gauge beside it), the value that changed most recently, as ``last``."""
    for q in quantities:
        if q != NO_QUANTITY:
            return entry_price(prices, quantities)
    best, bt = None, -math.inf
    for v, st in zip(prices, stamps, strict=True):
        if best is None or st >= bt:
            best, bt = v, st
    return best


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
    aggregation: Aggregation = "sum"

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
    aggregation: Aggregation = "pid"

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
    aggregation: Aggregation = "sum"

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


# --------------------------------------------------------------------------- merging the processes of one service


class Part(NamedTuple):
    """One process's snapshot as :func:`merge` reads it.

    ``live`` is False for a process that has exited: its counters and histograms still count (a counter never
    goes down when a worker is replaced), its gauges, up-down counters and per-process series no longer do.
    ``changed`` gives, for gauge series, when the process last saw the value change (epoch seconds; the
    ``last`` aggregation keeps the most recent).
    """

    snapshot: Snapshot
    pid: int
    live: bool
    changed: Mapping[tuple[str, AttrKey], float] = {}


def merge(parts: Sequence[Part], names: Collection[str] | None = None) -> Snapshot:
    """One snapshot of the whole service from the snapshots of its processes (only ``names`` when given).

    Each family is combined by its ``aggregation``: counters and histograms are summed over every part
    (histograms bucket by bucket, keeping the latest exemplar per bucket, so it still points at a real trace);
    gauges and up-down counters over the live parts only; ``pid`` families keep each live part's series with a
    ``pid`` attribute. A part whose histogram bounds differ from the first part's is left out of that family
    (said once). Families keep the order in which they first appear.
    """
    merged: dict[str, _Merged] = {}
    time_ns = 0
    aggs = _declared(parts, names)
    for part in parts:
        snap = part.snapshot
        if snap.time_ns > time_ns:
            time_ns = snap.time_ns
        for fam in snap.families:
            if names is not None and fam.name not in names:
                continue
            m = merged.get(fam.name)
            if m is None:
                m = merged[fam.name] = _Merged(fam, aggs.get(fam.name))
            m.add(fam, part)
    for m in merged.values():
        if m.agg == "entry" and m.books:
            m.weigh()
    families = [f for f in (m.family() for m in merged.values()) if f is not None]
    return Snapshot(time_ns, families)


def _declared(parts: Sequence[Part], names: Collection[str] | None) -> dict[str, Aggregation]:
    """The families whose parts declare different aggregations, each with the one :func:`settle` gives (said once)."""
    mixed = settle_declared(
        (f.name, isinstance(f, HistogramFamily) or (isinstance(f, SumFamily) and f.monotonic), f.aggregation)
        for part in parts
        for f in part.snapshot.families
        if names is None or f.name in names
    )
    return {name: agg for name, (agg, _) in mixed.items()}


def settle_declared(families: Iterable[tuple[str, bool, _A]]) -> dict[str, tuple[_A, list[_A]]]:
    """Of ``(name, counts_all, aggregation)`` as each process declares its families (both merge paths: decoded
    snapshots here, the files' layouts in ``wire``), the names declared with different aggregations, each with the
    one :func:`settle` gives and the ones declared (distinct, in the order met); said once per name."""
    seen: dict[str, list[_A]] = {}
    counts: dict[str, bool] = {}
    for name, counts_all, agg in families:
        got = seen.setdefault(name, [])
        counts.setdefault(name, counts_all)
        if agg not in got:
            got.append(agg)
    out: dict[str, tuple[_A, list[_A]]] = {}
    for name, declared in seen.items():
        if len(declared) > 1:
            agg = settle(counts[name], declared)
            out[name] = (agg, declared)
            warn_once(
                f"merge:aggregations:{name}",
                "merging %r: processes declare different aggregations %s (releases mixed in a rolling deploy?); "
                "merged as %r",
                name,
                declared,
                agg,
            )
    return out


def _with_pid(key: AttrKey, attributes: Mapping[str, AttrValue], pid: int) -> tuple[AttrKey, dict[str, AttrValue]]:
    attrs = {k: v for k, v in attributes.items() if k != PID_LABEL}
    attrs[PID_LABEL] = pid
    return tuple(sorted(attrs.items())), attrs


class _Num:
    __slots__ = ("attributes", "stamp", "start_ns", "value")

    def __init__(self, attributes: Mapping[str, AttrValue], start_ns: int, value: int | float, stamp: float) -> None:
        self.attributes, self.start_ns, self.value, self.stamp = attributes, start_ns, value, stamp


class _Hist:
    __slots__ = ("attributes", "counts", "exemplars", "hi", "lo", "start_ns", "total")

    def __init__(self, p: HistogramPoint, attributes: Mapping[str, AttrValue]) -> None:
        self.attributes, self.start_ns = attributes, p.start_ns
        self.counts, self.total, self.lo, self.hi = list(p.counts), p.sum, p.min, p.max
        self.exemplars = dict(p.exemplars)


class _Merged:
    """The points of one family so far (keyed by attribute set), combined as its aggregation says."""

    __slots__ = ("agg", "books", "first", "hists", "numbers")

    def __init__(self, first: Family, agg: Aggregation | None = None) -> None:
        self.first = first
        self.agg: Aggregation = first.aggregation if agg is None else agg
        self.numbers: dict[AttrKey, _Num] = {}
        self.hists: dict[AttrKey, _Hist] = {}
        # ``entry``: per series, each live process's (value, stamp, part), weighed once every part is in (weigh)
        self.books: dict[AttrKey, list[tuple[float, float, Part]]] = {}

    def weigh(self) -> None:
        """Aggregation ``entry``: each series' value from every live process's value and quantity
        (:func:`merged_entry`); a series with none (books on both sides, or all flat) is left out."""
        qname = quantity_of(self.first.name)
        quantities: dict[int, dict[AttrKey, float]] = {}
        for key, books in self.books.items():
            qs = []
            for _, _, part in books:
                own = quantities.get(id(part))
                if own is None:
                    own = quantities[id(part)] = {p.key: float(p.value) for p in part.snapshot.numbers(qname)}
                qs.append(own.get(key, NO_QUANTITY))
            v = merged_entry([b[0] for b in books], [b[1] for b in books], qs)
            if v is None:
                del self.numbers[key]
            else:
                self.numbers[key].value = v

    def add(self, fam: Family, part: Part) -> None:
        first, agg = self.first, self.agg
        if type(fam) is not type(first):
            warn_once(f"merge:kind:{fam.name}", "merging %r: a process has it as another kind; left out", fam.name)
            return
        if isinstance(fam, HistogramFamily):
            if isinstance(first, HistogramFamily) and fam.bounds != first.bounds:
                warn_once(
                    f"merge:bounds:{fam.name}",
                    "merging histogram %r: a process uses other bucket bounds; its series are left out",
                    fam.name,
                )
                return
            if agg != "pid" or part.live:
                self._histograms(fam, part)
            return
        # Counters count for every process that ever ran; everything else only for the live ones.
        if not part.live and not (isinstance(fam, SumFamily) and fam.monotonic and agg == "sum"):
            return
        numbers, changed, name = self.numbers, part.changed, fam.name
        for p in fam.points:
            key, attrs = (p.key, p.attributes) if agg != "pid" else _with_pid(p.key, p.attributes, part.pid)
            cur = numbers.get(key)
            stamp = changed.get((name, p.key), 0.0) if agg in ("last", "entry") else 0.0
            if agg == "entry":
                self.books.setdefault(key, []).append((float(p.value), stamp, part))
            if cur is None:
                numbers[key] = _Num(attrs, p.start_ns, p.value, stamp)
                continue
            if p.start_ns < cur.start_ns:
                cur.start_ns = p.start_ns
            v = p.value
            if agg == "sum":
                cur.value += v
            elif agg == "max":
                if v > cur.value:
                    cur.value = v
            elif agg == "min":
                if v < cur.value:
                    cur.value = v
            elif agg == "last" and stamp >= cur.stamp:
                cur.value, cur.stamp = v, stamp

    def _histograms(self, fam: HistogramFamily, part: Part) -> None:
        hists = self.hists
        pid = self.agg == "pid"
        for p in fam.points:
            key, attrs = (p.key, p.attributes) if not pid else _with_pid(p.key, p.attributes, part.pid)
            cur = hists.get(key)
            if cur is None:
                hists[key] = _Hist(p, attrs)
                continue
            if p.start_ns < cur.start_ns:
                cur.start_ns = p.start_ns
            counts = cur.counts
            for i, c in enumerate(p.counts):
                counts[i] += c
            cur.total += p.sum
            if p.min < cur.lo:
                cur.lo = p.min
            if p.max > cur.hi:
                cur.hi = p.max
            exemplars = cur.exemplars
            for i, e in p.exemplars.items():
                old = exemplars.get(i)
                if old is None or e.time_ns >= old.time_ns:
                    exemplars[i] = e

    def family(self) -> Family | None:
        f = self.first
        if isinstance(f, HistogramFamily):
            if not self.hists:
                return None
            hpoints = [
                HistogramPoint(k, h.attributes, h.start_ns, h.counts, sum(h.counts), h.total, h.lo, h.hi, h.exemplars)
                for k, h in self.hists.items()
            ]
            return HistogramFamily(f.name, f.unit, f.description, f.bounds, hpoints, self.agg)
        if not self.numbers:
            return None
        points = [NumberPoint(k, n.attributes, n.start_ns, n.value) for k, n in self.numbers.items()]
        if isinstance(f, SumFamily):
            return SumFamily(f.name, f.unit, f.description, f.monotonic, points, self.agg)
        return GaugeFamily(f.name, f.unit, f.description, points, self.agg)


def subtract(snapshot: Snapshot, baseline: Snapshot) -> Snapshot:
    """``snapshot`` less what ``baseline`` had counted: sums and histograms per series, gauges unchanged.

    A process forked from another starts with a copy of its parent's series; what it counts as a member of a
    group is what it added since (the parent counts its own).
    """
    if not baseline.families:
        return snapshot
    out: list[Family] = []
    for fam in snapshot.families:
        base = baseline.get(fam.name)
        if base is None or isinstance(fam, GaugeFamily) or type(base) is not type(fam):
            out.append(fam)
        elif isinstance(fam, HistogramFamily):
            old_h = {p.key: p for p in base.points if isinstance(p, HistogramPoint)}
            hpoints: list[HistogramPoint] = []
            for p in fam.points:
                b = old_h.get(p.key)
                if b is None or len(b.counts) != len(p.counts):
                    hpoints.append(p)
                    continue
                counts = [x - y for x, y in zip(p.counts, b.counts, strict=True)]
                hpoints.append(p._replace(counts=counts, observed=sum(counts), sum=p.sum - b.sum))
            out.append(fam._replace(points=hpoints))
        else:
            old_n = {p.key: p.value for p in base.points if isinstance(p, NumberPoint)}
            out.append(fam._replace(points=[p._replace(value=p.value - old_n.get(p.key, 0)) for p in fam.points]))
    return Snapshot(snapshot.time_ns, out)
