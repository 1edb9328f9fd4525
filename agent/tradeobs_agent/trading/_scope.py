"""An order as the current context, so log lines (and your spans) land on the order's trace.

>>> o = tt.order_signal("c-1", "AAPL", "buy", 100, price=189.5)      # doctest: +SKIP
>>> with o.scope():                                                   # doctest: +SKIP
...     log.info("sent to %s", venue)          # trace_id: the order's; order_id="c-1"
>>> broker.on_fill(o.wrap(handle_fill))        # the callback runs in the order's scope, on any thread

Three ways a log line finds its order, all resolved on the log worker thread (the log call itself
does exactly what it did before: it captures the OTel context and the correlation ids):

* ``correlate(order_id=...)`` with the id of an order a :class:`TradingTelemetry` knows:
  :func:`resolve_order` is registered with ``logs.links`` for the ``order_id`` key.
* ``with order.scope():`` makes the order's root span the current span (:class:`OrderSpan`) and sets
  ``order_id``. Spans you start inside are children of the order; asyncio tasks and ``call_soon``
  callbacks started inside inherit the scope (contextvars); threads do not.
* ``order.wrap(fn)``: ``fn`` runs inside the order's scope wherever it is called (a broker's callback
  on its own thread or task).

Besides its trace, a line of an order carries the order's other ids as fields, for a search by the id a broker's
report names (:func:`order_ids`, registered with ``logs.links`` too): ``venue_order_id`` once ``acked()`` was given
the venue's id, ``new_order_id`` after a ``replaced()`` (the last one). They are the order's when the worker writes the
line, so a line logged after the call has them (one logged just before may too).

The order's root span is made when the trading journal applies the signal (``_journal.py``), which may
be after the line is logged. Nothing here makes it early: the log worker applies the journal itself
when a line names an order whose signal is still waiting (a chunk at a time, offering the GIL in
between, as the applier thread does), and a span you start inside a scope does the same on your thread
(it needs the parent's ids at once; like ``order.span``, it applies the journal in one go).

Which span a line gets: the order's trace id, and the span id of the span current at the call if that
span belongs to the order's trace (one of your own, started inside the scope), else the order's root
span ``order``. Not a step span: a step (``submit``, ``ack``, ``fill``) covers the time *since the
previous step* and is made when the step is recorded, so the step covering a line's time does not exist
when the line is written, and may never (a cancel is not a step). The root span is the one span of the
order that covers every line written while the order is open, which is what Jaeger shows.
"""

from __future__ import annotations

import functools
import inspect
import threading
import weakref
from collections.abc import Callable, Mapping
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanContext, Status, StatusCode

from ..logs import correlate
from ..logs.links import on_log_worker, register_record_ids, register_trace_resolver

if TYPE_CHECKING:
    from .orders import OrderBook, OrderTrace

__all__ = ["OrderScope", "OrderSpan", "order_ids", "resolve_order", "track", "wrap"]

F = TypeVar("F", bound=Callable[..., Any])

_books: tuple[weakref.ref[OrderBook], ...] = ()
_lock = threading.Lock()


class OrderSpan(Span):
    """The order's root span as the current span of :meth:`OrderTrace.scope`, found when first used.

    Every call is the root span's (made first if the journal has not applied the signal yet), except
    ``end()``, which ends the order through its journal (:meth:`OrderTrace.done`) so its state stays right.
    """

    __slots__ = ("_order",)

    def __init__(self, order: OrderTrace) -> None:
        self._order = order

    def get_span_context(self) -> SpanContext:
        return self._order._root_span_context(on_log_worker())

    def is_recording(self) -> bool:
        return self._order.span.is_recording()

    def set_attribute(self, key: str, value: Any) -> None:
        self._order.span.set_attribute(key, value)

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self._order.span.set_attributes(attributes)

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        self._order.span.add_event(name, attributes, timestamp)

    def add_link(self, context: SpanContext, attributes: Any = None) -> None:
        self._order.span.add_link(context, attributes)

    def update_name(self, name: str) -> None:
        self._order.span.update_name(name)

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        self._order.span.set_status(status, description)

    def record_exception(
        self, exception: BaseException, attributes: Any = None, timestamp: int | None = None, escaped: bool = False
    ) -> None:
        self._order.span.record_exception(exception, attributes, timestamp, escaped)

    def end(self, end_time: int | None = None) -> None:
        self._order.done()

    def __repr__(self) -> str:
        return f"OrderSpan({self._order!r})"


class OrderScope:
    """``with order.scope():``: the order's root span current and ``order_id`` correlated, for the block.

    An exception that escapes the block (an ``Exception``, not a cancellation or an interrupt) is recorded on the
    order's root span, which gets status ERROR, as ``tracer.start_as_current_span`` does for its span; once, however
    many scopes of the order it passes through. The order is not ended: its outcome is still the venue's."""

    __slots__ = ("_correlate", "_order", "_span", "_tokens")

    def __init__(self, order: OrderTrace) -> None:
        self._order = order
        # Made at the first entry, kept here, not on the order: an order holding a span that holds the order is a
        # cycle, which left every ended order to the cyclic garbage collector (minutes apart in a large heap).
        self._span: OrderSpan | None = None
        # A NullOrder (order_signal failed) has no id of its own: its scope makes nothing current. Correlating its
        # empty id would put the lines on whichever order some TradingTelemetry booked under "".
        self._correlate = correlate(order_id=order.client_order_id) if order._real else None
        self._tokens: list[Token[Any]] = []  # one per nesting level of this same scope object

    def __enter__(self) -> OrderTrace:
        if self._correlate is None:
            return self._order
        span = self._span
        if span is None:
            span = self._span = OrderSpan(self._order)
        ctx = trace.set_span_in_context(span)
        self._tokens.append(otel_context.attach(ctx))
        self._correlate.__enter__()
        return self._order

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._correlate is None:
            return
        self._correlate.__exit__(exc_type, exc, tb)
        otel_context.detach(self._tokens.pop())
        if isinstance(exc, Exception):  # not a cancellation, an interrupt or an exit
            order = self._order
            if order._last_error is not exc:  # once, through nested scopes and wrapped callbacks
                order._last_error = exc
                order.error(exc)


def wrap(order: OrderTrace, fn: F) -> F:
    """``fn`` (a function or a coroutine function) running inside ``order.scope()`` wherever it is called."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            with OrderScope(order):
                return await fn(*args, **kwargs)

        return awrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with OrderScope(order):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def track(book: OrderBook) -> None:
    """Make the orders of ``book`` findable by :func:`resolve_order` (a ``TradingTelemetry`` calls this)."""
    global _books
    with _lock:
        _books = (*(r for r in _books if r() is not None), weakref.ref(book))
    register_trace_resolver("order_id", resolve_order)
    register_record_ids("order_id", order_ids)


def _find(order_id: Any, current: SpanContext | None) -> tuple[OrderTrace | None, bool]:
    """(the order a log line's ``order_id`` names, whether ``current`` is a span of its trace): on the log worker.

    An id known to several ``TradingTelemetry`` objects: the order whose trace the current span is in, else the most
    recently signalled one."""
    if type(order_id) is not str:
        try:
            order_id = str(order_id)
        except Exception:  # a hostile __str__: it names no order
            return None, False
    found: OrderTrace | None = None
    for ref in _books:
        book = ref()
        order = book.get(order_id) if book is not None else None
        if order is None:
            continue
        sc = order._root_span_context(True)  # resolvers run on the log worker
        if current is not None and sc.is_valid and sc.trace_id == current.trace_id and current.is_valid:
            return order, True
        if found is None or order._start_ns > found._start_ns:
            found = order
    return found, False


# resolve_order's last answer (order id, span context returned, order): order_ids, called next for the same line
# with that span context, reads the order from it instead of a second search. Both run on the log worker only.
_last: tuple[Any, Any, OrderTrace | None] = (None, None, None)


def resolve_order(order_id: Any, current: SpanContext | None) -> SpanContext | None:
    """The span context for a log line with ``correlate(order_id=...)`` (see the module docstring), or None."""
    global _last
    found, on_it = _find(order_id, current)
    if on_it:
        out: SpanContext | None = current  # a span of the order's own trace (the root, or one of yours in its scope)
    elif found is None:
        out = None
    else:
        sc = found._root_span_context(True)
        out = sc if sc.is_valid else None
    _last = (order_id, out, found)
    return out


def order_ids(order_id: Any, span_context: SpanContext | None) -> dict[str, str] | None:
    """The order's other ids for a log line with ``correlate(order_id=...)`` (:meth:`OrderTrace.log_ids`), or None.

    ``span_context``: the line's, after :func:`resolve_order`, so the order is the one whose trace the line is on."""
    last_id, last_sc, found = _last
    if last_id is not order_id or last_sc is not span_context:
        found, _ = _find(order_id, span_context)
    return found.log_ids() if found is not None else None
