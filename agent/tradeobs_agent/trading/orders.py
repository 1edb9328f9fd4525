"""One trace per order, kept by client order id so later events join it from any task or thread.

>>> tt = TradingTelemetry(strategy="momentum", venue="paper")       # doctest: +SKIP
>>> o = tt.order_signal("c-1", "AAPL", "buy", 100, price=189.5)     # doctest: +SKIP
>>> o.risk_check(passed=True); o.submitted()                        # doctest: +SKIP
>>> tt.order("c-1").acked("v-77")          # later, on the venue's thread  # doctest: +SKIP
>>> tt.order("c-1").fill(100, 189.52)      # fully filled: the trace ends   # doctest: +SKIP

The root span ``order`` starts at the signal and ends when the order is done
(filled, rejected, cancelled, or :meth:`OrderTrace.done`). Each step is a child
span that covers the time *since the previous step*: ``risk_check`` (signal ->
risk decision), ``submit`` (-> sent), ``ack`` (sent -> acknowledged, i.e. the
venue round trip) and one ``fill`` per fill. Children are started with the root
as explicit parent context, never from the ambient context, so a fill handled on
another thread or task lands in the right trace. The latency histograms are the
same nanosecond timestamps as the spans: an exemplar's span lasts exactly the
latency it was recorded with.

Each call only takes the time and appends to the trading journal
(``_journal.py``); the ``_on_*`` handlers below do the work when the journal is
applied, in call order. The accessors that report state (``closed``,
``filled_qty``, ``span``, ``context``, ``trace_id``) apply it first, so they are
exact right after the call.

Unlike a plain OTel span that would simply leak if never ended, open orders are
kept in a bounded, expiring book (:class:`OrderBook`): past ``max_open_orders``
the oldest is evicted and past ``order_ttl`` seconds an order expires. Either way
its span ends with ``order.outcome`` = ``evicted`` / ``expired`` (status left
unset: losing track of a resting order is not a trading error) and
``tradeobs.agent.items.dropped{signal="traces"}`` counts it. Recently closed
orders stay findable for a while, so a fill racing a cancel still joins its trace.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, Status, StatusCode

from ._journal import LIMIT as _LIMIT

if TYPE_CHECKING:
    from ._spans import StepSpans
    from .telemetry import TradingTelemetry

__all__ = ["OrderBook", "OrderTrace"]

_RECENT = 1024  # closed orders remembered for late events
_INF = float("inf")
_SELL_SIDES = frozenset({"sell", "sell_short", "short", "s"})
_time_ns = time.time_ns


def _number(value: Any) -> float | None:
    """``value`` as a finite float, else ``None``."""
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if -_INF < f < _INF else None


def _text(value: Any) -> str:
    return value if type(value) is str else str(value)


class OrderTrace:
    """The life of one order: call its methods as the order moves; none of them raises."""

    __slots__ = (
        "_closed",
        "_ctx",
        "_filled",
        "_last_ns",
        "_q",
        "_sc",
        "_sell",
        "_series",
        "_span",
        "_start_ns",
        "_steps",
        "_submit_ns",
        "_trace_hex",
        "_tracer",
        "_tt",
        "client_order_id",
        "created",
        "order_type",
        "price",
        "qty",
        "side",
        "symbol",
    )

    def __init__(
        self,
        tt: TradingTelemetry,
        client_order_id: str,
        symbol: Any,
        side: Any,
        qty: float,
        price: float | None,
        order_type: Any,
        start_ns: int,
    ) -> None:
        self._tt = tt
        self._q = tt._q
        self.client_order_id = client_order_id
        self.symbol = _text(symbol)
        self.side = _text(side)
        self.order_type = _text(order_type)
        self.qty = qty
        self.price = price
        self.created = time.monotonic()
        self._start_ns = self._last_ns = start_ns
        self._span: Any = None  # made when the signal is applied (or on first access to .span)
        self._sc: Any = None
        self._ctx: Any = None
        self._tracer: Any = None
        self._steps: StepSpans | None = None
        self._series: Any = None
        self._submit_ns: int | None = None
        self._filled = 0.0
        self._closed = False
        self._trace_hex: str | None = None
        self._sell = False

    # ------------------------------------------------------------------ read-your-writes accessors
    def _sync(self) -> None:
        if self._q:
            self._tt._journal.flush()

    @property
    def closed(self) -> bool:
        self._sync()
        return self._closed

    @property
    def filled_qty(self) -> float:
        self._sync()
        return self._filled

    @property
    def span(self) -> Span:
        """The order's root span (an OTel ``Span``; non-recording when untraced)."""
        if self._span is None:
            self._sync()
        return self._span if self._span is not None else INVALID_SPAN  # type: ignore[no-any-return]

    @property
    def trace_id(self) -> str | None:
        """The order's trace id as 32 hex digits, or ``None`` when there is no tracing."""
        if self._span is None:
            self._sync()
        return self._trace_hex

    @property
    def context(self) -> Any:
        """An OTel ``Context`` with this order's root span: pass it as ``context=`` to your own spans."""
        ctx = self._ctx
        if ctx is None:
            ctx = self._ctx = trace.set_span_in_context(self.span)
        return ctx

    # ------------------------------------------------------------------ the calls: time, then the journal
    def risk_check(self, passed: bool, reason: str | None = None, checks: dict[str, Any] | None = None) -> None:
        """Record the pre-trade risk decision; ``passed=False`` rejects the order (and ends the trace)."""
        try:
            q = self._q
            q.append((OrderTrace._on_risk, self, _time_ns(), passed, reason, dict(checks) if checks else None))
            if len(q) > _LIMIT:
                self._tt._journal.flush()
        except Exception as exc:
            self._tt._fail("risk_check", exc)

    def submitted(self) -> None:
        """The order was sent: ``submit`` span, signal->submit latency, ``trading.orders.submitted``."""
        try:
            q = self._q
            q.append((OrderTrace._on_submit, self, _time_ns()))
            if len(q) > _LIMIT:
                self._tt._journal.flush()
        except Exception as exc:
            self._tt._fail("submitted", exc)

    def acked(self, venue_order_id: str | None = None) -> None:
        """The venue acknowledged the order: ``ack`` span, submit->ack latency, ``trading.orders.acknowledged``."""
        try:
            q = self._q
            q.append((OrderTrace._on_ack, self, _time_ns(), venue_order_id))
            if len(q) > _LIMIT:
                self._tt._journal.flush()
        except Exception as exc:
            self._tt._fail("acked", exc)

    def fill(self, qty: float, price: float, expected_price: float | None = None) -> None:
        """A (partial) fill. Slippage is against ``expected_price``, else the order's price; adverse is positive.

        The first fill records submit->fill latency; the fill that completes the
        order counts ``trading.orders.filled`` and ends the trace, earlier ones
        count ``trading.orders.partially_filled``.
        """
        try:
            q = self._q
            q.append((OrderTrace._on_fill, self, _time_ns(), qty, price, expected_price))
            if len(q) > _LIMIT:
                self._tt._journal.flush()
        except Exception as exc:
            self._tt._fail("fill", exc)

    def rejected(self, reason: str) -> None:
        """Rejected (by risk or the venue): ``trading.orders.rejected{reason}``, status ERROR; ends the trace."""
        self._put("rejected", (OrderTrace._on_reject, self, reason))

    def cancelled(self, reason: str | None = None) -> None:
        """Cancelled: ``trading.orders.cancelled``; ends the trace."""
        self._put("cancelled", (OrderTrace._on_cancel, self, reason))

    def error(self, exc: BaseException) -> None:
        """Record an exception on the order's span and set its status to ERROR (does not end the trace)."""
        self._put("error", (OrderTrace._on_error, self, exc, _time_ns()))

    def done(self) -> None:
        """End the root span. Called for you when the order is filled, rejected or cancelled; idempotent."""
        self._put("done", (OrderTrace._on_done, self))

    def _put(self, where: str, entry: tuple[Any, ...]) -> None:
        self._tt._put(where, entry)

    def _fail(self, where: str, exc: BaseException) -> None:
        self._tt._fail(where, exc)

    # ------------------------------------------------------------------ applied from the journal
    def _on_signal(self, e: tuple[Any, ...]) -> None:
        _, _, qty, price, current = e
        self._tt._apply_signal(self, qty, price, current)

    def _child(self, name: str, now: int, attributes: dict[str, Any] | None = None, error: str | None = None) -> Any:
        """A child span covering the time since the previous step, already ended (or an event on the root).

        Returns what measurements should use as exemplar: the child span or its span context (None untraced).
        """
        start, self._last_ns = self._last_ns, now
        if self._span is None:  # the signal was never applied
            return None
        if not self._tt.child_spans:  # cheaper: the step is an event on the root span
            root = self._span
            if error is not None:
                attributes = {**(attributes or {}), "error": error}
            root.add_event(name, attributes, timestamp=now)
            return root
        steps = self._steps
        if steps is not None and steps.current():
            return steps.emit(self._sc, name, start, now, attributes, error)
        if self._trace_hex is None:  # no tracing (no SDK, or a disabled tracer): the child would be a no-op too
            return None
        span: Span = self._tracer.start_span(name, context=self.context, start_time=start, attributes=attributes)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=now)
        return span

    def _event(self, kind: str, data: dict[str, Any]) -> None:
        data["order_id"] = self.client_order_id
        data["symbol"] = self.symbol
        data["side"] = self.side
        data["trace_id"] = self._trace_hex
        self._tt._publish(kind, data)

    def _on_risk(self, e: tuple[Any, ...]) -> None:
        _, _, now, passed, reason, checks = e
        attrs: dict[str, Any] = {"risk.passed": bool(passed)}
        if reason is not None:
            attrs["risk.reason"] = str(reason)[:256]
        if checks:
            for k, v in list(checks.items())[:32]:
                attrs[f"risk.check.{k}"] = v if isinstance(v, str | bool | int | float) else str(v)[:256]
        self._child("risk_check", now, attrs, None if passed else str(reason or "risk check failed")[:256])
        if not passed:
            self._on_reject((None, self, str(reason or "risk")))

    def _on_submit(self, e: tuple[Any, ...]) -> None:
        now = e[2]
        self._submit_ns = now
        span = self._child("submit", now)
        s = self._series
        s.submitted.add(1)
        s.signal_to_submit.record(max(0, now - self._start_ns) * 1e-9, span)
        self._event("order", {"qty": self.qty, "price": self.price, "order_type": self.order_type, "reason": None})

    def _on_ack(self, e: tuple[Any, ...]) -> None:
        _, _, now, venue_order_id = e
        attrs = None
        if venue_order_id is not None:
            vid = str(venue_order_id)[:256]
            attrs = {"order.venue_order_id": vid}
            if not self._closed and self._span is not None:
                self._span.set_attribute("order.venue_order_id", vid)
        span = self._child("ack", now, attrs)
        s = self._series
        s.acknowledged.add(1)
        if self._submit_ns is not None:
            s.submit_to_ack.record(max(0, now - self._submit_ns) * 1e-9, span)

    def _on_fill(self, e: tuple[Any, ...]) -> None:
        _, _, now, qty, price, expected_price = e
        q = qty if type(qty) is float and qty < _INF else _number(qty)
        p = price if type(price) is float and -_INF < price < _INF else _number(price)
        if q is None or not q > 0 or p is None:
            self._tt._invalid("fill", qty if q is None or q <= 0 else price)
            return
        first = self._filled == 0
        self._filled = filled = self._filled + q
        complete = filled >= self.qty * (1 - 1e-9)
        ref = expected_price if expected_price is not None else self.price
        slip: float | None = None
        ref_price = ref if type(ref) is float and -_INF < ref < _INF else (_number(ref) if ref is not None else None)
        if ref_price:
            slip = (p - ref_price) / ref_price * 1e4
            if self._sell:
                slip = -slip
        attrs: dict[str, Any] = {"fill.qty": q, "fill.price": p, "order.filled_qty": filled}
        if slip is not None:
            attrs["fill.slippage_bps"] = slip
        span = self._child("fill", now, attrs)
        s = self._series
        if first and self._submit_ns is not None:
            s.submit_to_fill.record(max(0, now - self._submit_ns) * 1e-9, span)
        if slip is not None:
            s.slippage.record(slip, span)
        if complete:
            s.filled.add(1)
        else:
            s.partially_filled.add(1)
        self._event("fill", {"qty": q, "price": p, "filled_qty": filled, "reason": None, "slippage_bps": slip})
        if complete:
            self._finish("filled")

    def _on_reject(self, e: tuple[Any, ...]) -> None:
        r = str(e[2])[:256]
        self._tt._rejected_series(self, r).add(1)
        if not self._closed and self._span is not None:
            self._span.set_status(Status(StatusCode.ERROR, r))
            self._span.set_attribute("order.reject_reason", r)
        self._event("reject", {"qty": self.qty, "price": self.price, "reason": r})
        self._finish("rejected")

    def _on_cancel(self, e: tuple[Any, ...]) -> None:
        reason = e[2]
        r = None if reason is None else str(reason)[:256]
        self._series.cancelled.add(1)
        if r is not None and not self._closed and self._span is not None:
            self._span.set_attribute("order.cancel_reason", r)
        self._event("cancel", {"qty": self.qty, "price": self.price, "reason": r, "filled_qty": self._filled})
        self._finish("cancelled")

    def _on_error(self, e: tuple[Any, ...]) -> None:
        _, _, exc, now = e
        span = self._span
        if span is None or self._closed:
            return
        span.record_exception(exc, timestamp=now)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:256]))

    def _on_done(self, e: tuple[Any, ...]) -> None:
        self._finish(None)

    def _finish(self, outcome: str | None, dropped: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        span = self._span
        if span is not None:
            if outcome is not None:
                span.set_attributes({"order.outcome": outcome, "order.filled_qty": self._filled})
            else:
                span.set_attribute("order.filled_qty", self._filled)
        if not dropped and outcome != "rejected" and self._submit_ns is not None and self.qty > 0:
            self._series.fill_ratio.record(min(self._filled / self.qty, 1.0), self._sc if self._trace_hex else None)
        if span is not None:
            span.end()
        if not dropped:
            self._tt._book.close(self)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<OrderTrace {self.client_order_id!r} {self.side} {self.qty} {self.symbol} {state}>"


class OrderBook:
    """Orders by client order id: a lookup index the hot path writes, and the open orders the journal keeps.

    ``get`` finds an order from the moment it was signalled until it falls out of
    the recently-closed window. The open set (bounded: evict oldest; expiring:
    ``ttl`` seconds) is maintained only while the journal is applied, so it needs
    no lock of its own.
    """

    def __init__(self, max_open: int, ttl: float, on_drop: Any) -> None:
        self.max_open = max_open
        self.ttl = ttl
        self._by_id: dict[str, OrderTrace] = {}
        self._open: OrderedDict[str, OrderTrace] = OrderedDict()
        self._recent: OrderedDict[str, OrderTrace] = OrderedDict()
        self._on_drop = on_drop

    def __len__(self) -> int:
        return len(self._open)

    def get(self, order_id: str) -> OrderTrace | None:
        return self._by_id.get(order_id)

    def index(self, order: OrderTrace) -> None:
        """At the signal (hot path): findable by id from now on. One dict store."""
        self._by_id[order.client_order_id] = order

    # -- applied from the journal
    def opened(self, order: OrderTrace) -> None:
        self._open[order.client_order_id] = order
        self.expire(order.created)
        while len(self._open) > self.max_open:
            _, old = self._open.popitem(last=False)
            self._drop(old, "order_evicted")

    def expire(self, now: float | None = None) -> int:
        """End orders older than ``ttl``; returns how many. Runs on every new order and collection."""
        limit = (time.monotonic() if now is None else now) - self.ttl
        n = 0
        while self._open:
            oid, o = next(iter(self._open.items()))
            if o.created > limit:
                break
            del self._open[oid]
            self._drop(o, "order_expired")
            n += 1
        return n

    def _drop(self, o: OrderTrace, reason: str) -> None:
        self._remember(o)
        try:
            o._finish("evicted" if reason == "order_evicted" else "expired", dropped=True)
        finally:
            self._on_drop(reason)

    def close(self, order: OrderTrace) -> None:
        oid = order.client_order_id
        if self._open.get(oid) is order:
            del self._open[oid]
        self._remember(order)

    def open_orders(self) -> list[OrderTrace]:
        return list(self._open.values())

    def _remember(self, order: OrderTrace) -> None:
        recent = self._recent
        oid = order.client_order_id
        if oid in recent:
            recent.move_to_end(oid)
        recent[oid] = order
        if len(recent) > _RECENT:
            oid, old = recent.popitem(last=False)
            if self._by_id.get(oid) is old:
                del self._by_id[oid]
