"""Live deliveries between the processes of a worker group: what the leader sends, what members apply.

>>> body = encode_events("6610e95c53f8a", prev=7, items=[(8, b'{"kind":"fill"}')])
>>> decode(body).items[0][0]
8

Three kinds, each a small JSON header followed by the raw bytes it announces
(``<u32 header length><header><blobs>``), so event payloads and frames are
serialized once, by the leader, and members only slice them:

* ``events`` (``e``): events with their service-wide ids, sent as soon as the
  leader numbered them;
* ``tick`` (``t``): one frame: the full frame's JSON and, between full frames,
  the delta's, plus the history chart point and the heartbeat comment;
* ``welcome`` (``w``): what a member that just connected needs: the event
  ring, the history and the latest tick.

Members rebuild the SSE bytes (``id: <boot>-<n>``) exactly as the leader's
hub does (:func:`event_bytes`, :func:`frame_bytes`). Nothing decoded is
trusted: a header of the wrong shape or blob lengths that do not add up raise
``ValueError``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson

__all__ = [
    "EventItem",
    "Events",
    "TickData",
    "Welcome",
    "decode",
    "encode_events",
    "encode_tick",
    "encode_welcome",
    "event_bytes",
    "frame_bytes",
]

_LEN = struct.Struct("<I")
EventItem = tuple[int, bytes, dict[str, Any]]
"""(n, SSE bytes, payload) as the hub's ring keeps it."""


def event_bytes(bid: bytes, n: int, payload_json: bytes) -> bytes:
    return b"id: %s-%d\nevent: event\ndata: %s\n\n" % (bid, n, payload_json)


def frame_bytes(bid: bytes, fid: int, data_json: bytes) -> bytes:
    return b"id: %s-%d\nevent: frame\ndata: %s\n\n" % (bid, fid, data_json)


class Events(NamedTuple):
    boot: str
    prev: int  # the last id before these
    items: list[EventItem]

    @property
    def last(self) -> int:
        return self.items[-1][0] if self.items else self.prev


class TickData(NamedTuple):
    boot: str
    prev: int
    fid: int
    ts: float
    hb: bytes
    full_json: bytes
    delta_json: bytes | None  # None: this tick sends the full frame to everyone
    point: dict[str, Any]  # the history chart point

    def sse(self) -> tuple[bytes, bytes]:
        """``(fast, full)``: what an up-to-date client gets, and what a client that is behind gets last."""
        bid = self.boot.encode()
        full = self.hb + frame_bytes(bid, self.fid, self.full_json)
        fast = full if self.delta_json is None else self.hb + frame_bytes(bid, self.fid, self.delta_json)
        return fast, full


class Welcome(NamedTuple):
    boot: str
    ring: list[EventItem]
    evicted_upto: int
    history: list[dict[str, Any]]
    tick: TickData | None


def _pack(header: dict[str, Any], blobs: Sequence[bytes]) -> bytes:
    head = orjson.dumps(header)
    return b"".join((_LEN.pack(len(head)), head, *blobs))


def encode_events(boot: str, prev: int, items: Sequence[tuple[int, bytes]]) -> bytes:
    """``items``: (id, payload JSON)."""
    return _pack({"k": "e", "boot": boot, "prev": prev, "ev": [[n, len(b)] for n, b in items]}, [b for _, b in items])


def _tick_header(t: TickData) -> tuple[dict[str, Any], list[bytes]]:
    blobs = [t.full_json] if t.delta_json is None else [t.full_json, t.delta_json]
    head = {"prev": t.prev, "fid": t.fid, "ts": t.ts, "hb": t.hb.decode("ascii"), "point": t.point}
    head["lens"] = [len(b) for b in blobs]
    return head, blobs


def encode_tick(t: TickData) -> bytes:
    head, blobs = _tick_header(t)
    head.update(k="t", boot=t.boot)
    return _pack(head, blobs)


def encode_welcome(w: Welcome) -> bytes:
    ring = [(n, orjson.dumps(payload, default=str)) for n, _, payload in w.ring]
    head: dict[str, Any] = {
        "k": "w",
        "boot": w.boot,
        "ev": [[n, len(b)] for n, b in ring],
        "evicted": w.evicted_upto,
        "history": w.history,
        "tick": None,
    }
    blobs = [b for _, b in ring]
    if w.tick is not None:
        th, tb = _tick_header(w.tick)
        head["tick"] = th
        blobs += tb
    return _pack(head, blobs)


class _Reader:
    def __init__(self, body: bytes) -> None:
        if len(body) < _LEN.size:
            raise ValueError("short delivery")
        (n,) = _LEN.unpack_from(body)
        try:
            self.head = orjson.loads(body[_LEN.size : _LEN.size + n])
        except orjson.JSONDecodeError:
            raise ValueError("delivery header is not JSON") from None
        if not isinstance(self.head, dict) or not isinstance(self.head.get("boot"), str):
            raise ValueError("delivery header")
        self.body = memoryview(body)
        self.pos = _LEN.size + n

    def blob(self, length: object) -> bytes:
        if not isinstance(length, int) or length < 0 or self.pos + length > len(self.body):
            raise ValueError("blob length")
        out = bytes(self.body[self.pos : self.pos + length])
        self.pos += length
        return out

    def int(self, key: str, where: dict[str, Any] | None = None) -> int:
        v = (self.head if where is None else where).get(key)
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError(f"delivery field {key}")
        return v

    def events(self, bid: bytes) -> list[EventItem]:
        ev = self.head.get("ev")
        if not isinstance(ev, list):
            raise ValueError("delivery events")
        items: list[EventItem] = []
        for e in ev:
            if not (isinstance(e, list) and len(e) == 2 and isinstance(e[0], int)):
                raise ValueError("delivery event")
            raw = self.blob(e[1])
            try:
                payload = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise ValueError("event payload is not JSON") from None
            if not isinstance(payload, dict):
                raise ValueError("event payload")
            items.append((e[0], event_bytes(bid, e[0], raw), payload))
        return items

    def tick(self, boot: str, t: Any) -> TickData:
        if not isinstance(t, dict):
            raise ValueError("delivery tick")
        lens, hb, point, ts = t.get("lens"), t.get("hb"), t.get("point"), t.get("ts")
        if not isinstance(lens, list) or len(lens) not in (1, 2) or not isinstance(hb, str) or not hb.isascii():
            raise ValueError("delivery tick fields")
        if not isinstance(point, dict) or not isinstance(ts, int | float):
            raise ValueError("delivery tick point")
        full = self.blob(lens[0])
        dlt = self.blob(lens[1]) if len(lens) == 2 else None
        return TickData(boot, self.int("prev", t), self.int("fid", t), float(ts), hb.encode(), full, dlt, point)


def decode(body: bytes) -> Events | TickData | Welcome:
    """A delivery from :func:`encode_events`, :func:`encode_tick` or :func:`encode_welcome`."""
    r = _Reader(body)
    boot = r.head["boot"]
    kind = r.head.get("k")
    if kind == "e":
        return Events(boot, r.int("prev"), r.events(boot.encode()))
    if kind == "t":
        return r.tick(boot, r.head)
    if kind == "w":
        ring = r.events(boot.encode())
        history = r.head.get("history")
        if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
            raise ValueError("delivery history")
        t = r.head.get("tick")
        return Welcome(boot, ring, r.int("evicted"), history, None if t is None else r.tick(boot, t))
    raise ValueError(f"unknown delivery kind {kind!r}")
