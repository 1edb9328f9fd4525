"""The demo's trading loop: market data -> strategy -> risk -> paper broker -> portfolio.

Every step reports through :class:`tradeobs_agent.trading.TradingTelemetry`, and the
load is adjustable (symbols, ticks per second, orders per second) so the same
engine is the workload for benchmarks and integration tests.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..logs import correlate, get_logger
from ..trading import TradingTelemetry
from .broker import BrokerConfig, PaperBroker
from .market import RandomWalkMarket, symbols
from .portfolio import Portfolio
from .risk import RiskLimits, RiskManager

_mlog = get_logger("market_data")
_slog = get_logger("strategy")
_rlog = get_logger("risk")
_xlog = get_logger("execution")
_sys = get_logger("system")


@dataclass
class DemoConfig:
    """Workload knobs. ``tick_hz`` is market-data steps per second (each step ticks every symbol)."""

    symbols: int = 10
    tick_hz: float = 10.0
    orders_hz: float = 2.0
    seed: int | None = None
    cash: float = 1_000_000.0
    state_hz: float = 10.0
    max_inflight: int = 1_000
    kill_switch_cooldown: float = 30.0
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    limits: RiskLimits = field(default_factory=RiskLimits)

    def __post_init__(self) -> None:
        for name, lo in (("symbols", 1), ("tick_hz", 0.1), ("orders_hz", 0.0), ("state_hz", 0.1)):
            value = getattr(self, name)
            # not lo <= value < inf: NaN and infinity too (orders_hz=inf made step() loop forever, deaf to signals)
            if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value < math.inf:
                raise ValueError(f"demo setting {name}={value!r}: expected a finite number >= {lo}")

    @classmethod
    def sized(cls, symbols: int, **kw: Any) -> DemoConfig:
        """A config whose cash and gross notional limit grow with ``symbols`` beyond 10 (the defaults are a
        10-symbol book): with the 10-symbol limit, 1,000 symbols reached it within a minute and the demo
        traded nothing after (``tradeobs demo --symbols N`` uses this)."""
        scale = max(1.0, symbols / 10)
        limits = RiskLimits(max_gross_notional=RiskLimits().max_gross_notional * scale)
        return cls(symbols=symbols, cash=cls.cash * scale, limits=limits, **kw)

    @classmethod
    def from_env(cls) -> DemoConfig:
        """Read ``TRADEOBS_DEMO_SYMBOLS``, ``_TICK_HZ``, ``_ORDERS_HZ``, ``_SEED`` (for app-factory use). A bad value
        is a warning naming the variable, its value and what is allowed, and the default is used, as for the agent's
        own variables: ``TRADEOBS_DEMO_TICK_HZ=0`` stopped the app factory with a traceback that named only
        ``tick_hz``, ``TRADEOBS_DEMO_SYMBOLS=abc`` said "expected int". The book grows with the symbols, as
        ``tradeobs demo --symbols`` has it (:meth:`sized`)."""
        kw: dict[str, Any] = {}
        for name, conv, lo, allowed in _ENV_KNOBS:
            var = f"TRADEOBS_DEMO_{name.upper()}"
            raw = os.environ.get(var, "").strip()
            if not raw:
                continue
            try:
                value = conv(raw)
            except ValueError:
                value = None
            ok = value is not None and (lo is None or lo <= value < math.inf)
            if not ok:
                default = getattr(cls, name)
                logging.getLogger("tradeobs").warning(
                    "ignoring %s value %r for the demo's %s: expected %s; using the default, %s",
                    var,
                    raw,
                    name,
                    allowed,
                    "none" if default is None else default,
                )
                continue
            kw[name] = value
        return cls.sized(kw.pop("symbols", cls.symbols), **kw)


# What the app factory reads from TRADEOBS_DEMO_*: (name, parser, lowest value or None, what is allowed), the bounds
# of DemoConfig.__post_init__ and of `tradeobs demo`'s flags.
_ENV_KNOBS: tuple[tuple[str, Callable[[str], float], float | None, str], ...] = (
    ("symbols", int, 1, "a whole number from 1 up (how many symbols)"),
    ("tick_hz", float, 0.1, "a finite number of market-data steps per second, 0.1 or more"),
    ("orders_hz", float, 0.0, "a finite number of orders per second, 0 or more"),
    ("seed", int, None, "a whole number"),
)


class TradingEngine:
    """The demo's trading loop. ``telemetry`` replaces the engine's own ``TradingTelemetry`` (benchmarks)."""

    def __init__(self, config: DemoConfig, telemetry: TradingTelemetry | None = None) -> None:
        self.config = config
        self.symbols = symbols(config.symbols)
        self._rng = random.Random(config.seed)
        self.market = RandomWalkMarket(self.symbols, seed=config.seed)
        self.broker = PaperBroker(config.broker, seed=config.seed)
        self.risk = RiskManager(config.limits)
        self.portfolio = Portfolio(config.cash)
        self.tt = telemetry if telemetry is not None else TradingTelemetry(strategy="momentum", venue="paper")
        self.marks: dict[str, float] = dict(self.market.prices)
        self._ema: dict[str, float] = dict(self.market.prices)
        self._seq = 0
        self._credit = 0.0
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._state_task: asyncio.Task[None] | None = None
        self._lag_task: asyncio.Task[None] | None = None
        self._kill_time = 0.0
        self.ticks = 0
        self.orders = 0
        self.running = False

    # -- lifecycle
    def start(self) -> None:
        self.running = True
        # The kill switch's state from the first collection on, not only once it first engages:
        # "off" is information too (dashboards and the TradingKillSwitchEngaged alert read it).
        self.tt.kill_switch(self.risk.kill_switch, "start")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="demo-engine")
        self._state_task = asyncio.get_running_loop().create_task(self._publish_state(), name="demo-state")
        # The loop's lag and, while it runs, its stall (trading.eventloop.lag/.stall): as a service would watch
        # its loop; the dashboards' event-loop panels and the live page's "event loop" box show them.
        self._lag_task = self.tt.event_loop_lag_monitor()
        _sys.info(
            "demo engine started: %d symbols, %.1f ticks/s, %.1f orders/s",
            len(self.symbols),
            self.config.tick_hz * len(self.symbols),
            self.config.orders_hz,
        )
        shown = ", ".join(self.symbols[:5]) + (f" and {len(self.symbols) - 5} more" if len(self.symbols) > 5 else "")
        _mlog.info("market data subscribed: %s, %.1f updates/s each", shown, self.config.tick_hz)

    async def stop(self) -> None:
        self.running = False
        tasks = [t for t in (self._task, self._state_task, self._lag_task, *self._inflight) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        _sys.info("demo engine stopped after %d ticks and %d orders", self.ticks, self.orders)

    # -- the loop
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.config.tick_hz
        next_t = loop.time()
        while self.running:
            self.step()
            next_t += period
            delay = next_t - loop.time()
            if delay < -1.0:  # fell far behind: don't try to catch up in a burst
                next_t = loop.time()
            await asyncio.sleep(max(0.0, delay))

    def step(self) -> None:
        """One market-data step for every symbol, then the orders this step is due."""
        tt = self.tt
        for q in self.market.step():
            tt.tick(q.symbol, q.price, q.exchange_ts)
            self.marks[q.symbol] = q.price
            self._ema[q.symbol] += 0.05 * (q.price - self._ema[q.symbol])
        self.ticks += len(self.symbols)
        self._credit += self.config.orders_hz / self.config.tick_hz
        while self._credit >= 1.0:
            self._credit -= 1.0
            if self.place_order() is None:  # in flight is full, and stays full until this step returns
                self._credit %= 1.0
                break

    def place_order(self, symbol: str | None = None, side: str | None = None, qty: float | None = None) -> str | None:
        """Decide, risk-check and submit one order; returns its client order id (None when throttled)."""
        if len(self._inflight) >= self.config.max_inflight:
            return None
        t0 = time.perf_counter()
        sym = symbol or self._rng.choice(self.symbols)
        mark = self.marks[sym]
        if side is None:
            side = "buy" if mark < self._ema[sym] else "sell"  # mean reversion
        qty = qty or float(self._rng.choice((10, 20, 50, 100)))
        self.tt.decision_time(time.perf_counter() - t0, sym)
        self._seq += 1
        self.orders += 1
        oid = f"demo-{os.getpid()}-{self._seq}"
        order = self.tt.order_signal(oid, sym, side, qty, mark, order_type="market")
        pos = self.portfolio.positions.get(sym)
        gross = sum(abs(p.qty) * self.marks[s] for s, p in self.portfolio.positions.items())
        self._maybe_rearm()
        result = self.risk.check(side, qty, pos.qty if pos else 0.0, gross, mark)
        order.risk_check(result.passed, result.reason, result.checks)
        with correlate(order_id=oid):
            if not result.passed:
                # risk_check(passed=False) above already rejected the order (counter, status, end of trace).
                _rlog.warning(
                    "order %s rejected by risk: %s", oid, result.reason, extra={"symbol": sym, "side": side, "qty": qty}
                )
                if result.reason and result.reason.startswith("limit_"):
                    self.tt.breach(result.reason.removeprefix("limit_"), sym)
                return oid
            _slog.info("signal %s %s %s @ %.2f", side, qty, sym, mark, extra={"symbol": sym})
            order.submitted()
        task = asyncio.get_running_loop().create_task(self._execute(oid, sym, side, qty, mark))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return oid

    async def _execute(self, oid: str, sym: str, side: str, qty: float, expected: float) -> None:
        order = self.tt.order(oid)
        if order is None:
            return
        # The order is the current context here: the broker's callbacks (and what they call) log on its trace.
        with order.scope(), correlate(symbol=sym):

            def on_ack(venue_id: str) -> None:
                order.acked(venue_id)

            def on_reject(reason: str) -> None:
                _xlog.warning("order %s rejected by venue: %s", oid, reason)
                order.rejected(reason)

            def on_fill(fill: Any) -> None:
                order.fill(fill.qty, fill.price, expected_price=expected)
                self.portfolio.fill(sym, side, fill.qty, fill.price)
                _xlog.info(
                    "order %s filled %s %s @ %.4f", oid, fill.qty, sym, fill.price, extra={"symbol": sym, "side": side}
                )

            await self.broker.execute(side, qty, lambda: self.marks[sym], on_ack, on_reject, on_fill)

    # -- state for the position/P&L gauges (and so the live view)
    async def _publish_state(self) -> None:
        period = 1.0 / self.config.state_hz
        while self.running:
            self.publish_state()
            await asyncio.sleep(period)

    def publish_state(self) -> None:
        tt, marks = self.tt, self.marks
        for sym, pos in self.portfolio.positions.items():
            tt.position(sym, pos.qty, marks[sym], pos.avg_price)
            tt.pnl(sym, pos.realized, pos.unrealized(marks[sym]))
        equity = self.portfolio.equity(marks)
        dd = self.portfolio.drawdown(equity)
        tt.account(equity, dd)
        # How much of each standing risk limit is in use (1 = at the limit).
        lim = self.config.limits
        positions = self.portfolio.positions
        gross = sum(abs(p.qty) * marks[sym] for sym, p in positions.items())
        tt.limit_utilization("position", max((abs(p.qty) for p in positions.values()), default=0.0) / lim.max_position)
        tt.limit_utilization("gross_notional", gross / lim.max_gross_notional)
        tt.limit_utilization("drawdown", dd / lim.max_drawdown)
        if dd > self.config.limits.max_drawdown and not self.risk.kill_switch:
            self.risk.kill_switch = True
            self._kill_time = time.monotonic()
            tt.kill_switch(True, "max_drawdown")
            _rlog.error("kill switch engaged: drawdown %.1f%%", dd * 100)

    def _maybe_rearm(self) -> None:
        if self.risk.kill_switch and time.monotonic() - self._kill_time > self.config.kill_switch_cooldown:
            self.risk.kill_switch = False
            self.portfolio.peak_equity = self.portfolio.equity(self.marks)
            self.tt.kill_switch(False, "cooldown elapsed")
            _rlog.warning("kill switch re-armed after %.0fs cooldown", self.config.kill_switch_cooldown)
