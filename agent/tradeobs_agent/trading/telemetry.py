"""Trading telemetry: market data, orders, positions, risk, in a few cheap calls.

>>> from tradeobs_agent import trading
>>> tt = trading.TradingTelemetry(strategy="momentum", venue="paper")
>>> tt.tick("AAPL", 189.5, exchange_ts=None)
>>> o = tt.order_signal("c-1", "AAPL", "buy", 100, price=189.5)
>>> o.risk_check(passed=True); o.submitted(); o.acked("v-1"); o.fill(100, 189.52)
>>> tt.position("AAPL", 100, 189.52); tt.account(equity=1_000_000.0)

Every method is safe on the trading hot path: it reads the clock, appends one
tuple to the process's trading journal and returns (see ``_journal.py`` for
why). The ``_on_*`` handlers apply the journal in call order, in batches, off
the hot path: bound series cached per (symbol, side, order type), spans,
exemplars and live events. Every reader applies the journal before it reads,
so what is exported equals what was recorded. No method raises. Bad input (NaN
prices, negative quantities, odd types) is dropped, counted in
``tradeobs.agent.measurements.invalid{instrument="trading"}`` and warned about
once. Every cache is bounded; past the bound calls still work but bind per
call (and the instrument's series limit sends new sets to overflow).

Works with or without ``tradeobs_agent.init()``: instruments live in the process
registry (create the ``TradingTelemetry`` before or after ``init``); spans use
the agent's tracer provider when there is one, else the global OTel tracer.
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Link
from opentelemetry.trace.propagation import _SPAN_KEY

from .. import __version__, events
from .. import agent as _agent_mod
from .._internal.once import warn_once
from .._internal.otelctx import current_context as _current_context
from ..exceptions import TradeObsConfigError
from ..metrics import Registry, get_registry
from ._journal import LIMIT as _LIMIT
from ._journal import get_journal
from ._spans import StepSpans
from .instruments import TradingInstruments
from .orders import _SELL_SIDES, OrderBook, OrderTrace, _number

__all__ = ["TradingTelemetry"]

_INF = math.inf
_monotonic = time.monotonic
_time = time.time
_time_ns = time.time_ns
_MAX_LAG = 86_400.0  # a feed lag beyond a day means exchange_ts is not epoch seconds
_EMPTY_CONTEXT = Context()  # order roots start a new trace, whatever span is current


class _Lazy:
    """Bound series for one attribute set, each bound on first use and then a plain attribute."""

    def __init__(self, inst: TradingInstruments, **attrs: Any) -> None:
        self._inst = inst
        self._attrs = attrs

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        bound = getattr(self._inst, name).bind(**self._attrs)
        setattr(self, name, bound)
        return bound


class _OrderSeries(_Lazy):
    """submitted, acknowledged, filled, ... bound to {symbol, side, order_type, venue, strategy}."""


class _SymbolState(_Lazy):
    """Market-data series for one symbol plus what staleness and gap detection need."""

    def __init__(self, inst: TradingInstruments, symbol: Any) -> None:
        super().__init__(inst, symbol=symbol)
        self.last: float = 0.0  # epoch seconds of the last tick (the same clock read as the feed lag)
        self.seq: int | None = None


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
    ) -> None:
        if not isinstance(max_open_orders, int) or isinstance(max_open_orders, bool) or max_open_orders < 1:
            raise TradeObsConfigError("max_open_orders", max_open_orders, "an integer >= 1")
        if isinstance(order_ttl, bool) or not isinstance(order_ttl, int | float) or not 0 < order_ttl < _INF:
            raise TradeObsConfigError("order_ttl", order_ttl, "a positive number of seconds")
        if not isinstance(max_symbols, int) or isinstance(max_symbols, bool) or max_symbols < 1:
            raise TradeObsConfigError("max_symbols", max_symbols, "an integer >= 1")
        self.strategy = str(strategy)
        self.venue = str(venue)
        self.registry = registry if registry is not None else get_registry()
        self.instruments = inst = TradingInstruments(self.registry)
        self.max_symbols = max_symbols
        self.child_spans = bool(child_spans)
        self._journal = journal = get_journal()
        self._q = journal.queue
        self._book = OrderBook(max_open_orders, float(order_ttl), self._on_order_dropped)
        # Caches below are touched only while the journal is applied (one thread at a time).
        self._orders: dict[tuple[Any, Any, Any], _OrderSeries] = {}
        self._rejects: dict[tuple[Any, ...], Any] = {}
        self._syms: dict[Any, _SymbolState] = {}
        self._money: dict[Any, _Lazy] = {}
        self._notional: dict[Any, float] = {}
        self._keyed: dict[tuple[str, Any], Any] = {}
        self._decision: dict[Any, Any] = {}  # decision_time's series by symbol: one dict lookup per call
        s = self.strategy
        self._gross = inst.gross.bind(strategy=s)
        self._net = inst.net.bind(strategy=s)
        self._equity = inst.equity.bind(strategy=s)
        self._drawdown = inst.drawdown.bind(strategy=s)
        self._kill = inst.kill_switch.bind(strategy=s)
        self._gross_v = 0.0
        self._net_v = 0.0
        self._peak = -_INF
        self._kill_state: bool | None = None
        self._tp: Any = None
        self._tracer_provider: Any = None
        self._tracer_obj: Any = None
        self._steps: StepSpans | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._selfm = self.registry.self_metrics()
        self._pending = self._selfm.queue_size.bind(queue="trading")
        self._selfm.queue_capacity.bind(queue="trading").set(journal.limit)
        # A weak hook: the registry must not keep this object alive.
        ref = weakref.WeakMethod(self._on_collect)

        def hook() -> None:
            method = ref()
            if method is not None:
                method()

        self._hook = hook
        self.registry.add_flush_hook(journal.flush)
        events.get_bus().add_flush_hook(journal.flush)
        self.registry.add_collect_hook(hook)
        journal.start()

    # ------------------------------------------------------------------ plumbing
    def flush(self) -> None:
        """Apply every call made so far (readers do this themselves; for code that reads series directly)."""
        self._journal.flush()

    def _put(self, where: str, entry: tuple[Any, ...]) -> None:
        try:
            self._journal.put(entry)
        except Exception as exc:
            self._fail(where, exc)

    def _tracer(self) -> Any:
        tp = self._tracer_provider  # set by tests; else the agent's provider
        if tp is None:
            agent = _agent_mod._agent
            tp = agent.tracer_provider if agent is not None else None
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

    def _fail(self, where: str, exc: BaseException) -> None:
        try:
            self._selfm.invalid.add(1, {"instrument": "trading", "reason": f"error.{where}"})
            warn_once(f"trading:error:{where}", "tradeobs trading telemetry: %s failed: %r (ignored)", where, exc)
        except Exception:
            pass

    def _invalid(self, what: str, value: Any) -> None:
        try:
            self._selfm.invalid.add(1, {"instrument": "trading", "reason": what})
            text = repr(value)[:80] if not isinstance(value, str) else value[:80]
            warn_once(f"trading:invalid:{what}", "tradeobs trading telemetry: dropped invalid %s %s", what, text)
        except Exception:
            pass

    def _publish(self, kind: str, data: dict[str, Any]) -> None:
        try:
            data["strategy"] = self.strategy
            data["venue"] = self.venue
            events.get_bus().publish_data(kind, data)
        except Exception as exc:
            self._fail("publish", exc)

    def _on_order_dropped(self, reason: str) -> None:
        self._selfm.items_dropped.add(1, {"signal": "traces", "reason": reason})
        warn_once(
            f"trading:{reason}",
            "tradeobs: open order trace %s (max_open_orders=%d, order_ttl=%.0fs); its span was ended early",
            "evicted" if reason == "order_evicted" else "expired",
            self._book.max_open,
            self._book.ttl,
        )

    def _cached(self, cache: dict[Any, Any], key: Any, make: Any) -> Any:
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

    def _keyed_bound(self, kind: str, key: Any, make: Any) -> Any:
        return self._cached(self._keyed, (kind, key), make)

    def _on_collect(self) -> None:
        """Before each collection (after the journal is applied): staleness, exposure, expiry, queue size."""
        self._put("collect", (TradingTelemetry._on_refresh, self))
        self._journal.flush()

    def _on_refresh(self, e: tuple[Any, ...]) -> None:
        now = _time()
        for st in self._syms.values():
            if st.last:
                st.staleness.set(max(0.0, now - st.last))
        values = list(self._notional.values())
        self._gross_v = sum(abs(v) for v in values)
        self._net_v = sum(values)
        if values:
            self._gross.set(self._gross_v)
            self._net.set(self._net_v)
        self._book.expire(_monotonic())
        self._pending.set(len(self._journal))

    # ------------------------------------------------------------------ market data
    def tick(self, symbol: str, price: float, exchange_ts: float | None = None, seq: int | None = None) -> None:
        """A market data update: price gauge, tick counter, feed lag if ``exchange_ts`` (epoch seconds).

        With ``seq`` (the feed's sequence number) a jump counts ``trading.marketdata.gaps``.
        """
        try:
            q = self._q
            q.append((TradingTelemetry._on_tick, self, symbol, price, exchange_ts, seq, _time()))
            if len(q) > _LIMIT:
                self._journal.flush()
        except Exception as exc:
            self._fail("tick", exc)

    def _on_tick(self, e: tuple[Any, ...]) -> None:
        _, _, symbol, price, exchange_ts, seq, now = e
        st = self._syms.get(symbol)
        if st is None:
            st = self._cached(self._syms, symbol, lambda: _SymbolState(self.instruments, symbol))
        st.price.set(price)
        st.ticks.inc()
        st.last = now
        if exchange_ts is not None:
            try:
                lag = now - exchange_ts
            except TypeError:
                lag = _INF
            if -_MAX_LAG < lag < _MAX_LAG:
                st.feed_lag.record(lag if lag > 0.0 else 0.0)
            else:
                self._invalid("exchange_ts", exchange_ts)
        if seq is not None:
            last, st.seq = st.seq, seq
            if last is not None and seq > last + 1:
                st.gaps.add(1)

    def feed_reconnect(self, feed: str = "default") -> None:
        """The market data feed reconnected."""
        self._put("feed_reconnect", (TradingTelemetry._on_reconnect, self, feed))

    def _on_reconnect(self, e: tuple[Any, ...]) -> None:
        feed = e[2]
        self._keyed_bound("reconnect", feed, lambda: self.instruments.reconnects.bind(feed=feed)).add(1)

    def decision_time(self, seconds: float, symbol: str | None = None) -> None:
        """How long one strategy evaluation took, in seconds."""
        try:
            q = self._q
            q.append((TradingTelemetry._on_decision, self, seconds, symbol))
            if len(q) > _LIMIT:
                self._journal.flush()
        except Exception as exc:
            self._fail("decision_time", exc)

    def _on_decision(self, e: tuple[Any, ...]) -> None:
        _, _, seconds, symbol = e
        try:
            bound = self._decision.get(symbol)
        except TypeError:  # unhashable: bound per call
            bound = None
        if bound is None:
            attrs = {"strategy": self.strategy} if symbol is None else {"strategy": self.strategy, "symbol": symbol}
            bound = self._keyed_bound("decision", symbol, lambda: self.instruments.decision.bind(**attrs))
            try:
                if len(self._decision) < self.max_symbols:
                    self._decision[symbol] = bound
            except TypeError:
                pass
        bound.record(seconds)

    # ------------------------------------------------------------------ orders
    def _order_series(self, symbol: Any, side: Any, order_type: Any) -> _OrderSeries:
        key = (symbol, side, order_type)
        series = self._orders.get(key)
        if series is not None:
            return series
        return self._cached(  # type: ignore[no-any-return]
            self._orders,
            key,
            lambda: _OrderSeries(
                self.instruments,
                symbol=symbol,
                side=side,
                order_type=order_type,
                venue=self.venue,
                strategy=self.strategy,
            ),
        )

    def _rejected_series(self, o: OrderTrace, reason: str) -> Any:
        return self._cached(
            self._rejects,
            (o.symbol, o.side, o.order_type, reason),
            lambda: self.instruments.rejected.bind(
                symbol=o.symbol,
                side=o.side,
                order_type=o.order_type,
                venue=self.venue,
                strategy=self.strategy,
                reason=reason,
            ),
        )

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
        order id that is still open returns the open trace.
        """
        try:
            start_ns = _time_ns()
            cid = client_order_id if type(client_order_id) is str else str(client_order_id)
            book = self._book
            existing = book.get(cid)
            if existing is not None and not existing.closed:
                warn_once("trading:dup_order", "tradeobs: order id %r signalled twice; keeping the open trace", cid)
                return existing
            q = qty if type(qty) is float and -_INF < qty < _INF else _number(qty)
            p = price if price is None or (type(price) is float and -_INF < price < _INF) else _number(price)
            o = OrderTrace(self, cid, symbol, side, q if q is not None and q >= 0 else 0.0, p, order_type, start_ns)
            book.index(o)
            current = _current_context().get(_SPAN_KEY)  # e.g. the tick that triggered the signal: a link
            jq = self._q
            jq.append((OrderTrace._on_signal, o, qty, price, current))
            if len(jq) > _LIMIT:
                self._journal.flush()
            return o
        except Exception as exc:
            self._fail("order_signal", exc)
            return _NullOrder(self)

    def _apply_signal(self, o: OrderTrace, qty: Any, price: Any, current: Any) -> None:
        """The signal, applied: validation counts, the root span, the order's series, the open book."""
        try:
            if o.qty == 0.0 and _number(qty) != 0.0:
                self._invalid("qty", qty)
            if price is not None and o.price is None:
                self._invalid("price", price)
            attrs: dict[str, Any] = {
                "order.id": o.client_order_id,
                "symbol": o.symbol,
                "side": o.side,
                "order_type": o.order_type,
                "order.qty": o.qty,
                "strategy": self.strategy,
                "venue": self.venue,
            }
            if o.price is not None:
                attrs["order.price"] = o.price
            links = None
            if current is not None and isinstance(current, trace.Span):
                cur = current.get_span_context()
                if cur.is_valid:
                    links = [Link(cur)]
            tracer = self._tracer()
            steps = self._steps
            if steps is not None and links is None:  # the SDK's span, built at end() (see _spans)
                span = steps.start_root("order", attrs, o._start_ns, _EMPTY_CONTEXT, simple=True)
            else:
                span = tracer.start_span(
                    "order", context=_EMPTY_CONTEXT, attributes=attrs, links=links, start_time=o._start_ns
                )
            sc = span.get_span_context()
            o._tracer = tracer
            o._span = span
            o._sc = sc
            trace_id, _, _, flags, _, valid = sc
            if valid:
                o._trace_hex = format(trace_id, "032x")
                # Steps skip the SDK's start/end when that is exact (see _spans); only for a sampled root.
                o._steps = steps if flags & 1 else None
            o._sell = o.side.lower() in _SELL_SIDES
            o._series = self._order_series(o.symbol, o.side, o.order_type)
        finally:
            if o._span is None:
                o._span = INVALID_SPAN
                o._sc = INVALID_SPAN.get_span_context()
            if o._series is None:
                o._series = self._order_series(o.symbol, o.side, o.order_type)
            self._book.opened(o)

    def order(self, client_order_id: str) -> OrderTrace | None:
        """The open (or recently closed) order with this id, or ``None``."""
        try:
            return self._book.get(client_order_id)
        except Exception as exc:
            self._fail("order", exc)
            return None

    @property
    def open_orders(self) -> int:
        self._journal.flush()
        return len(self._book)

    # ------------------------------------------------------------------ positions and money
    def _money_series(self, symbol: Any) -> _Lazy:
        try:
            m = self._money.get(symbol)
        except TypeError:
            m = None
        if m is not None:
            return m
        return self._cached(  # type: ignore[no-any-return]
            self._money, symbol, lambda: _Lazy(self.instruments, symbol=symbol, strategy=self.strategy)
        )

    def position(self, symbol: str, qty: float, price: float) -> None:
        """Position quantity and notional (qty * price) for ``symbol``; gross and net exposure follow."""
        try:
            q = self._q
            q.append((TradingTelemetry._on_position, self, symbol, qty, price))
            if len(q) > _LIMIT:
                self._journal.flush()
        except Exception as exc:
            self._fail("position", exc)

    def _on_position(self, e: tuple[Any, ...]) -> None:
        _, _, symbol, qty, price = e
        q, p = _number(qty), _number(price)
        if q is None or p is None:
            self._invalid("position", qty if q is None else price)
            return
        m = self._money_series(symbol)
        notional = q * p
        m.position_qty.set(q)
        m.position_notional.set(notional)
        notionals = self._notional
        try:
            old = notionals.get(symbol, 0.0)
            if symbol in notionals or len(notionals) < self.max_symbols:
                notionals[symbol] = notional
                self._gross_v += abs(notional) - abs(old)
                self._net_v += notional - old
        except TypeError:  # unhashable symbol: its own series (above) still got the values
            pass
        self._gross.set(self._gross_v)
        self._net.set(self._net_v)

    def pnl(self, symbol: str, realized: float, unrealized: float) -> None:
        """Realized and unrealized P&L for ``symbol``."""
        try:
            q = self._q
            q.append((TradingTelemetry._on_pnl, self, symbol, realized, unrealized))
            if len(q) > _LIMIT:
                self._journal.flush()
        except Exception as exc:
            self._fail("pnl", exc)

    def _on_pnl(self, e: tuple[Any, ...]) -> None:
        _, _, symbol, realized, unrealized = e
        m = self._money_series(symbol)
        m.realized.set(realized)
        m.unrealized.set(unrealized)

    def account(self, equity: float, drawdown: float | None = None) -> None:
        """Account equity; drawdown as a ratio from peak (tracked here when not given)."""
        self._put("account", (TradingTelemetry._on_account, self, equity, drawdown))

    def _on_account(self, e: tuple[Any, ...]) -> None:
        _, _, equity, drawdown = e
        eq = _number(equity)
        if eq is None:
            self._invalid("equity", equity)
            return
        self._equity.set(eq)
        if drawdown is None:
            if eq > self._peak:
                self._peak = eq
            peak = self._peak
            dd = (peak - eq) / peak if peak > 0 else 0.0
        else:
            dd = drawdown
        self._drawdown.set(dd)

    # ------------------------------------------------------------------ risk
    def limit_utilization(self, limit: str, ratio: float) -> None:
        """How much of a named risk limit is in use (1.0 = at the limit)."""
        self._put("limit_utilization", (TradingTelemetry._on_limit, self, limit, ratio))

    def _on_limit(self, e: tuple[Any, ...]) -> None:
        _, _, limit, ratio = e
        self._keyed_bound(
            "limit", limit, lambda: self.instruments.limit_utilization.bind(strategy=self.strategy, limit=limit)
        ).set(ratio)

    def breach(self, limit: str, symbol: str | None = None) -> None:
        """A risk limit was breached: counter plus a ``breach`` event."""
        self._put("breach", (TradingTelemetry._on_breach, self, limit, symbol))

    def _on_breach(self, e: tuple[Any, ...]) -> None:
        _, _, limit, symbol = e
        attrs: dict[str, Any] = {"strategy": self.strategy, "limit": limit}
        if symbol is not None:
            attrs["symbol"] = symbol
        self._keyed_bound("breach", (limit, symbol), lambda: self.instruments.breaches.bind(**attrs)).add(1)
        self._publish("breach", {"limit": limit, "symbol": symbol, "reason": limit, "order_id": None, "trace_id": None})

    def kill_switch(self, engaged: bool, reason: str | None = None) -> None:
        """Kill switch / circuit breaker state (gauge 0/1); a ``kill_switch`` event on every change."""
        self._put("kill_switch", (TradingTelemetry._on_kill, self, engaged, reason))

    def _on_kill(self, e: tuple[Any, ...]) -> None:
        _, _, engaged, reason = e
        state = bool(engaged)
        self._kill.set(1 if state else 0)
        changed, self._kill_state = state != self._kill_state, state
        if changed:
            self._publish("kill_switch", {"engaged": state, "reason": reason, "order_id": None, "trace_id": None})

    # ------------------------------------------------------------------ event loop
    def event_loop_lag_monitor(self, interval: float = 0.1) -> asyncio.Task[None] | None:
        """Start a task on the running loop that records ``trading.eventloop.lag`` every ``interval`` s.

        Returns the task (cancel it to stop), or ``None`` when called outside a running loop.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            warn_once("trading:lag_no_loop", "tradeobs: event_loop_lag_monitor() needs a running asyncio loop")
            return None
        try:
            iv = float(interval)
            if not 0 < iv < _INF:
                self._invalid("interval", interval)
                iv = 0.1
            task = loop.create_task(self._lag_loop(iv), name="tradeobs-eventloop-lag")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return task
        except Exception as exc:
            self._fail("event_loop_lag_monitor", exc)
            return None

    async def _lag_loop(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        bound = self.instruments.loop_lag.bind()
        while True:
            t0 = loop.time()
            await asyncio.sleep(interval)
            lag = loop.time() - t0 - interval
            bound.record(lag if lag > 0.0 else 0.0)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Stop the lag monitor and the collect hook; open orders' spans end with outcome ``closed``."""
        self.registry.remove_collect_hook(self._hook)
        for task in list(self._tasks):
            task.cancel()
        self._put("close", (TradingTelemetry._on_close, self))
        self._journal.flush()

    def _on_close(self, e: tuple[Any, ...]) -> None:
        for o in self._book.open_orders():
            o._finish("closed")


class _NullOrder(OrderTrace):
    """Returned when ``order_signal`` itself failed, so the caller's next calls are harmless no-ops."""

    __slots__ = ()

    def __init__(self, tt: TradingTelemetry) -> None:
        super().__init__(tt, "", "", "", 0.0, None, "", 0)
        self._span = INVALID_SPAN
        self._closed = True

    def risk_check(self, passed: bool, reason: str | None = None, checks: dict[str, Any] | None = None) -> None:
        pass

    def submitted(self) -> None:
        pass

    def acked(self, venue_order_id: str | None = None) -> None:
        pass

    def fill(self, qty: float, price: float, expected_price: float | None = None) -> None:
        pass

    def rejected(self, reason: str) -> None:
        pass

    def cancelled(self, reason: str | None = None) -> None:
        pass

    def error(self, exc: BaseException) -> None:
        pass

    def done(self) -> None:
        pass
