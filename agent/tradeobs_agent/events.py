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
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "EventBus", "get_bus", "publish"]


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    kind: str
    ts: float
    data: dict[str, Any] = field(default_factory=dict)


class EventBus:
    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._ring: deque[Event] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._seq = 0
        self.evicted = 0

    @property
    def last_seq(self) -> int:
        return self._seq

    def publish(self, kind: str, **data: Any) -> int:
        with self._lock:
            self._seq += 1
            if len(self._ring) == self._ring.maxlen:
                self.evicted += 1
            self._ring.append(Event(self._seq, kind, time.time(), data))
            return self._seq

    def since(self, seq: int) -> list[Event]:
        """Events after ``seq``, oldest first. If some were already evicted, the list starts at the oldest kept."""
        with self._lock:
            if not self._ring or seq >= self._seq:
                return []
            first = self._ring[0].seq
            start = max(0, seq + 1 - first)
            return list(self._ring)[start:]

    def oldest_seq(self) -> int:
        with self._lock:
            return self._ring[0].seq if self._ring else self._seq + 1


_BUS = EventBus()


def get_bus() -> EventBus:
    return _BUS


def publish(kind: str, **data: Any) -> int:
    """Publish a discrete event to the process-wide bus; returns its sequence number."""
    return _BUS.publish(kind, **data)


def _reset_bus() -> None:
    global _BUS
    _BUS = EventBus()
