"""The trading instruments: one table that creates them and that ``docs/metrics.md`` documents.

>>> from tradeobs_agent.metrics import Registry
>>> inst = TradingInstruments(Registry())
>>> inst.submitted.name, inst.submit_to_ack.unit
('trading.orders.submitted', 's')

Names follow the OTel conventions (dotted, lower case, no unit in the name) and
units are UCUM; the Prometheus exporters turn ``s`` into ``_seconds``, drop
``{annotation}`` units and add ``_total`` to counters. Ratios on gauges use the
annotation ``{ratio}``, not ``1``: the Collector's exporter appends ``_ratio`` to a
``1`` gauge and the Python one does not, so ``{ratio}`` gives one name everywhere.
Order ids never become metric attributes: they are on spans and exemplars.

Each gauge declares how the worker processes of one service combine it (``aggregation``,
see ``docs/metrics.md``): positions, notionals, P&L, equity, exposure and the open and unacknowledged
order counts add up (each worker trades its own book), drawdown, limit use, the kill switch, staleness
and the oldest unacknowledged order's age keep the worst process's value, the price the most recent
one, the average entry price the books' (``entry``: cost over quantity; none when the processes hold
opposite positions); the event loop's stall stays each process's own (``pid``: each worker has its own
loop). Counters and histograms are summed.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..metrics import DEFAULT_LATENCY_BOUNDS, Aggregation, Counter, Gauge, Histogram, Registry

__all__ = [
    "FILL_RATIO_BOUNDS",
    "LATENCY_BOUNDS",
    "SLIPPAGE_BOUNDS",
    "SPECS",
    "InstrumentSpec",
    "TradingInstruments",
]

# Seconds, from 10 us (in-process decision times) to 10 s.
LATENCY_BOUNDS: tuple[float, ...] = (0.00001, 0.000025, 0.00005, *DEFAULT_LATENCY_BOUNDS)
# Basis points, symmetric around 0 (adverse slippage is positive).
_SLIP = (0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0)
SLIPPAGE_BOUNDS: tuple[float, ...] = (*(-x for x in reversed(_SLIP)), 0.0, *_SLIP)
FILL_RATIO_BOUNDS: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)

ORDER_ATTRS = ("symbol", "side", "order_type", "venue", "strategy")


@dataclass(frozen=True)
class InstrumentSpec:
    attr: str  # attribute of TradingInstruments
    name: str
    kind: str  # counter | gauge | histogram
    unit: str
    attributes: tuple[str, ...]
    description: str
    bounds: tuple[float, ...] | None = None
    aggregation: Aggregation = "sum"  # across the processes of one service (metrics.snapshot.merge)


def _c(attr: str, name: str, unit: str, attrs: tuple[str, ...], desc: str) -> InstrumentSpec:
    return InstrumentSpec(attr, name, "counter", unit, attrs, desc)


def _g(attr: str, name: str, unit: str, attrs: tuple[str, ...], desc: str, agg: Aggregation) -> InstrumentSpec:
    return InstrumentSpec(attr, name, "gauge", unit, attrs, desc, aggregation=agg)


def _h(attr: str, name: str, unit: str, attrs: tuple[str, ...], desc: str, bounds: tuple[float, ...]) -> InstrumentSpec:
    return InstrumentSpec(attr, name, "histogram", unit, attrs, desc, bounds)


_O = ORDER_ATTRS
_SYM = ("symbol",)
_SS = ("symbol", "strategy", "venue")  # a position is one strategy's on one venue (one TradingTelemetry's)
_S = ("strategy", "venue")  # what one TradingTelemetry sets for its strategy: each object its own series

SPECS: tuple[InstrumentSpec, ...] = (
    # orders
    _c("submitted", "trading.orders.submitted", "{order}", _O, "Orders sent to the venue"),
    _c("acknowledged", "trading.orders.acknowledged", "{order}", _O, "Orders the venue acknowledged"),
    _c("filled", "trading.orders.filled", "{order}", _O, "Orders completely filled"),
    _c(
        "partially_filled",
        "trading.orders.partially_filled",
        "{fill}",
        _O,
        "Fills that left their order still partly open",
    ),
    _c("cancelled", "trading.orders.cancelled", "{order}", _O, "Orders cancelled (by us or the venue)"),
    _c("fill_quantity", "trading.fills.quantity", "{unit}", _O, "Quantity filled, every fill (partial ones too)"),
    _c(
        "fill_notional",
        "trading.fills.notional",
        "{currency}",
        _O,
        "Value filled: quantity * abs(price) * the contract's multiplier of every fill, in the price's currency (the "
        "turnover)",
    ),
    _c(
        "overfilled",
        "trading.orders.overfilled",
        "{fill}",
        _O,
        "Fills that took their order past its quantity (an overfill: 15 filled of a 10-lot, or an execution under a "
        "new exec_id after the order had filled or been cancelled); also counted in "
        "tradeobs.agent.measurements.invalid (reason overfill), which has no strategy or venue",
    ),
    _c(
        "rejected",
        "trading.orders.rejected",
        "{order}",
        (*_O, "reason", "stage"),
        "Orders rejected by risk before they were submitted (stage risk) or after (stage venue)",
    ),
    _g(
        "open_orders",
        "trading.orders.open",
        "{order}",
        _S,
        "Orders signalled and not yet done (filled, rejected, cancelled, done(), expired, evicted, superseded by a new "
        "order under the same id, or closed by close())",
        "sum",
    ),
    _g(
        "unacknowledged",
        "trading.orders.unacknowledged",
        "{order}",
        _S,
        "Orders sent to the venue and not yet acknowledged, filled or ended, counted from the open book at each "
        "collection",
        "sum",
    ),
    _g(
        "oldest_unacknowledged",
        "trading.orders.oldest_unacknowledged.age",
        "s",
        _S,
        "Seconds since the oldest of the unacknowledged orders was sent (0 when there is none), at each collection",
        "max",
    ),
    _c(
        "cancelled_unacknowledged",
        "trading.orders.cancelled_unacknowledged",
        "{order}",
        _S,
        "Orders cancelled before the venue acknowledged or filled them: the bot's own ack-timeout cancel (a venue "
        "cannot cancel an order it never accepted); also counted in trading.orders.cancelled",
    ),
    _c(
        "expired",
        "trading.orders.expired",
        "{order}",
        (*_S, "state"),
        "Orders the agent stopped following without an outcome: past order_ttl (expired) or pushed out of the open "
        "book by max_open_orders (evicted); state: unacknowledged (sent, never acknowledged nor filled: its fate at "
        "the venue is unknown), acknowledged (acknowledged or partly filled) or unsent (signalled, never sent)",
    ),
    # latency
    _h(
        "signal_to_submit",
        "trading.order.signal_to_submit.latency",
        "s",
        _O,
        "Time from the strategy's signal to sending the order",
        LATENCY_BOUNDS,
    ),
    _h(
        "submit_to_ack",
        "trading.order.submit_to_ack.latency",
        "s",
        _O,
        "Time from sending the order to the venue's acknowledgement",
        LATENCY_BOUNDS,
    ),
    _h(
        "submit_to_fill",
        "trading.order.submit_to_fill.latency",
        "s",
        _O,
        "Time from sending the order to its first fill",
        LATENCY_BOUNDS,
    ),
    _h(
        "decision",
        "trading.strategy.decision.duration",
        "s",
        ("strategy", "symbol"),
        "Strategy decision time per evaluation",
        LATENCY_BOUNDS,
    ),
    _h(
        "feed_lag",
        "trading.marketdata.feed.lag",
        "s",
        _SYM,
        "Market data lag: receive time minus exchange time",
        LATENCY_BOUNDS,
    ),
    _c(
        "feed_ahead",
        "trading.marketdata.feed.ahead_of_clock",
        "{tick}",
        _SYM,
        "Ticks whose exchange time was ahead of the receive time (this host's clock behind the venue's); their feed "
        "lag is recorded as 0",
    ),
    _h("loop_lag", "trading.eventloop.lag", "s", (), "asyncio event-loop scheduling lag", LATENCY_BOUNDS),
    _g(
        "loop_stall",
        "trading.eventloop.stall",
        "s",
        (),
        "Seconds the asyncio loop is late now in waking the lag monitor, read at each collection from another "
        "thread: 0 while it runs on time, growing while it is blocked (when trading.eventloop.lag records nothing); "
        "no value while no monitor runs",
        "pid",
    ),
    # fill quality
    _h(
        "slippage",
        "trading.order.slippage",
        "{bp}",
        _O,
        "Fill price vs expected price in basis points; adverse is positive",
        SLIPPAGE_BOUNDS,
    ),
    _h(
        "fill_ratio",
        "trading.order.fill_ratio",
        "1",
        _O,
        "Filled quantity / ordered quantity, when an order is done",
        FILL_RATIO_BOUNDS,
    ),
    # positions and money
    _g("position_qty", "trading.position.quantity", "{unit}", _SS, "Signed position quantity", "sum"),
    _g(
        "position_notional",
        "trading.position.notional",
        "{currency}",
        _SS,
        "Signed position value: qty * price * the contract's multiplier (1 unless declared)",
        "sum",
    ),
    _g(
        "avg_price",
        "trading.position.avg_price",
        "{price}",
        _SS,
        "Average entry price of the position, as reported; no value while the position is flat",
        "entry",
    ),
    _g("gross", "trading.exposure.gross", "{currency}", _S, "Sum of absolute notional over symbols", "sum"),
    _g("net", "trading.exposure.net", "{currency}", _S, "Sum of signed notional over symbols", "sum"),
    _g("realized", "trading.pnl.realized", "{currency}", _SS, "Realized P&L", "sum"),
    _g("unrealized", "trading.pnl.unrealized", "{currency}", _SS, "Unrealized (mark-to-market) P&L", "sum"),
    _g("equity", "trading.equity", "{currency}", _S, "Account equity", "sum"),
    _g("drawdown", "trading.drawdown", "{ratio}", _S, "Drawdown from peak equity, as a ratio (0.05 = 5%)", "max"),
    # risk
    _g(
        "limit_utilization",
        "trading.risk.limit.utilization",
        "{ratio}",
        ("strategy", "venue", "limit"),
        "Fraction of a risk limit in use (1 = at the limit)",
        "max",
    ),
    _c(
        "breaches", "trading.risk.breaches", "{breach}", ("strategy", "venue", "limit", "symbol"), "Risk limit breaches"
    ),
    _g(
        "kill_switch",
        "trading.risk.kill_switch.engaged",
        "{state}",
        _S,
        "1 while the kill switch / circuit breaker is engaged, else 0",
        "max",
    ),
    _c(
        "kill_switch_trips",
        "trading.risk.kill_switch.trips",
        "{trip}",
        _S,
        "Times the kill switch engaged: one engaged and released between two scrapes, which the gauge misses, shows "
        "here (the series appears at the first trip)",
    ),
    # market data
    _g("price", "trading.marketdata.price", "{price}", _SYM, "Last traded/quoted price", "last"),
    _c(
        "ticks",
        "trading.marketdata.ticks",
        "{tick}",
        _SYM,
        "Market data updates received with a valid price (a NaN, infinite or non-numeric one is bad input, not a tick)",
    ),
    _g(
        "staleness",
        "trading.marketdata.staleness",
        "s",
        _SYM,
        "Seconds since the last tick with a valid price (since the first tick if none had one), computed at each "
        "collection",
        "max",
    ),
    _g(
        "last_tick",
        "trading.marketdata.last_tick",
        "s",
        _SYM,
        "Time of the last tick with a valid price, seconds since the epoch (now minus this is the staleness, at "
        "any time)",
        "max",
    ),
    _g(
        "session_open",
        "trading.marketdata.session.open",
        "{state}",
        _SYM,
        "1 while the symbol's market session is open, 0 while it is closed (market_session()); no series: not said",
        "max",
    ),
    _c("gaps", "trading.marketdata.gaps", "{gap}", _SYM, "Sequence gaps detected in the feed"),
    _c("reconnects", "trading.marketdata.reconnects", "{reconnect}", ("feed",), "Market data feed reconnects"),
)


class TradingInstruments:
    """Every trading instrument, created (or fetched) in ``registry``; attributes named by ``SPECS``."""

    submitted: Counter
    acknowledged: Counter
    filled: Counter
    partially_filled: Counter
    cancelled: Counter
    fill_quantity: Counter
    fill_notional: Counter
    overfilled: Counter
    rejected: Counter
    open_orders: Gauge
    unacknowledged: Gauge
    oldest_unacknowledged: Gauge
    cancelled_unacknowledged: Counter
    expired: Counter
    signal_to_submit: Histogram
    submit_to_ack: Histogram
    submit_to_fill: Histogram
    decision: Histogram
    feed_lag: Histogram
    feed_ahead: Counter
    loop_lag: Histogram
    loop_stall: Gauge
    slippage: Histogram
    fill_ratio: Histogram
    position_qty: Gauge
    position_notional: Gauge
    avg_price: Gauge
    gross: Gauge
    net: Gauge
    realized: Gauge
    unrealized: Gauge
    equity: Gauge
    drawdown: Gauge
    limit_utilization: Gauge
    breaches: Counter
    kill_switch: Gauge
    kill_switch_trips: Counter
    price: Gauge
    ticks: Counter
    staleness: Gauge
    last_tick: Gauge
    session_open: Gauge
    gaps: Counter
    reconnects: Counter

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        for spec in SPECS:
            agg = spec.aggregation
            if spec.kind == "counter":
                inst: object = registry.counter(spec.name, spec.unit, spec.description, aggregation=agg)
            elif spec.kind == "gauge":
                inst = registry.gauge(spec.name, spec.unit, spec.description, aggregation=agg)
            else:
                inst = registry.histogram(spec.name, spec.unit, spec.description, spec.bounds, aggregation=agg)
            setattr(self, spec.attr, inst)
