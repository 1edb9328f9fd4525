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
* the **exemplars** (trace and span ids, latest per bucket) are a short JSON list.

Nothing read is trusted: the header's magic, format version and sizes, a CRC-32
of the values and exemplars, a CRC-32 of the layout and the types of every
layout and exemplar field are checked, and anything wrong raises
:class:`CorruptPart` (the caller drops the file). JSON is read with orjson,
which builds only plain data. Counts are exact up to 2**53 (float64).
"""

from __future__ import annotations

import math
import struct
import time
import zlib
from array import array
from collections.abc import Mapping
from typing import Any

import orjson

from ..types import AttrKey
from .snapshot import (
    AGGREGATIONS,
    Exemplar,
    Family,
    GaugeFamily,
    HistogramFamily,
    HistogramPoint,
    NumberPoint,
    Part,
    Snapshot,
    SumFamily,
)

__all__ = ["FORMAT", "HEADER_SIZE", "MAGIC", "CorruptPart", "PartReader", "PartWriter", "peek_meta"]

MAGIC = b"TOBS"
FORMAT = 1
# magic, format, flags, time_ns, pid, layout version, layout length, layout crc, values, exemplar length, body crc
_HEADER = struct.Struct("<4sHHqiIIIIII")
HEADER_SIZE = _HEADER.size
_MAX_LAYOUT = 256 << 20
_EXACT = float(2**53)
_KINDS = ("c", "u", "g", "h")  # counter, up-down counter, gauge, histogram


class CorruptPart(ValueError):
    """A shared snapshot file that is not what this module writes (torn, truncated, foreign or tampered)."""


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

    def encode(self, snapshot: Snapshot, meta: Mapping[str, Any] | None = None, now: float | None = None) -> bytes:
        """The file for ``snapshot``; ``meta`` (JSON-able, small) travels with the layout."""
        fams = snapshot.families
        meta_bytes = orjson.dumps(dict(meta or {}))
        sig = (meta_bytes, *((f.name, _family_kind(f), f.aggregation, len(f.points)) for f in fams))
        if sig != self._sig:
            self._relayout(fams, meta_bytes, sig)
        now = time.time() if now is None else now
        values: list[float] = []
        add = values.append
        exemplars: list[list[Any]] = []
        gauges, changed = self._gauges, self._changed
        for fi, f in enumerate(fams):
            if isinstance(f, HistogramFamily):
                for pi, hp in enumerate(f.points):
                    values += hp.counts
                    add(hp.sum)
                    add(hp.min)
                    add(hp.max)
                    for bucket, e in hp.exemplars.items():
                        exemplars.append(
                            [fi, pi, bucket, e.value, e.time_ns, f"{e.trace_id:032x}", f"{e.span_id:016x}"]
                        )
            elif isinstance(f, GaugeFamily):
                name = f.name
                for p in f.points:
                    v = p.value
                    add(v)
                    ck = (name, p.key)
                    if gauges.get(ck) != v:
                        gauges[ck] = v
                        changed[ck] = now
                    add(changed[ck])
            else:
                for p in f.points:
                    add(p.value)
        body = array("d", values).tobytes() + (orjson.dumps(exemplars) if exemplars else b"")
        ex_len = len(body) - 8 * len(values)
        header = _HEADER.pack(
            MAGIC,
            FORMAT,
            0,
            snapshot.time_ns,
            self.pid,
            self._version,
            len(self._layout),
            self._layout_crc,
            len(values),
            ex_len,
            zlib.crc32(body),
        )
        return header + self._layout + body

    def _relayout(self, fams: Any, meta_bytes: bytes, sig: tuple[Any, ...]) -> None:
        out: list[list[Any]] = []
        for f in fams:
            extra: Any = list(f.bounds) if isinstance(f, HistogramFamily) else None
            points = [[[list(kv) for kv in p.key], p.start_ns] for p in f.points]
            out.append([_family_kind(f), f.name, f.unit, f.description, f.aggregation, extra, points])
        self._layout = b'{"meta":' + meta_bytes + b',"families":' + orjson.dumps(out) + b"}"
        self._layout_crc = zlib.crc32(self._layout)
        self._version = (self._version + 1) & 0xFFFFFFFF
        self._sig = sig


class _Layout:
    """A decoded, validated layout: per family a builder over a slice of the values."""

    __slots__ = ("crc", "families", "meta", "slots", "version")

    def __init__(self, version: int, crc: int, meta: dict[str, Any], families: list[tuple[Any, ...]], slots: int):
        self.version, self.crc, self.meta, self.families, self.slots = version, crc, meta, families, slots


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise CorruptPart(what)


def _attr_key(pairs: Any) -> tuple[AttrKey, dict[str, Any]]:
    _check(isinstance(pairs, list), "attributes")
    items: list[tuple[str, str | bool | int | float]] = []
    for kv in pairs:
        _check(isinstance(kv, list) and len(kv) == 2 and isinstance(kv[0], str), "attribute")
        v = kv[1]
        _check(isinstance(v, str | bool | int | float) and not (isinstance(v, int) and abs(v) >= 2**63), "value")
        items.append((kv[0], v))
    key = tuple(items)
    _check(list(key) == sorted(key, key=lambda kv: kv[0]), "attribute order")
    return key, dict(key)


def _parse_layout(raw: bytes, version: int, crc: int) -> _Layout:
    _check(zlib.crc32(raw) == crc, "layout checksum")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise CorruptPart("layout is not JSON") from None
    _check(isinstance(doc, dict) and isinstance(doc.get("meta"), dict), "layout meta")
    fams = doc.get("families")
    _check(isinstance(fams, list), "layout families")
    out: list[tuple[Any, ...]] = []
    slots = 0
    seen: set[str] = set()
    for f in fams:
        _check(isinstance(f, list) and len(f) == 7, "family")
        kind, name, unit, desc, agg, extra, points = f
        _check(kind in _KINDS and isinstance(name, str) and name not in seen, "family kind or name")
        _check(isinstance(unit, str) and isinstance(desc, str) and agg in AGGREGATIONS, "family fields")
        _check(isinstance(points, list), "points")
        seen.add(name)
        width = 1 if kind in ("c", "u") else 2
        bounds: tuple[float, ...] = ()
        if kind == "h":
            _check(isinstance(extra, list) and all(isinstance(b, int | float) for b in extra), "bounds")
            bounds = tuple(float(b) for b in extra)
            _check(all(math.isfinite(b) for b in bounds) and list(bounds) == sorted(set(bounds)), "bounds order")
            width = len(bounds) + 4
        series = []
        for p in points:
            _check(isinstance(p, list) and len(p) == 2 and isinstance(p[1], int), "point")
            key, attrs = _attr_key(p[0])
            series.append((key, attrs, p[1]))
        out.append((kind, name, unit, desc, agg, bounds, series, slots, width))
        slots += width * len(series)
    return _Layout(version, crc, doc["meta"], out, slots)


def peek_meta(data: bytes) -> tuple[int, int, dict[str, Any]]:
    """``(pid, time_ns, meta)`` of a file, checking only its header and layout (cheap)."""
    _, pid, time_ns, layout, _ = _split(data)
    return pid, time_ns, _parse_layout(bytes(layout[2]), layout[0], layout[1]).meta


def _split(data: bytes) -> tuple[memoryview, int, int, tuple[int, int, memoryview], tuple[int, int, int]]:
    size = _HEADER.size
    _check(len(data) >= size, "short header")
    magic, fmt, _flags, time_ns, pid, version, layout_len, layout_crc, n, ex_len, body_crc = _HEADER.unpack_from(data)
    _check(magic == MAGIC and fmt == FORMAT, "not a tradeobs snapshot (magic or format)")
    _check(layout_len <= _MAX_LAYOUT and len(data) == size + layout_len + 8 * n + ex_len, "sizes")
    view = memoryview(data)
    body = view[size + layout_len :]
    _check(zlib.crc32(body) == body_crc, "values checksum")
    layout = view[size : size + layout_len]
    return body, pid, time_ns, (version, layout_crc, layout), (n, ex_len, size + layout_len)


class PartReader:
    """Decodes the successive files of one process; a layout is parsed and checked once per version."""

    def __init__(self) -> None:
        self._layout: _Layout | None = None

    def decode(self, data: bytes, live: bool) -> tuple[Part, dict[str, Any]]:
        """``(part, meta)``; raises :class:`CorruptPart` for anything this module did not write."""
        body, pid, time_ns, (version, crc, layout_raw), (n, ex_len, _) = _split(data)
        lay = self._layout
        if lay is None or lay.version != version or lay.crc != crc:
            lay = self._layout = _parse_layout(bytes(layout_raw), version, crc)
        _check(lay.slots == n, "values do not match the layout")
        vals = array("d")
        vals.frombytes(body[: 8 * n])
        v = vals.tolist()
        exemplars = self._exemplars(bytes(body[8 * n :]), lay) if ex_len else {}
        families: list[Family] = []
        changed: dict[tuple[str, AttrKey], float] = {}
        for fi, (kind, name, unit, desc, agg, bounds, series, base, width) in enumerate(lay.families):
            if kind == "h":
                hpoints = []
                nb = len(bounds) + 1
                for pi, (key, attrs, start) in enumerate(series):
                    o = base + pi * width
                    counts = [int(c) for c in v[o : o + nb]]
                    _check(all(c >= 0 for c in counts), "negative bucket count")
                    ex = exemplars.get((fi, pi), {})
                    hpoints.append(
                        HistogramPoint(
                            key, attrs, start, counts, sum(counts), v[o + nb], v[o + nb + 1], v[o + nb + 2], ex
                        )
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
                points = []
                for pi, (key, attrs, start) in enumerate(series):
                    x = v[base + pi]
                    points.append(
                        NumberPoint(key, attrs, start, int(x) if x.is_integer() and -_EXACT < x < _EXACT else x)
                    )
                families.append(SumFamily(name, unit, desc, kind == "c", points, agg))
        return Part(Snapshot(time_ns, families), pid, live, changed), lay.meta

    @staticmethod
    def _exemplars(raw: bytes, lay: _Layout) -> dict[tuple[int, int], dict[int, Exemplar]]:
        try:
            items = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise CorruptPart("exemplars are not JSON") from None
        _check(isinstance(items, list), "exemplars")
        out: dict[tuple[int, int], dict[int, Exemplar]] = {}
        fams = lay.families
        for e in items:
            _check(isinstance(e, list) and len(e) == 7, "exemplar")
            fi, pi, bucket, value, t, trace, span = e
            ok = isinstance(fi, int) and 0 <= fi < len(fams) and fams[fi][0] == "h"
            _check(ok and isinstance(pi, int) and 0 <= pi < len(fams[fi][6]), "exemplar series")
            _check(isinstance(bucket, int) and 0 <= bucket <= len(fams[fi][5]), "exemplar bucket")
            _check(isinstance(value, int | float) and isinstance(t, int), "exemplar value")
            _check(isinstance(trace, str) and len(trace) == 32 and isinstance(span, str) and len(span) == 16, "ids")
            try:
                tid, sid = int(trace, 16), int(span, 16)
            except ValueError:
                raise CorruptPart("exemplar ids are not hex") from None
            out.setdefault((fi, pi), {})[bucket] = Exemplar(float(value), t, tid, sid)
        return out
