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
another thread or task lands in the right trace.

Unlike a plain OTel span that would simply leak if never ended, open orders are
kept in a bounded, expiring book (:class:`OrderBook`): past ``max_open_orders``
the oldest is evicted and past ``order_ttl`` seconds an order expires. Either way
its span ends with ``order.outcome`` = ``evicted`` / ``expired`` (status left
unset: losing track of a resting order is not a trading error) and
``tradeobs.agent.items.dropped{signal="traces"}`` counts it. Recently closed
orders stay findable for a while, so a fill racing a cancel still joins its trace.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

if TYPE_CHECKING:
    from ._spans import StepSpans
    from .telemetry import TradingTelemetry, _OrderSeries

__all__ = ["OrderBook", "OrderTrace"]

_RECENT = 1024  # closed orders remembered for late events
_INF = float("inf")
_SELL_SIDES = frozenset({"sell", "sell_short", "short", "s"})


def _number(value: Any) -> float | None:
    """``value`` as a finite float, else ``None``."""
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if -_INF < f < _INF else None


class OrderTrace:
    """The life of one order: call its methods as the order moves; none of them raises."""

    __slots__ = (
        "_ack_t",
        "_closed",
        "_ctx",
        "_last_ns",
        "_lock",
        "_sc",
        "_series",
        "_steps",
        "_submit_t",
        "_tracer",
        "_tt",
        "client_order_id",
        "created",
        "filled_qty",
        "order_type",
        "price",
        "qty",
        "side",
        "signal_t",
        "span",
        "symbol",
        "trace_id",
    )

    def __init__(
        self,
        tt: TradingTelemetry,
        client_order_id: str,
        symbol: str,
        side: str,
        qty: float,
        price: float | None,
        order_type: str,
        series: _OrderSeries,
        span: Span,
        tracer: Any,
        steps: StepSpans | None = None,
        start_ns: int | None = None,
    ) -> None:
        self._tt = tt
        self._tracer = tracer
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.side = side
        self.qty = qty
        self.price = price
        self.order_type = order_type
        self._series = series
        self.span = span
        self._ctx: Any = None  # made on first use: the fast step path does not need a Context
        self._sc = sc = span.get_span_context()
        valid = sc.is_valid
        self.trace_id: str | None = format(sc.trace_id, "032x") if valid else None
        # Steps skip the SDK's start/end when that is exact (see _spans); only for a sampled root.
        self._steps = steps if valid and sc.trace_flags.sampled else None
        self.signal_t = time.perf_counter()
        self.created = time.monotonic()
        self._last_ns = start_ns if start_ns is not None else time.time_ns()
        self._submit_t: float | None = None
        self._ack_t: float | None = None
        self.filled_qty = 0.0
        self._closed = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ helpers
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def context(self) -> Any:
        """An OTel ``Context`` with this order's root span: pass it as ``context=`` to your own spans."""
        ctx = self._ctx
        if ctx is None:
            ctx = self._ctx = trace.set_span_in_context(self.span)
        return ctx

    def _child(self, name: str, attributes: dict[str, Any] | None = None, error: str | None = None) -> Any:
        """A child span covering the time since the previous step, already ended (or an event on the root).

        Returns what measurements should use as exemplar: the child span or its span context (None untraced).
        """
        now = time.time_ns()
        with self._lock:
            start, self._last_ns = self._last_ns, now
        if not self._tt.child_spans:  # cheaper: the step is an event on the root span
            root = self.span
            if error is not None:
                attributes = {**(attributes or {}), "error": error}
            root.add_event(name, attributes, timestamp=now)
            return root
        steps = self._steps
        if steps is not None and steps.current():
            return steps.emit(self._sc, name, start, now, attributes, error)
        if self.trace_id is None:  # no tracing (no SDK, or a disabled tracer): the child would be a no-op too
            return None
        span: Span = self._tracer.start_span(name, context=self.context, start_time=start, attributes=attributes)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=now)
        return span

    def _event(self, kind: str, **extra: Any) -> None:
        self._tt._publish(
            kind,
            order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            trace_id=self.trace_id,
            **extra,
        )

    # ------------------------------------------------------------------ lifecycle
    def risk_check(self, passed: bool, reason: str | None = None, checks: dict[str, Any] | None = None) -> None:
        """Record the pre-trade risk decision; ``passed=False`` rejects the order (and ends the trace)."""
        try:
            attrs: dict[str, Any] = {"risk.passed": bool(passed)}
            if reason is not None:
                attrs["risk.reason"] = str(reason)[:256]
            if checks:
                for k, v in list(checks.items())[:32]:
                    attrs[f"risk.check.{k}"] = v if isinstance(v, str | bool | int | float) else str(v)[:256]
            self._child("risk_check", attrs, None if passed else str(reason or "risk check failed")[:256])
            if not passed:
                self.rejected(str(reason or "risk"))
        except Exception as exc:
            self._tt._fail("risk_check", exc)

    def submitted(self) -> None:
        """The order was sent: ``submit`` span, signal->submit latency, ``trading.orders.submitted``."""
        try:
            t = time.perf_counter()
            self._submit_t = t
            span = self._child("submit")
            s = self._series
            s.submitted.add(1)
            s.signal_to_submit.record(t - self.signal_t, span)
            self._event("order", qty=self.qty, price=self.price, order_type=self.order_type, reason=None)
        except Exception as exc:
            self._tt._fail("submitted", exc)

    def acked(self, venue_order_id: str | None = None) -> None:
        """The venue acknowledged the order: ``ack`` span, submit->ack latency, ``trading.orders.acknowledged``."""
        try:
            t = time.perf_counter()
            self._ack_t = t
            attrs = {"order.venue_order_id": str(venue_order_id)[:256]} if venue_order_id is not None else None
            if venue_order_id is not None:
                self.span.set_attribute("order.venue_order_id", str(venue_order_id)[:256])
            span = self._child("ack", attrs)
            s = self._series
            s.acknowledged.add(1)
            if self._submit_t is not None:
                s.submit_to_ack.record(t - self._submit_t, span)
        except Exception as exc:
            self._tt._fail("acked", exc)

    def fill(self, qty: float, price: float, expected_price: float | None = None) -> None:
        """A (partial) fill. Slippage is against ``expected_price``, else the order's price; adverse is positive.

        The first fill records submit->fill latency; the fill that completes the
        order counts ``trading.orders.filled`` and ends the trace, earlier ones
        count ``trading.orders.partially_filled``.
        """
        try:
            t = time.perf_counter()
            q, p = _number(qty), _number(price)
            if q is None or q <= 0 or p is None:
                self._tt._invalid("fill", qty if q is None or q <= 0 else price)
                return
            with self._lock:
                first = self.filled_qty == 0
                self.filled_qty += q
                filled = self.filled_qty
            complete = filled >= self.qty * (1 - 1e-9)
            ref = expected_price if expected_price is not None else self.price
            slip: float | None = None
            ref_price = _number(ref) if ref is not None else None
            if ref_price:
                slip = (p - ref_price) / ref_price * 1e4
                if self.side.lower() in _SELL_SIDES:
                    slip = -slip
            attrs: dict[str, Any] = {"fill.qty": q, "fill.price": p, "order.filled_qty": filled}
            if slip is not None:
                attrs["fill.slippage_bps"] = slip
            span = self._child("fill", attrs)
            s = self._series
            if first and self._submit_t is not None:
                s.submit_to_fill.record(t - self._submit_t, span)
            if slip is not None:
                s.slippage.record(slip, span)
            if complete:
                s.filled.add(1)
            else:
                s.partially_filled.add(1)
            self._event("fill", qty=q, price=p, filled_qty=filled, reason=None, slippage_bps=slip)
            if complete:
                self._finish("filled")
        except Exception as exc:
            self._tt._fail("fill", exc)

    def rejected(self, reason: str) -> None:
        """Rejected (by risk or the venue): ``trading.orders.rejected{reason}``, status ERROR; ends the trace."""
        try:
            r = str(reason)[:256]
            self._tt._rejected_series(self, r).add(1)
            self.span.set_status(Status(StatusCode.ERROR, r))
            self.span.set_attribute("order.reject_reason", r)
            self._event("reject", qty=self.qty, price=self.price, reason=r)
            self._finish("rejected")
        except Exception as exc:
            self._tt._fail("rejected", exc)

    def cancelled(self, reason: str | None = None) -> None:
        """Cancelled: ``trading.orders.cancelled``; ends the trace."""
        try:
            r = None if reason is None else str(reason)[:256]
            self._series.cancelled.add(1)
            if r is not None:
                self.span.set_attribute("order.cancel_reason", r)
            self._event("cancel", qty=self.qty, price=self.price, reason=r, filled_qty=self.filled_qty)
            self._finish("cancelled")
        except Exception as exc:
            self._tt._fail("cancelled", exc)

    def error(self, exc: BaseException) -> None:
        """Record an exception on the order's span and set its status to ERROR (does not end the trace)."""
        try:
            self.span.record_exception(exc)
            self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:256]))
        except Exception as e:
            self._tt._fail("error", e)

    def done(self) -> None:
        """End the root span. Called for you when the order is filled, rejected or cancelled; idempotent."""
        try:
            self._finish(None)
        except Exception as exc:
            self._tt._fail("done", exc)

    def _finish(self, outcome: str | None, dropped: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        span = self.span
        if outcome is not None:
            span.set_attributes({"order.outcome": outcome, "order.filled_qty": self.filled_qty})
        else:
            span.set_attribute("order.filled_qty", self.filled_qty)
        if not dropped and outcome != "rejected" and self._submit_t is not None and self.qty > 0:
            self._series.fill_ratio.record(min(self.filled_qty / self.qty, 1.0), self._sc if self.trace_id else None)
        span.end()
        if not dropped:
            self._tt._book.close(self.client_order_id, self)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<OrderTrace {self.client_order_id!r} {self.side} {self.qty} {self.symbol} {state}>"


class OrderBook:
    """Open orders by client order id: bounded (evict oldest) and expiring (``ttl`` seconds)."""

    def __init__(self, max_open: int, ttl: float, on_drop: Any) -> None:
        self.max_open = max_open
        self.ttl = ttl
        self._open: OrderedDict[str, OrderTrace] = OrderedDict()
        self._recent: OrderedDict[str, OrderTrace] = OrderedDict()
        self._lock = threading.Lock()
        self._on_drop = on_drop

    def __len__(self) -> int:
        return len(self._open)

    def get(self, order_id: str) -> OrderTrace | None:
        o = self._open.get(order_id)
        if o is None:
            o = self._recent.get(order_id)
        return o

    def add(self, order: OrderTrace) -> None:
        dropped: list[tuple[OrderTrace, str]] = []
        with self._lock:
            self._open[order.client_order_id] = order
            dropped.extend((o, "order_expired") for o in self._pop_expired(order.created))
            while len(self._open) > self.max_open:
                _, old = self._open.popitem(last=False)
                dropped.append((old, "order_evicted"))
        for o, reason in dropped:
            self._drop(o, reason)

    def expire(self, now: float | None = None) -> int:
        """End orders older than ``ttl``; returns how many. Also runs on every new order and collection."""
        with self._lock:
            expired = self._pop_expired(time.monotonic() if now is None else now)
        for o in expired:
            self._drop(o, "order_expired")
        return len(expired)

    def _pop_expired(self, now: float) -> list[OrderTrace]:
        out = []
        limit = now - self.ttl
        while self._open:
            oid, o = next(iter(self._open.items()))
            if o.created > limit:
                break
            del self._open[oid]
            out.append(o)
        return out

    def _drop(self, o: OrderTrace, reason: str) -> None:
        with self._lock:
            self._remember(o)
        try:
            o._finish("evicted" if reason == "order_evicted" else "expired", dropped=True)
        finally:
            self._on_drop(reason)

    def close(self, order_id: str, order: OrderTrace) -> None:
        with self._lock:
            if self._open.get(order_id) is order:
                del self._open[order_id]
            self._remember(order)

    def _remember(self, order: OrderTrace) -> None:
        # Called with self._lock held.
        self._recent[order.client_order_id] = order
        if len(self._recent) > _RECENT:
            self._recent.popitem(last=False)
