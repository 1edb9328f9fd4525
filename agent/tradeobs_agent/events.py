"""A bounded, in-process feed of discrete trading events (fills, rejects, alerts).

>>> bus = EventBus(capacity=4)
>>> seq = bus.publish("fill", symbol="AAPL", qty=100)
>>> [e.kind for e in bus.since(0)]
['fill']

Producers (the trading layer, risk checks, the agent itself) call
:func:`publish` from any thread; it is an append to a bounded deque under a
lock, so it never blocks on a reader. Readers (the live stream) poll
:meth:`EventBus.since` with the last sequence number they saw; when the ring
has moved past it, ``since`` says so and the reader resyncs with a full frame.
Events that fall off the ring are counted, never silently lost.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from itertools import islice
from typing import Any, NamedTuple

from ._errors import internal_error
from ._text import as_utf8, is_utf8

__all__ = ["Event", "EventBus", "get_bus", "publish"]


class Event(NamedTuple):
    """One published event: ``seq`` (1, 2, ... per bus), ``kind``, ``ts`` (epoch seconds), ``data``.

    An immutable named tuple (it was a frozen dataclass: that costs four
    ``object.__setattr__`` calls per publish, on the trading thread).
    """

    seq: int
    kind: str
    ts: float
    data: dict[str, Any]


_new_event = tuple.__new__
_time = time.time


DEFAULT_CAPACITY = 2048
"""Events kept (setting ``live_event_buffer``): about 0.7 KiB each in RSS with the demo's events, so ~1.5 MiB.

At the demo's default load that is about 7 minutes of events, at 10x about 43 s. The readers (the live
stream's hub, the worker group, the NATS publisher) poll it several times a second, so they need a few hundred;
the live stream's resume (``Last-Event-ID``) is served from the hub's own ring of ready SSE events, not this one.
It was 10,000 (~7 MiB), then 4,096: the soak saw the ring filling as RSS growing after the first minute.
"""


class EventBus:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._ring: deque[Event] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._seq = 0
        self.evicted = 0
        self._flush_hooks: list[Any] = []

    def add_flush_hook(self, hook: Any) -> None:
        """Call ``hook`` before every read: it publishes what is still pending (the trading journal). Added once."""
        if hook not in self._flush_hooks:
            self._flush_hooks.append(hook)

    def _flush(self) -> None:
        for hook in self._flush_hooks:
            try:
                hook()
            except Exception as exc:  # a flush hook never raises by contract: a bug
                internal_error("events.flush_hook", exc)

    @property
    def capacity(self) -> int:
        return self._ring.maxlen or 0

    def resize(self, capacity: int) -> None:
        """Keep at most ``capacity`` events from now on (``init()`` applies ``live_event_buffer``).

        Shrinking drops the oldest events, counted in :attr:`evicted` like any eviction.
        """
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        with self._lock:
            if capacity == self._ring.maxlen:
                return
            self.evicted += max(0, len(self._ring) - capacity)
            self._ring = deque(self._ring, maxlen=capacity)

    @property
    def last_seq(self) -> int:
        return self._seq

    def publish(self, kind: str, **data: Any) -> int:
        return self.publish_data(kind, data)

    def publish_data(self, kind: str, data: dict[str, Any]) -> int:
        """:meth:`publish` with the data as a dict the bus may keep (no copy). Text that no output can carry (a
        lone surrogate, from text decoded with ``surrogateescape``) gets ``?`` in its place: every reader writes
        events as JSON, and one such event stopped the live view's events for good."""
        if not _writable(kind, data):
            kind, data = _utf8_safe(kind), _utf8_safe(data)
        with self._lock:
            self._seq += 1
            if len(self._ring) == self._ring.maxlen:
                self.evicted += 1
            self._ring.append(_new_event(Event, (self._seq, kind, _time(), data)))
            return self._seq

    def since(self, seq: int, *, pending: bool = True) -> list[Event]:
        """Events after ``seq``, oldest first. If some were already evicted, the list starts at the oldest kept.

        ``pending=False`` skips publishing what is still pending first (a reader on the trading thread).
        """
        if pending and self._flush_hooks:
            self._flush()
        with self._lock:
            ring = self._ring
            n = self._seq - seq  # sequence numbers are consecutive: the newest n events are the ones after seq
            if n <= 0 or not ring:
                return []
            if n >= len(ring):
                return list(ring)
            out = list(islice(reversed(ring), n))  # only the tail a poll needs, not a copy of the ring
        out.reverse()
        return out

    def oldest_seq(self) -> int:
        if self._flush_hooks:
            self._flush()
        with self._lock:
            return self._ring[0].seq if self._ring else self._seq + 1


_BUS = EventBus()


def get_bus() -> EventBus:
    return _BUS


def _writable(kind: Any, data: dict[str, Any]) -> bool:
    """True when every string in the event can be written as UTF-8; cheap for the usual ASCII scalars."""
    if type(kind) is not str or not kind.isascii():
        return False
    for k, v in data.items():
        t = type(v)
        if t is str:
            if not v.isascii() and not is_utf8(v):
                return False
        elif t not in _SCALARS and v is not None:
            return False  # a container or another type: looked at in full (rare)
        if type(k) is not str or not k.isascii():
            return False  # an ASCII str key is the usual case; any other is looked at in full
    return True


_SCALARS = frozenset((int, float, bool))


def _utf8_safe(v: Any, depth: int = 0) -> Any:
    """``v`` with every string's lone surrogates replaced by ``?`` (in dicts, lists and tuples too)."""
    if type(v) is str or isinstance(v, str):
        return v if is_utf8(v) else as_utf8(str.__str__(v))
    if depth > 8:
        return v
    if isinstance(v, dict):
        return {_utf8_safe(k, depth + 1): _utf8_safe(x, depth + 1) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_utf8_safe(x, depth + 1) for x in v]
    return v


def publish(kind: str, **data: Any) -> int:
    """Publish a discrete event to the process-wide bus; returns its sequence number."""
    return _BUS.publish(kind, **data)


def reset_bus() -> None:
    """A fresh process bus (tests: ``tradeobs_agent.testing.reset``). Its flush hooks stay: the journal of a
    ``TradingTelemetry`` made before (at a module's import) still publishes what is pending before each read."""
    global _BUS
    hooks = _BUS._flush_hooks
    _BUS = EventBus()
    _BUS._flush_hooks = list(hooks)
