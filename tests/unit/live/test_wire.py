"""live/wire.py: deliveries between the processes of a worker group round-trip, and bad ones are refused."""

from __future__ import annotations

import struct

import orjson
import pytest

from tradeobs_agent.live import wire


def _tick(delta: bool) -> wire.TickData:
    return wire.TickData(
        "661a", 7, 8, 1.5, b": hb 1\n\n", b'{"type":"full"}', b'{"type":"delta"}' if delta else None, {"seq": 8}
    )


def test_events_round_trip_with_the_same_sse_bytes_as_the_leaders_hub() -> None:
    payload = orjson.dumps({"kind": "fill", "id": "661a-8"})
    d = wire.decode(wire.encode_events("661a", 7, [(8, payload)]))
    assert isinstance(d, wire.Events) and d.prev == 7 and d.last == 8
    assert d.items == [(8, b"id: 661a-8\nevent: event\ndata: " + payload + b"\n\n", {"kind": "fill", "id": "661a-8"})]


@pytest.mark.parametrize("delta", [True, False])
def test_ticks_round_trip(delta: bool) -> None:
    t = _tick(delta)
    got = wire.decode(wire.encode_tick(t))
    assert got == t
    fast, full = got.sse()  # type: ignore[union-attr]
    assert full == b': hb 1\n\nid: 661a-8\nevent: frame\ndata: {"type":"full"}\n\n'
    assert fast == (full if not delta else b': hb 1\n\nid: 661a-8\nevent: frame\ndata: {"type":"delta"}\n\n')


def test_welcome_round_trips() -> None:
    ring = [(3, b"id: 661a-3\nevent: event\ndata: {}\n\n", {"kind": "order"})]
    w = wire.Welcome("661a", ring, 2, [{"seq": 1}], _tick(False))
    got = wire.decode(wire.encode_welcome(w))
    assert isinstance(got, wire.Welcome)
    assert got.boot == "661a" and got.evicted_upto == 2 and got.history == [{"seq": 1}] and got.tick == _tick(False)
    assert [(n, p) for n, _, p in got.ring] == [(3, {"kind": "order"})]


def _head(doc: object, tail: bytes = b"") -> bytes:
    h = orjson.dumps(doc)
    return struct.pack("<I", len(h)) + h + tail


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff\xff\xff\xff",
        _head([1, 2]),
        _head({"k": "e"}),  # no boot
        _head({"k": "x", "boot": "a"}),
        _head({"k": "e", "boot": "a", "prev": "7", "ev": []}),
        _head({"k": "e", "boot": "a", "prev": 7, "ev": [[8, 100]]}, b"{}"),  # a blob longer than the body
        _head({"k": "e", "boot": "a", "prev": 7, "ev": [[8, 2]]}, b"[]"),  # a payload that is not an object
        _head({"k": "t", "boot": "a", "prev": 1, "fid": 2, "ts": 1, "hb": "", "point": {}, "lens": [5, 5, 5]}),
        _head({"k": "w", "boot": "a", "ev": [], "evicted": 0, "history": [1], "tick": None}),
    ],
)
def test_a_delivery_that_is_not_ours_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        wire.decode(body)
