"""Releases mixed in one worker group (a rolling deploy): what each reads of the other's snapshot (metrics/wire.py).

The real processes of two releases are in tests/integration/test_rolling_deploy.py; here the file format itself:
an earlier release's checks applied to what this one writes, and files a later release may write, made by hand.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import orjson
import pytest

from tradeobs_agent.metrics import Registry, merge
from tradeobs_agent.metrics.snapshot import FALLBACKS, FIRST_AGGREGATIONS, Snapshot, settle
from tradeobs_agent.metrics.wire import (
    HEADER_SIZE,
    REVISION,
    CorruptPart,
    Merger,
    OtherFormat,
    PartReader,
    PartWriter,
    to_part,
)
from tradeobs_agent.trading.instruments import TradingInstruments

AVG = "trading.position.avg_price"


def _books(reg: Registry, qty: float, avg: float) -> Registry:
    inst = TradingInstruments(reg)
    inst.position_qty.bind(symbol="AAA", strategy="s1").set(qty)
    inst.avg_price.bind(symbol="AAA", strategy="s1").set(avg)
    reg.counter("orders").bind(side="buy").add(int(qty))
    return reg


_LEN, _CRC = 24, 28  # where the header holds the layout's length and CRC-32 (wire._HEADER)


def _layout(data: bytes) -> dict[str, Any]:
    (n,) = struct.unpack_from("<I", data, _LEN)
    doc: dict[str, Any] = orjson.loads(data[HEADER_SIZE : HEADER_SIZE + n])
    return doc


def _with_layout(data: bytes, doc: dict[str, Any]) -> bytes:
    """``data`` with its layout replaced by ``doc`` (sizes and CRC made right: a well-formed file)."""
    (n,) = struct.unpack_from("<I", data, _LEN)
    raw = orjson.dumps(doc)
    header = bytearray(data[:HEADER_SIZE])
    struct.pack_into("<I", header, _LEN, len(raw))
    struct.pack_into("<I", header, _CRC, zlib.crc32(raw))
    return bytes(header) + raw + data[HEADER_SIZE + n :]


def _earlier_release_reads(data: bytes) -> bool:
    """What the first release's reader checked of a layout before it took a file (``agg in AGGREGATIONS`` with the
    five it knew, seven fields a family, ``meta`` and ``families`` only): an unknown aggregation dropped the file."""
    doc = _layout(data)
    return isinstance(doc.get("meta"), dict) and all(
        len(f) == 7 and f[4] in FIRST_AGGREGATIONS for f in doc["families"]
    )


def _avg(snap: Snapshot) -> float:
    return float(next(p.value for p in snap.numbers(AVG) if p.attributes["symbol"] == "AAA"))


@pytest.mark.parametrize("path", ["snapshot", "registry"])
def test_an_entry_gauge_is_written_as_its_stand_in_for_an_earlier_leader_and_read_back_as_entry(path: str) -> None:
    """Before, this release wrote ``entry`` in the family's field: an earlier leader dropped the whole file (every
    counter of that worker) as corrupt. Now the field holds ``last`` (what that leader merged the average entry by)
    and ``entry`` travels beside it, under the layout's ``aggregations``."""
    reg = _books(Registry(), 100.0, 10.0)
    w = PartWriter(1)
    data = w.encode(reg.snapshot()) if path == "snapshot" else w.encode_registry(reg)
    doc = _layout(data)
    assert _earlier_release_reads(data)
    assert doc["revision"] == REVISION and doc["aggregations"] == {AVG: "entry"}
    assert next(f[4] for f in doc["families"] if f[1] == AVG) == FALLBACKS["entry"] == "last"
    part, _ = PartReader().decode(data, True)
    fam = part.snapshot.get(AVG)
    assert fam is not None and fam.aggregation == "entry"
    cols, _ = PartReader().columns(data, True)
    assert cols.layout.notes == () or list(cols.layout.notes) == []


def test_a_later_releases_unknown_aggregation_is_read_as_its_stand_in_and_noted() -> None:
    """A later release's aggregation this one does not know: under ``aggregations`` (as this release writes
    ``entry``) it is read as the stand-in the family declares; named in the family's own field (a writer that
    broke the rule), a counter is summed and a gauge kept per process. Before, either dropped the whole file."""
    reg = _books(Registry(), 100.0, 10.0)
    data = PartWriter(1).encode_registry(reg)
    doc = _layout(data)
    doc["revision"] = REVISION + 1
    doc["aggregations"] = {AVG: "vwap"}
    doc["later"] = {"anything": [1, 2]}  # keys a later release adds are passed over
    for f in doc["families"]:
        if f[1] == "orders":
            f[4] = "median"
        f.append({"a field of a later release": True})
    cols, _ = PartReader().columns(_with_layout(data, doc), True)
    assert cols.layout.revision == REVISION + 1
    want = [("aggregation", "orders", "median", "sum"), ("aggregation", AVG, "vwap", "last")]
    assert sorted(cols.layout.notes) == want
    snap = to_part(cols).snapshot
    assert [p.value for p in snap.numbers("orders")] == [100]
    assert _avg(snap) == 10.0
    assert snap.get(AVG).aggregation == "last"  # type: ignore[union-attr]
    gauge = Registry()
    gauge.gauge("g", aggregation="sum").bind(k="x").set(3.0)
    gdata = PartWriter(2).encode_registry(gauge)
    gdoc = _layout(gdata)
    gdoc["families"][0][4] = "median"
    gcols, _ = PartReader().columns(_with_layout(gdata, gdoc), True)
    assert gcols.layout.families[0][4] == "pid" and gcols.layout.notes == [("aggregation", "g", "median", "pid")]


def test_a_file_of_another_format_is_refused_as_such() -> None:
    data = PartWriter(1).encode(_books(Registry(), 1.0, 1.0).snapshot())
    other = data[:4] + struct.pack("<H", 2) + data[6:]
    with pytest.raises(OtherFormat, match="snapshot format 2; this release reads format 1"):
        PartReader().decode(other, True)
    with pytest.raises(CorruptPart):  # (and a CorruptPart, for callers that only know that)
        PartReader().decode(other, True)


def _earlier(data: bytes) -> bytes:
    """``data`` as the release before ``entry`` wrote it: the average entry declared ``last``, no revision."""
    doc = _layout(data)
    doc.pop("revision", None)
    doc.pop("aggregations", None)
    for f in doc["families"]:
        if f[1] == AVG:
            f[4] = "last"
    return _with_layout(data, doc)


@pytest.mark.parametrize("earlier_first", [True, False])
def test_a_new_leader_merges_an_earlier_workers_average_entry_with_the_new_ones_as_entry(earlier_first: bool) -> None:
    """Workers of both releases hold AAA (100 @ 10 in the earlier one, 300 @ 14 in the new one): the desk is 400 @
    13 on both merge paths, whichever worker's file comes first. Before, the family took the first file's
    aggregation: with the earlier worker's first, ``last`` (10 or 14)."""
    old = _earlier(PartWriter(1).encode_registry(_books(Registry(), 100.0, 10.0), now=2.0))
    new = PartWriter(2).encode_registry(_books(Registry(), 300.0, 14.0), now=1.0)
    datas = [old, new] if earlier_first else [new, old]
    cols = [PartReader().columns(d, True)[0] for d in datas]
    assert {c.layout.revision for c in cols} == {1, REVISION}
    notes: list[Any] = []
    snap = Merger(notes.append).merge(cols)
    assert _avg(snap) == 13.0
    assert _avg(merge([to_part(c) for c in cols])) == 13.0
    assert notes == [("mixed", AVG, "last/entry" if earlier_first else "entry/last", "entry")]
    assert sum(p.value for p in snap.numbers("orders")) == 400


def test_settle_keeps_counts_and_prefers_a_later_aggregation_over_its_stand_in() -> None:
    assert settle(False, ["last", "entry"]) == settle(False, ["entry", "last"]) == "entry"
    assert settle(True, ["pid", "sum"]) == settle(True, ["sum", "pid"]) == "sum"  # exited workers' counts stay
    assert settle(False, ["sum", "max"]) == "sum" and settle(False, ["max", "sum"]) == "max"  # the first met
