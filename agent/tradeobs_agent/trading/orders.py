"""One trace per order, kept by client order id so later events join it from any task or thread.

>>> tt = TradingTelemetry(strategy="momentum", venue="paper")       # doctest: +SKIP
>>> o = tt.order_signal("c-1", "AAPL", "buy", 100, price=189.5)     # doctest: +SKIP
>>> o.risk_check(passed=True); o.submitted()                        # doctest: +SKIP
>>> tt.execution("c-1").acked("v-77")      # later, on the venue's thread  # doctest: +SKIP
>>> tt.execution("c-1").fill(100, 189.52)  # fully filled: the trace ends   # doctest: +SKIP

The root span ``order`` starts at the signal and ends when the order is done
(filled, rejected, cancelled, or :meth:`OrderTrace.done`). Each step is a child
span that covers the time *since the previous step*: ``risk_check`` (signal ->
risk decision), ``submit`` (-> sent), ``ack`` (sent -> acknowledged, i.e. the
venue round trip) and one ``fill`` per fill. Children are started with the root
as explicit parent context, never from the ambient context, so a fill handled on
another thread or task lands in the right trace. The latency histograms are the
same nanosecond timestamps as the spans: a latency's exemplar is the span of the step it measures up to
(``ack``, the first ``fill``, ``submit``), which ends at exactly the latency's end; the latency starts where the
``submit`` span ends (the signal, for signal->submit), so it equals that span's duration only when no other step
came between.

Each call takes the time and records one typed record (below) in the trading
journal (``_journal.py``); the ``_on_*`` handlers do the work when the journal is
applied, in call order. The accessors that report state (``closed``,
``filled_qty``, ``span``, ``context``, ``trace_id``) apply it first, so they are
exact right after the call. An :class:`OrderTrace` talks to the
:class:`TradingTelemetry` that made it only through :class:`OrderDesk`.

Unlike a plain OTel span that would simply leak if never ended, open orders are
kept in a bounded, expiring book (:class:`OrderBook`): past ``max_open_orders``
the oldest is evicted and past ``order_ttl`` seconds an order expires. Either way
its span ends with ``order.outcome`` = ``evicted`` / ``expired``,
``tradeobs.agent.items.dropped{signal="traces"}`` counts it and
``trading.orders.expired{strategy, venue, state}`` too. The status is left unset
for an order the venue acknowledged (losing track of a resting order is not a
trading error); one it never answered (``state="unacknowledged"``) ends with an
error status and ``order.unacknowledged=true``: its fate at the venue is unknown,
and ``TradingOrdersUnacknowledged`` keeps paging for it after it left the gauges. An order whose id a new
order takes while it is open ends ``superseded`` (counted as ``reason="order_id_reused"``). Recently closed
orders stay findable for a while, so a fill racing a cancel still joins its trace.
"""

from __future__ import annotations

import numbers
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any, Protocol, TypeAlias, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, INVALID_SPAN_CONTEXT, Span, SpanContext, Status, StatusCode

from .._errors import internal_error
from ..metrics import BoundCounter, BoundHistogram
from . import contracts as _contracts
from ._journal import Apply
from ._scope import OrderScope, wrap
from ._spans import StepSpans
from .instruments import TradingInstruments

__all__ = ["OrderBook", "OrderDesk", "OrderScope", "OrderSeries", "OrderTrace", "UnknownOrder"]

F = TypeVar("F", bound=Callable[..., Any])

_RECENT = 1024  # closed orders remembered for late events
_INF = float("inf")
# FIX Side(54) codes too: 1 buy, 3 buy minus; 2 sell, 4 sell plus, 5 sell short, 6 sell short exempt.
# Interactive Brokers' order actions too: SSHORT (a short sale) and SLONG (a sale of stock held); and the spoken forms
# "sell short", "ss", "buy to cover". Unknown, IB's SSHORT was a buy: a short sale filled above its price read adverse.
_SELL_SIDES = frozenset({"sell", "sell_short", "sell short", "sshort", "ss", "slong", "short", "s", "2", "4", "5", "6"})
_BUY_SIDES = frozenset({"buy", "b", "long", "buy_to_cover", "buy to cover", "cover", "1", "3"})  # another: a buy's
_OWN_EVENT = frozenset({"filled", "rejected", "cancelled"})  # outcomes whose step already published an event
_EXEC_IDS = 1024  # exec_ids remembered per order: a venue resends a recent report, not one from 1,000 fills ago
EXECUTIONS = 65_536  # exec_ids remembered per TradingTelemetry, whatever order: a replay under a reused order id
_SLIP_DIGITS = 6  # slippage is kept to 1e-6 bp: what floats add below that is noise, not slippage
_monotonic = time.monotonic


def number(value: Any) -> float | None:
    """``value`` as a finite float, else ``None``."""
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    except Exception:  # a hostile __float__: bad input, never raised into the caller
        return None
    return f if -_INF < f < _INF else None


def flag(value: Any) -> bool | None:
    """``value``'s truth (a ``bool``, numpy's ``bool_``, 0 or 1), or ``None`` for a value that has none: pandas' ``NA``,
    an array of several values, a hostile ``__bool__`` (``bool()`` of these raises, and never into the caller)."""
    if value is True or value is False:
        return value
    try:
        return bool(value)
    except Exception:  # bad input: the caller's handler counts it
        return None


def _check_value(v: Any) -> Any:
    """A risk check's value that is no ``str``, ``bool``, ``int`` or ``float``: numpy's ``bool_`` a ``bool``, its
    integers an ``int`` (they were text, ``"3"``), another real number a ``float``, anything else its text."""
    try:
        if type(v).__name__ in ("bool", "bool_"):
            return bool(v)
        if isinstance(v, numbers.Integral):
            return int(v)
        if isinstance(v, numbers.Real):
            f = number(v)
            if f is not None:
                return f
    except Exception:  # a hostile __int__ or __bool__: its text, as any other value
        return text(v)[:256]
    return text(v)[:256]


def text(value: Any) -> str:
    """``value`` as a string for an attribute; a hostile ``__str__`` gives a marker instead of raising."""
    if type(value) is str:
        return value
    try:
        return str(value)
    except Exception:  # bad input, never raised into the caller
        return f"<unprintable {type(value).__name__}>"


# --------------------------------------------------------------------------- what an order needs from its desk


class OrderSeries:
    """The series one order updates, bound to ``{symbol, side, order_type, venue, strategy}`` on first use."""

    def __init__(self, inst: TradingInstruments, attributes: dict[str, Any]) -> None:
        self._inst = inst
        self._attrs = attributes

    @cached_property
    def submitted(self) -> BoundCounter:
        return self._inst.submitted.bind(**self._attrs)

    @cached_property
    def acknowledged(self) -> BoundCounter:
        return self._inst.acknowledged.bind(**self._attrs)

    @cached_property
    def filled(self) -> BoundCounter:
        return self._inst.filled.bind(**self._attrs)

    @cached_property
    def partially_filled(self) -> BoundCounter:
        return self._inst.partially_filled.bind(**self._attrs)

    @cached_property
    def cancelled(self) -> BoundCounter:
        return self._inst.cancelled.bind(**self._attrs)

    @cached_property
    def fill_quantity(self) -> BoundCounter:
        return self._inst.fill_quantity.bind(**self._attrs)

    @cached_property
    def fill_notional(self) -> BoundCounter:
        return self._inst.fill_notional.bind(**self._attrs)

    @cached_property
    def overfilled(self) -> BoundCounter:
        return self._inst.overfilled.bind(**self._attrs)

    @cached_property
    def signal_to_submit(self) -> BoundHistogram:
        return self._inst.signal_to_submit.bind(**self._attrs)

    @cached_property
    def submit_to_ack(self) -> BoundHistogram:
        return self._inst.submit_to_ack.bind(**self._attrs)

    @cached_property
    def submit_to_fill(self) -> BoundHistogram:
        return self._inst.submit_to_fill.bind(**self._attrs)

    @cached_property
    def slippage(self) -> BoundHistogram:
        return self._inst.slippage.bind(**self._attrs)

    @cached_property
    def fill_ratio(self) -> BoundHistogram:
        return self._inst.fill_ratio.bind(**self._attrs)


RootSpanStart: TypeAlias = tuple[Span, trace.Tracer, StepSpans | None]
"""What :meth:`OrderDesk.start_root` gives an order: (root span, tracer, the exact fast path for its steps or None).
A plain tuple: this is on the applier's path for every order."""


class OrderDesk(Protocol):
    """The narrow interface between an :class:`OrderTrace` and the :class:`TradingTelemetry` that made it."""

    strategy: str
    venue: str
    child_spans: bool

    def record(self, entry: tuple[Any, ...]) -> None:
        """Append a record to the trading journal (the one recording path)."""

    def apply_pending(self) -> None:
        """Apply the journal now (read-your-writes)."""

    def apply_pending_background(self) -> None:
        """Apply the journal now from a background thread (the log worker): in chunks, the GIL offered between."""

    def order_series(self, symbol: str, side: str, order_type: str) -> OrderSeries: ...

    def rejected_series(self, symbol: str, side: str, order_type: str, reason: str, stage: str) -> BoundCounter:
        """``trading.orders.rejected``'s series; ``stage``: ``risk`` (never submitted) or ``venue`` (submitted)."""

    def start_root(self, attributes: dict[str, Any], start_ns: int, cause: Any) -> RootSpanStart:
        """The order's root span, started at ``start_ns``; ``cause`` (the span current at the signal) is linked."""

    def publish(self, kind: str, data: dict[str, Any]) -> None: ...

    def invalid(self, what: str, value: object, recorded: bool = False) -> None:
        """Bad or odd input, counted (``reason=what``); ``recorded``: kept all the same, not dropped."""

    def order_opened(self, order: OrderTrace) -> None:
        """The signal was applied: the order is open (bounded, expiring book)."""

    def order_closed(self, order: OrderTrace) -> None:
        """The order ended (filled, rejected, cancelled, done): out of the open book."""

    def cancelled_unacknowledged(self) -> None:
        """A sent order was cancelled before any ack or fill (``trading.orders.cancelled_unacknowledged``)."""

    def execution_known(self, exec_id: str) -> str | None:
        """The id of the order that had the execution ``exec_id`` (of the last ``EXECUTIONS``), else ``None``."""

    def execution_seen(self, exec_id: str, order: OrderTrace) -> str | None:
        """The id of another order that already had the execution ``exec_id`` (an execution id names one execution
        of the venue, whatever order id it is reported under), else ``None``, and ``exec_id`` is ``order``'s now."""

    def alias(self, order: OrderTrace, client_order_id: str) -> None:
        """``order`` is findable by ``client_order_id`` too (a cancel/replace's new id). Any thread."""


# --------------------------------------------------------------------------- the records an order's calls make


# Each call puts one of these records: (handler, order, fields...), unpacked by name in the handler's first
# line (see _journal.Entry for why tuples); ``mono`` is time.monotonic() at the call, for the latencies and the
# spans: the wall clock can step (NTP, a VM resumed, an operator), and a fill 10 ms after its submit across a step of
# the clock 1 h forward was a 3,600 s latency (back: 0 s). The spans' times are the signal's wall-clock time plus the
# monotonic time since (:meth:`OrderTrace._at`, an anchored clock, as OpenTelemetry's Java and JS SDKs keep one per
# trace): read from the wall clock at each step, a step back of 60 s between submit and ack made an ack span that
# ended 60 s before it started and a root span of -60 s in Jaeger, a step forward a 1-hour order of 10 ms.
Signal: TypeAlias = tuple[Apply, "OrderTrace", object, object, object]
"""(handler, order, qty, price, cause): qty and price as given; cause: the span current at the signal, or None."""
RiskCheck: TypeAlias = tuple[Apply, "OrderTrace", float, bool, str | None, Mapping[str, Any] | None]
"""(handler, order, mono, passed, reason, checks)"""
Submitted: TypeAlias = tuple[Apply, "OrderTrace", float]
"""(handler, order, mono)"""
Acked: TypeAlias = tuple[Apply, "OrderTrace", float, object]
"""(handler, order, mono, venue_order_id)"""
Filled: TypeAlias = tuple[Apply, "OrderTrace", float, object, object, object, object, object]
"""(handler, order, mono, qty, price, expected_price, exec_id, cum_qty): as given."""
Replaced: TypeAlias = tuple[Apply, "OrderTrace", float, object, object, object]
"""(handler, order, mono, new_client_order_id, qty, price): as given."""
Rejected: TypeAlias = tuple[Apply, "OrderTrace", object]
"""(handler, order, reason)"""
Cancelled: TypeAlias = tuple[Apply, "OrderTrace", object]
"""(handler, order, reason)"""
Unknown: TypeAlias = tuple[Apply, "UnknownOrder", str, object]
"""(handler, order, step, exec_id): a step for an order id nobody signalled; a fill's exec_id as given, else None."""
Errored: TypeAlias = tuple[Apply, "OrderTrace", BaseException, float]
"""(handler, order, exc, mono)"""
Resumed: TypeAlias = tuple[Apply, "OrderTrace", float, object, object]
"""(handler, order, mono, filled_qty, venue_order_id): as given."""
Done: TypeAlias = tuple[Apply, "OrderTrace"]
"""(handler, order)"""


class OrderTrace:
    """The life of one order: call its methods as the order moves; none of them raises."""

    __slots__ = (
        "_acked",
        "_aliases",
        "_cancelled",
        "_closed",
        "_ctx",
        "_desk",
        "_ended",
        "_exec_ids",
        "_filled",
        "_last_error",
        "_last_ns",
        "_log_ids",
        "_new_id",
        "_record",
        "_resumed",
        "_sc",
        "_sell",
        "_series",
        "_span",
        "_start_ns",
        "_steps",
        "_submit_mono",
        "_submit_ns",
        "_trace_hex",
        "_tracer",
        "_venue_attr",
        "_venue_id",
        "client_order_id",
        "created",
        "order_type",
        "price",
        "qty",
        "side",
        "symbol",
    )
    _real = True  # an order of the caller's (a NullOrder is not)

    def __init__(
        self,
        desk: OrderDesk,
        client_order_id: str,
        symbol: Any,
        side: Any,
        qty: float,
        price: float | None,
        order_type: Any,
        start_ns: int,
    ) -> None:
        self._desk = desk
        self._record: Callable[[tuple[Any, ...]], None] = desk.record
        self.client_order_id = client_order_id
        self.symbol = symbol if type(symbol) is str else text(symbol)
        self.side = side if type(side) is str else text(side)
        self.order_type = order_type if type(order_type) is str else text(order_type)
        self.qty = qty
        self.price = price
        self.created = _monotonic()  # also the signal's time for its latencies
        self._start_ns = self._last_ns = start_ns
        self._span: Span | None = None  # made when the signal is applied (or on first access to .span)
        self._sc: SpanContext | None = None
        self._ctx: Context | None = None
        self._tracer: trace.Tracer | None = None
        self._steps: StepSpans | None = None
        self._series: OrderSeries | None = None
        self._submit_ns: int | None = None
        self._submit_mono = 0.0
        self._resumed: float | None = None  # resumed (TradingTelemetry.resume): what had filled in the previous run
        self._last_error: BaseException | None = None  # the last exception a scope of this order recorded
        self._filled = 0.0
        self._closed = False
        self._ended = False  # closed by its own outcome (filled, rejected, cancelled, done): later steps are repeats
        self._acked = False
        self._cancelled = False  # ended by its cancel: a fill may still come (the venue filled before the cancel)
        self._trace_hex: str | None = None
        self._sell = False
        self._exec_ids: dict[str, None] | None = None  # the fills' exec_ids seen (the last _EXEC_IDS), for resends
        self._aliases: tuple[str, ...] = ()  # the ids replace() gave it (cancel/replace): findable by those too
        # The ids acked() and replaced() were given, as given, stored at the call: the log lines written after it carry
        # them (log_ids(), on the log worker), so a search by the venue's or the amended id finds them.
        self._venue_id: Any = None
        self._venue_attr: str | None = None  # the root span's order.venue_order_id, once set (applied)
        self._new_id: Any = None
        self._log_ids: tuple[Any, Any, dict[str, str]] | None = None  # log_ids()'s last answer, for those two ids

    # ------------------------------------------------------------------ read-your-writes accessors
    @property
    def closed(self) -> bool:
        self._desk.apply_pending()
        return self._closed

    @property
    def filled_qty(self) -> float:
        self._desk.apply_pending()
        return self._filled

    @property
    def span(self) -> Span:
        """The order's root span (an OTel ``Span``; non-recording when untraced)."""
        if self._span is None:
            self._desk.apply_pending()
        return self._span if self._span is not None else INVALID_SPAN

    @property
    def trace_id(self) -> str | None:
        """The order's trace id as 32 hex digits, or ``None`` when there is no tracing."""
        if self._span is None:
            self._desk.apply_pending()
        return self._trace_hex

    @property
    def context(self) -> Context:
        """An OTel ``Context`` with this order's root span: pass it as ``context=`` to your own spans.

        To make the order current for a block of code (its log lines, your spans), use :meth:`scope`.
        """
        ctx = self._ctx
        if ctx is None:
            ctx = self._ctx = trace.set_span_in_context(self.span)
        return ctx

    # ------------------------------------------------------------------ the order as the current context
    def scope(self) -> OrderScope:
        """``with order.scope():`` the order is current in the block: log lines carry its trace.

        >>> with order.scope():                          # doctest: +SKIP
        ...     log.info("routing to %s", venue)         # trace_id: the order's; order_id: its id

        The order's root span is the current span (spans you start in the block are its children)
        and ``order_id`` is correlated as with ``correlate(order_id=...)``. asyncio tasks started in
        the block inherit it; for a callback another thread calls, use :meth:`wrap`. Costs a few
        microseconds (two context variables set); the log calls inside cost what they always do.
        The order's span is not made early: entering the scope does not apply the trading journal.
        """
        return OrderScope(self)

    def wrap(self, fn: F) -> F:
        """``fn`` (a function or coroutine function) run inside :meth:`scope` wherever it is called.

        >>> broker.submit(req, on_fill=order.wrap(on_fill))   # the broker's thread logs on the order  # doctest: +SKIP
        """
        return wrap(self, fn)

    def log_ids(self) -> dict[str, str] | None:
        """The ids beside ``order_id`` that a log line of this order carries (``venue_order_id``: what :meth:`acked`
        was given, the order's ``order.venue_order_id``; ``new_order_id``: the last :meth:`replaced` id, its
        ``order.new_id``), or None before either. Read on the log worker: each line carries the ids the order had
        by the time the worker wrote it, so every line logged after the call has them."""
        vid, nid = self._venue_id, self._new_id
        if vid is None and nid is None:
            return None
        last = self._log_ids
        if last is not None and last[0] is vid and last[1] is nid:  # an order's lines: the same ids, line after line
            return last[2]
        out = {}
        if vid is not None:
            out["venue_order_id"] = text(vid)[:256]
        if nid is not None:
            out["new_order_id"] = text(nid)[:256]
        self._log_ids = (vid, nid, out)
        return out

    def _root_span_context(self, background: bool = False) -> SpanContext:
        """The root span's context, applying the journal first if the signal is still waiting.

        ``background``: called on the log worker, which applies the journal a chunk at a time.
        """
        sc = self._sc
        if sc is None:
            if background:
                self._desk.apply_pending_background()
            else:
                self._desk.apply_pending()
            sc = self._sc
        return sc if sc is not None else INVALID_SPAN_CONTEXT

    # ------------------------------------------------------------------ the calls: time, then one record
    def risk_check(self, passed: bool, reason: str | None = None, checks: Mapping[str, Any] | None = None) -> None:
        """Record the pre-trade risk decision; ``passed=False`` rejects the order (and ends the trace)."""
        copied = None
        if checks:
            try:
                copied = dict(checks)  # frozen at the call: the caller may reuse its dict
            except Exception:  # not a mapping (or a hostile one): the decision is kept, the checks not
                self._desk.invalid("risk_checks", checks)
        entry: RiskCheck = (OrderTrace._on_risk, self, _monotonic(), passed, reason, copied)
        self._record(entry)

    def submitted(self) -> None:
        """The order was sent: ``submit`` span, signal->submit latency, ``trading.orders.submitted``."""
        entry: Submitted = (OrderTrace._on_submit, self, _monotonic())
        self._record(entry)

    def acked(self, venue_order_id: str | None = None) -> None:
        """The venue acknowledged the order: ``ack`` span, submit->ack latency, ``trading.orders.acknowledged``."""
        entry: Acked = (OrderTrace._on_ack, self, _monotonic(), venue_order_id)
        if venue_order_id is not None:
            self._venue_id = venue_order_id
        self._record(entry)

    def fill(
        self,
        qty: float,
        price: float,
        expected_price: float | None = None,
        exec_id: str | None = None,
        cum_qty: float | None = None,
    ) -> None:
        """A (partial) fill. Slippage is against ``expected_price``, else the order's price; adverse is positive, in
        basis points of the reference's magnitude (a negative one, a spread's, is a price; one of 0 has no basis
        points: no slippage, counted as ``reason="slippage_reference_zero"``).

        The first fill records submit->fill latency; the fill that completes the
        order counts ``trading.orders.filled`` and ends the trace, earlier ones
        count ``trading.orders.partially_filled``. ``exec_id``: the venue's id of this execution (FIX ExecID(17));
        a fill whose ``exec_id`` the order already had is the venue's resent report, counted
        (``reason="duplicate_fill"``) and not recorded again. ``cum_qty``: the order's total filled quantity the
        report states, this fill included (FIX CumQty(14)); for a report without ``exec_id`` (a resend without
        ExecID, an adapter that has none) it is the key: a report whose ``cum_qty`` is not above what the order
        already has filled was recorded already, and is counted as ``duplicate_fill`` too. Without either, a resent
        report cannot be told from a second fill of the same size, and is recorded as one.
        """
        entry: Filled = (OrderTrace._on_fill, self, _monotonic(), qty, price, expected_price, exec_id, cum_qty)
        self._record(entry)

    def replaced(
        self, new_client_order_id: str | None = None, *, qty: float | None = None, price: float | None = None
    ) -> None:
        """The venue accepted a cancel/replace (an amend): the order goes on, one trace, with its new terms.

        ``qty`` (the new total quantity, what was filled included, as FIX OrderQty(38) says it) and ``price``:
        the terms that later fills are measured against (completion, overfill, slippage); ``None`` keeps one.
        ``new_client_order_id`` (FIX ClOrdID(11) of the replace; OrigClOrdID(41) is this order's id): the order is
        findable by it too, ``tt.order(new_id)``, and its reports join this trace. A child span ``replace``.
        """
        entry: Replaced = (OrderTrace._on_replace, self, _monotonic(), new_client_order_id, qty, price)
        if new_client_order_id is not None:
            self._new_id = new_client_order_id
            try:
                self._desk.alias(self, text(new_client_order_id))  # findable at once, as the signal is
            except Exception as exc:  # a bug of ours: the replace is still recorded
                internal_error("trading.replaced", exc)
        self._record(entry)

    def rejected(self, reason: str) -> None:
        """Rejected: ``trading.orders.rejected{reason, stage}``, status ERROR; ends the trace.

        ``stage`` is ``risk`` when the order was never :meth:`submitted` (so it is not in
        ``trading.orders.submitted``), ``venue`` when it was."""
        entry: Rejected = (OrderTrace._on_reject, self, reason)
        self._record(entry)

    def cancelled(self, reason: str | None = None) -> None:
        """Cancelled: ``trading.orders.cancelled``; ends the trace."""
        entry: Cancelled = (OrderTrace._on_cancel, self, reason)
        self._record(entry)

    def error(self, exc: BaseException) -> None:
        """Record an exception on the order's span and set its status to ERROR (does not end the trace)."""
        entry: Errored = (OrderTrace._on_error, self, exc, _monotonic())
        self._record(entry)

    def _resume(self, filled_qty: object, venue_order_id: object) -> None:
        """See :meth:`TradingTelemetry.resume`."""
        entry: Resumed = (OrderTrace._on_resume, self, _monotonic(), filled_qty, venue_order_id)
        if venue_order_id is not None:
            self._venue_id = venue_order_id
        self._record(entry)

    def done(self) -> None:
        """End the root span. Called for you when the order is filled, rejected or cancelled; idempotent."""
        entry: Done = (OrderTrace._on_done, self)
        self._record(entry)

    # ------------------------------------------------------------------ applied from the journal
    def _on_signal(self, e: Signal) -> None:
        """The signal, applied: validation counts, the root span, the order's series, the open book."""
        _, _, qty, price, cause = e
        desk = self._desk
        try:
            if self.qty == 0.0 and number(qty) != 0.0:
                desk.invalid("qty", qty)
            if price is not None and self.price is None:
                desk.invalid("price", price)
            attrs: dict[str, Any] = {
                "order.id": self.client_order_id,
                "symbol": self.symbol,
                "side": self.side,
                "order_type": self.order_type,
                "order.qty": self.qty,
                "strategy": desk.strategy,
                "venue": desk.venue,
            }
            if self.price is not None:
                attrs["order.price"] = self.price
            span, tracer, steps = desk.start_root(attrs, self._start_ns, cause)
            sc = span.get_span_context()
            self._tracer = tracer
            self._span = span
            self._sc = sc
            trace_id, _, _, flags, _, valid = sc
            if valid:
                self._trace_hex = format(trace_id, "032x")
                # Steps skip the SDK's start/end when that is exact (see _spans); only for a sampled root.
                self._steps = steps if flags & 1 else None
            side = self.side.lower()
            self._sell = side in _SELL_SIDES
            if not self._sell and side not in _BUY_SIDES:  # a typo, or a code nobody maps: recorded, said
                desk.invalid("side", self.side, True)
        finally:
            if self._span is None:
                self._span = INVALID_SPAN
                self._sc = INVALID_SPAN.get_span_context()
            self._series = desk.order_series(self.symbol, self.side, self.order_type)
            desk.order_opened(self)

    def _at(self, mono: float) -> int:
        """The span time (epoch ns) of ``mono``, a time.monotonic() reading of this order: the signal's wall-clock
        time plus the monotonic time since, never before the previous step's (see the records' comment above)."""
        at = self._start_ns + int((mono - self.created) * 1e9)
        return at if at >= self._last_ns else self._last_ns

    def _child(self, name: str, now: int, attributes: dict[str, Any] | None = None, error: str | None = None) -> Any:
        """A child span covering the time since the previous step, already ended (or an event on the root).

        Returns what measurements should use as exemplar: the child span or its span context (None untraced).
        """
        start, self._last_ns = self._last_ns, now
        root = self._span
        if root is None:  # the signal was never applied
            return None
        # Cheaper: the step is an event on the root span. Not once the root has ended (a fill after the cancel, after
        # the book expired the order): an ended span takes no events (the SDK dropped it and warned each time), so
        # such a step is a child span, as with child_spans=True.
        if not self._desk.child_spans and not self._closed:
            if error is not None:
                attributes = {**(attributes or {}), "error": error}
            root.add_event(name, attributes, timestamp=now)
            return root
        steps = self._steps
        if steps is not None and steps.current() and self._sc is not None:
            return steps.emit(self._sc, name, start, now, attributes, error)
        if self._trace_hex is None or self._tracer is None:  # no tracing: the child would be a no-op too
            return None
        span = self._tracer.start_span(name, context=self.context, start_time=start, attributes=attributes)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=now)
        return span

    def _event(self, kind: str, data: dict[str, Any]) -> None:
        data["order_id"] = self.client_order_id
        data["symbol"] = self.symbol
        data["side"] = self.side
        data["trace_id"] = self._trace_hex
        self._desk.publish(kind, data)

    def _repeat(self, first: bool = False) -> bool:
        """A step after the order's own end (a venue's resent execution report, a second reject): counted as
        ``reason="order_closed"``, and not counted again as a fill, reject, cancel, submit or ack. ``first``: the
        step's first time (an ack that arrives after the fill, a submit after a reject), which still counts. An
        order the book evicted or expired is still counted too: its late fill is a real one."""
        if self._ended and not first:
            self._desk.invalid("order_closed", self.client_order_id)
            return True
        return False

    def _series_or_bind(self) -> OrderSeries:
        s = self._series
        if s is None:  # a record applied before its signal (cannot happen in call order; belt and braces)
            s = self._series = self._desk.order_series(self.symbol, self.side, self.order_type)
        return s

    def _on_risk(self, e: RiskCheck) -> None:
        _, _, mono, passed, reason, checks = e
        now = self._at(mono)
        if self._repeat():
            return
        ok = flag(passed)
        attrs: dict[str, Any] = {}
        if ok is None:  # pandas' NA, an array: no decision; the order goes on as its next steps say
            self._desk.invalid("passed", passed)
        else:
            attrs["risk.passed"] = ok
        said = "" if reason is None else text(reason)[:256]
        if said:
            attrs["risk.reason"] = said
        if checks:
            for k, v in list(checks.items())[:32]:
                attrs[f"risk.check.{text(k)}"] = v if isinstance(v, str | bool | int | float) else _check_value(v)
        failed = None if ok is not False else said or "risk check failed"
        self._child("risk_check", now, attrs, failed)
        if ok is False:
            self._reject(said or "risk")

    def _on_submit(self, e: Submitted) -> None:
        _, _, mono = e
        now = self._at(mono)
        if self._repeat(first=self._submit_ns is None):
            return
        self._submit_ns = now
        self._submit_mono = mono
        span = self._child("submit", now)
        s = self._series or self._series_or_bind()
        s.submitted.add(1)
        s.signal_to_submit.record(max(0.0, mono - self.created), span)
        if self._closed:
            # The venue answered (filled, rejected) before the strategy said it sent the order (its thread was
            # faster than the task back from the send): an `order` event now would list a finished order as working.
            return
        self._working(now)

    def _working(self, now: int) -> None:
        """The ``order`` event: the order works at the venue since ``now`` (ns)."""
        self._event(
            "order",
            {
                "qty": self.qty,
                "price": self.price,
                "order_type": self.order_type,
                "reason": None,
                "submitted_at": now * 1e-9,
            },
        )

    def _on_ack(self, e: Acked) -> None:
        _, _, mono, venue_order_id = e
        now = self._at(mono)
        if self._acked:
            # Acknowledged already: a venue that reports the order's status at every change (IB's orderStatus
            # "Submitted" after each partial fill and each modify, a FIX engine's ExecType=New after a replace).
            # The order was acknowledged once: counted once, one ack latency, one ack span. Counted again, a bot
            # calling acked() at each orderStatus read 2,123 acknowledged of 2,000 orders, and the ack latency
            # histogram held the time to each status report. A venue order id given for the first time is kept.
            if venue_order_id is not None and self._venue_attr is None:
                self._venue_attr = vid = text(venue_order_id)[:256]
                if not self._closed and self._span is not None:
                    self._span.set_attribute("order.venue_order_id", vid)
            return
        self._acked = True  # the first ack, after the order's end too (a fill or cancel reported before it)
        attrs = None
        if venue_order_id is not None:
            vid = self._venue_attr = text(venue_order_id)[:256]
            attrs = {"order.venue_order_id": vid}
            if not self._closed and self._span is not None:
                self._span.set_attribute("order.venue_order_id", vid)
        span = self._child("ack", now, attrs)
        s = self._series or self._series_or_bind()
        s.acknowledged.add(1)
        if self._submit_ns is not None:
            s.submit_to_ack.record(max(0.0, mono - self._submit_mono), span)

    def _on_resume(self, e: Resumed) -> None:
        """An order of a previous run, working at the venue: sent and acknowledged then (counted by that run), so
        neither is counted again nor has a latency; what had filled then is its filled quantity, not counted here."""
        _, _, mono, filled_qty, venue_order_id = e
        if self._submit_ns is not None or self._closed:  # not the order just signalled for it: nothing to resume
            self._desk.invalid("resume", self.client_order_id)
            return
        now = self._at(mono)
        f = number(filled_qty)
        if f is None or f < 0.0:
            self._desk.invalid("resume", filled_qty)
            f = 0.0
        self._resumed = self._filled = f
        self._submit_ns = now
        self._submit_mono = mono
        self._acked = True  # the venue reported it: it has the order
        attrs: dict[str, Any] = {"order.resumed": True, "order.filled_qty": f}
        if venue_order_id is not None:
            attrs["order.venue_order_id"] = self._venue_attr = text(venue_order_id)[:256]
        if self._span is not None:
            self._span.set_attributes(attrs)
        self._child("resume", now, attrs)
        if self.qty > 0 and f >= self.qty * (1 - 1e-9):  # filled already: nothing working
            self._finish(None)
            return
        self._working(now)

    def _on_replace(self, e: Replaced) -> None:
        _, _, mono, new_id, qty, price = e
        now = self._at(mono)
        if self._repeat():
            return
        attrs: dict[str, Any] = {}
        if new_id is not None:
            attrs["order.new_id"] = text(new_id)[:256]
        if qty is not None:
            q = number(qty)
            if q is None or q < 0:
                self._desk.invalid("qty", qty)
            else:
                attrs["order.previous_qty"] = self.qty
                self.qty = q
                attrs["order.qty"] = q
        if price is not None:
            p = number(price)
            if p is None:
                self._desk.invalid("price", price)
            else:
                if self.price is not None:
                    attrs["order.previous_price"] = self.price
                self.price = p
                attrs["order.price"] = p
        root = self._span
        if root is not None and not self._closed:
            root.set_attributes({k: v for k, v in attrs.items() if k in ("order.qty", "order.price")})
            root.set_attribute("order.replaced", True)
        self._child("replace", now, attrs)
        self._event("replace", {"qty": self.qty, "price": self.price, "reason": None, "filled_qty": self._filled})
        if self.qty > 0 and self._filled >= self.qty * (1 - 1e-9):  # amended down to what had filled: done
            self._series_or_bind().filled.add(1)
            self._finish("filled")
            if self._submit_ns is not None:  # no fill event said it: a view of working orders drops it on this
                self._event(
                    "done", {"qty": self.qty, "price": self.price, "reason": "filled", "filled_qty": self._filled}
                )

    def _on_fill(self, e: Filled) -> None:
        _, _, mono, qty, price, expected_price, exec_id, cum_qty = e
        now = self._at(mono)
        xid: str | None = None
        new_report = False  # the report says it is a new execution: an exec_id not seen, or a cum_qty past the filled
        if self._resumed is not None and cum_qty is not None:
            cq = number(cum_qty)
            if cq is not None and cq <= self._resumed * (1 + 1e-9) and self._resumed > 0.0:
                # An execution of the previous run (replayed after the restart: reqExecutions), which that run counted:
                # its exec_id is new to this process, its cum_qty within what had filled when the order was resumed.
                self._desk.invalid(
                    "duplicate_fill",
                    f"{self.client_order_id[:80]}: cum_qty {cq:g}, {self._resumed:g} filled before the restart",
                )
                return
        if exec_id is None and cum_qty is not None:
            cq = number(cum_qty)
            if cq is None or cq < 0.0:
                self._desk.invalid("cum_qty", cum_qty, True)
            elif cq <= self._filled * (1 + 1e-9):  # the order has that much filled already: this report's resend
                self._desk.invalid(
                    "duplicate_fill", f"{self.client_order_id[:80]}: cum_qty {cq:g}, {self._filled:g} filled"
                )
                return
            else:
                new_report = True
        if exec_id is not None:
            new_report = True
            xid = text(exec_id)
            seen = self._exec_ids
            if seen is None:
                seen = self._exec_ids = {}
            if xid in seen:  # the venue's resend (FIX PossResend, a reconnect's replay): already recorded
                self._desk.invalid("duplicate_fill", f"{self.client_order_id[:80]}: exec_id {xid[:80]}")
                return
            other = self._desk.execution_seen(xid, self)
            if other is not None:
                # Another order's execution, replayed under an id this order took since: a reconnect that numbered
                # orders from 1 again, then replayed the day's executions (IB's reqExecutions, a FIX resend). By id
                # alone it was a new fill of this order: measured, a bot reconnecting every 500 orders read 2.4 times
                # the quantity it had traded, 1,385 overfills, its new orders completed by their namesakes' fills.
                self._desk.invalid(
                    "duplicate_fill",
                    f"{self.client_order_id[:80]}: exec_id {xid[:80]} was an earlier order {other[:80]}'s",
                )
                return
            seen[xid] = None
            if len(seen) > _EXEC_IDS:
                del seen[next(iter(seen))]
        # A fill after the order's cancel is the race a cancel can lose (the venue filled first; its report came
        # after the cancel's): a real fill, counted up to the order's quantity. After its own fill or a reject,
        # a fill without a key is taken as the venue's resent report. One with a key that says it is new (an exec_id
        # the order never had, a cum_qty past its filled quantity) after the order has filled (completely, or partly
        # and then cancelled or done) is a real execution past the order's end: an overfill. Taken as a resend
        # before, it was dropped: a 100-lot filled 60 + 40 and then 50 more (exec_id E3) read 100 filled, no
        # overfill counted, while the position at the venue was 150.
        late = self._cancelled and self._filled < self.qty * (1 - 1e-9)
        if self._repeat(first=late or (new_report and self._ended and self._filled > 0.0)):
            return
        was_complete = self.qty > 0 and self._filled >= self.qty * (1 - 1e-9)
        qty, price = qty, price
        q = qty if type(qty) is float and qty < _INF else number(qty)
        p = price if type(price) is float and -_INF < price < _INF else number(price)
        if q is None or not q > 0 or p is None:
            self._desk.invalid("fill", qty if q is None or q <= 0 else price)
            return
        first = self._filled == 0
        self._filled = filled = self._filled + q
        complete = filled >= self.qty * (1 - 1e-9)
        # More than the order's quantity (15 of 10): it happened, so it is recorded, but a venue or a bot has a bug,
        # and a fill ratio (at most 1) cannot say so. An order whose quantity was bad input (0) has none to pass.
        over = self.qty > 0 and filled > self.qty * (1 + 1e-9)
        ref = expected_price if expected_price is not None else self.price
        slip: float | None = None
        ref_price = ref if type(ref) is float and -_INF < ref < _INF else (number(ref) if ref is not None else None)
        if ref_price is None and expected_price is not None:  # given, but no price (NaN, inf, text): no slippage
            self._desk.invalid("expected_price", expected_price)
        elif ref_price == 0.0:  # no basis points of 0: before, such a fill had no slippage and nothing said why
            if p == 0.0:
                # Filled at its reference of 0 (an option bought back worthless at 0.00, a spread at 0): no
                # difference, so 0 bp in any unit. Counted as bad input before: an options desk closing its expired
                # options paged TradeobsAgentInvalidInput and was told on stderr its code passed a wrong price.
                slip = 0.0
            else:
                which = "expected_price" if expected_price is not None else "the order's price"
                self._desk.invalid("slippage_reference_zero", f"{self.client_order_id[:80]}: {which} {ref!r}")
        if ref_price:
            # To 1e-6 bp (1e-10 of the price, far below any tick): a fill at the expected price is 0 bp, in the
            # histogram's le=0 bucket, even when one price was computed in floats (0.1 + 0.2 against 0.3 gave
            # 1.85e-12 bp, adverse); + 0.0 makes a -0.0 plain 0.
            # Over |price|: a spread or a future can trade below zero, and paying -4.9 for what was -5.0 is adverse
            slip = round((p - ref_price) / abs(ref_price) * 1e4, _SLIP_DIGITS) + 0.0
            if self._sell:
                slip = 0.0 - slip
        attrs: dict[str, Any] = {"fill.qty": q, "fill.price": p, "order.filled_qty": filled}
        if slip is not None:
            attrs["fill.slippage_bps"] = slip
        if xid is not None:
            attrs["fill.exec_id"] = xid[:256]
        if over:
            attrs["order.overfilled"] = True
            self._desk.invalid("overfill", f"{self.client_order_id[:80]}: {filled:g} filled of {self.qty:g}", True)
            if not self._closed and self._span is not None:
                self._span.set_attribute("order.overfilled", True)
        span = self._child("fill", now, attrs)
        s = self._series or self._series_or_bind()
        if first and self._submit_ns is not None and self._resumed is None:  # resumed: its send is the last run's
            s.submit_to_fill.record(max(0.0, mono - self._submit_mono), span)
        if slip is not None:
            s.slippage.record(slip, span)
        if not was_complete:  # an execution past the order's completion: the order was counted filled already
            if complete:
                s.filled.add(1)
            else:
                s.partially_filled.add(1)
        if over:  # per strategy and venue, as the order's other counters: which book is past what it asked for
            s.overfilled.add(1)
        s.fill_quantity.add(q)
        # A spread's negative price: its value's magnitude; times the contract's multiplier (contracts.py)
        value = q * (p if p >= 0.0 else -p)
        mults = _contracts._MULTIPLIERS
        s.fill_notional.add(value * mults.get(self.symbol, 1.0) if mults else value)  # the symbol: always a str
        leaves = self.qty - filled if not complete else 0.0
        self._event(
            "fill",
            {"qty": q, "price": p, "filled_qty": filled, "leaves": leaves, "reason": None, "slippage_bps": slip},
        )
        if complete:
            self._finish("filled")

    def _on_reject(self, e: Rejected) -> None:
        _, _, reason = e
        if self._repeat():
            return
        self._reject(text(reason))

    def _reject(self, reason: str) -> None:
        r = reason[:256]
        # The stage says whether the order is in trading.orders.submitted: the reject ratio's denominator is
        # submitted + rejected{stage="risk"} (every order that reached a decision), never a ratio above 1.
        stage = "risk" if self._submit_ns is None else "venue"
        self._desk.rejected_series(self.symbol, self.side, self.order_type, r, stage).add(1)
        if not self._closed and self._span is not None:
            self._span.set_status(Status(StatusCode.ERROR, r))
            self._span.set_attribute("order.reject_reason", r)
        self._event("reject", {"qty": self.qty, "price": self.price, "reason": r})
        self._finish("rejected")

    def _on_cancel(self, e: Cancelled) -> None:
        _, _, reason = e
        if self._repeat():
            return
        r = None if reason is None else text(reason)[:256]
        self._cancelled = True
        (self._series or self._series_or_bind()).cancelled.add(1)
        unacked = not self._acked and self._submit_ns is not None and self._filled == 0.0
        if unacked:  # sent, never acknowledged nor filled: the bot's own ack-timeout cancel, not the venue's
            self._desk.cancelled_unacknowledged()
        if not self._closed and self._span is not None:
            if r is not None:
                self._span.set_attribute("order.cancel_reason", r)
            if unacked:
                self._span.set_attribute("order.unacknowledged", True)
        self._event("cancel", {"qty": self.qty, "price": self.price, "reason": r, "filled_qty": self._filled})
        self._finish("cancelled")

    def _on_error(self, e: Errored) -> None:
        _, _, exc, mono = e
        now = self._at(mono)
        span = self._span
        if span is None or self._closed:
            return
        span.record_exception(exc, timestamp=now)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {text(exc)}"[:256]))

    def _on_done(self, e: Done) -> None:
        self._finish(None)

    def finish(self, outcome: str | None, dropped: bool = False) -> None:
        """End the order (applied from the journal, or by the book when it evicts, expires or closes it)."""
        self._finish(outcome, dropped)

    def _finish(self, outcome: str | None, dropped: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        self._ended = not dropped
        span = self._span
        if span is not None:
            if outcome is not None:
                span.set_attributes({"order.outcome": outcome, "order.filled_qty": self._filled})
                if outcome == "closed" and not self._acked and self._submit_ns is not None and self._filled == 0.0:
                    # open and unanswered at close() or the agent's shutdown: findable, as an expired one (no error:
                    # a stop is planned, and the venue may still answer the next process)
                    span.set_attribute("order.unacknowledged", True)
            else:
                span.set_attribute("order.filled_qty", self._filled)
        if not dropped and outcome != "rejected" and self._submit_ns is not None and self.qty > 0:
            exemplar = self._sc if self._trace_hex else None
            self._series_or_bind().fill_ratio.record(min(self._filled / self.qty, 1.0), exemplar)
        if span is not None:
            span.end(end_time=self._at(_monotonic()))
        if self._submit_ns is not None and outcome not in _OWN_EVENT:
            # A working order ended without a fill, reject or cancel event (done(), expired, evicted, superseded,
            # closed): say
            # so, so a view of working orders (the live page) can drop it.
            self._event(
                "done",
                {"qty": self.qty, "price": self.price, "reason": outcome or "done", "filled_qty": self._filled},
            )
        if not dropped:
            self._desk.order_closed(self)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<OrderTrace {self.client_order_id!r} {self.side} {self.qty} {self.symbol} {state}>"


class NullOrder(OrderTrace):
    """Returned when ``order_signal`` itself failed, so the caller's next calls are harmless no-ops."""

    __slots__ = ()
    _real = False  # its scope() makes nothing current (it has no id of its own)

    def __init__(self, desk: OrderDesk) -> None:
        super().__init__(desk, "", "", "", 0.0, None, "", 0)
        self._span = INVALID_SPAN
        self._sc = INVALID_SPAN_CONTEXT
        self._closed = True
        self._record = _ignore


def _ignore(entry: tuple[Any, ...]) -> None:
    """What a :class:`NullOrder` records: nothing."""


class UnknownOrder(NullOrder):
    """What ``tt.execution(id)`` gives for an id its object does not know (an order of the process before a restart,
    another process's, or one out of the recently-closed window): each call records nothing but is counted,
    ``tradeobs.agent.measurements.invalid{instrument="trading", reason="unknown_order"}``, and said once."""

    __slots__ = ()

    def __init__(self, desk: OrderDesk, client_order_id: str) -> None:
        super().__init__(desk)
        self.client_order_id = client_order_id
        record = desk.record

        def unknown(entry: tuple[Any, ...]) -> None:
            name = entry[0].__name__.removeprefix("_on_")
            step: Unknown = (UnknownOrder._on_unknown, self, name, entry[6] if name == "fill" else None)
            record(step)

        self._record = unknown

    def _on_unknown(self, e: Unknown) -> None:
        _, _, step, exec_id = e
        if exec_id is not None:
            known = self._desk.execution_known(text(exec_id))
            if known is not None:
                # An execution of an order this object has forgotten (more than 1,024 closed orders ago), replayed
                # (a reconnect's replay of the day): counted once already, a duplicate; an unknown order names a
                # restart or another process, which this is not.
                self._desk.invalid(
                    "duplicate_fill", f"{self.client_order_id[:80]}: exec_id {text(exec_id)[:80]} was order {known}'s"
                )
                return
        self._desk.invalid("unknown_order", f"{step} for {self.client_order_id[:80]}")

    def __repr__(self) -> str:
        return f"<UnknownOrder {self.client_order_id!r}>"


class OrderBook:
    """Orders by client order id: a lookup index the hot path writes, and the open orders the journal keeps.

    ``get`` finds an order from the moment it was signalled until it falls out of
    the recently-closed window. The open set (bounded: evict oldest; expiring:
    ``ttl`` seconds) is maintained only while the journal is applied, so it needs
    no lock of its own.
    """

    def __init__(self, max_open: int, ttl: float, on_drop: Callable[[str, str], None]) -> None:
        self.max_open = max_open
        self.ttl = ttl
        self._by_id: dict[str, OrderTrace] = {}
        self._open: OrderedDict[str, OrderTrace] = OrderedDict()
        # The closed orders, oldest first: by the order itself, not its id. By id, an order whose id a later order took
        # (ids numbered again each day, after a reconnect) was replaced here by its namesake and never forgotten: its
        # replace's ids stayed in _by_id, the order and its span with them, for the life of the process.
        self._recent: OrderedDict[OrderTrace, None] = OrderedDict()
        self._on_drop = on_drop

    def __len__(self) -> int:
        return len(self._open)

    def get(self, order_id: str) -> OrderTrace | None:
        return self._by_id.get(order_id)

    def index(self, order: OrderTrace) -> None:
        """At the signal (hot path): findable by id from now on. One dict store."""
        self._by_id[order.client_order_id] = order

    def alias(self, order: OrderTrace, client_order_id: str) -> None:
        """At a replace (any thread): findable by its new id too, for as long as by its own."""
        if self._by_id.get(order.client_order_id) is order and client_order_id != order.client_order_id:
            order._aliases = (*order._aliases, client_order_id)
            self._by_id[client_order_id] = order

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
        """``o`` leaves the book without an outcome of its own (``reason``: ``order_evicted`` by ``max_open_orders``,
        ``order_expired`` past ``ttl``). Its state then, for ``trading.orders.expired``: ``unsent`` (signalled, never
        sent), ``unacknowledged`` (sent, neither acknowledged nor filled: the venue never answered, and what became of
        the order there is unknown; its span ends with an error status and ``order.unacknowledged``) or
        ``acknowledged`` (acked or partly filled: a resting order the agent stops following)."""
        self._remember(o)
        if o._submit_ns is None:
            state = "unsent"
        elif o._acked or o._filled != 0.0:
            state = "acknowledged"
        else:
            state = "unacknowledged"
        evicted = reason == "order_evicted"
        try:
            span = o._span
            if state == "unacknowledged" and span is not None and not o._closed:
                why = f"max_open_orders={self.max_open} evicted it" if evicted else f"order_ttl={self.ttl:g}s passed"
                span.set_attribute("order.unacknowledged", True)
                span.set_status(Status(StatusCode.ERROR, f"unacknowledged: no ack or fill from the venue before {why}"))
            o.finish("evicted" if evicted else "expired", dropped=True)
        finally:
            self._on_drop(reason, state)

    def supersede(self, order: OrderTrace) -> None:
        """Another order took this one's id while it was open: out of the book, its span ended (``superseded``)."""
        oid = order.client_order_id
        if self._open.get(oid) is order:
            del self._open[oid]
        self._remember(order)
        order.finish("superseded", dropped=True)

    def close(self, order: OrderTrace) -> None:
        oid = order.client_order_id
        if self._open.get(oid) is order:
            del self._open[oid]
        self._remember(order)

    def open_orders(self) -> list[OrderTrace]:
        return list(self._open.values())

    def unacknowledged(self, now: float) -> tuple[int, float]:
        """(how many open orders were sent and neither acknowledged nor filled, seconds since the oldest of them was
        sent, 0.0 if none); ``now`` a ``time.monotonic()`` reading. A fill says the venue has the order, as an ack
        does (some venues send no ack before a fill). Read at collection time, in one pass over the open book: the
        orders' own steps pay nothing for it (``benchmarks/unacked_collect.py``)."""
        n = 0
        first = now
        for o in self._open.values():
            if not o._acked and o._submit_ns is not None and o._filled == 0.0:
                n += 1
                if o._submit_mono < first:
                    first = o._submit_mono
        return n, (now - first if first < now else 0.0)

    def _remember(self, order: OrderTrace) -> None:
        recent = self._recent
        if order in recent:
            recent.move_to_end(order)
        recent[order] = None
        if len(recent) > _RECENT:
            old, _ = recent.popitem(last=False)
            for key in (old.client_order_id, *old._aliases):
                if self._by_id.get(key) is old:
                    del self._by_id[key]
