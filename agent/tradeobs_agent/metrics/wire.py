"""A process's snapshot as bytes another process of the same service reads (multi-process mode).

>>> from tradeobs_agent.metrics import Registry
>>> reg = Registry()
>>> reg.counter("orders").bind(side="buy").add(2)
>>> data = PartWriter(pid=42).encode(reg.snapshot())
>>> part, meta = PartReader().decode(data, live=True)
>>> part.pid, part.snapshot.numbers("orders")[0].value
(42, 2)

Each worker writes its snapshot to a file at every publish; any process of the
service reads every worker's file and merges them (``snapshot.merge``). So the
format is built for a writer that publishes often and readers that read often:

* the **layout** (families, attribute sets, start times, aggregations) changes
  only when a series appears, so it is encoded once per change (JSON) and a
  reader decodes it once per version;
* the **values** are one array of float64 in layout order (a counter: its
  value; a gauge: its value and when it last changed; a histogram: its bucket
  counts, sum, min and max), decoded by ``array.frombytes``;
* the **exemplars** (trace and span ids, latest per bucket) are a JSON list of integers.

Nothing read is trusted: the header's magic, format version and sizes, a CRC-32
of the values and exemplars, a CRC-32 of the layout and the types of every
layout and exemplar field are checked, and anything wrong raises
:class:`CorruptPart` (the caller drops the file). JSON is read with orjson,
which builds only plain data. Counts are exact up to 2**53 (float64).

Releases mix in a rolling deploy (a worker started from a new install next to
the old ones), so the layout changes only in ways an earlier reader passes over:

* :data:`FORMAT` (the header) changes only for what an earlier reader cannot
  read at all; a file of a format not in :data:`READS` raises :class:`OtherFormat`.
  A release that changes it keeps reading the earlier format (:data:`READS`), and
  the worker group lets a worker of the latest format lead, so a rolling upgrade's
  totals count both releases' workers;
* the layout's ``revision`` (:data:`REVISION`; none: 1) says which release's
  additions it may hold; readers ignore keys of the layout they do not know,
  and fields after the seventh of a family (this one does too);
* an aggregation added since the first release (``entry``) is written as its
  stand-in (``snapshot.FALLBACKS``: ``last``) in the family's own field, which an
  earlier leader merges by, and by name under the layout's ``aggregations``,
  which a leader that knows it merges by. An aggregation this reader does not
  know is read as its stand-in, or as ``sum`` (counters, histograms) or ``pid``
  (the rest) when the family itself names one: the file is never dropped for it.
  What was read so is in the layout's ``notes`` (the caller counts and says it).
"""

from __future__ import annotations

import contextlib
import gc
import math
import operator
import struct
import time
import zlib
from array import array
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from itertools import chain, compress, repeat
from typing import Any, NamedTuple

import orjson

from .._errors import warn_once
from .._text import right_sized
from ..types import AttrKey
from ._clock import points_ns
from .snapshot import (
    AGGREGATIONS,
    FALLBACKS,
    FIRST_AGGREGATIONS,
    NO_QUANTITY,
    PID_LABEL,
    Exemplar,
    Family,
    GaugeFamily,
    HistogramFamily,
    HistogramPoint,
    NumberPoint,
    Part,
    Snapshot,
    SumFamily,
    quantity_of,
    settle_declared,
)

__all__ = [
    "FORMAT",
    "HEADER_SIZE",
    "MAGIC",
    "READS",
    "REVISION",
    "Columns",
    "CorruptPart",
    "Merger",
    "OtherFormat",
    "PartReader",
    "PartWriter",
    "header_format",
    "to_part",
]

MAGIC = b"TOBS"
FORMAT = 1
# The formats this release decodes. A release that changes FORMAT keeps the earlier one here (with its decoder), so
# that in a rolling upgrade its leader still counts the workers of the release before it; the worker group lets a
# worker of the latest format lead (``header_format``; docs/agent.md, Rolling deploys).
READS = frozenset({FORMAT})
REVISION = 2  # the layout's: 2 added the ``aggregations`` of families whose own field holds a stand-in (entry)
# magic, format, flags, time_ns, pid, layout version, layout length, layout crc, values, exemplar length, body crc
_HEADER = struct.Struct("<4sHHqiIIIIII")
HEADER_SIZE = _HEADER.size
_MAX_LAYOUT = 256 << 20
_EXACT = float(2**53)
_U64 = 2**64 - 1
CHUNK = 64  # series read between two pauses of encode_registry
SLICE = 8192  # values packed into bytes or compared in one C call when a pause is asked for
CHUNK_BYTES = 512  # bytes (64 values) compared at once in a slice that differs: _changed_slots XORs only those
_FIRST, _THIRD = operator.itemgetter(0), operator.itemgetter(2)  # a series' key and start
_new = tuple.__new__
_KINDS = ("c", "u", "g", "h")  # counter, up-down counter, gauge, histogram


class CorruptPart(ValueError):
    """A shared snapshot file that is not what this module writes (torn, truncated, foreign or tampered)."""


class OtherFormat(CorruptPart):
    """A tradeobs snapshot of another :data:`FORMAT`: written by a release this one cannot read (nor it this one's)."""

    def __init__(self, fmt: int) -> None:
        reads = " and ".join(map(str, sorted(READS)))
        super().__init__(f"snapshot format {fmt}; this release reads format {reads}")
        self.format = fmt


def header_format(head: bytes) -> int | None:
    """The format number in the first bytes of a snapshot file (at least 6), or None when they are not a tradeobs
    snapshot's: what a worker checks of its peers' files before it campaigns (a later format's worker leads)."""
    if len(head) < 6 or head[:4] != MAGIC:
        return None
    fmt: int = struct.unpack_from("<H", head, 4)[0]
    return fmt if 1 <= fmt <= 255 else None


Note = tuple[str, str, str, str]
"""What a reader did about a family it could not take as written: (reason, family, declared, merged as). Reasons:
``aggregation`` (one this release does not know: its stand-in used), ``mixed`` (processes declare different ones:
``snapshot.settle``)."""


def _family_kind(f: Family) -> str:
    if isinstance(f, HistogramFamily):
        return "h"
    if isinstance(f, GaugeFamily):
        return "g"
    return "c" if f.monotonic else "u"


class PartWriter:
    """Encodes the successive snapshots of one process (the layout only when it changed)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._sig: tuple[Any, ...] | None = None
        self._layout = b""
        self._layout_crc = 0
        self._version = 0
        self._gauges: dict[tuple[str, AttrKey], float] = {}  # last value seen per gauge series
        self._changed: dict[tuple[str, AttrKey], float] = {}  # ... and when it changed (epoch seconds)
        # The fast path's, per gauge instrument: its values and stamps in order, and its series' keys. A layout
        # encode hands its values and stamps on to it (and it hands them back at the next one): a stamp says when
        # the value changed, never merely that a layout was written since.
        self._prev: dict[str, tuple[list[float], list[float], list[AttrKey]]] = {}

    def encode(self, snapshot: Snapshot, meta: Mapping[str, Any] | None = None, now: float | None = None) -> bytes:
        """The file for ``snapshot``; ``meta`` (JSON-able, small) travels with the layout."""
        fams = snapshot.families
        meta_bytes = orjson.dumps(dict(meta or {}))
        sig = (meta_bytes, *map(_shape, fams))
        if sig != self._sig:
            self._relayout(fams, meta_bytes, sig)
        values: list[float] = []
        add = values.append
        exemplars: list[tuple[Any, ...]] = []
        gauges: list[tuple[str, int, int, list[AttrKey]]] = []
        for fi, f in enumerate(fams):
            if isinstance(f, HistogramFamily):
                for pi, hp in enumerate(f.points):
                    values += hp.counts
                    add(hp.sum)
                    add(hp.min)
                    add(hp.max)
                    exemplars += [(fi, pi, bucket, e) for bucket, e in hp.exemplars.items()]
            elif isinstance(f, GaugeFamily):
                gauges.append((f.name, len(values), len(f.points), [p.key for p in f.points]))
                for p in f.points:
                    add(p.value)
                    add(0.0)  # its stamp: _stamp_by_key
            else:
                for p in f.points:
                    add(p.value)
        self._stamp_by_key(gauges, values, time.time() if now is None else now)
        return self._pack(snapshot.time_ns, values, exemplars)

    def encode_registry(
        self,
        registry: Any,
        extra: Sequence[Family] = (),
        meta: Mapping[str, Any] | None = None,
        now: float | None = None,
        with_exemplars: bool = True,
        pause: Callable[[], object] | None = None,
    ) -> bytes:
        """The file for ``registry`` (a :class:`~tradeobs_agent.metrics.Registry`) and ``extra`` families, read
        straight from its series: no snapshot objects. ``with_exemplars=False`` leaves the exemplars out (the live
        view does not show them; a scrape's file has them). ``pause`` is called after every :data:`CHUNK` series
        read (a background thread may let the trading thread have the GIL there: ``gil.Slices.offer`` does after
        each 0.1 ms of work).

        When the shape changed (a series appeared, or one lost its value: ``BoundGauge.unset``, which an
        instrument's ``unsets`` counts), the registry is read a second time, each instrument saying
        which series it wrote, and that is the new layout: 15 ms at 1,000 symbols (17,000 series) instead of the
        70 ms a snapshot took, and with pauses throughout."""
        time_ns = points_ns()
        meta_bytes = orjson.dumps(dict(meta or {}))
        exemplars: list[tuple[Any, ...]] = []
        sink = exemplars if with_exemplars else None
        values, sig, gauges, fi = self._read(registry, extra, meta_bytes, sink, pause, None)
        now = time.time() if now is None else now
        if sig != self._sig:  # a new series or instrument: read again, with the series each instrument writes
            exemplars.clear()
            layout: list[list[Any]] = []
            values, sig, gauges, fi = self._read(registry, extra, meta_bytes, sink, pause, layout)
            self._set_layout(layout, meta_bytes, sig)
            self._stamp_by_key([(name, start, n, [k for k, _ in pts]) for name, start, n, pts in gauges], values, now)
        else:
            self._stamp(gauges, values, now, pause)
        for j, f in enumerate(extra):
            self._extra_values(f, fi + j, values, exemplars, now)
        return self._pack(time_ns, values, exemplars, pause)

    def _read(
        self,
        registry: Any,
        extra: Sequence[Family],
        meta_bytes: bytes,
        sink: list[tuple[Any, ...]] | None,
        pause: Callable[[], object] | None,
        layout: list[list[Any]] | None,
    ) -> tuple[list[float], tuple[Any, ...], list[tuple[str, int, int, Any]], int]:
        """Every instrument's values; the shape they make (this writer's layout signature); each gauge's name, first
        value and number of series (and with ``layout``, its series); how many families. ``layout`` gets the
        layout's families (``extra``'s included), as :meth:`_relayout` makes them."""
        values: list[float] = []
        shape: list[Any] = [meta_bytes]
        gauges: list[tuple[str, int, int, Any]] = []
        fi = 0
        since_pause = 0
        for inst in registry.instruments():
            start = len(values)
            written: list[tuple[AttrKey, int]] | None = [] if layout is not None else None
            # Before the values: a series unset after this read moves the count, so the next encode lays out again.
            # The number of points alone does not say which: one gauge series unset and another set since the last
            # layout is as many values, in places the old layout gives to other series.
            unsets = inst.unsets
            n = inst.write_values(values, fi, sink, written)
            since_pause += n
            if pause is not None and since_pause >= CHUNK:
                pause()
                since_pause = 0
            if not n:
                continue
            kind = "g" if inst.kind == "gauge" else "h" if inst.kind == "histogram" else "c" if inst.monotonic else "u"
            shape.append((inst.name, kind, inst.aggregation, n, unsets))
            if layout is not None:
                bounds = list(inst.bounds) if kind == "h" else None
                layout.append([kind, inst.name, inst.unit, inst.description, inst.aggregation, bounds, written])
            if kind == "g":
                gauges.append((inst.name, start, n, written))
            fi += 1
        shape += map(_shape, extra)
        if layout is not None:
            layout += _layout_families(extra)
        return values, tuple(shape), gauges, fi

    def _stamp(
        self,
        gauges: list[tuple[str, int, int, Any]],
        values: list[float],
        now: float,
        pause: Callable[[], object] | None,
    ) -> None:
        """The fast path: each gauge value's stamp (when it last changed: the ``last`` aggregation) into ``values``,
        by place, from the last encode's."""
        prev = self._prev
        for name, start, n, _ in gauges:
            old = prev.get(name)
            if old is None or len(old[0]) != n:  # (the layout encode gives every gauge its own; for safety)
                old = prev[name] = ([math.nan] * n, [now] * n, [])
            pv, stamps, _ = old
            now_values = values[start : start + 2 * n : 2]
            for i in compress(range(n), map(operator.ne, now_values, pv)):  # the changed ones, found at C speed
                stamps[i] = now
            pv[:] = now_values
            values[start + 1 : start + 2 * n : 2] = stamps
            if pause is not None:
                pause()

    def _stamp_by_key(self, gauges: list[tuple[str, int, int, list[AttrKey]]], values: list[float], now: float) -> None:
        """With a new layout: each gauge value's stamp by its series' key (places moved), from what the fast path
        saw since the last layout; then hands the values and stamps to the fast path, by place."""
        seen, changed = self._gauges, self._changed
        for name, (pv, stamps, keys) in self._prev.items():
            for k, v, t in zip(keys, pv, stamps, strict=False):  # (no keys: a gauge the fast path met first)
                seen[(name, k)] = v
                changed[(name, k)] = t
        # A series the last layout had and this one has not lost its value (unset): forgotten, so that a value it
        # gets again is news when it comes (aggregation ``last``), even the one it had before.
        now_keys = {name: keys for name, _, _, keys in gauges}
        for name, (_, _, keys) in self._prev.items():
            new = now_keys.get(name)
            if keys != new:
                kept = set(new or ())
                for k in keys:
                    if k not in kept:
                        seen.pop((name, k), None)
                        changed.pop((name, k), None)
        seeds: dict[str, tuple[list[float], list[float], list[AttrKey]]] = {}
        for name, start, n, keys in gauges:
            now_values = values[start : start + 2 * n : 2]
            stamps = []
            for k, v in zip(keys, now_values, strict=True):
                ck = (name, k)
                if seen.get(ck) != v:
                    seen[ck] = v
                    changed[ck] = now
                stamps.append(changed[ck])
            values[start + 1 : start + 2 * n : 2] = stamps
            seeds[name] = (now_values, stamps, keys)
        self._prev = seeds

    def _extra_values(
        self, f: Family, fi: int, values: list[float], exemplars: list[tuple[Any, ...]], now: float
    ) -> None:
        if isinstance(f, HistogramFamily):
            for pi, hp in enumerate(f.points):
                values += hp.counts
                values += (hp.sum, hp.min, hp.max)
                exemplars += [(fi, pi, bucket, e) for bucket, e in hp.exemplars.items()]
        elif isinstance(f, GaugeFamily):
            for p in f.points:
                ck = (f.name, p.key)
                if self._gauges.get(ck) != p.value:
                    self._gauges[ck] = p.value
                    self._changed[ck] = now
                values += (p.value, self._changed[ck])
        else:
            values += [p.value for p in f.points]

    def _pack(
        self,
        time_ns: int,
        values: list[float],
        exemplars: list[tuple[Any, ...]],
        pause: Callable[[], object] | None = None,
    ) -> bytes:
        ex = b""
        if exemplars:
            # [family, series, bucket, value, time_ns, trace id high and low 64 bits, span id]: plain ints, which
            # orjson writes without any formatting of ours (128-bit ids do not fit one JSON integer it reads).
            ex = orjson.dumps([(fi, pi, b, e[0], e[1], e[2] >> 64, e[2] & _U64, e[3]) for fi, pi, b, e in exemplars])
        body = _float64s(values, pause) + ex
        header = _HEADER.pack(
            MAGIC,
            FORMAT,
            0,
            time_ns,
            self.pid,
            self._version,
            len(self._layout),
            self._layout_crc,
            len(values),
            len(ex),
            zlib.crc32(body),
        )
        return header + self._layout + body

    def _relayout(self, fams: Any, meta_bytes: bytes, sig: tuple[Any, ...]) -> None:
        self._set_layout(_layout_families(fams), meta_bytes, sig)

    def _set_layout(self, out: list[list[Any]], meta_bytes: bytes, sig: tuple[Any, ...]) -> None:
        later: dict[str, str] = {}
        for f in out:  # an aggregation an earlier release does not know: its stand-in, and the aggregation by name
            if f[4] not in FIRST_AGGREGATIONS:
                later[f[1]] = f[4]
                f[4] = FALLBACKS.get(f[4], "sum" if f[0] in ("c", "h") else "pid")
        extra = b',"aggregations":' + orjson.dumps(later) if later else b""
        self._layout = (
            b'{"meta":' + meta_bytes + b',"families":' + orjson.dumps(out) + b',"revision":%d' % REVISION + extra + b"}"
        )
        self._layout_crc = zlib.crc32(self._layout)
        self._version = (self._version + 1) & 0xFFFFFFFF
        self._sig = sig


def _shape(f: Family) -> tuple[Any, ...]:
    """A snapshot family's part of a layout signature: its series by key. Not by number: a gauge's series can lose
    its value (unset) while another gets one, and a family from the OpenTelemetry SDK (``extra``) reports the
    attribute sets its callbacks give."""
    return (f.name, _family_kind(f), f.aggregation, tuple([p.key for p in f.points]))


def _layout_families(fams: Sequence[Family]) -> list[list[Any]]:
    """Families as a layout lists them: kind, name, unit, description, aggregation, bounds (a histogram's), and
    each point's ``(key, start_ns)`` (orjson writes tuples as arrays)."""
    return [
        [
            _family_kind(f),
            f.name,
            f.unit,
            f.description,
            f.aggregation,
            list(f.bounds) if isinstance(f, HistogramFamily) else None,
            [(p.key, p.start_ns) for p in f.points],
        ]
        for f in fams
    ]


class _Layout:
    """A decoded, validated layout: per family ``(kind, name, unit, description, aggregation, bounds, series,
    first slot, slots per series)``, each series ``(key, attributes, start_ns)``."""

    __slots__ = ("crc", "families", "meta", "notes", "revision", "slots", "version")

    def __init__(
        self,
        version: int,
        crc: int,
        meta: dict[str, Any],
        families: list[tuple[Any, ...]],
        slots: int,
        revision: int = REVISION,
        notes: Sequence[Note] = (),
    ):
        self.version, self.crc, self.meta, self.families, self.slots = version, crc, meta, families, slots
        self.revision = revision  # the writer's layout revision (1: before it was written)
        self.notes = notes


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise CorruptPart(what)


_ATTR_TYPES = (str, bool, int, float)


def _attr_key(pairs: Any, cache: dict[Any, tuple[AttrKey, dict[str, Any]]]) -> tuple[AttrKey, dict[str, Any]]:
    try:
        key = tuple([(k, v) for k, v in pairs])
    except (TypeError, ValueError):
        raise CorruptPart("attributes") from None
    hit = cache.get(key)
    if hit is not None:
        return hit
    last = ""
    for i, (k, v) in enumerate(key):
        _check(type(k) is str and type(v) in _ATTR_TYPES and (i == 0 or k >= last), "attribute")
        _check(type(v) is not int or -(2**63) <= v < 2**63, "attribute value")
        last = k
    out = (key, dict(key))
    cache[key] = out
    return out


_Parsed = dict[str, tuple[bytes, list[tuple[AttrKey, dict[str, Any], int]]]]


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The garbage collector paused, then put back as it was (a host that turned it off keeps it off). For a
    layout's decode: its JSON parse makes some 100,000 lists in one C call (17,000 series at 1,000 symbols); with
    the collector on, they set off its young and then whole-process collections inside that call: 55 ms holding
    the GIL instead of 10. What the parse makes is freed by reference counting once the layout is decoded, so
    nothing is left for the collector."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _parse_layout(
    raw: bytes,
    version: int,
    crc: int,
    keys: dict[Any, tuple[AttrKey, dict[str, Any]]] | None = None,
    last: _Parsed | None = None,
    offer: Callable[[], object] | None = None,
) -> _Layout:
    """Check and decode a layout. ``last`` (the reader's own, kept between layouts) maps each family's name to its
    points as JSON and its series as decoded: a family whose points are the same as last time (compared as JSON
    bytes) takes its series from there, and one whose points start with last time's decodes only the ones after
    them, so a worker's new series costs the reader those series, not a walk of all 17,000 (at 1,000 symbols;
    ~90 ms). ``last`` then holds this layout's. ``offer`` is called between families and every 1,024 series
    decoded."""
    _check(zlib.crc32(raw) == crc, "layout checksum")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise CorruptPart("layout is not JSON") from None
    _check(isinstance(doc, dict) and isinstance(doc.get("meta"), dict), "layout meta")
    fams = doc.get("families")
    _check(isinstance(fams, list), "layout families")
    revision = doc.get("revision", 1)
    _check(type(revision) is int and revision >= 1, "layout revision")
    later = doc.get("aggregations", {})
    _check(isinstance(later, dict) and all(type(a) is str and len(a) <= 64 for a in later.values()), "aggregations")
    notes: list[Note] = []
    out: list[tuple[Any, ...]] = []
    slots = 0
    seen: set[str] = set()
    if keys is None:
        keys = {}
    elif len(keys) > 200_000:  # bounded: attribute sets come and go over a long run
        keys.clear()
    before = last.copy() if last is not None else {}
    if last is not None:
        last.clear()
    for f in fams:
        if offer is not None:
            offer()
        _check(isinstance(f, list) and len(f) >= 7, "family")  # (fields after the seventh: a later release's)
        kind, name, unit, desc, agg, extra, points = f[:7]
        _check(kind in _KINDS and isinstance(name, str) and name not in seen, "family kind or name")
        _check(isinstance(unit, str) and isinstance(desc, str) and type(agg) is str and len(agg) <= 64, "family fields")
        wanted = later.get(name, agg)
        if wanted not in AGGREGATIONS:  # a later release's: its stand-in (or, named as the family's own, a safe one)
            used = agg if agg in AGGREGATIONS else "sum" if kind in ("c", "h") else "pid"
            notes.append(("aggregation", name, wanted, used))
            wanted = used
        agg = wanted
        _check(isinstance(points, list), "points")
        seen.add(name)
        width = 1 if kind in ("c", "u") else 2
        bounds: tuple[float, ...] = ()
        if kind == "h":
            _check(isinstance(extra, list) and all(isinstance(b, int | float) for b in extra), "bounds")
            bounds = tuple(float(b) for b in extra)
            _check(all(math.isfinite(b) for b in bounds) and list(bounds) == sorted(set(bounds)), "bounds order")
            width = len(bounds) + 4
        seen_as = right_sized(orjson.dumps(points))  # kept instead of the parsed lists: a seventh of the memory
        kept = before.get(name)
        if kept is not None and kept[0] == seen_as:
            series = kept[1]  # checked when it was decoded
        else:
            # A registry's series mostly come after the ones it has (a gauge's can also go, when unset): when the
            # last points are where this JSON starts, they are the same points (each one is whole up to the next
            # comma), and only the rest is new.
            start = 0
            if kept is not None and len(kept[0]) < len(seen_as) and seen_as.startswith(kept[0][:-1] + b","):
                start = len(kept[1])
            series = list(kept[1]) if kept is not None and start else []
            for i, p in enumerate(points[start:]):
                _check(type(p) is list and len(p) == 2 and type(p[1]) is int, "point")
                key, attrs = _attr_key(p[0], keys)
                series.append((key, attrs, p[1]))
                if offer is not None and not i & 1023:
                    offer()
            _check(len({s[0] for s in series}) == len(series), "a series twice")
        if last is not None:
            last[name] = (seen_as, series)
        out.append((kind, name, unit, desc, agg, bounds, series, slots, width))
        slots += width * len(series)
    return _Layout(version, crc, doc["meta"], out, slots, revision, notes)


def _split(data: bytes) -> tuple[memoryview, int, int, tuple[int, int, memoryview], tuple[int, int, int]]:
    size = _HEADER.size
    _check(len(data) >= size, "short header")
    magic, fmt, _flags, time_ns, pid, version, layout_len, layout_crc, n, ex_len, body_crc = _HEADER.unpack_from(data)
    _check(magic == MAGIC, "not a tradeobs snapshot (magic)")
    if fmt not in READS:  # another release's (1 was the first); past 255 it is not a plausible format but garbage
        _check(1 <= fmt <= 255, "not a tradeobs snapshot (format)")
        raise OtherFormat(fmt)
    _check(layout_len <= _MAX_LAYOUT and len(data) == size + layout_len + 8 * n + ex_len, "sizes")
    view = memoryview(data)
    body = view[size + layout_len :]
    _check(zlib.crc32(body) == body_crc, "values checksum")
    layout = view[size : size + layout_len]
    return body, pid, time_ns, (version, layout_crc, layout), (n, ex_len, size + layout_len)


class Columns(NamedTuple):
    """One process's file as :class:`Merger` reads it: its layout and its values, no per-series objects."""

    pid: int
    live: bool
    time_ns: int
    layout: _Layout
    values: array[float]  # float64, in layout order
    exemplars: list[tuple[int, int, int, Exemplar]]  # (family index, series index, bucket, exemplar)
    raw: bytes  # the values as the file holds them (float64): Merger finds what changed by comparing them


class PartReader:
    """Decodes the successive files of one process; a layout is parsed and checked once per version."""

    def __init__(self, keys: dict[Any, tuple[AttrKey, dict[str, Any]]] | None = None) -> None:
        self._layout: _Layout | None = None
        # Attribute sets already checked, kept across this process's layouts (a new layout repeats the old sets).
        # ``keys``: a dict shared by the readers of several processes (a group's leader reads every member's
        # file): the same attribute set is then one object in every process's layout, and the merge's compares
        # of their series keys (``_common``, the plan's index) stop at identity instead of walking each tuple.
        self._keys: dict[Any, tuple[AttrKey, dict[str, Any]]] = {} if keys is None else keys
        self._families: _Parsed = {}  # the last layout's families: their points as JSON, and decoded

    def columns(
        self, data: bytes, live: bool, offer: Callable[[], object] | None = None
    ) -> tuple[Columns, dict[str, Any]]:
        """``(columns, meta)``: the cheap decode (the values stay float64 in an array: one copy of the bytes);
        raises :class:`CorruptPart` for anything this module did not write. ``offer``: see :func:`_parse_layout`
        (a new layout is the one costly part)."""
        body, pid, time_ns, (version, crc, layout_raw), (n, ex_len, _) = _split(data)
        lay = self._layout
        if lay is None or lay.version != version or lay.crc != crc:
            try:
                with _collector_paused():
                    lay = _parse_layout(bytes(layout_raw), version, crc, self._keys, self._families, offer)
            except CorruptPart:
                self._families.clear()  # (half filled)
                raise
            self._layout = lay
        _check(lay.slots == n, "values do not match the layout")
        raw = bytes(body[: 8 * n])
        v = array("d")  # an array, not a list: no float object per value until one is read (a merge reads few)
        v.frombytes(raw)
        exemplars = self._exemplars(bytes(body[8 * n :]), lay) if ex_len else []
        return Columns(pid, live, time_ns, lay, v, exemplars, raw), lay.meta

    def decode(self, data: bytes, live: bool) -> tuple[Part, dict[str, Any]]:
        """``(part, meta)``: a whole snapshot; raises :class:`CorruptPart` for anything this module did not write."""
        cols, meta = self.columns(data, live)
        return to_part(cols), meta

    @staticmethod
    def _exemplars(raw: bytes, lay: _Layout) -> list[tuple[int, int, int, Exemplar]]:
        try:
            items = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise CorruptPart("exemplars are not JSON") from None
        _check(isinstance(items, list), "exemplars")
        out: list[tuple[int, int, int, Exemplar]] = []
        fams = lay.families
        for e in items:
            _check(type(e) is list and len(e) == 8, "exemplar")
            fi, pi, bucket, value, t, hi, lo, span = e
            ok = type(fi) is int and 0 <= fi < len(fams) and fams[fi][0] == "h"
            _check(ok and type(pi) is int and 0 <= pi < len(fams[fi][6]), "exemplar series")
            _check(type(bucket) is int and 0 <= bucket <= len(fams[fi][5]), "exemplar bucket")
            _check(type(value) in (int, float) and type(t) is int, "exemplar value")
            _check(all(type(x) is int and 0 <= x <= _U64 for x in (hi, lo, span)), "exemplar ids")
            out.append((fi, pi, bucket, Exemplar(float(value), t, hi << 64 | lo, span)))
        return out


def _number(x: float) -> int | float:
    return int(x) if x.is_integer() and -_EXACT < x < _EXACT else x


def to_part(cols: Columns) -> Part:
    """The whole snapshot of one process's columns."""
    v = cols.values
    lay = cols.layout
    exemplars: dict[tuple[int, int], dict[int, Exemplar]] = {}
    for fi, pi, bucket, e in cols.exemplars:
        exemplars.setdefault((fi, pi), {})[bucket] = e
    families: list[Family] = []
    changed: dict[tuple[str, AttrKey], float] = {}
    for fi, (kind, name, unit, desc, agg, bounds, series, base, width) in enumerate(lay.families):
        if kind == "h":
            nb = len(bounds) + 1
            hpoints = []
            for pi, (key, attrs, start) in enumerate(series):
                o = base + pi * width
                counts = [int(c) for c in v[o : o + nb]]
                ex = exemplars.get((fi, pi), {})
                hpoints.append(
                    HistogramPoint(key, attrs, start, counts, sum(counts), v[o + nb], v[o + nb + 1], v[o + nb + 2], ex)
                )
            families.append(HistogramFamily(name, unit, desc, bounds, hpoints, agg))
        elif kind == "g":
            points = []
            for pi, (key, attrs, start) in enumerate(series):
                o = base + 2 * pi
                points.append(NumberPoint(key, attrs, start, v[o]))
                changed[(name, key)] = v[o + 1]
            families.append(GaugeFamily(name, unit, desc, points, agg))
        else:
            points = [NumberPoint(k, a, s, _number(v[base + i])) for i, (k, a, s) in enumerate(series)]
            families.append(SumFamily(name, unit, desc, kind == "c", points, agg))
    return Part(Snapshot(cols.time_ns, families), cols.pid, cols.live, changed)


# --------------------------------------------------------------------------- merging files without decoding each

# Sentinels appended to every process's values, read in place of a series the process lacks: laid out so that one
# place stands for the whole missing series, as a series' first slot does (see _FamilyPlan.finish): _ZEROS zeros
# (a histogram's counts and sum end at the last of them, then its min +inf and max -inf), then +inf and -inf
# (a gauge of aggregation min: value +inf, stamp -inf), -inf and -inf (max), 0.0 and -inf (the others).
_ZEROS = 64
_POS = _ZEROS  # +inf, then -inf
_NEG = _ZEROS + 1  # -inf, then -inf
_ZERO = _ZEROS + 3  # 0.0, then -inf
_SENTINELS = array("d", [0.0] * _ZEROS + [math.inf, -math.inf, -math.inf, 0.0, -math.inf])


def _getter(indices: Sequence[int]) -> Any:
    """A C-level gather of ``indices`` from a list, always returning a tuple."""
    if len(indices) > 1:
        return operator.itemgetter(*indices)
    if indices:
        i = indices[0]
        return lambda v: (v[i],)
    return lambda v: ()


def _combine(vectors: list[tuple[float, ...]], op: Any) -> list[float]:
    acc = list(vectors[0])
    for vec in vectors[1:]:
        acc = list(map(op, acc, vec))
    return acc


_NONZERO = bytes([0] + [1] * 255)  # bytes.translate table: 0 stays 0, any other byte becomes 1


def _changed_slots(new: bytes, old: bytes, pause: Callable[[], object] | None = None) -> list[int]:
    """The indices of the float64 values that differ between two value arrays of one length (as bytes). Per slice
    of :data:`SLICE` values, equal bytes are skipped (``memcmp``); in a slice that differs, per chunk of
    :data:`CHUNK_BYTES`, the same; in a chunk that differs, XOR (as ints), then the nonzero bytes found with
    ``find``. 2.1 ms for 130,000 values with 400 changed at random places, against 3.9 ms XOR-ing whole slices
    and 8 ms for a ``map(operator.ne, ...)`` over the floats. Bytes, not floats: a NaN that stayed is unchanged,
    and ``0.0`` to ``-0.0`` is a change. ``pause`` is called between slices."""
    out: list[int] = []
    step = 8 * SLICE
    for base in range(0, len(new), step):
        a, b = new[base : base + step], old[base : base + step]
        if a != b:
            for off in range(0, len(a), CHUNK_BYTES):
                x, y = a[off : off + CHUNK_BYTES], b[off : off + CHUNK_BYTES]
                if x == y:
                    continue
                diff = (int.from_bytes(x, "little") ^ int.from_bytes(y, "little")).to_bytes(len(x), "little")
                find = diff.translate(_NONZERO).find
                first = (base + off) >> 3
                i = find(1)
                while i >= 0:
                    slot = i >> 3
                    out.append(first + slot)
                    i = find(1, (slot + 1) << 3)
        if pause is not None:
            pause()
    return out


def _float64s(values: list[float], pause: Callable[[], object] | None = None) -> bytes:
    """``array("d", values).tobytes()``, one C call per slice of :data:`SLICE` values with ``pause`` between."""
    if pause is None or len(values) <= SLICE:
        return array("d", values).tobytes()
    out = array("d")
    for i in range(0, len(values), SLICE):
        out.extend(array("d", values[i : i + SLICE]))
        pause()
    return out.tobytes()


def _plus(at: list[int], k: int) -> list[int]:
    """``at`` with ``k`` added to each, at C speed."""
    return list(map(operator.add, at, repeat(k)))


def _gather(values: Sequence[float], idx: Sequence[int], which: Sequence[int]) -> tuple[float, ...]:
    """``values[idx[j]]`` for each ``j`` of ``which`` (at least one), as one tuple: C-level gathers."""
    return tuple(map(values.__getitem__, map(idx.__getitem__, which)))


def _fold(values: Sequence[float], op: Any) -> float:
    """One element of :func:`_combine`: the same operations in the same order."""
    acc = values[0]
    for v in values[1:]:
        acc = op(acc, v)
    return acc


def _latest(values: Sequence[float], stamps: Sequence[float]) -> float:
    """Aggregation ``last``: the value with the latest stamp (a later process wins a tie); 0.0 when none has one."""
    best, bt = 0.0, -math.inf
    for v, st in zip(values, stamps, strict=True):
        if st >= bt and st != -math.inf:
            best, bt = v, st
    return best


_OPS: dict[str, Any] = {"max": max, "min": min}  # any other (sum): operator.add
_NO_VALUE = math.nan  # aggregation ``entry``: a merged series with no value (one object: a list of them compares equal)
_NO_EXEMPLARS: dict[int, Exemplar] = {}


def _common(a: list[Any], b: list[Any]) -> int:
    """How many first items ``a`` and ``b`` have in common: a binary search of C-level list compares."""
    lo, hi = 0, min(len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    while hi - lo > 1:  # a[:lo] == b[:lo], a[:hi] != b[:hi]
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


class _FamilyPlan:
    """How one family of the merged snapshot is computed from the processes' values."""

    def __init__(self, f: tuple[Any, ...], agg: str | None = None) -> None:
        self.kind, self.name, self.unit, self.desc, self.agg, self.bounds = f[:6]
        if agg is not None:  # the processes declare different ones (snapshot.settle)
            self.agg = agg
        self.width = f[8]
        self.sources: list[tuple[int, tuple[Any, ...]]] = []  # (process index, its family)
        self.series: list[tuple[AttrKey, dict[str, Any], int]] = []
        self.indices: dict[str, list[tuple[int, list[int]]]] = {}  # slot kind -> [(process index, its slots)]
        self.getters: dict[str, list[tuple[int, Any]]] = {}  # the same, each as a C-level gather
        # aggregation ``entry``: per process, the slot of its quantity in each merged series (NO_QUANTITY: none)
        self.weights: list[tuple[int, list[int]]] = []
        self.weight_getters: list[tuple[int, Any]] = []
        self._nones = 0  # aggregation ``entry``: the merged series with no value in the last merge (points None)
        self.pid_series: list[tuple[int, list[tuple[int, AttrKey, dict[str, Any], int]], int]] = []
        self.firsts: list[tuple[int, list[int]]] = []  # per process, each merged series' first slot (see finish)
        # The last merge's inputs and result, for reuse: a series whose merged values are unchanged keeps its point
        # object, and a family with none changed is the same object (see Merger).
        self._last: tuple[Any, list[Any], Family | None] | None = None
        self._moved = False  # _last is another plan's merge rearranged (carry): its family is not this one's

    def carry(self, old: _FamilyPlan) -> None:
        """Take ``old``'s last merge (see :meth:`_Plan.carry`) for the series both have: as it is when this family's
        series are ``old``'s and then others; else rearranged to this family's order, by series (key and start), a
        series ``old`` lacks holding None (which equals no value). :meth:`family` compares with it."""
        last = old._last
        if last is None or self.agg == "pid" or (old.kind, old.agg, old.bounds) != (self.kind, self.agg, self.bounds):
            return
        k = len(old.series)
        if k <= len(self.series) and self.series[:k] == old.series:
            self._last = last
            self._nones = old._nones
            return
        # A series of another process went before series only later processes have (the merged order is each
        # process's, in process order), or a series left (a gauge unset): the same series, elsewhere.
        # By the keys' identity: a group's readers share their attribute sets (PartReader's ``keys``), so the same
        # set is one object in every plan (a tuple is hashed anew at each lookup: 3 ms a family of 3,000). One not
        # found so only has its point made again.
        place = {id(key): j for j, (key, _, _) in enumerate(old.series)}
        was = list(map(place.get, map(id, map(_FIRST, self.series)), repeat(-1)))
        if old.series:  # the same series that started earlier in another process now: its point says when
            starts = map(_THIRD, map(old.series.__getitem__, was))  # (-1: the last, whatever it is)
            for i in compress(range(len(was)), map(operator.ne, map(_THIRD, self.series), starts)):
                was[i] = -1
        points = [*last[1], None]  # (-1: the None after them)
        moved = list(map(points.__getitem__, was))
        if self.kind == "h":
            add, lo, hi, ex = last[0]
            w = len(self.bounds) + 2  # a series' counts and sum
            gone = len(add)
            add = [*add, *[None] * w]
            firsts = [gone if j < 0 else j * w for j in was]
            slots = chain.from_iterable(map(range, firsts, map(operator.add, firsts, repeat(w))))
            add = list(map(add.__getitem__, slots))
            now = {j: i for i, j in enumerate(was) if j >= 0}
            ex = {(-1, now[j]): e for (_, j), e in ex.items() if j in now}
            lo, hi = [*lo, None], [*hi, None]
            merged: Any = (add, list(map(lo.__getitem__, was)), list(map(hi.__getitem__, was)), ex)
        else:
            merged = list(map([*last[0], None].__getitem__, was))
        self._last = (merged, moved, None)
        self._moved = True
        self._nones = old._nones

    def counts_all(self) -> bool:
        """Counters and histograms summed count every process, exited ones too; the rest only live ones."""
        return self.agg == "sum" and self.kind in ("c", "h")

    def finish(self, cols: Sequence[Columns], offer: Callable[[], None] | None = None) -> None:
        """Which slot of which process each merged series reads. ``offer`` is called every 1,024 series and per
        process (at 1,000 symbols a latency family has 2,000 series in each of 4 processes)."""
        if self.agg == "pid":
            seen: set[AttrKey] = set()  # as merge(): one series per pid and attribute set (the first)
            for mi, f in self.sources:
                pid = cols[mi].pid
                tagged = []
                for i, (_, attrs, start) in enumerate(f[6]):
                    a = {k: v for k, v in attrs.items() if k != PID_LABEL}
                    a[PID_LABEL] = pid
                    key = tuple(sorted(a.items()))
                    if key not in seen:
                        seen.add(key)
                        tagged.append((i, key, a, start))
                    if offer is not None and not i & 1023:
                        offer()
                self.pid_series.append((mi, tagged, f[7]))
            return
        series = self.series
        keys: list[AttrKey] = []  # the merged series' keys, in order
        index: dict[AttrKey, int] = {}  # key -> its place, made when first needed
        owned = [list(map(_FIRST, f[6])) for _, f in self.sources]  # each process's keys, in order
        for (_, f), own_keys in zip(self.sources, owned, strict=True):
            # The usual case: a process's series are the ones met so far, in the same order (workers that trade the
            # same symbols), so the common part is found with a few C-level compares, and only the rest is walked.
            own = f[6]
            if not keys:  # the first process: its series, as they are (a layout has no series twice)
                series += own
                keys += own_keys
                continue
            m = _common(own_keys, keys)
            for e in compress(range(m), map(operator.lt, map(_THIRD, own[:m]), map(_THIRD, series[:m]))):
                series[e] = (keys[e], series[e][1], own[e][2])  # a series' start: its earliest in any process
            if m < len(own) and len(index) < len(keys):
                index.update(zip(keys[len(index) :], range(len(index), len(keys)), strict=True))
            for i, (key, attrs, start) in enumerate(own[m:]):
                j = index.get(key)
                if j is None:
                    index[key] = len(series)
                    series.append((key, attrs, start))
                    keys.append(key)
                elif start < series[j][2]:
                    series[j] = (key, series[j][1], start)
                if offer is not None and not i & 1023:
                    offer()
        w = self.width
        nc = len(self.bounds) + 1
        for (mi, f), own_keys in zip(self.sources, owned, strict=True):
            n = len(cols[mi].values)  # the sentinels follow the values
            base = f[7]
            # Each merged series' first slot in this process: every w-th from its first for the common part (at C
            # speed), then the others by key; a series the process lacks reads the sentinels after the values
            # (laid out as a series: its first slot stands for all of them). Every slot list is made from these at C
            # speed: no loop per slot.
            m = _common(own_keys, keys)
            pos = {key: base + (m + i) * w for i, key in enumerate(own_keys[m:])}
            big = self.kind == "h" and nc + 1 > _ZEROS  # more buckets than zeros after the values: see below
            if self.kind == "h" and not big:
                missing = n + _ZEROS - (nc + 1)  # counts and sum: zeros; then min +inf, max -inf
            elif self.kind == "h":
                missing = n + _ZERO
            else:
                missing = n + {"max": _NEG, "min": _POS}.get(self.agg, _ZERO)  # then a stamp of -inf
            at = [*range(base, base + m * w, w), *map(pos.get, keys[m:], repeat(missing))]
            self.firsts.append((mi, at))
            if self.kind == "h":
                if not big:
                    add = list(chain.from_iterable(map(range, at, map(operator.add, at, repeat(nc + 1)))))
                    lo, hi = _plus(at, nc + 1), _plus(at, nc + 2)
                else:  # a missing series' slots, one by one
                    add = []
                    for o in at:
                        add += range(o, o + nc + 1) if o < n else [n + _ZERO] * (nc + 1)
                    lo = [o + nc + 1 if o < n else n + _POS for o in at]
                    hi = [o + nc + 2 if o < n else n + _NEG for o in at]
                for kind, idx in (("add", add), ("min", lo), ("max", hi)):
                    self.indices.setdefault(kind, []).append((mi, idx))
            else:
                self.indices.setdefault("value", []).append((mi, at))
                if self.kind == "g" and self.agg in ("last", "entry"):
                    self.indices.setdefault("stamp", []).append((mi, _plus(at, 1)))
                if self.kind == "g" and self.agg == "entry":
                    self.weights.append((mi, self._quantity_slots(cols[mi], keys, n)))
            if offer is not None:
                offer()
        self.getters = {kind: [(mi, _getter(idx)) for mi, idx in lists] for kind, lists in self.indices.items()}
        self.weight_getters = [(mi, _getter(idx)) for mi, idx in self.weights]

    def _quantity_slots(self, cols: Columns, keys: list[AttrKey], n: int) -> list[int]:
        """Aggregation ``entry``: the slot of process ``cols``' quantity (:func:`quantity_of`) in each of ``keys``;
        the -inf sentinel (``NO_QUANTITY``) where it has none."""
        qname = quantity_of(self.name)
        for f in cols.layout.families:
            if f[1] == qname and f[0] in ("g", "u"):
                base, width = f[7], f[8]
                own = {key: base + i * width for i, (key, _, _) in enumerate(f[6])}
                return list(map(own.get, keys, repeat(n + _NEG)))
        return [n + _NEG] * len(keys)

    @staticmethod
    def _entry(prices: Sequence[float], stamps: Sequence[float], quantities: Sequence[float]) -> float:
        """Aggregation ``entry`` of one merged series from each process's value, stamp and quantity (a stamp of
        -inf: the process has no value for it): :func:`~.snapshot.merged_entry`, inlined (the same operations in
        the same order, so the same float; this runs per series and merge); :data:`_NO_VALUE` for none."""
        cost = weight = 0.0
        first: float | None = None
        same, long, short, weighed = True, False, False, False
        latest, at = _NO_VALUE, -math.inf
        for p, t, q in zip(prices, stamps, quantities, strict=True):
            if t == -math.inf:
                continue  # the process has no value for the series
            if t >= at:
                latest, at = p, t
            if q == NO_QUANTITY:
                continue
            weighed = True
            if not q or not (-math.inf < q < math.inf and -math.inf < p < math.inf):
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
        if not weighed:
            return latest
        if (long and short) or first is None:
            return _NO_VALUE
        return first if same else cost / weight

    def _entry_points(self, merged: list[float], last: tuple[Any, list[Any], Family | None] | None) -> list[Any]:
        """Aggregation ``entry``: a point per merged series, None for one with no value (left out of the family);
        a series whose value is unchanged since ``last`` keeps its point."""
        old = last[0] if last is not None else []
        kept = last[1] if last is not None else []
        points: list[Any] = []
        self._nones = merged.count(_NO_VALUE)  # (identity first: the one _NO_VALUE object)
        for j, ((k, a, s), v) in enumerate(zip(self.series, merged, strict=True)):
            if v is _NO_VALUE:
                points.append(None)
            elif j < len(kept) and kept[j] is not None and old[j] == v:
                points.append(kept[j])
            else:
                points.append(_new(NumberPoint, (k, a, s, v)))
        return points

    def family(
        self,
        vals: list[array[float]],
        exemplars: dict[tuple[int, int], dict[int, Exemplar]],
        offer: Callable[[], None] | None = None,
        dirty: set[int] | None = None,
    ) -> Family | None:
        """This family of the merged snapshot. ``dirty`` (the merged series with a slot that changed in some process
        since this plan's last merge) lets only those be merged again; without it every series is."""
        last = self._last
        same = not self._moved  # the last merge's family is this plan's: one equal to this merge is returned
        self._moved = False
        if self.agg == "pid":
            if last is not None and dirty is not None and not dirty:
                return last[2]  # no slot of this family changed in any process
            pf = self._per_process(vals, exemplars)
            self._last = (None, [], pf) if pf is not None else None
            return pf
        if not self.series:
            return None
        if last is not None and dirty is not None:
            if self.kind == "h":  # other exemplars (they come with a count, so this is for safety): merged again too
                old_ex = last[0][3]
                if exemplars or old_ex:
                    dirty |= {k[1] for k in exemplars.keys() | old_ex.keys() if exemplars.get(k) != old_ex.get(k)}
            if not dirty:
                return last[2]
            # A few series: merged one by one (else all at C speed). Aggregations ``last`` and ``entry`` are a loop
            # per series either way: only the changed ones, unless most changed.
            per_series = self.kind != "h" and self.agg in ("last", "entry")
            if len(dirty) * (2 if per_series else 8) <= len(self.series):
                return self._update(vals, exemplars, last, sorted(dirty), offer)
        g = self.getters
        if self.kind == "h":
            add = _combine([get(vals[mi]) for mi, get in g["add"]], operator.add)
            lo = _combine([get(vals[mi]) for mi, get in g["min"]], min)
            hi = _combine([get(vals[mi]) for mi, get in g["max"]], max)
            now = (add, lo, hi, exemplars)
            if same and last is not None and last[0] == now:
                return last[2]
            nc = len(self.bounds) + 1
            w = nc + 1
            old = last[0] if last is not None else None
            kept = last[1] if last is not None else None
            hpoints = []
            for j in range(len(self.series)):
                o = j * w
                ex = exemplars.get((-1, j), _NO_EXEMPLARS)
                if (
                    old is not None
                    and kept is not None
                    and j < len(kept)  # (a carried merge has fewer series: see carry)
                    and lo[j] == old[1][j]
                    and hi[j] == old[2][j]
                    and add[o : o + w] == old[0][o : o + w]
                    and ex == old[3].get((-1, j), _NO_EXEMPLARS)
                ):
                    hpoints.append(kept[j])
                else:
                    hpoints.append(self._hpoint(j, add, lo, hi, ex))
                if offer is not None and not j & 63:
                    offer()
            fam: Family = HistogramFamily(self.name, self.unit, self.desc, self.bounds, hpoints, self.agg)
            self._last = (now, hpoints, fam)
            return fam
        vectors = [get(vals[mi]) for mi, get in g["value"]]
        if self.agg == "last":
            stamps = [get(vals[mi]) for mi, get in g["stamp"]]
            merged = []
            for j in range(len(self.series)):
                merged.append(_latest([vec[j] for vec in vectors], [st[j] for st in stamps]))
                if offer is not None and not j & 255:
                    offer()
        elif self.agg == "entry":
            stamps = [get(vals[mi]) for mi, get in g["stamp"]]
            weights = [get(vals[mi]) for mi, get in self.weight_getters]
            merged = []
            entry = self._entry
            for j in range(len(self.series)):
                merged.append(entry([v[j] for v in vectors], [st[j] for st in stamps], [w[j] for w in weights]))
                if offer is not None and not j & 255:
                    offer()
            if same and last is not None and last[0] == merged:
                return last[2]
            points = self._entry_points(merged, last)
            efam = self._number_family(points)
            self._last = (merged, points, efam)
            return efam
        else:
            merged = _combine(vectors, _OPS.get(self.agg, operator.add))
        if same and last is not None and last[0] == merged:
            return last[2]
        shown = merged if self.kind == "g" else list(map(_number, merged))  # a count shows as an int when whole
        if last is not None:  # only the changed series get a new point
            n = len(last[1])  # (a carried merge has fewer series: see carry)
            points = [
                p if v == u else _new(NumberPoint, (k, a, s, x))
                for p, v, u, x, (k, a, s) in zip(last[1], merged[:n], last[0], shown[:n], self.series[:n], strict=True)
            ]
            points += [_new(NumberPoint, (k, a, s, x)) for (k, a, s), x in zip(self.series[n:], shown[n:], strict=True)]
        else:
            points = [_new(NumberPoint, (k, a, s, x)) for (k, a, s), x in zip(self.series, shown, strict=True)]
        nfam = self._number_family(points)
        self._last = (merged, points, nfam)
        return nfam

    def _update(
        self,
        vals: list[array[float]],
        exemplars: dict[tuple[int, int], dict[int, Exemplar]],
        last: tuple[Any, list[Any], Family | None],
        dirty: list[int],
        offer: Callable[[], None] | None,
    ) -> Family | None:
        """The last merge with the ``dirty`` series merged again, one by one, exactly as :meth:`family` does
        (the same operations in the same order, so the same floats)."""
        ix = self.indices
        points = list(last[1])
        if self.kind == "h":
            add, lo, hi = list(last[0][0]), list(last[0][1]), list(last[0][2])
            w = len(self.bounds) + 2  # a series' "add" slots: its counts and its sum
            at_add = ix["add"]
            for n, j in enumerate(dirty):
                o = j * w
                # the series' w slots of every process, added process by process: _fold's sums, w at a time
                acc = [vals[at_add[0][0]][i] for i in at_add[0][1][o : o + w]]
                for mi, idx in at_add[1:]:
                    pv = vals[mi]
                    acc = list(map(operator.add, acc, [pv[i] for i in idx[o : o + w]]))
                add[o : o + w] = acc
                lo[j] = _fold([vals[mi][idx[j]] for mi, idx in ix["min"]], min)
                hi[j] = _fold([vals[mi][idx[j]] for mi, idx in ix["max"]], max)
                points[j] = self._hpoint(j, add, lo, hi, exemplars.get((-1, j), _NO_EXEMPLARS))
                if offer is not None and not n & 63:
                    offer()
            fam: Family = HistogramFamily(self.name, self.unit, self.desc, self.bounds, points, self.agg)
            self._last = ((add, lo, hi, exemplars), points, fam)
            return fam
        merged = list(last[0])
        if self.agg == "entry":
            at_v, at_s, at_q, entry = ix["value"], ix["stamp"], self.weights, self._entry
            for j in dirty:
                v = merged[j] = entry(
                    [vals[mi][idx[j]] for mi, idx in at_v],
                    [vals[mi][idx[j]] for mi, idx in at_s],
                    [vals[mi][idx[j]] for mi, idx in at_q],
                )
                k, a, s = self.series[j]
                self._nones += (v is _NO_VALUE) - (points[j] is None)
                points[j] = None if v is _NO_VALUE else _new(NumberPoint, (k, a, s, v))
            efam = self._number_family(points)
            self._last = (merged, points, efam)
            return efam
        # Each process's values (and stamps) of the dirty series, gathered at C speed, then one tuple per series
        per_series = zip(*[_gather(vals[mi], idx, dirty) for mi, idx in ix["value"]], strict=True)
        if self.agg == "last":
            stamped = zip(*[_gather(vals[mi], idx, dirty) for mi, idx in ix["stamp"]], strict=True)
            merged_dirty = list(map(_latest, per_series, stamped))
        else:
            op = _OPS.get(self.agg, operator.add)
            merged_dirty = [_fold(values, op) for values in per_series]
        for j, v in zip(dirty, merged_dirty, strict=True):
            k, a, s = self.series[j]
            points[j] = _new(NumberPoint, (k, a, s, v if self.kind == "g" else _number(v)))
            merged[j] = v
        nfam = self._number_family(points)
        self._last = (merged, points, nfam)
        return nfam

    def _hpoint(
        self, j: int, add: list[float], lo: list[float], hi: list[float], ex: dict[int, Exemplar]
    ) -> HistogramPoint:
        key, attrs, start = self.series[j]
        nc = len(self.bounds) + 1
        o = j * (nc + 1)
        counts = list(map(int, add[o : o + nc]))
        ex = ex if ex is not _NO_EXEMPLARS else {}  # a point's own dict, never the shared empty one
        point: HistogramPoint = _new(
            HistogramPoint, (key, attrs, start, counts, sum(counts), add[o + nc], lo[j], hi[j], ex)
        )
        return point

    def _number_family(self, points: list[Any]) -> Family | None:
        if self.agg == "entry":  # a series with no value is None (see _entry_points); no series left: no family
            if self._nones:
                points = [p for p in points if p is not None]
            return GaugeFamily(self.name, self.unit, self.desc, points, self.agg) if points else None
        if self.kind == "g":
            return GaugeFamily(self.name, self.unit, self.desc, points, self.agg)
        return SumFamily(self.name, self.unit, self.desc, self.kind == "c", points, self.agg)

    def _per_process(self, vals: list[array[float]], exemplars: Any) -> Family | None:
        if self.kind == "h":
            nc = len(self.bounds) + 1
            hpoints = []
            for mi, tagged, base in self.pid_series:
                v = vals[mi]
                for i, key, attrs, start in tagged:
                    o = base + i * self.width
                    counts = list(map(int, v[o : o + nc]))
                    hpoints.append(
                        _new(
                            HistogramPoint,
                            (key, attrs, start, counts, sum(counts), v[o + nc], v[o + nc + 1], v[o + nc + 2], {}),
                        )
                    )
            if not hpoints:
                return None
            return HistogramFamily(self.name, self.unit, self.desc, self.bounds, hpoints, self.agg)
        points = []
        conv = _number if self.kind != "g" else float
        for mi, tagged, base in self.pid_series:
            v = vals[mi]
            points += [_new(NumberPoint, (k, a, s, conv(v[base + i * self.width]))) for i, k, a, s in tagged]
        if not points:
            return None
        if self.kind == "g":
            return GaugeFamily(self.name, self.unit, self.desc, points, self.agg)
        return SumFamily(self.name, self.unit, self.desc, self.kind == "c", points, self.agg)


class _Plan:
    def __init__(
        self,
        cols: Sequence[Columns],
        names: Collection[str] | None,
        offer: Callable[[], None] | None = None,
        note: Callable[[Note], None] | None = None,
    ) -> None:
        self.layouts = [c.layout for c in cols]
        self.live = [c.live for c in cols]
        self.seen: list[bytes] | None = None  # the processes' values (``Columns.raw``) at this plan's last merge
        self._owners: dict[int, list[tuple[_FamilyPlan, int] | None]] = {}
        self.families: dict[str, _FamilyPlan] = {}
        self.where: dict[tuple[int, int], tuple[_FamilyPlan, dict[AttrKey, int] | None]] = {}
        # An ``entry`` family is weighed by its quantity family's values: that family is merged too (asked for or
        # not), and a change of a quantity merges the entry series of the same attributes again (Merger._dirty).
        self.links: list[tuple[_FamilyPlan, _FamilyPlan, dict[int, int]]] = []
        if names is not None:
            entries = {f[1] for c in cols for f in c.layout.families if f[4] == "entry" and f[1] in names}
            if entries:
                names = {*names, *map(quantity_of, entries)}
        settled = _settle(cols, names, note)
        for mi, c in enumerate(cols):
            for fi, f in enumerate(c.layout.families):
                name = f[1]
                if names is not None and name not in names:
                    continue
                plan = self.families.get(name)
                if plan is None:
                    plan = self.families[name] = _FamilyPlan(f, settled.get(name))
                if f[0] != plan.kind or (plan.kind == "h" and f[5] != plan.bounds):
                    warn_once(
                        f"merge:shape:{name}",
                        "merging %r: a process has it as another kind or with other bucket bounds; left out",
                        name,
                    )
                    continue
                if c.live or plan.counts_all():
                    plan.sources.append((mi, f))
                    self.where[(mi, fi)] = (plan, None)
        for plan in self.families.values():
            plan.finish(cols, offer)
            if offer is not None:
                offer()
            if plan.kind == "h" and plan.agg != "pid":
                index = {key: j for j, (key, _, _) in enumerate(plan.series)}
                for key_mi_fi, (fp, _) in list(self.where.items()):
                    if fp is plan:
                        self.where[key_mi_fi] = (plan, index)
        for plan in self.families.values():
            qty = self.families.get(quantity_of(plan.name)) if plan.agg == "entry" and plan.kind == "g" else None
            if qty is not None and qty.agg != "pid":
                at = {key: j for j, (key, _, _) in enumerate(plan.series)}
                link = {i: at[key] for i, (key, _, _) in enumerate(qty.series) if key in at}
                self.links.append((plan, qty, link))

    def carry(self, before: _Plan) -> None:
        """A new plan (a worker's layout changed) starts from ``before``'s last merge, series by series wherever
        they are now (a process's new series that a later process had goes before that one's own: the merged order
        is each process's, in process order): its first merge then keeps the point of every series whose values did
        not change, as the next merges do, so a reader that compares points (the live frame) redoes only what
        changed."""
        for name, fam in self.families.items():
            old = before.families.get(name)
            if old is not None:
                fam.carry(old)

    def owners(self, mi: int, n: int, offer: Callable[[], None] | None = None) -> list[tuple[_FamilyPlan, int] | None]:
        """For each of process ``mi``'s ``n`` slots, the merged series it feeds: ``(family, series)``, with series
        -1 for a per-process family (any change merges it again); None for a slot no merged value reads (a
        family not asked for). Built once per plan and process, on the first merge that needs it, a series at a
        time."""
        got = self._owners.get(mi)
        if got is not None:
            return got
        owner: list[tuple[_FamilyPlan, int] | None] = [None] * n
        for fam in self.families.values():
            if fam.agg == "pid":
                whole = (fam, -1)
                for mi2, f in fam.sources:
                    if mi2 == mi:
                        base = f[7]
                        owner[base : base + len(f[6]) * fam.width] = [whole] * (len(f[6]) * fam.width)
                continue
            w = fam.width  # a series' slots: from its first (finish), ``width`` of them
            for mi2, at in fam.firsts:
                if mi2 != mi:
                    continue
                for j, o in enumerate(at):
                    if o < n:  # not the sentinels after the values
                        owner[o : o + w] = [(fam, j)] * w
                    if offer is not None and not j & 1023:
                        offer()
        self._owners[mi] = owner
        return owner

    def matches(self, cols: Sequence[Columns]) -> bool:
        return len(cols) == len(self.layouts) and all(
            c.layout is lay and c.live == live for c, lay, live in zip(cols, self.layouts, self.live, strict=True)
        )


def _settle(
    cols: Sequence[Columns], names: Collection[str] | None, note: Callable[[Note], None] | None
) -> dict[str, str]:
    """The families whose processes declare different aggregations, each with the one ``snapshot.settle`` gives;
    said once per family and given to ``note`` per plan. Once per plan: a merge reads the result."""
    mixed = settle_declared(
        (f[1], f[0] in ("c", "h"), f[4]) for c in cols for f in c.layout.families if names is None or f[1] in names
    )
    if note is not None:
        for name, (agg, declared) in mixed.items():
            note(("mixed", name, "/".join(declared), agg))
    return {name: agg for name, (agg, _) in mixed.items()}


class Merger:
    """Merges the files of several processes into one snapshot, as :func:`~tradeobs_agent.metrics.snapshot.merge`
    would merge their decoded snapshots, but from their value arrays: a plan (which slots of which process make
    which merged series) is built once per set of layouts, then each merge is a few C-level gathers and maps per
    family, and one point object per merged series that changed. A plan's slot lists are made at C speed from one
    slot per merged series and process (a missing series reads the sentinels after the values, laid out as a
    series), and a new plan takes the last plan's merge series by series (:meth:`_Plan.carry`): while the workers
    still gain label sets, nearly every frame has a new plan (at 2 workers x 1,000 symbols, its plan and first
    merge went from ~125 to ~45 ms).

    Only what changed: a plan keeps its last merge and each process's values as bytes. The next merge compares
    those bytes (:func:`_changed_slots`) to find the slots that changed, and so the merged series they feed
    (:meth:`_Plan.owners`); only those are merged again, one by one, with the same operations in the same order
    (the same floats; a property test holds it to a fresh merge). Where more than an eighth of a family's series
    changed (half, for a gauge of aggregation ``last`` or ``entry``: a loop per series either way), the whole family
    is merged at C speed and a series whose merged values compare equal (``==``) to the last keeps its point object.
    A family with nothing changed is the same object. So a leader merging at 10 Hz
    pays for what its workers recorded since, not for every series; at 4 workers x 1,000 symbols, reading and
    merging the files for a frame went from ~220 ms to ~10 ms of CPU (with the values kept as arrays; see
    ``docs/performance.md``, "In a worker group"). Snapshots are immutable, so sharing points between two of them is
    safe.

    ``offer`` (optional) is called every 64 histogram series (256 gauge series of aggregation ``last`` or
    ``entry``), between families, and while a plan is made: a merge on a background thread passes
    ``gil.Slices().offer`` so the trading thread is not kept from the GIL for the whole merge."""

    def __init__(self, note: Callable[[Note], None] | None = None) -> None:
        self.note = note  # told of each family merged by another aggregation than a process declares (per plan)
        self._plans: dict[Any, _Plan] = {}
        self._recent: dict[tuple[frozenset[str] | None, bool], _Plan] = {}  # per (names, exemplars) asked: the last
        self._padded: dict[int, tuple[array[float], array[float]]] = {}  # id(values) -> (values, values + sentinels)

    def merge(
        self,
        cols: Sequence[Columns],
        names: Collection[str] | None = None,
        offer: Callable[[], None] | None = None,
        exemplars: bool = True,
    ) -> Snapshot:
        """The merged snapshot of ``cols`` (only the families ``names``, when given). ``exemplars=False`` leaves the
        exemplars out (the live frame does not show them): the workers' files have them only once a second (a
        scrape's and the slow publish's; the live view's 0.2 s publishes leave them out), and each file that gained
        or lost them changed every histogram series that has one, which was merged again for it."""
        asked = (frozenset(names) if names else None, exemplars)
        key = (tuple(id(c.layout) for c in cols), tuple(c.live for c in cols), asked)
        plan = self._plans.get(key)
        if plan is None or not plan.matches(cols):
            self._drop_dead(cols)
            if len(self._plans) >= 8:
                self._plans.clear()
            # The collector paused while the plan is made, as while a layout is decoded (_collector_paused): the
            # plan's tens of thousands of tuples and lists set off its collections of the whole process, a third of
            # the plan's time at 1,000 symbols; what it makes is freed by reference counting.
            with _collector_paused():
                plan = self._plans[key] = _Plan(cols, names, offer, self.note)
                before = self._recent.get(asked)
                if before is not None:
                    plan.carry(before)
        self._recent[asked] = plan
        dirty = self._dirty(plan, cols, offer)
        # Each process's values with the sentinels after them: made again only for a file that changed (a copy of
        # ~1 MB per worker at 1,000 symbols, which the unchanged ones no longer pay at each merge)
        padded, self._padded = self._padded, {}
        vals = []
        for c in cols:
            got = padded.get(id(c.values))
            if got is None or got[0] is not c.values:
                got = (c.values, c.values + _SENTINELS)
            self._padded[id(c.values)] = got
            vals.append(got[1])
        seen: dict[str, dict[tuple[int, int], dict[int, Exemplar]]] = {}
        for mi, c in enumerate(cols):
            for fi, pi, bucket, e in c.exemplars if exemplars else ():
                hit = plan.where.get((mi, fi))
                index = hit[1] if hit is not None else None
                if hit is None or index is None:
                    continue
                fam = hit[0]
                j = index.get(c.layout.families[fi][6][pi][0])
                if j is None:
                    continue
                slot = seen.setdefault(fam.name, {}).setdefault((-1, j), {})
                old = slot.get(bucket)
                if old is None or e.time_ns >= old.time_ns:
                    slot[bucket] = e
        families = []
        for fam in plan.families.values():
            changed = dirty.get(fam, set()) if dirty is not None else None
            f = fam.family(vals, seen.get(fam.name, {}), offer, changed)
            if f is not None:
                families.append(f)
            if offer is not None:
                offer()
        return Snapshot(max((c.time_ns for c in cols), default=0), families)

    def _drop_dead(self, cols: Sequence[Columns]) -> None:
        """Forget the plans that name a layout none of ``cols`` has: a reader keeps only its process's latest
        layout, so such a plan never matches again. Kept, each held its layouts, its last merge's points and values
        and its slot owners (MBs at 1,000 symbols) until eight had piled up: a group whose workers still gain series
        (a new layout at each publish) made a plan per frame and held eight dead ones. (The last plan per set of
        names, ``_recent``, stays: the next one carries its points.)"""
        current = {id(c.layout) for c in cols}
        for key, plan in list(self._plans.items()):
            if any(id(lay) not in current for lay in plan.layouts):
                del self._plans[key]

    @staticmethod
    def _dirty(
        plan: _Plan, cols: Sequence[Columns], offer: Callable[[], None] | None = None
    ) -> dict[_FamilyPlan, set[int]] | None:
        """Per family, the merged series fed by a slot that changed since ``plan``'s last merge; None on the plan's
        first merge (every series is merged). A plan's processes keep their layouts, so old and new values have one
        length."""
        seen, plan.seen = plan.seen, [c.raw for c in cols]
        if seen is None:
            return None
        dirty: dict[_FamilyPlan, set[int]] = {}
        for mi, (c, old) in enumerate(zip(cols, seen, strict=True)):
            if c.raw is old:
                continue
            slots = _changed_slots(c.raw, old, offer)
            owner = plan.owners(mi, len(c.values), offer)
            for slot in slots:
                hit = owner[slot]
                if hit is not None:
                    dirty.setdefault(hit[0], set()).add(hit[1])
        for entry, qty, link in plan.links:  # a quantity that changed weighs its entry series again
            moved = dirty.get(qty)
            if moved:
                dirty.setdefault(entry, set()).update(link[j] for j in moved if j in link)
        return dirty
