"""The frame's per-symbol rows kept between builds from snapshots: only the symbols whose series changed are redone.

A worker group's leader builds each frame from the group's merged snapshot (:class:`~..metrics.wire.Merger`).
That merger gives an unchanged family back as the same object, and in a changed family an unchanged series as
the same point. :class:`Rows` keeps, per instrument the rows read, its last points and which symbol each one
belongs to; a point that is not the one at its place last time marks its symbol, and only the marked symbols'
rows are made again: a marked symbol's last row is copied with the fields of the instruments that moved for it
read again (a row whose fields come or go is made whole). A row is made exactly as :meth:`.FrameBuilder.build`
makes it from the registry (the same sums in the same order, the same keys in the same order), so a kept row
equals a fresh one. Rows are never
changed in place: the frame before still holds them, and :func:`.delta` skips a row that is the same object.

At 4 workers x 1,000 symbols, where a tenth of a second changes a third of the symbols, this is a few
milliseconds a frame instead of about fifteen. Any other snapshot (one not made by a kept merger) has new points
throughout: every symbol is then redone, which costs about what the full walk costs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import compress
from operator import is_not
from typing import Any

from ..metrics import HistogramPoint, NumberPoint, Snapshot
from ..metrics.snapshot import entry_price

__all__ = ["Rows", "rounded"]

Quantiles = Callable[[str, str, tuple[float, ...], Sequence[HistogramPoint]], dict[str, float | None]]


def rounded(v: float | None) -> float | None:
    """Round for the wire: 6 significant digits are plenty for a chart and keep frames small."""
    if v is None:
        return None
    return float(f"{v:.6g}")


def exact(v: float) -> float:
    """Money and prices the frame computes (P&L totals, an average entry over strategies) for the wire: 12
    significant digits, which drop a sum's binary noise (10.900000000000002 -> 10.9) and keep the cents of
    billions and the fifth decimal of an FX price; 6 (:func:`rounded`) showed a P&L of 1,234,567.89 as 1,234,570
    and an average entry of 1.101996 as 1.102."""
    return float(f"{v:.12g}")


class _View:
    """One instrument of the snapshots, as last read: its points and, for each, its symbol."""

    __slots__ = ("at", "bounds", "by_sym", "points", "rest", "syms")

    def __init__(self) -> None:
        self.points: Sequence[Any] = ()
        self.syms: list[str | None] = []
        self.by_sym: dict[str, list[int]] = {}  # symbol -> its points' places, in order
        self.rest: list[int] = []  # the places of the points without a symbol (an instrument's overflow series)
        self.bounds: tuple[float, ...] = ()
        self.at: dict[Any, int] = {}  # series key -> its place

    def update(self, points: Sequence[Any], bounds: tuple[float, ...] = ()) -> set[str] | None:
        """Take ``points``; the symbols with a point that is not the one last seen at its place (or that is new,
        after the others), or None when the series themselves changed (removed, moved): every symbol must be
        redone then."""
        old = self.points
        if points is old:
            return set()
        k = len(old)
        if k and len(points) >= k and bounds == self.bounds:  # the same series, or those and new ones after them
            changed = list(compress(range(k), map(is_not, points[:k], old)))  # at C speed
            if all(points[i].key == old[i].key for i in changed):
                self.points = points
                syms = self.syms
                dirty = {s for s in map(syms.__getitem__, changed) if s is not None}
                for i in range(k, len(points)):
                    p = points[i]
                    s = _symbol(p)
                    syms.append(s)
                    if s is not None:
                        self.by_sym.setdefault(s, []).append(i)
                        dirty.add(s)
                    else:
                        self.rest.append(i)
                    self.at[p.key] = i
                return dirty
        self.points, self.bounds = points, bounds
        self.syms = syms = [_symbol(p) for p in points]
        by_sym: dict[str, list[int]] = {}
        rest: list[int] = []
        for i, s in enumerate(syms):
            if s is not None:
                by_sym.setdefault(s, []).append(i)
            else:
                rest.append(i)
        self.by_sym, self.rest = by_sym, rest
        self.at = {p.key: i for i, p in enumerate(points)}
        return None


class Rows:
    """Per-symbol rows from a series of snapshots (see the module's docstring)."""

    def __init__(
        self,
        gauges: Mapping[str, str],
        counters: Mapping[str, str],
        avg_price: str,
        position: str,
        last_tick: str,
        latency: str,
    ) -> None:
        self._sums = [(name, key, _View()) for name, key in (*gauges.items(), *counters.items())]
        # avg is weighted by |position| per series: the position instrument is one of the summed ones
        self._qty_at = next(i for i, (name, _, _) in enumerate(self._sums) if name == position)
        self._qty = self._sums[self._qty_at][2]
        self._avg, self._tick, self._lat = _View(), _View(), _View()
        self._names = (avg_price, last_tick, latency)
        self._ages: dict[str, int] = {}
        self._q: dict[str, dict[str, float | None]] = {}  # symbol -> its latency's p50 and p99
        self._rows: dict[str, dict[str, Any]] = {}

    def build(
        self, snap: Snapshot, now: float, quantiles: Quantiles, offer: Callable[[], None] | None = None
    ) -> tuple[dict[str, dict[str, Any]], float | None]:
        """This snapshot's rows (a new dict; unchanged rows are the last ones) and the newest tick's age."""
        avg_price, last_tick, latency = self._names
        # Per instrument, the symbols whose points changed (None: its series moved, every row is redone)
        moved: list[set[str] | None] = [view.update(snap.numbers(name)) for name, _, view in self._sums]
        moved_avg = self._avg.update(snap.numbers(avg_price))
        moved_tick = self._tick.update(snap.numbers(last_tick))
        fam = snap.histogram(latency)
        changed = self._lat.update(fam.points if fam is not None else (), fam.bounds if fam else ())
        if changed is None:
            self._q.clear()
        else:
            for sym in changed:  # their quantiles are computed again (the others' are kept)
                self._q.pop(sym, None)
        dirty: set[str] | None = set()
        for more in (*moved, moved_avg, moved_tick, changed):
            dirty = _join(dirty, more)
        if offer is not None:
            offer()
        newest, aged = self._age(now)
        old = self._rows
        if dirty is None:  # every symbol, in the order a walk of the instruments first meets them
            order = dict.fromkeys(s for _, _, v in self._sums for s in v.by_sym)
            for v in (self._avg, self._tick, self._lat):
                order.update(dict.fromkeys(v.by_sym))
            rows: dict[str, dict[str, Any]] = {}
            for n, sym in enumerate(order):
                r = self._row(sym, quantiles)
                if r:
                    rows[sym] = r
                if offer is not None and not n & 63:
                    offer()
        else:
            rows = dict(old)
            # A row that was there is patched: the fields of the instruments that moved for its symbol are read
            # again, the others kept (see _patch); a new row, or one whose fields come or go, is made whole.
            sums = [(key, view, m) for (_, key, view), m in zip(self._sums, moved, strict=True) if m]
            weighed = (moved_avg or set()) | (moved[self._qty_at] or set())
            changed = changed or set()
            dirty |= aged
            for n, sym in enumerate(dirty):
                was = old.get(sym)
                got = (
                    None
                    if was is None
                    else self._patch(sym, was, sums, sym in weighed, sym in aged, sym in changed, quantiles)
                )
                r = got if got is not None else self._row(sym, quantiles)
                if r:
                    rows[sym] = r
                else:
                    rows.pop(sym, None)
                if offer is not None and not n & 63:
                    offer()
        self._rows = rows
        return rows, newest

    def _patch(
        self,
        sym: str,
        old: dict[str, Any],
        sums: list[tuple[str, _View, set[str]]],
        weighed: bool,
        aged: bool,
        timed: bool,
        quantiles: Quantiles,
    ) -> dict[str, Any] | None:
        """``old`` (the symbol's last row) with the fields of the instruments that moved for ``sym`` made again, as
        :meth:`_row` makes them; None when a field would come or go (a new series, a position gone flat): the row
        is then made whole, so its keys keep :meth:`_row`'s order. At 4 workers x 1,000 symbols a tenth of a second
        moves a third of the rows, most in one or two fields (a price and its tick age)."""
        r = dict(old)  # never in place: the frame before holds ``old``
        for key, view, moved in sums:
            if sym not in moved:
                continue
            idx = view.by_sym.get(sym)
            if idx is None or key not in r:
                return None
            r[key] = _field(key, view.points, idx)
        if weighed:
            avg = self._avg_of(sym)
            if avg is _NONE or ("avg" in r) != (avg is not None):
                return None
            if avg is not None:
                r["avg"] = avg
        if aged:
            age = self._ages.get(sym)
            if age is None or "age" not in r:
                return None
            r["age"] = age
        if timed:
            idx = self._lat.by_sym.get(sym)
            if idx is None or "p50" not in r:
                return None
            r.update(self._quantiles_of(sym, idx, quantiles))
        return r

    def _avg_of(self, sym: str) -> Any:
        """The row's ``avg``: None when it has none, :data:`_NONE` when the symbol has no average entry series."""
        idx = self._avg.by_sym.get(sym)
        if idx is None:
            return _NONE
        points = self._avg.points  # one series as reported, unless flat; several (strategies): cost over
        at, qty = self._qty.at, self._qty.points  # quantity, if all are on one side (entry_price: none for a
        if len(idx) == 1:  # long and a short)
            p: NumberPoint = points[idx[0]]
            j = at.get(p.key)
            if j is None or qty[j].value != 0:  # a flat position has no average entry, whatever it last said
                return p.value
            return None
        prices, quantities = [], []
        for i in idx:
            p = points[i]
            j = at.get(p.key)
            prices.append(p.value)
            quantities.append(0.0 if j is None else qty[j].value)
        avg = entry_price(prices, quantities)
        return None if avg is None else exact(avg)

    def _quantiles_of(self, sym: str, idx: list[int], quantiles: Quantiles) -> dict[str, float | None]:
        q = self._q.get(sym)
        if q is None:
            points = self._lat.points
            q = self._q[sym] = quantiles(self._names[2], sym, self._lat.bounds, [points[i] for i in idx])
        return q

    def without_symbol(self) -> dict[str, float]:
        """Per row key, the sum of the last snapshot's series without a symbol (past an instrument's limit,
        ``max_series`` or a gauge's ``max_gauge_series``, the overflow series holds every symbol's): what the rows
        leave out of a desk total (the desk sums only the counters': a gauge's overflow keeps one value)."""
        out: dict[str, float] = {}
        for _, key, view in self._sums:
            if view.rest:
                points = view.points
                out[key] = sum(points[i].value for i in view.rest)
        return out

    def _age(self, now: float) -> tuple[float | None, set[str]]:
        """Each symbol's tick age (whole seconds: it moves with the clock, so a symbol whose age changed is
        redone too); the newest tick's age, and the symbols whose age changed."""
        ages: dict[str, int] = {}
        points = self._tick.points
        newest: float | None = None
        for sym, idx in self._tick.by_sym.items():
            t = max(points[i].value for i in idx) if len(idx) > 1 else points[idx[0]].value
            ages[sym] = int(now - t) if now > t else 0  # the youngest tick: the smallest age
            if newest is None or t > newest:
                newest = t
        last = self._ages
        aged = {sym for sym, age in ages.items() if last.get(sym) != age}
        self._ages = ages
        return (None if newest is None else round(max(0.0, now - newest), 1)), aged

    def _row(self, sym: str, quantiles: Quantiles) -> dict[str, Any]:
        r: dict[str, Any] = {}
        for _, key, view in self._sums:
            idx = view.by_sym.get(sym)
            if idx is None:
                continue
            r[key] = _field(key, view.points, idx)
        avg = self._avg_of(sym)
        if avg is not None and avg is not _NONE:
            r["avg"] = avg
        age = self._ages.get(sym)
        if age is not None:
            r["age"] = age
        idx = self._lat.by_sym.get(sym)
        if idx is not None:
            r.update(self._quantiles_of(sym, idx, quantiles))
        return r


_NONE = object()  # Rows._avg_of: the symbol has no average entry series


def _field(key: str, points: Sequence[Any], idx: list[int]) -> Any:
    """A row's field from the symbol's points of one instrument (``idx``, their places): the price is the last
    series' (the most recent), every other field the sum over the symbol's series (strategies, venues, workers)."""
    if key == "px":
        return points[idx[-1]].value
    v: Any = 0
    for i in idx:
        v = v + points[i].value
    return v


def _symbol(p: Any) -> str | None:
    """A point's symbol as a row is keyed (None: not a per-symbol series)."""
    sym = p.attributes.get("symbol")
    return None if sym is None else str(sym)


def _join(dirty: set[str] | None, more: set[str] | None) -> set[str] | None:
    if dirty is None or more is None:
        return None
    dirty |= more
    return dirty
