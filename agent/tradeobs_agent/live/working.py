"""Working orders for the live view, kept from the order events on the bus.

>>> w = WorkingOrders()
>>> w.apply("order", {"order_id": "c-1", "symbol": "AAPL", "side": "buy", "qty": 100, "price": 10.0,
...                   "submitted_at": 1.5, "trace_id": None, "strategy": "s", "venue": "v"}, 1.6)
>>> w.frame(10)["c-1"]["q"], len(w)
(100, 1)
>>> w.apply("fill", {"order_id": "c-1", "filled_qty": 100, "leaves": 0.0}, 2.0)
>>> len(w)
0

An order is working from its ``order`` event (sent to the venue) until a ``fill`` leaves nothing
(``leaves`` 0), a ``reject`` or ``cancel``, or a ``done`` event (``done()``, expired, evicted, superseded or closed: the
trading layer publishes it for a sent order that ended without one of the others); a ``replace`` event (a
cancel/replace) changes its quantity and price. The trading layer
publishes these events when its journal is applied, so the order of events is the order of the calls.

Bounded: past ``capacity`` working orders the oldest is dropped from this view and counted in
:attr:`WorkingOrders.dropped` (the trading layer's own book, ``trading.orders.open``, is the exact count).
The view starts with the events still on the bus when the live stream starts (the last ``event_buffer``),
so an order sent before that and still open is not listed until it fills or ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["WorkingOrders"]

_ENDS = frozenset({"reject", "cancel", "done"})


class WorkingOrders:
    """Working orders by client order id, oldest first (insertion order: the order of ``order`` events)."""

    __slots__ = ("_orders", "capacity", "dropped")

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.dropped = 0
        self._orders: dict[str, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self._orders)

    def apply(self, kind: str, data: Mapping[str, Any], ts: float) -> None:
        """One bus event (``kind``, its data, its time); events of other kinds are ignored."""
        oid = data.get("order_id")
        if oid is None:
            return
        key = str(oid)
        if kind == "order":
            row = {
                "s": data.get("symbol"),
                "sd": data.get("side"),
                "q": data.get("qty"),
                "f": 0,
                "p": data.get("price"),
                "t": data.get("submitted_at") or ts,
                "tr": data.get("trace_id"),
                "st": data.get("strategy"),
                "v": data.get("venue"),
            }
            orders = self._orders
            orders.pop(key, None)
            orders[key] = row
            if len(orders) > self.capacity:
                del orders[next(iter(orders))]
                self.dropped += 1
        elif kind == "fill":
            leaves = data.get("leaves")
            if isinstance(leaves, int | float) and leaves <= 0:
                self._orders.pop(key, None)
                return
            old = self._orders.get(key)
            if old is not None:  # a new dict, not an update: the previous frame still holds the old one
                self._orders[key] = {**old, "f": data.get("filled_qty", old["f"])}
        elif kind == "replace":  # a cancel/replace: the same order, its new quantity and price
            old = self._orders.get(key)
            if old is not None:
                self._orders[key] = {**old, "q": data.get("qty", old["q"]), "p": data.get("price", old["p"])}
        elif kind in _ENDS:
            self._orders.pop(key, None)

    def frame(self, limit: int) -> dict[str, dict[str, Any]]:
        """The ``limit`` oldest working orders (the ones a desk looks at first), oldest first.

        Keys: ``s`` symbol, ``sd`` side, ``q`` quantity, ``f`` filled so far, ``p`` price (None for a market
        order), ``t`` sent at (epoch seconds), ``tr`` trace id, ``st`` strategy, ``v`` venue.
        """
        out: dict[str, dict[str, Any]] = {}
        for key, row in self._orders.items():
            if len(out) >= limit:
                break
            out[key] = row
        return out
