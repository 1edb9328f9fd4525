"""Trading telemetry: market data, orders, positions, risk, in a few cheap calls.

>>> from tradeobs_agent import trading
>>> tt = trading.TradingTelemetry(strategy="momentum", venue="paper")
>>> tt.tick("AAPL", 189.5, exchange_ts=None)
>>> o = tt.order_signal("c-1", "AAPL", "buy", 100, price=189.5)
>>> o.risk_check(passed=True); o.submitted(); o.acked("v-1"); o.fill(100, 189.52)
>>> tt.position("AAPL", 100, 189.52); tt.account(equity=1_000_000.0)

Every method is safe on the trading hot path: it reads the clock, builds one
small typed record (the ``NamedTuple`` s below) and puts it in the process's
trading journal (``_journal.py`` says why), the one recording path. The
``_on_*`` handlers apply the journal in call order, in batches, off the hot
path: bound series cached per (symbol, side, order type), spans, exemplars and
live events. Every reader applies the journal before it reads, so what is
exported equals what was recorded. No method raises. Bad input (NaN prices,
negative quantities, odd types) is dropped, counted in
``tradeobs.agent.measurements.invalid{instrument="trading"}`` and warned about
once. Every cache is bounded; past the bound calls still work but bind per
call (and the instrument's series limit sends new sets to overflow).

Works with or without ``tradeobs_agent.init()``: instruments live in the process
registry (create the ``TradingTelemetry`` before or after ``init``); spans use
the agent's tracer provider when there is one, else the global OTel tracer.
"""

from __future__ import annotations

import asyncio
import datetime
import math
import numbers
import os
import time
import weakref
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeAlias, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link

from .. import events
from .._errors import internal_error, warn_once
from .._internal.otel_private import SPAN_KEY, current_context_getter
from .._version import __version__
from ..exceptions import TradeObsConfigError
from ..metrics import BoundCounter, BoundGauge, BoundHistogram, Registry, get_registry
from . import _loopwatch, _scope, defaults
from . import contracts as _contracts
from ._journal import Apply, get_journal
from ._loopwatch import LoopWatch
from ._spans import StepSpans
from .instruments import TradingInstruments
from .orders import (
    EXECUTIONS,
    NullOrder,
    OrderBook,
    OrderSeries,
    OrderTrace,
    RootSpanStart,
    Signal,
    UnknownOrder,
    flag,
    number,
    text,
)

__all__ = ["TradingTelemetry", "end_open_orders"]

_INF = math.inf
_monotonic = time.monotonic
_time = time.time
_time_ns = time.time_ns

_current_context = current_context_getter()
_MAX_LAG = 86_400.0  # a feed lag beyond a day: exchange_ts is no time of this feed (a replay without its clock)
# An epoch time's unit, told by its magnitude: seconds below 1e11 (the year 5138), milliseconds below 1e14, micro-
# below 1e17, nanoseconds below 1e20. Any time from 1973 to 5138 reads the same whichever unit a venue sends.
_UNITS = ((1e11, 1.0), (1e14, 1e3), (1e17, 1e6), (1e20, 1e9))


def _count_setting(name: str, value: object) -> int:
    """A constructor's count (an ``int``, or another integer such as ``numpy.int64``) as an ``int`` >= 1."""
    n = int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else 0
    if n >= 1:
        return n
    raise TradeObsConfigError(name, value, "an integer >= 1")


def _integer(value: object) -> int | None:
    """An integer given as another type than ``int`` (numpy's ``int64`` from a DataFrame column, not a subclass of
    ``int``) as an ``int``; ``None`` for anything else: a ``bool``, a float, numpy's ``timedelta64`` (an ``Integral``
    whose ``int()`` raises)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    try:
        return int(value)
    except Exception:  # bad input: the caller counts it
        return None


def _real(value: object) -> float:
    """A time given as another real number than int or float (``Decimal``, numpy scalars) as a float; ``inf``, which
    no time is, for anything else (``bool``, text, None)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real | Decimal):
        return _INF
    f = number(value)  # None for NaN, an infinity, a Decimal past any float or a hostile __float__: not a time
    return _INF if f is None else f


def _datetime64(value: Any) -> float:
    """numpy's ``datetime64`` (a DataFrame time column's ``.to_numpy()``; numpy counts its unit since 1970-01-01 UTC)
    as epoch seconds; ``inf`` for ``NaT``."""
    try:
        us = int(value.astype("datetime64[us]").astype("int64"))  # microseconds: any year numpy takes fits
    except Exception:  # not numpy's after all: no time
        return _INF
    return _INF if us == -(1 << 63) else us / 1e6  # NaT is the smallest int64


def _epoch(value: object) -> float:
    """An exchange timestamp (or a replay clock's reading) as epoch seconds; ``inf``, which no time is, for anything
    else. Real numbers in seconds, milliseconds, microseconds or nanoseconds (by magnitude, ``_UNITS``), and a
    ``datetime`` that knows its time zone (pandas' ``Timestamp`` is one), or numpy's ``datetime64`` (UTC); a naive
    ``datetime`` is no instant."""
    if isinstance(value, datetime.datetime):
        try:
            return _INF if value.utcoffset() is None else value.timestamp()  # naive: None
        except Exception:  # a tzinfo of the caller's that raises: bad input, as a hostile __float__ is in number()
            return _INF
    if type(value) is float or type(value) is int:
        v: Any = value
    elif type(value).__name__ == "datetime64":  # numpy's: a count of its unit since the epoch, in UTC
        return _datetime64(value)
    else:
        v = _real(value)
    size = -v if v < 0 else v  # NaN is below nothing: no time
    for below, per_second in _UNITS:
        if size < below:  # exact for an int of any size (10**400 is past every bound, never made a float)
            return v / per_second if per_second != 1.0 else float(v)
    return _INF


# What each argument said to be invalid may be, and what happened instead: the warning names the argument, the value
# and this (an API's misuse is said once, in the system log, and counted; it never raises into the trading loop).
_ALLOWED = {
    "qty": "an order's qty is a finite number >= 0 (the order is kept, with quantity 0)",
    "price": "an order's price is a finite number, or None (the order is kept without a price)",
    "fill": "a fill's qty is a finite number > 0 and its price a finite number (the fill is not recorded)",
    "expected_price": "expected_price is a finite number or None (the fill is recorded, without slippage)",
    "slippage_reference_zero": "slippage is in basis points of expected_price, else of the order's price, and there "
    "are none of 0: the fill is recorded, without slippage (give None, not 0, for an order without a price; a "
    "negative price, a spread's, is a reference; a fill at 0 against a reference of 0 is 0 bp)",
    "position": "a position's qty and price are finite numbers, and so is their product (the position is not recorded)",
    "avg_price": "avg_price is a finite number or None (the last average entry stays)",
    "equity": "equity is a finite number (not recorded)",
    "exchange_ts": "exchange_ts is a time within a day of now (of the clock= a replay gives TradingTelemetry): epoch "
    "seconds, milliseconds, microseconds or nanoseconds, or a datetime with its time zone (no feed lag recorded)",
    "exchange_ts_naive": "a naive datetime (no tzinfo: pandas' Timestamp from a column without a time zone, "
    "datetime.now()) names no instant, UTC or local, and is not guessed (no feed lag recorded): give the column a "
    "time zone, df['ts'].dt.tz_localize('UTC') (or datetime.now(timezone.utc)), or pass the column's .to_numpy() "
    "values, numpy's datetime64, which are read as UTC",
    "clock": "clock() returns the time now, as exchange_ts may give it (no feed lag recorded)",
    "seq": "seq is an integer (no gap check for this tick)",
    "passed": "a risk check's passed is True or False (the check is recorded without a decision; the order is not "
    "rejected by it)",
    "open": "a market session's open is True or False (the session state is not changed)",
    "engaged": "a kill switch's engaged is True or False (the kill switch keeps its state)",
    "interval": "interval is a number of seconds > 0 (0.1 is used)",
    "risk_checks": "checks is a mapping (the risk decision is kept, the checks not)",
    "unknown_order": "a report for an order id this TradingTelemetry does not know (signalled before a restart, by "
    "another process, or more than 1,024 closed orders ago): not recorded",
    "duplicate_signal": "a signal for an order id still open, with the same terms, is that order (kept, not a new one)",
    "order_id_reused": "a signal for an order id still open, with other terms, is a new order: the open one's trace "
    "ends (outcome superseded), and its later reports go to the new order",
    "duplicate_fill": "a fill whose exec_id the order (or another order of this TradingTelemetry: a replay under a "
    "reused order id) already had, or without exec_id one whose cum_qty is not above the order's filled quantity, is "
    "the venue's resend (not recorded again)",
    "resume": "resume() takes over an order of a previous run, right after no other call for its id, with a "
    "filled_qty that is a number >= 0 (an id this object already has is not resumed; a bad filled_qty is taken as 0)",
    "cum_qty": "a fill's cum_qty is a finite number >= 0 or None (the fill is recorded, without the resend check)",
    "order_closed": "the order had ended: a step after its fill, reject or cancel is a repeat, not counted again",
    "retire_open_position": "a symbol is retired (tt.retire) once its position is flat: report it flat first, "
    "tt.position(symbol, 0, price) (its market data is retired; its position stays, in the exposure too)",
    "side": "a side is buy, b, long, buy_to_cover, buy to cover or cover (a buy) or sell, s, short, sell_short, sell "
    "short, ss, or Interactive Brokers' sshort and slong (a sell), in any case, or a FIX Side code (1 or 3 a buy, "
    "2, 4, 5 or 6 a sell); another is kept as the order's side label and its slippage is signed as a buy's",
}
_SAID_IN_THE_LOG = frozenset(
    {"unknown_order", "duplicate_signal", "order_id_reused", "duplicate_fill", "order_closed", "overfill"}
)
"""Odd input that is no mistake of the calling code (a venue's resend or overfill, a report for an order from before a
restart): said once in the system log and counted, not on stderr. Any other reason is a mistake in the calling code."""
_EMPTY_CONTEXT = Context()  # order roots start a new trace, whatever span is current
K = TypeVar("K")
V = TypeVar("V")


class _SymbolState:
    """Market-data series for one symbol plus what staleness and gap detection need."""

    __slots__ = (
        "ahead",
        "feed_lag",
        "gaps",
        "label",
        "last",
        "last_tick",
        "price",
        "seen",
        "seq",
        "stale",
        "staleness",
        "ticks",
    )

    def __init__(self, inst: TradingInstruments, symbol: Any) -> None:
        label = self.label = defaults.symbol_label(symbol)
        self.ahead: BoundCounter | None = None  # bound at the first tick ahead of the clock: no series before
        self.price: BoundGauge = inst.price.bind(symbol=label)
        self.ticks: BoundCounter = inst.ticks.bind(symbol=label)
        self.feed_lag: BoundHistogram = inst.feed_lag.bind(symbol=label)
        self.staleness: BoundGauge = inst.staleness.bind(symbol=label)
        self.last_tick: BoundGauge = inst.last_tick.bind(symbol=label)
        self.gaps: BoundCounter = inst.gaps.bind(symbol=label)
        self.last: float = 0.0  # epoch seconds of the last tick (the same clock read as the feed lag)
        self.seen = 0.0  # ``last`` at the previous refresh
        self.stale = 0.0  # the staleness set then
        self.seq: int | None = None


class _MoneySeries:
    """Position and P&L series for one symbol of one strategy. ``folded``: the symbol is one the allowlist folds into
    ``other``, whose series hold the sums over all such symbols (:class:`_Folded`), not the last one's values."""

    __slots__ = ("avg_price", "folded", "position_notional", "position_qty", "realized", "unrealized")

    def __init__(self, inst: TradingInstruments, symbol: Any, strategy: str, venue: str) -> None:
        label = defaults.symbol_label(symbol)
        self.folded = label is defaults.OTHER
        # With the venue: two objects of one strategy on two venues (two brokers) holding one symbol are two books.
        # Keyed by symbol and strategy alone they set one series each, and the last report was the symbol's
        # position and P&L (the other venue's were lost, from the sums and the loss limit alike).
        attrs = {"symbol": label, "strategy": strategy, "venue": venue}
        self.position_qty: BoundGauge = inst.position_qty.bind(**attrs)
        self.position_notional: BoundGauge = inst.position_notional.bind(**attrs)
        self.avg_price: BoundGauge = inst.avg_price.bind(**attrs)
        self.realized: BoundGauge = inst.realized.bind(**attrs)
        self.unrealized: BoundGauge = inst.unrealized.bind(**attrs)


_QTY, _NOTIONAL, _REALIZED, _UNREALIZED = range(4)
_FOLDED_FIELDS = ("position_qty", "position_notional", "realized", "unrealized")


class _Folded:
    """The money of the symbols the symbol allowlist folds into ``other``, for one strategy object: per symbol its
    last quantity, notional and P&L, and their sums, which ``other``'s series show. One ``other`` series set by
    each folded symbol in turn showed the last symbol's position and P&L only (two symbols off the list with 150 and
    57 of P&L: ``other`` said 57, and the desk's total P&L left 150 out). Kept incrementally, recomputed exactly
    (``math.fsum``) at each collection; at most ``max_symbols`` symbols (past that one is counted and left out)."""

    __slots__ = ("seen", "sums", "values")

    def __init__(self) -> None:
        self.values: dict[Any, list[float]] = {}
        self.sums = [0.0, 0.0, 0.0, 0.0]
        self.seen = [False, False, False, False]  # a field no folded symbol reported has no value (no series point)

    def put(self, symbol: Any, field: int, value: float, limit: int) -> float | None:
        """Record ``symbol``'s ``field``; the new sum over the folded symbols, or ``None`` (past ``limit``)."""
        row = self.values.get(symbol)
        if row is None:
            if len(self.values) >= limit:
                return None
            row = self.values[symbol] = [0.0, 0.0, 0.0, 0.0]
        self.sums[field] += value - row[field]
        row[field] = value
        self.seen[field] = True
        return self.sums[field]

    def exact(self) -> list[float | None]:
        """Each field's sum recomputed exactly, ``None`` for one never reported (the incremental sums are reset)."""
        rows = self.values.values()
        self.sums = [math.fsum(r[i] for r in rows) for i in range(4)]
        return [v if seen else None for v, seen in zip(self.sums, self.seen, strict=True)]


# --------------------------------------------------------------------------- the records TradingTelemetry's calls make


# Each call puts one of these records: (handler, target, fields...), unpacked by name in the handler's first
# line (see _journal.Entry for why tuples). "As given": validated, and a bad value counted, when applied.
Tick: TypeAlias = tuple[Apply, "TradingTelemetry", object, float, object, object, "float | tuple[float, object]"]
"""(handler, tt, symbol, price, exchange_ts, seq, now): the price as given, ``now`` epoch seconds at the call, the
time the feed lag is measured against; with the object's ``clock`` (a replay's), ``(now, what the clock read)``."""
FeedReconnect: TypeAlias = tuple[Apply, "TradingTelemetry", object]
"""(handler, tt, feed)"""
DecisionTime: TypeAlias = tuple[Apply, "TradingTelemetry", float, object]
"""(handler, tt, seconds, symbol): seconds as given."""
Position: TypeAlias = tuple[Apply, "TradingTelemetry", object, object, object, object]
"""(handler, tt, symbol, qty, price, avg_price): avg_price as given, or None (not reported; none when flat)."""
Pnl: TypeAlias = tuple[Apply, "TradingTelemetry", object, float, float]
"""(handler, tt, symbol, realized, unrealized): both as given."""
AccountUpdate: TypeAlias = tuple[Apply, "TradingTelemetry", object, float | None]
"""(handler, tt, equity, drawdown): drawdown as given, or None (tracked from the peak)."""
LimitUse: TypeAlias = tuple[Apply, "TradingTelemetry", object, float]
"""(handler, tt, limit, ratio): ratio as given."""
Breach: TypeAlias = tuple[Apply, "TradingTelemetry", object, object]
"""(handler, tt, limit, symbol)"""
KillSwitch: TypeAlias = tuple[Apply, "TradingTelemetry", object, object]
"""(handler, tt, engaged, reason)"""
MarketSession: TypeAlias = tuple[Apply, "TradingTelemetry", tuple[object, ...], object]
"""(handler, tt, symbols, open)"""
Reused: TypeAlias = tuple[Apply, "TradingTelemetry", OrderTrace, bool]
"""(handler, tt, the open order of that id, whether the new signal has its very terms)"""
Retire: TypeAlias = tuple[Apply, "TradingTelemetry", object]
"""(handler, tt, symbol)"""
Refresh: TypeAlias = tuple[Apply, "TradingTelemetry"]
"""(handler, tt): before a collection (staleness, exposure, expiry, queue size)."""
Close: TypeAlias = tuple[Apply, "TradingTelemetry"]
"""(handler, tt)"""


class TradingTelemetry:
    """The trading-specific instruments and order traces for one strategy on one venue.

    >>> tt = TradingTelemetry(strategy="momentum", venue="paper", max_open_orders=10_000, order_ttl=300.0)
    >>> tt.decision_time(0.00012, symbol="AAPL")
    >>> tt.flush()  # apply the journal now (every reader does this before it reads)

    ``child_spans=False`` records the steps (risk_check, submit, ack, fill) as
    events on the order's root span instead of child spans: one span per order
    instead of 3 + fills; exemplars then point at the root span. With the agent's
    own OTLP pipeline child spans are the cheaper choice (they are written straight
    to OTLP; events need the SDK's span), see ``docs/metrics.md``.
    ``tracer_provider`` makes order traces with that provider instead of the agent's.
    ``clock`` (a function returning the time now, as ``exchange_ts`` may give it) is the time the feed lag is
    measured against: a replay's clock, so replayed ticks of a past day do not read as a day late (or as bad input).
    """

    def __init__(
        self,
        strategy: str = "default",
        venue: str = "default",
        *,
        max_open_orders: int = 10_000,
        order_ttl: float = 300.0,
        max_symbols: int = 10_000,
        child_spans: bool = True,
        registry: Registry | None = None,
        tracer_provider: Any = None,
        clock: Callable[[], object] | None = None,
    ) -> None:
        # numpy's integers and a Decimal or numpy float (settings read through pandas or a Decimal config) are numbers
        # too: refusing 5000 as "not an integer >= 1" contradicted the value the message showed.
        max_open_orders = _count_setting("max_open_orders", max_open_orders)
        ttl = None if isinstance(order_ttl, bool) else _real(order_ttl)
        if ttl is None or not 0 < ttl < _INF:
            raise TradeObsConfigError("order_ttl", order_ttl, "a positive number of seconds")
        max_symbols = _count_setting("max_symbols", max_symbols)
        if not isinstance(child_spans, bool | int) or child_spans not in (True, False):  # "no" would be True
            raise TradeObsConfigError("child_spans", child_spans, "True or False")
        if clock is not None and not callable(clock):
            raise TradeObsConfigError("clock", clock, "None or a function returning the time now (a replay's clock)")
        self._clock = clock
        if clock is not None:
            self.tick = self._tick_with_clock  # type: ignore[method-assign]
        self.strategy = str(strategy)
        self.venue = str(venue)
        self.registry = registry if registry is not None else get_registry()
        self.instruments = inst = TradingInstruments(self.registry)
        self.max_symbols = max_symbols
        self.child_spans = bool(child_spans)
        self._journal = journal = get_journal()
        self.record: Callable[[tuple[Any, ...]], None] = journal.put  # the one recording path
        self._book = OrderBook(max_open_orders, ttl, self._on_order_dropped)
        _scope.track(self._book)  # log lines with correlate(order_id=...) find these orders' traces
        # Caches below are touched only while the journal is applied (one thread at a time).
        self._orders: dict[tuple[str, str, str], OrderSeries] = {}
        # The last EXECUTIONS exec_ids of this object's fills, whatever order: an execution replayed under an order id
        # that a later order took (ids numbered again after a reconnect) is told by its exec_id (execution_seen).
        # (Not the orders themselves: 65,536 of them and their spans kept alive; an order is its id and signal time.)
        self._executions: dict[str, tuple[str, float]] = {}
        self._rejects: dict[tuple[str, str, str, str, str], BoundCounter] = {}
        self._syms: dict[Any, _SymbolState] = {}
        self._refreshed = _monotonic()  # time.monotonic() of the last refresh (_on_refresh)
        self._money: dict[Any, _MoneySeries] = {}
        self._notional: dict[Any, float] = {}
        self._folded: _Folded | None = None  # made at the first symbol the allowlist folds into "other"
        self._other: _MoneySeries | None = None  # that "other" series
        self._keyed: dict[tuple[str, Any], Any] = {}
        self._decision: dict[Any, BoundHistogram] = {}  # decision_time's series by symbol: one lookup per call
        # A strategy trading on several venues has one object per venue: each sets its own series (a venue label),
        # which readers add up (exposure, equity, open orders) or take the worst of (drawdown, kill switch). Keyed
        # by strategy alone, the objects of one strategy overwrote each other's: the last one's value was the
        # strategy's.
        sv = {"strategy": self.strategy, "venue": self.venue}
        self._gross = inst.gross.bind(**sv)
        self._net = inst.net.bind(**sv)
        self._equity = inst.equity.bind(**sv)
        self._drawdown = inst.drawdown.bind(**sv)
        self._kill = inst.kill_switch.bind(**sv)
        self._open = inst.open_orders.bind(**sv)
        self._unacked = inst.unacknowledged.bind(**sv)
        self._unacked_age = inst.oldest_unacknowledged.bind(**sv)
        self._unacked_cancels: BoundCounter | None = None  # bound at the first such cancel: no series before
        # trading.orders.expired by state, bound at the first such drop; state="unacknowledged" is also set to 0 at
        # the first collection with orders (_on_refresh): a counter's first sample is no increase to the alert
        # (TradingOrdersUnacknowledged), so its series should exist before the first such order expires.
        self._expired: dict[str, BoundCounter] = {}
        self._stall = inst.loop_stall.bind()  # one series per process: the worst running lag monitor (_loopwatch)
        self._gross_v = 0.0
        self._net_v = 0.0
        self._peak = -_INF
        self._kill_state: bool | None = None
        self._kill_trips: BoundCounter | None = None
        self._tracer_provider = tracer_provider
        self._tp: Any = None
        self._tracer_obj: trace.Tracer | None = None
        self._steps: StepSpans | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        _track(self)  # the agent's shutdown ends the open orders of every object (end_open_orders)
        self._selfm = self.registry.self_metrics
        self._invalid_counts = self._selfm.invalid
        self._pending = self._selfm.queue_size.bind(queue="trading")
        self._selfm.queue_capacity.bind(queue="trading").set(journal.limit)
        # A weak hook: the registry must not keep this object alive. Once the object is gone the hook removes itself:
        # a backtest that made a TradingTelemetry per run and never closed it left one dead hook per run, each
        # called at every collection (2,000 runs: 2,000 hooks, about 0.8 KiB each, in a notebook's process).
        ref = weakref.WeakMethod(self._on_collect)
        registry = self.registry

        def hook() -> None:
            method = ref()
            if method is not None:
                method()
            else:
                registry.remove_collect_hook(hook)

        self._hook = hook
        # The registry's readers run on background threads (the metric reader, the Prometheus endpoint, a group's
        # publisher, the NATS publisher): they apply the journal in slices, offering the GIL to the trading thread.
        self.registry.add_flush_hook(journal.flush_chunked)
        events.get_bus().add_flush_hook(journal.flush)
        self.registry.add_collect_hook(hook)
        journal.start()

    # ------------------------------------------------------------------ the OrderDesk side (orders.py)
    def flush(self) -> None:
        """Apply every call made so far (readers do this themselves; for code that reads series directly)."""
        self._journal.flush()

    apply_pending = flush

    def apply_pending_background(self) -> None:
        """:meth:`flush` for a background thread (the log worker): a chunk at a time, the GIL offered between."""
        self._journal.flush_chunked()

    def order_series(self, symbol: str, side: str, order_type: str) -> OrderSeries:
        series = self._orders.get((symbol, side, order_type))  # strings: always hashable
        if series is not None:
            return series
        return self._cached(
            self._orders,
            (symbol, side, order_type),
            lambda: OrderSeries(
                self.instruments,
                {
                    "symbol": defaults.symbol_label(symbol),
                    "side": side.lower(),  # "BUY" and "buy" are one series (the span keeps what was passed)
                    "order_type": order_type.lower(),
                    "venue": self.venue,
                    "strategy": self.strategy,
                },
            ),
        )

    def rejected_series(self, symbol: str, side: str, order_type: str, reason: str, stage: str) -> BoundCounter:
        return self._cached(
            self._rejects,
            (symbol, side, order_type, reason, stage),
            lambda: self.instruments.rejected.bind(
                symbol=defaults.symbol_label(symbol),
                side=side.lower(),
                order_type=order_type.lower(),
                venue=self.venue,
                strategy=self.strategy,
                reason=reason,
                stage=stage,
            ),
        )

    def start_root(self, attributes: dict[str, Any], start_ns: int, cause: Any) -> RootSpanStart:
        links = None
        if cause is not None and isinstance(cause, trace.Span):
            cur = cause.get_span_context()
            if cur.is_valid:
                links = [Link(cur)]
        tracer = self._tracer()
        steps = self._steps
        span: trace.Span
        if steps is not None and links is None:  # the SDK's span, built at end() (see _spans)
            span = steps.start_root("order", attributes, start_ns, _EMPTY_CONTEXT, simple=True)
        else:
            span = tracer.start_span(
                "order", context=_EMPTY_CONTEXT, attributes=attributes, links=links, start_time=start_ns
            )
        return span, tracer, steps

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        data["strategy"] = self.strategy
        data["venue"] = self.venue
        events.get_bus().publish_data(kind, data)

    def invalid(self, what: str, value: object, recorded: bool = False, why: str | None = None) -> None:
        """Bad or odd input: counted in ``tradeobs.agent.measurements.invalid{instrument="trading", reason=what}``
        and said once. ``recorded``: it was recorded all the same (an overfill happened), not dropped. ``why``: the
        entry of ``_ALLOWED`` that says what to do, when it is not ``what``'s own (said once too, apart).

        A mistake in the calling code (a side ``"BUY "``, a NaN quantity) is said on stderr too when the log does not
        reach the console: said only in logs/system.jsonl, a developer at the terminal never saw it. What a venue or
        a restart does (:data:`_SAID_IN_THE_LOG`) stays in the log, counted."""
        self._invalid_counts.add(1, {"instrument": "trading", "reason": what})
        allowed = _ALLOWED.get(why or what)
        # A value given as a string, quoted: "side BUY  (recorded" hid the space that made it unknown
        shown = (repr(value[:80]) if allowed else value[:80]) if isinstance(value, str) else _short_repr(value)
        if recorded:
            said = "tradeobs trading telemetry: %s %s (recorded, and counted)"
        else:
            said = "tradeobs trading telemetry: dropped invalid %s %s"
        said += ": %s" if allowed else ""
        args = (what, shown, *((allowed,) if allowed else ()))
        warn_once(f"trading:invalid:{why or what}", said, *args, console=what not in _SAID_IN_THE_LOG)

    def order_opened(self, order: OrderTrace) -> None:
        self._book.opened(order)
        self._open.set(len(self._book))

    def order_closed(self, order: OrderTrace) -> None:
        self._book.close(order)
        self._open.set(len(self._book))

    def execution_known(self, exec_id: str) -> str | None:
        known = self._executions.get(exec_id)
        return None if known is None else known[0][:80]

    def execution_seen(self, exec_id: str, order: OrderTrace) -> str | None:
        execs = self._executions
        mine = (order.client_order_id, order.created)
        other = execs.get(exec_id)
        if other is not None and other != mine:
            return other[0]
        execs[exec_id] = mine
        if len(execs) > EXECUTIONS:
            del execs[next(iter(execs))]
        return None

    def cancelled_unacknowledged(self) -> None:
        bound = self._unacked_cancels
        if bound is None:
            bound = self._unacked_cancels = self.instruments.cancelled_unacknowledged.bind(
                strategy=self.strategy, venue=self.venue
            )
        bound.add(1)

    # ------------------------------------------------------------------ plumbing
    def _tracer(self) -> trace.Tracer:
        tp = self._tracer_provider
        if tp is None:
            tp = defaults.tracer_provider()
        if tp is not self._tp or self._tracer_obj is None:
            self._tp = tp
            self._tracer_obj = (
                tp.get_tracer("tradeobs.trading", __version__)
                if tp is not None
                else trace.get_tracer("tradeobs.trading", __version__)
            )
            self._steps = StepSpans.for_tracer(self._tracer_obj)
        elif self._steps is not None and not self._steps.current():  # span processors changed
            self._steps = StepSpans.for_tracer(self._tracer_obj)
        return self._tracer_obj

    def _expired_series(self, state: str) -> BoundCounter:
        bound = self._expired.get(state)
        if bound is None:
            bound = self._expired[state] = self.instruments.expired.bind(
                strategy=self.strategy, venue=self.venue, state=state
            )
        return bound

    def _on_order_dropped(self, reason: str, state: str) -> None:
        """An order left the open book without an outcome (``reason``: ``order_evicted``, ``order_expired``), in
        ``state`` (``unsent``, ``unacknowledged``, ``acknowledged``): see :meth:`OrderBook._drop`."""
        self._expired_series(state).add(1)
        self._selfm.items_dropped.add(1, {"signal": "traces", "reason": reason})
        warn_once(
            f"trading:{reason}",
            "tradeobs: open order trace %s (max_open_orders=%d, order_ttl=%.0fs); its span was ended early",
            "evicted" if reason == "order_evicted" else "expired",
            self._book.max_open,
            self._book.ttl,
        )

    def _cached(self, cache: dict[K, V], key: K, make: Callable[[], V]) -> V:
        """``cache[key]``, made with ``make()`` if missing; past ``max_symbols`` entries made per call."""
        try:
            value = cache.get(key)
        except TypeError:  # unhashable
            return make()
        if value is None:
            value = make()
            if len(cache) < self.max_symbols:
                cache[key] = value
        return value

    def _keyed_bound(self, kind: str, key: Any, make: Callable[[], V]) -> V:
        return self._cached(self._keyed, (kind, key), make)  # type: ignore[no-any-return]

    def _on_collect(self) -> None:
        """Before each collection (after the journal is applied): staleness, exposure, expiry, queue size; the
        event loop's stall, read here on the reader's thread, not through the journal (a blocked loop is the case)."""
        _loopwatch.refresh(self._stall)
        entry: Refresh = (TradingTelemetry._on_refresh, self)
        self.record(entry)
        self._journal.flush()

    def _on_refresh(self, e: Refresh) -> None:
        now = _time()
        mono = _monotonic()
        since, self._refreshed = mono - self._refreshed, mono
        for st in self._syms.values():
            if not st.last:
                continue
            if st.last == st.seen:
                # No tick since the previous refresh: stale for that much longer, on the monotonic clock. From the
                # wall clock, a step back of 10 minutes read 0 s for 10 minutes for a feed that had died, and the
                # stale-data alert could not fire; a step forward read every symbol as stale by the step.
                st.stale += since
            else:
                # A tick since the previous refresh: its age on the wall clock, but never more than the monotonic
                # time since that refresh (it came after it): a step forward of 1 h between the tick and this
                # refresh read a live feed as 3,600 s stale.
                st.seen = st.last
                age = now - st.last
                st.stale = 0.0 if age < 0.0 else age if age < since else since
            st.staleness.set(st.stale)
        values = list(self._notional.values())
        self._gross_v = math.fsum(abs(v) for v in values)
        self._net_v = math.fsum(values)
        folded, other = self._folded, self._other
        if folded is not None and other is not None:
            for name, v in zip(_FOLDED_FIELDS, folded.exact(), strict=True):
                if v is not None:
                    getattr(other, name).set(v)
        if values:
            self._gross.set(self._gross_v)
            self._net.set(self._net_v)
        if self._book.expire(mono) or self._open.value is not None:
            self._open.set(len(self._book))
            # Orders sent and not acknowledged: from the book, here, not counted at each step (the hot path and the
            # journal's handlers pay nothing). An order the venue never answers is in no latency histogram (only
            # acks are): these two gauges are what shows it, and TradingOrdersUnacknowledged what pages.
            n, age = self._book.unacknowledged(mono)
            self._unacked.set(n)
            self._unacked_age.set(age)
            if "unacknowledged" not in self._expired:  # its series from 0, before the first such order expires
                self._expired_series("unacknowledged").add(0)
        self._pending.set(len(self._journal))

    # ------------------------------------------------------------------ market data
    def tick(
        self, symbol: str, price: float, exchange_ts: float | datetime.datetime | None = None, seq: int | None = None
    ) -> None:
        """A market data update: price gauge, tick counter, feed lag if ``exchange_ts`` (epoch seconds, milli-, micro-
        or nanoseconds, or a datetime with its time zone), measured against ``clock`` when the object has one.

        With ``seq`` (the feed's sequence number) a jump counts ``trading.marketdata.gaps``. A ``price`` that is no
        price (NaN, an infinity, not a number) is bad input: counted and said once, and the tick is not market data
        (no tick counted, no feed lag, the staleness keeps growing from the last valid price); its ``seq`` still
        counts.
        """
        entry: Tick = (TradingTelemetry._on_tick, self, symbol, price, exchange_ts, seq, _time())
        self.record(entry)

    def market_session(self, *symbols: str, open: bool) -> None:
        """Say whether the market of ``symbols`` is open (``trading.marketdata.session.open``, 1 or 0): while it is
        closed (nights, weekends, a holiday), no tick is expected and ``TradingMarketDataStale`` does not page for
        them. Call it from your market schedule at each open and close; a symbol never said is taken as open."""
        entry: MarketSession = (TradingTelemetry._on_market_session, self, symbols, open)
        self.record(entry)

    def _on_market_session(self, e: MarketSession) -> None:
        _, _, symbols, said = e
        is_open = flag(said)
        if is_open is None:  # pandas' NA, an array: no session state
            self.invalid("open", said)
            return
        for symbol in symbols:
            self.instruments.session_open.set(1 if is_open else 0, {"symbol": defaults.symbol_label(text(symbol))})

    def _tick_with_clock(
        self, symbol: str, price: float, exchange_ts: float | datetime.datetime | None = None, seq: int | None = None
    ) -> None:
        """:meth:`tick` of an object given a ``clock`` (``__init__`` puts it in the place of ``tick``, so an object
        without one pays nothing for it): the clock is read at the call, as the time is."""
        try:
            ref: object = self._clock() if self._clock is not None else None
        except Exception as exc:  # the caller's clock: bad input (counted when applied), never raised here
            ref = exc
        entry: Tick = (TradingTelemetry._on_tick, self, symbol, price, exchange_ts, seq, (_time(), ref))
        self.record(entry)

    def _on_tick(self, e: Tick) -> None:
        _, _, symbol, price, ts, seq, when = e  # one unpack: the hottest handler (a field access each costs more)
        ref: object
        if isinstance(when, tuple):  # (now, the replay clock's reading)
            now, ref = when
        else:
            now = ref = when
        try:
            st = self._syms.get(symbol)
        except TypeError:  # unhashable symbol: its own state, per call
            st = None
        if st is None:
            st = self._cached(self._syms, symbol, lambda: _SymbolState(self.instruments, text(symbol)))
        # The series checks the price and counts a bad one (NaN, an infinity, no number: instrument
        # trading.marketdata.price, reason value). A tick without a price is no market data: it is not counted as a
        # tick, has no feed lag and leaves the staleness growing from the last valid price (before, a feed sending
        # only NaN read as fresh, with its ticks counted, and only the bad-input alert saw it, 10 minutes later).
        valid = st.price.set(price)
        if valid:
            st.ticks.inc()
            st.last = now
            st.last_tick.set(now)
        elif not st.last:  # no valid price since the symbol's first tick: stale from that tick
            st.last = now
        if ts is not None and valid:
            at = ref if ref is now else _epoch(ref)  # a replay's clock: the time its ticks are received at
            if at == _INF:
                self.invalid("clock", ref)
            else:
                lag = at - (ts if type(ts) is float and -1e11 < ts < 1e11 else _epoch(ts))
                if -_MAX_LAG < lag < _MAX_LAG:
                    if lag < 0.0:
                        self._ahead_of_clock(st, -lag)
                    else:
                        st.feed_lag.record(lag)
                elif isinstance(ts, datetime.datetime) and ts.tzinfo is None:
                    self.invalid("exchange_ts", ts, why="exchange_ts_naive")  # said apart: its fix is a time zone
                else:
                    self.invalid("exchange_ts", ts)
        if seq is not None:  # a tick without a valid price keeps its place in the sequence: the feed sent it
            n = seq if type(seq) is int else _integer(seq)
            if n is not None:
                last, st.seq = st.seq, n
                if last is not None and n > last + 1:
                    st.gaps.add(1)
            else:
                self.invalid("seq", seq)

    def _ahead_of_clock(self, st: _SymbolState, ahead: float) -> None:
        """A tick whose exchange time is ``ahead`` seconds past the time it was received at: a host clock behind the
        venue's (or a venue's ahead). Its lag is recorded as 0 (what it was before this was counted), the tick
        counted in ``trading.marketdata.feed.ahead_of_clock{symbol}``, and the first one said."""
        st.feed_lag.record(0.0)
        bound = st.ahead
        if bound is None:
            bound = st.ahead = self.instruments.feed_ahead.bind(symbol=st.label)
        bound.add(1)
        warn_once(
            "trading:feed_ahead_of_clock",
            "tradeobs trading telemetry: a tick of %s has an exchange time %.3f s ahead of the time it was received "
            "at (%s): its feed lag is recorded as 0, and such ticks are counted in "
            "trading.marketdata.feed.ahead_of_clock{symbol}. This host's clock is likely behind the venue's: check "
            "its time service (NTP; the HostClockSkew alert and its runbook section)",
            st.label,
            ahead,
            "this host's clock" if self._clock is None else "the clock= given to TradingTelemetry",
        )

    def feed_reconnect(self, feed: str = "default") -> None:
        """The market data feed reconnected."""
        entry: FeedReconnect = (TradingTelemetry._on_reconnect, self, feed)
        self.record(entry)

    def _on_reconnect(self, e: FeedReconnect) -> None:
        _, _, feed = e
        feed = text(feed)
        self._keyed_bound("reconnect", feed, lambda: self.instruments.reconnects.bind(feed=feed)).add(1)

    def decision_time(self, seconds: float, symbol: str | None = None) -> None:
        """How long one strategy evaluation took, in seconds."""
        entry: DecisionTime = (TradingTelemetry._on_decision, self, seconds, symbol)
        self.record(entry)

    def _on_decision(self, e: DecisionTime) -> None:
        _, _, seconds, symbol = e
        symbol = symbol
        try:
            bound = self._decision.get(symbol)
        except TypeError:  # unhashable: bound per call
            bound = None
        if bound is None:
            attrs: dict[str, Any] = {"strategy": self.strategy}
            if symbol is not None:
                attrs["symbol"] = defaults.symbol_label(text(symbol))
            bound = self._keyed_bound("decision", attrs.get("symbol"), lambda: self.instruments.decision.bind(**attrs))
            try:
                if len(self._decision) < self.max_symbols:
                    self._decision[symbol] = bound
            except TypeError:
                pass  # unhashable: not cached, bound per call
        bound.record(seconds)  # the series checks the value (and counts a bad one)

    # ------------------------------------------------------------------ orders
    def order_signal(
        self,
        client_order_id: str,
        symbol: str,
        side: str,
        qty: float,
        price: float | None = None,
        order_type: str = "market",
    ) -> OrderTrace:
        """The strategy decided to trade: start the order's trace (root span ``order``).

        Returns the :class:`OrderTrace`; later, from any thread or task,
        ``tt.order(client_order_id)`` finds it again. A second signal for an
        order id that is still open returns the open trace when its terms are the same (a retry), else it is a
        new order and the open one ends (``superseded``); both counted.
        """
        try:
            start_ns = _time_ns()
            cid = client_order_id if type(client_order_id) is str else text(client_order_id)
            book = self._book
            existing = book.get(cid)
            q = qty if type(qty) is float and -_INF < qty < _INF else number(qty)
            p = price if price is None or (type(price) is float and -_INF < price < _INF) else number(price)
            if existing is not None and not existing.closed:
                same = (
                    existing.symbol == (symbol if type(symbol) is str else text(symbol))
                    and existing.side == (side if type(side) is str else text(side))
                    and existing.qty == (q if q is not None and q >= 0 else 0.0)
                    and existing.price == p
                )
                reused: Reused = (TradingTelemetry._on_reused, self, existing, same)
                self.record(reused)
                if same:  # the same order signalled again (a retry of the strategy's): one order
                    return existing
            o = OrderTrace(self, cid, symbol, side, q if q is not None and q >= 0 else 0.0, p, order_type, start_ns)
            book.index(o)
            cause = _current_context().get(SPAN_KEY)  # e.g. the tick that triggered the signal: a link
            entry: Signal = (OrderTrace._on_signal, o, qty, price, cause)
            self.record(entry)
            return o
        except Exception as exc:  # every input is validated above: this is a bug of ours
            internal_error("trading.order_signal", exc)
            return NullOrder(self)

    def resume(
        self,
        client_order_id: str | int,
        symbol: str,
        side: str,
        qty: float,
        price: float | None = None,
        order_type: str = "market",
        *,
        filled_qty: float = 0.0,
        venue_order_id: str | int | None = None,
    ) -> OrderTrace:
        """Take over an order a previous run of the process sent and the venue still works (after a restart: IB's
        ``openOrder``/``orderStatus`` for it, a FIX order status): its later reports are this process's to record.

        A new trace (``order.resumed=true``, a ``resume`` step); not counted as submitted or acknowledged again (the
        previous run did), no signal->submit, submit->ack or submit->fill latency (its send was the previous run's).
        ``filled_qty``: what had filled before (the status's filled quantity), counted by the previous run: the
        order's filled quantity, and a replayed execution within it (``cum_qty`` at most it) is a duplicate. Its
        later fills, cancel or reject count here. Before, such an order's reports were an unknown order's: its
        fills were in no ``trading.fills`` counter of either run."""
        o = self.order_signal(client_order_id, symbol, side, qty, price, order_type)  # type: ignore[arg-type]
        try:
            if o._real:
                o._resume(filled_qty, venue_order_id)
        except Exception as exc:  # every input is validated when applied: this is a bug of ours
            internal_error("trading.resume", exc)
        return o

    def order(self, client_order_id: str) -> OrderTrace | None:
        """The open (or recently closed) order with this id, or ``None``.

        The id is looked up as :meth:`order_signal` keeps it, as text: an order signalled with ``42`` (an integer id,
        numpy's from a DataFrame column too) is found by ``42`` and by ``"42"``. (Before, ``tt.order(42)`` was
        ``None`` for it, and ``tt.execution(42).fill(...)`` an :class:`UnknownOrder`'s: the fill was not recorded.)
        """
        return self._book.get(client_order_id if type(client_order_id) is str else text(client_order_id))

    def execution(self, client_order_id: str | int) -> OrderTrace:
        """The order a venue's report (ack, fill, reject, cancel) is about: for a broker's callback, never ``None``.

        ``tt.execution(cid).fill(qty, price)``. For an id :meth:`order` does not find (an order signalled
        before a restart, another process's, one past the recently-closed window), an :class:`UnknownOrder`:
        its calls record nothing, each is counted in
        ``tradeobs.agent.measurements.invalid{instrument="trading", reason="unknown_order"}`` and the first is
        said in the log, with the id. (``tt.order(cid).fill(...)`` raised ``AttributeError`` there.)

        An id this object does not know but exactly one other ``TradingTelemetry`` of the process (on the same
        registry) does is that object's order: a bot with one broker connection for several strategies (one object
        each) hands every report to one of them, and the report joins its order's own trace and series. (Before, it
        was an unknown order: the other strategy's fills were not recorded.) Known to several others, it is unknown.
        """
        cid = client_order_id if type(client_order_id) is str else text(client_order_id)
        found = self._book.get(cid)
        if found is not None:
            return found
        found = _elsewhere(self, cid)
        if found is not None:
            return found
        return UnknownOrder(self, cid)

    def alias(self, order: OrderTrace, client_order_id: str) -> None:
        self._book.alias(order, client_order_id)

    def _on_reused(self, e: Reused) -> None:
        _, _, old, same = e
        if same:
            self.invalid("duplicate_signal", old.client_order_id)
            return
        # Another order under the id of one still open (ids numbered again from 1 each day, with an order_ttl long
        # enough for resting orders): the old order's trace ends here, its book entry goes, the new one is traced.
        self.invalid("order_id_reused", old.client_order_id, True)
        if not old._closed:
            self._book.supersede(old)
            self._open.set(len(self._book))

    @property
    def open_orders(self) -> int:
        self._journal.flush()
        return len(self._book)

    # ------------------------------------------------------------------ positions and money
    def _money_series(self, symbol: Any) -> _MoneySeries:
        try:
            m = self._money.get(symbol)
        except TypeError:
            m = None
        if m is not None:
            return m
        return self._cached(
            self._money, symbol, lambda: _MoneySeries(self.instruments, text(symbol), self.strategy, self.venue)
        )

    def instrument(self, symbol: str, *, multiplier: float) -> None:
        """Declare ``symbol``'s contract multiplier (``tt.instrument("ESZ6", multiplier=50)``): its notionals are
        ``qty * price * multiplier``. The process's table, for every object (:mod:`.contracts`): raises
        :class:`~tradeobs_agent.exceptions.TradeObsConfigError` for a multiplier that is no finite number > 0 or
        one other than the symbol's declared one."""
        _contracts.instrument(symbol, multiplier=multiplier)

    def position(self, symbol: str, qty: float, price: float, avg_price: float | None = None) -> None:
        """Position quantity and notional (qty * price * the symbol's contract multiplier, ``price`` the mark, see
        :meth:`instrument`) for ``symbol``; gross and net exposure follow. ``avg_price``, the position's average
        entry price, is shown by the live view and exported; ``None`` leaves the last one. A flat position (``qty``
        0) has none: its series has no value (no sample, no OTLP point) until a position reports one again."""
        entry: Position = (TradingTelemetry._on_position, self, symbol, qty, price, avg_price)
        self.record(entry)

    def _on_position(self, e: Position) -> None:
        _, _, symbol, qty, price, avg_price = e
        q, p = number(qty), number(price)
        if q is None or p is None:
            self.invalid("position", qty if q is None else price)
            return
        q += 0.0  # -0.0 (round(-0.004, 2), -qty of a flat book) is flat: 0, not a "-0" on /metrics and in Grafana
        # The contract's multiplier (contracts.py): 2 ES at 5,000 are 500,000 of notional, not 10,000. One dict lookup,
        # and none until a contract is declared.
        notional = q * p + 0.0  # 0.0 * a price below zero is -0.0 too
        mults: dict[Any, float] = _contracts._MULTIPLIERS  # keyed by str: any symbol may be looked up
        if mults:
            try:
                notional = notional * mults.get(symbol, 1.0) + 0.0
            except TypeError:  # an unhashable symbol: never declared
                pass
        if not -_INF < notional < _INF:
            # Past any float (1e200 x 1e200): no position. Kept, it set the quantity without its notional, and its
            # infinite notional made every later gross and net exposure infinite, dropped at each collection: they
            # stayed at their last value whatever the other symbols did.
            self.invalid("position", f"{q!r} x {p!r}")
            return
        m = self._money_series(symbol)
        if m.folded:  # "other" is several symbols: the sums, and no average entry price (none is set)
            self._fold(symbol, m, _QTY, q)
            self._fold(symbol, m, _NOTIONAL, notional)
        else:
            m.position_qty.set(q)
            m.position_notional.set(notional)
            if q == 0.0:
                # Flat: no average entry, whatever was given (the last one, 0.0, NaN). A series with no value, not the
                # last number: an avg of 99.0 at quantity 0 meant nothing on a graph or in an alert (a user's review).
                m.avg_price.unset()
            elif avg_price is not None:
                avg = number(avg_price)
                if avg is None:
                    self.invalid("avg_price", avg_price)
                else:
                    m.avg_price.set(avg)
        notionals = self._notional
        try:
            old = notionals.get(symbol, 0.0)
            if symbol in notionals or len(notionals) < self.max_symbols:
                notionals[symbol] = notional
                self._gross_v += abs(notional) - abs(old)
                self._net_v += notional - old
            else:  # past max_symbols the exposure totals leave this position out: counted and said once
                self._invalid_counts.add(1, {"instrument": "trading", "reason": "exposure_max_symbols"})
                warn_once(
                    "trading:exposure_max_symbols",
                    "tradeobs trading telemetry: more than max_symbols=%d positions; gross and net exposure leave "
                    "out %r and any later new symbol (raise TradingTelemetry(max_symbols=...))",
                    self.max_symbols,
                    symbol,
                )
        except TypeError:
            pass  # unhashable symbol: its own series (above) still got the values
        self._gross.set(self._gross_v)
        self._net.set(self._net_v)

    def retire(self, symbol: str) -> None:
        """``symbol`` is no longer traded: a contract that expired or was rolled out of (ESZ6 after the roll to
        ESH7), a delisted stock. Its market data series go (price, time of the last tick, staleness, session: no
        sample, so ``TradingMarketDataStale`` does not page for a contract that will never tick again, and the live
        view does not count it stale). Its position, P&L and counters stay: report it flat first (its quantity and
        notional then read 0, which every reader, the collector's exporter too, shows at once; a series that went
        away would be served at its last value for the collector's ``metric_expiration``). Retiring a symbol whose
        position is not flat is counted as ``reason="retire_open_position"``: the desk still holds it. A later tick
        brings its market data back."""
        entry: Retire = (TradingTelemetry._on_retire, self, symbol)
        self.record(entry)

    def _on_retire(self, e: Retire) -> None:
        _, _, symbol = e
        try:
            st = self._syms.pop(symbol, None)
            m = self._money.get(symbol)
        except TypeError:  # unhashable: nothing kept by it
            return
        label = defaults.symbol_label(text(symbol))
        if label is not defaults.OTHER:  # "other" is the series of every folded symbol: not one symbol's to retire
            if st is not None:
                for g in (st.price, st.staleness, st.last_tick):
                    g.unset()
            self.instruments.session_open.unset({"symbol": label})
        if m is not None and not m.folded and m.position_qty.value:
            self.invalid("retire_open_position", f"{label}: {m.position_qty.value:g}", True)

    def pnl(self, symbol: str, realized: float, unrealized: float) -> None:
        """Realized and unrealized P&L for ``symbol``."""
        entry: Pnl = (TradingTelemetry._on_pnl, self, symbol, realized, unrealized)
        self.record(entry)

    def _on_pnl(self, e: Pnl) -> None:
        _, _, symbol, realized, unrealized = e
        m = self._money_series(symbol)
        if m.folded:
            self._fold(symbol, m, _REALIZED, realized)
            self._fold(symbol, m, _UNREALIZED, unrealized)
            return
        m.realized.set(_no_negative_zero(realized))  # the series checks the values (and counts a bad one)
        m.unrealized.set(_no_negative_zero(unrealized))

    def _fold(self, symbol: Any, m: _MoneySeries, field: int, value: object) -> None:
        """A folded symbol's ``field``: "other"'s series get the sum over the folded symbols (see :class:`_Folded`)."""
        series: BoundGauge = getattr(m, _FOLDED_FIELDS[field])
        v = number(value)
        if v is None:
            series.set(value)  # type: ignore[arg-type]  # not a finite number: the series drops it and counts it
            return
        v += 0.0  # no -0.0 (see _no_negative_zero)
        folded = self._folded
        if folded is None:
            folded = self._folded = _Folded()
            self._other = m
        try:
            total = folded.put(symbol, field, v, self.max_symbols)
        except TypeError:  # unhashable symbol: no key to keep its last value by
            total = None
        if total is None:
            self._invalid_counts.add(1, {"instrument": "trading", "reason": "other_max_symbols"})
            warn_once(
                "trading:other_max_symbols",
                "tradeobs trading telemetry: more than max_symbols=%d symbols folded into 'other' by the symbol "
                "allowlist; 'other' leaves out the position and P&L of %r and any later new one (raise "
                "TradingTelemetry(max_symbols=...))",
                self.max_symbols,
                symbol,
            )
            return
        series.set(total)

    def account(self, equity: float, drawdown: float | None = None) -> None:
        """Account equity; drawdown as a ratio from peak (tracked here when not given)."""
        entry: AccountUpdate = (TradingTelemetry._on_account, self, equity, drawdown)
        self.record(entry)

    def _on_account(self, e: AccountUpdate) -> None:
        _, _, equity, drawdown = e
        eq = number(equity)
        if eq is None:
            self.invalid("equity", equity)
            return
        self._equity.set(eq)
        if drawdown is None:
            if eq > self._peak:
                self._peak = eq
            peak = self._peak
            dd = (peak - eq) / peak if peak > 0 else 0.0
        else:
            dd = drawdown  # the series checks the value (and counts a bad one)
        self._drawdown.set(dd)

    # ------------------------------------------------------------------ risk
    def limit_utilization(self, limit: str, ratio: float) -> None:
        """How much of a named risk limit is in use (1.0 = at the limit)."""
        entry: LimitUse = (TradingTelemetry._on_limit, self, limit, ratio)
        self.record(entry)

    def _on_limit(self, e: LimitUse) -> None:
        _, _, limit, ratio = e
        limit = text(limit)
        self._keyed_bound(
            "limit",
            limit,
            lambda: self.instruments.limit_utilization.bind(strategy=self.strategy, venue=self.venue, limit=limit),
        ).set(ratio)  # the series checks the value (and counts a bad one)

    def breach(self, limit: str, symbol: str | None = None) -> None:
        """A risk limit was breached: counter plus a ``breach`` event."""
        entry: Breach = (TradingTelemetry._on_breach, self, limit, symbol)
        self.record(entry)

    def _on_breach(self, e: Breach) -> None:
        _, _, limit, symbol = e
        limit = text(limit)
        symbol = None if symbol is None else text(symbol)
        attrs: dict[str, Any] = {"strategy": self.strategy, "venue": self.venue, "limit": limit}
        if symbol is not None:
            attrs["symbol"] = defaults.symbol_label(symbol)
        self._keyed_bound("breach", (limit, symbol), lambda: self.instruments.breaches.bind(**attrs)).add(1)
        self.publish("breach", {"limit": limit, "symbol": symbol, "reason": limit, "order_id": None, "trace_id": None})

    def kill_switch(self, engaged: bool, reason: str | None = None) -> None:
        """Kill switch / circuit breaker state (gauge 0/1); a ``kill_switch`` event on every change."""
        entry: KillSwitch = (TradingTelemetry._on_kill, self, engaged, reason)
        self.record(entry)

    def _on_kill(self, e: KillSwitch) -> None:
        _, _, engaged, reason = e
        state = flag(engaged)
        if state is None:  # pandas' NA, an array: the kill switch keeps its state
            self.invalid("engaged", engaged)
            return
        self._kill.set(1 if state else 0)
        changed, self._kill_state = state != self._kill_state, state
        if changed and state:  # a trip: the gauge alone misses one engaged and released between two scrapes
            trips = self._kill_trips
            if trips is None:  # bound at the first trip: a strategy that never trips has no series
                trips = self._kill_trips = self.instruments.kill_switch_trips.bind(
                    strategy=self.strategy, venue=self.venue
                )
            trips.add(1)
        if changed:
            reason = None if reason is None else text(reason)
            self.publish("kill_switch", {"engaged": state, "reason": reason, "order_id": None, "trace_id": None})

    # ------------------------------------------------------------------ event loop
    def event_loop_lag_monitor(self, interval: float = 0.1) -> asyncio.Task[None] | None:
        """Start a task on the running loop that records ``trading.eventloop.lag`` every ``interval`` s.

        While it runs, ``trading.eventloop.stall`` says at each collection how late the loop is now in waking it:
        0 on time, and growing while the loop is blocked, when no lag sample can be recorded (``_loopwatch.py``).
        Returns the task (cancel it to stop: the stall series goes with it), or ``None`` when called outside a
        running loop.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            warn_once("trading:lag_no_loop", "tradeobs: event_loop_lag_monitor() needs a running asyncio loop")
            return None
        iv = number(interval)
        if iv is None or not iv > 0:
            self.invalid("interval", interval)
            iv = 0.1
        watch = LoopWatch(loop, iv, self)
        watch.gauge = self._stall
        task = loop.create_task(self._lag_loop(iv, watch), name="tradeobs-eventloop-lag")
        self._tasks.add(task)
        _loopwatch.add(watch)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: _loopwatch.discard(watch))  # cancelled or ended: not stalled
        return task

    async def _lag_loop(self, interval: float, watch: LoopWatch) -> None:
        loop = asyncio.get_running_loop()
        bound = self.instruments.loop_lag.bind()
        while True:
            t0 = watch.t0 = loop.time()  # the one thing added on the loop: the stall is read from it elsewhere
            await asyncio.sleep(interval)
            lag = loop.time() - t0 - interval
            bound.record(lag if lag > 0.0 else 0.0)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop the lag monitor and the collect hook; open orders' spans end with outcome ``closed``."""
        self.registry.remove_collect_hook(self._hook)
        for task in list(self._tasks):
            task.cancel()
        # Its monitors end now, not when their loop next runs (it may be blocked, or close() called from another
        # thread): a closed object's loop is no longer watched, and its stall series goes (or shows the others').
        for w in _loopwatch.watches():
            if w.owner is self:
                _loopwatch.discard(w)
        _loopwatch.refresh(self._stall)
        entry: Close = (TradingTelemetry._on_close, self)
        self.record(entry)
        self._journal.flush()

    def _on_close(self, e: Close) -> None:
        for o in self._book.open_orders():
            o.finish("closed")


_LIVE: dict[int, weakref.ref[TradingTelemetry]] = {}  # every live object, by id(): see _live()


def _track(tt: TradingTelemetry) -> None:
    key = id(tt)

    def gone(ref: weakref.ref[TradingTelemetry]) -> None:
        if _LIVE.get(key) is ref:  # not a newer object given the same id()
            del _LIVE[key]

    _LIVE[key] = weakref.ref(tt, gone)


def _live() -> list[TradingTelemetry]:
    """Every live :class:`TradingTelemetry`, safe from any thread. Iterating a ``WeakSet`` runs Python code between
    its items, and another thread making an object changed the set under it: ``tt.execution(id)`` on a broker's
    reader thread raised ``RuntimeError: Set changed size during iteration`` (294 calls in, with another thread
    making objects). The references are copied in one C call, which no other thread interrupts."""
    while True:
        try:
            refs = tuple(_LIVE.values())
        except RuntimeError:  # the garbage collector freed one during the copy (its callback took it out): again
            continue
        return [tt for ref in refs if (tt := ref()) is not None]


def _elsewhere(own: TradingTelemetry, client_order_id: str) -> OrderTrace | None:
    """The order with this id in the one other live object on ``own``'s registry that knows it; ``None`` when none
    or several do (two strategies numbering their orders from 1 alike: no telling whose report it is)."""
    found: OrderTrace | None = None
    for tt in _live():
        if tt is own or tt.registry is not own.registry:
            continue
        o = tt._book.get(client_order_id)
        if o is not None:
            if found is not None:
                return None
            found = o
    return found


def forget_state() -> None:
    """Every live :class:`TradingTelemetry` forgets what it was told (tests: ``tradeobs_agent.testing.reset``, after
    the shutdown ended the open orders): no order, position, exposure, equity peak or kill-switch state is carried
    into the next test by an object a module made at import. Its series stay bound (the registry zeroes them)."""
    for tt in _live():
        tt._journal.flush()
        book = tt._book
        tt._book = OrderBook(book.max_open, book.ttl, tt._on_order_dropped)
        _scope.track(tt._book)
        tt._syms.clear()
        tt._money.clear()
        tt._notional.clear()
        tt._folded = tt._other = None
        tt._keyed.clear()
        tt._expired.clear()
        tt._orders.clear()
        tt._executions.clear()
        tt._rejects.clear()
        tt._decision.clear()
        tt._gross_v = tt._net_v = 0.0
        tt._peak = -_INF
        tt._kill_state = None
        tt._kill_trips = tt._unacked_cancels = None


def end_open_orders() -> int:
    """End the orders still open in every :class:`TradingTelemetry` (outcome ``closed``); how many there were.

    The agent's ``shutdown()`` calls this before it flushes the spans: an order the venue never answered, or a
    resting order, was otherwise still open when the process exited, and its root span ``order`` was never
    exported (its steps were, under a parent the trace store never received: Jaeger showed them as orphans,
    with "invalid parent span IDs"). Does not close the objects: the calls keep working if the process goes on.
    """
    n = 0
    for tt in _live():
        try:
            n += tt.open_orders
            entry: Close = (_end_own_open_orders, tt)
            tt.record(entry)
        except Exception as exc:  # a bug of ours: the shutdown goes on
            internal_error("trading.end_open_orders", exc)
    get_journal().flush()
    return n


def _end_own_open_orders(tt: TradingTelemetry, e: Close) -> None:
    """``tt``'s open orders end (``closed``), except those a forked child inherited: the parent's to end."""
    for o in tt._book.open_orders():
        if id(o) not in _INHERITED:
            o.finish("closed")


# The orders open in the parent at a fork: a child (a multiprocessing worker, whose exit runs the agent's shutdown)
# must not end and export them too (the same root span twice in the trace store, the child's saying "closed").
_INHERITED: set[int] = set()


def _after_fork_in_child() -> None:
    global _INHERITED
    _INHERITED = {id(o) for tt in _live() for o in tt._book.open_orders()}


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _no_negative_zero(value: Any) -> Any:
    """``value``, with -0.0 as 0.0 (a P&L rounded from a small loss, ``round(-0.004, 2)``, is no "-0")."""
    return 0.0 if type(value) is float and value == 0.0 else value


def _short_repr(value: object) -> str:
    try:
        return repr(value)[:80]
    except Exception:  # a hostile __repr__: bad input, never raised into the caller
        return f"<unprintable {type(value).__name__}>"
