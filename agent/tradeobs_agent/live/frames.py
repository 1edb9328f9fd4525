"""Build one live frame per tick from the in-process registry, and its delta against the last one.

>>> from tradeobs_agent.metrics import Registry
>>> reg = Registry()
>>> reg.gauge("trading.marketdata.price").bind(symbol="AAPL").set(190.5)
>>> b = FrameBuilder(reg)
>>> state = b.build()
>>> state["symbols"]["AAPL"]["px"]
190.5
>>> delta(state, b.build())["symbols"]
{}

The state is read once per tick (never per client): every trading instrument
is walked once and grouped by its ``symbol`` attribute, summing over the
other attributes (``side``, ``reason``, ``strategy`` ...). Histograms with the
same bounds are merged by summing bucket counts, then a quantile is
interpolated within the bucket exactly as :meth:`~tradeobs_agent.metrics.BoundHistogram.quantile`
does. Instruments that do not exist yet are simply absent from the frame.

Per-symbol keys (short, because they go out ten times a second):
``px`` price, ``pos`` position quantity, ``ntl`` notional, ``rpnl``/``upnl``
realized/unrealized P&L, ``avg`` average entry price, ``age`` whole seconds
since the last tick, ``ord``/``fill``/``rej`` order counts, ``p50``/``p99``
submit-to-fill latency in seconds.

``account`` adds the desk's totals to the account gauges: ``pnl`` (realized +
unrealized over every symbol), ``rpnl``, ``upnl``, ``pnl_day`` (``pnl`` minus its
value at ``day_since``: the first frame of the trading day, or this builder's
creation if that was later, or a worker group's first frame; ``day_full`` says ``day_since`` is the day's start, a
frame having been built up to it; the day starts at the ``trading_day_start`` setting's time, the server's local
midnight by default, and otherwise ``day_start`` says when, ``"17:00 New York"``, and ``day_tz`` in which IANA
zone; with the ``day_pnl`` setting ``reported`` (the service resets its P&L when the day starts), ``pnl_day`` is
``pnl`` itself, ``day_since`` the day's start, ``day_full`` true and ``day_pnl`` ``"reported"``), ``gross``
and ``net`` exposure. ``desk`` holds the order counts (``open``, ``orders``,
``fills``, ``rejects``; these, the rejects by reason and the symbols' ``ord``/``fill``/``rej`` count from
``counts_since``, epoch seconds: when this registry began counting, its process's agent start; in a worker group
the earliest start of the group's count series, so every order since then and none before is counted), the
reject rate over the last 5 minutes
(``reject_rate``, rejected / orders decided: submitted + rejected by the risk check before they
were submitted, ``stage="risk"``, as in Prometheus' ``job:trading_order_reject_ratio:rate5m``;
``reject_window`` the seconds it covers),
rejects by ``reasons``, risk ``limits`` in use, market-data freshness
(``md_age``: seconds since the newest tick; ``stale``: symbols without a tick for
:data:`STALE_AFTER` seconds) and the working orders' count. ``working`` is
:meth:`~.working.WorkingOrders.frame`: the oldest working orders.

Orders waiting for the venue and the trading loop, from the gauges the agent sets at each collection (the ones
Prometheus and the alerts read; the live hub collects once a second for its frames, as a worker group's members
do): ``unacked`` orders sent and neither acknowledged nor filled nor ended (``trading.orders.unacknowledged``,
summed over strategies, venues and workers), ``unacked_age`` the oldest one's seconds
(``trading.orders.oldest_unacknowledged.age``, the worst); ``stall`` how late the asyncio loop is now in waking its
lag monitor (``trading.eventloop.stall``: 0 on time; the worst process's, with its ``stall_pid`` when the series
has one, as in a worker group). Each is absent while its gauge has no series (no trading telemetry, no lag
monitor). The page marks them past :data:`ACK_AGE_LIMIT` and :data:`STALL_LIMIT`, the alerts' limits.
"""

from __future__ import annotations

import operator
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import chain
from typing import Any

from .._trading_day import LOCAL_MIDNIGHT, TradingDay
from ..metrics import Histogram, HistogramFamily, HistogramPoint, NumberPoint, Registry, Snapshot, bucket_quantile
from ..metrics.snapshot import entry_price
from .rows import Rows, exact
from .rows import rounded as _r
from .working import WorkingOrders

_OBSERVED = operator.attrgetter("observed")

__all__ = [
    "ACK_AGE_LIMIT",
    "COLLECT_EVERY",
    "STALE_AFTER",
    "STALL_LIMIT",
    "FrameBuilder",
    "changed_fields",
    "delta",
    "merged_quantile",
]

DAY_FULL_WITHIN = 60.0  # a frame built this many seconds before the day's start makes its P&L the whole day's
# A wall clock stepped back at most this far (NTP, chrony, an operator: seconds to minutes) across the day's start is
# a step, not the day before: the day's P&L keeps counting. A larger step back says the day read before was wrong.
DAY_STEP_BACK = 3600.0
STALE_AFTER = 5  # seconds without a tick before a symbol counts as stale (desk.stale; the page marks it)
# Seconds between the collect hooks a one-process hub (and the NATS publisher) runs before a frame: the gauges the
# agent sets at collection (orders waiting for the venue and their oldest age, the event loop's stall) were otherwise
# as old as the last scrape or export (10 s and more); a worker group's members collect as often (its SLOW_PUBLISH).
COLLECT_EVERY = 1.0
ACK_AGE_LIMIT = 30.0  # seconds, as tradeobs:limit_order_ack_age:seconds (TradingOrdersUnacknowledged)
STALL_LIMIT = 30.0  # seconds, as tradeobs:limit_eventloop_stall:seconds (TradingEventLoopStalled)
REJECT_WINDOW = 300.0  # seconds, as the Prometheus rule job:trading_order_reject_ratio:rate5m
WORKING_IN_FRAME = 200  # the oldest working orders a frame lists (desk.working is the whole count)
SECTIONS = ("account", "desk", "latency", "health", "system")  # merged key by key by a client
KEYED = ("working",)  # replaced row by row (a changed row whole); a removed row is sent as null, as any removed key

# gauge name -> per-symbol key; values are summed over non-symbol attributes ("px" takes the last).
SYMBOL_GAUGES: dict[str, str] = {
    "trading.marketdata.price": "px",
    "trading.position.quantity": "pos",
    "trading.position.notional": "ntl",
    "trading.pnl.realized": "rpnl",
    "trading.pnl.unrealized": "upnl",
}
SYMBOL_COUNTERS: dict[str, str] = {
    "trading.orders.submitted": "ord",
    "trading.orders.filled": "fill",
    "trading.orders.rejected": "rej",
}
ACCOUNT_GAUGES: dict[str, str] = {
    "trading.equity": "equity",
    "trading.drawdown": "drawdown",
    "trading.risk.kill_switch.engaged": "kill_switch",
    "trading.exposure.gross": "gross",
    "trading.exposure.net": "net",
}
WORST_OF = frozenset({"drawdown", "kill_switch"})
"""Account keys whose sources (strategies, venues, processes, services) combine as the worst of them, not their sum:
two strategies 5% and 10% down are 10% down (as the dashboards' ``max by (job)``)."""
AVG_PRICE = "trading.position.avg_price"
POSITION = "trading.position.quantity"
LAST_TICK = "trading.marketdata.last_tick"
OPEN_ORDERS = "trading.orders.open"
PARTIAL_FILLS = "trading.orders.partially_filled"
SUBMITTED = "trading.orders.submitted"
FILLED = "trading.orders.filled"
REJECTED = "trading.orders.rejected"
COUNTS = (SUBMITTED, FILLED, REJECTED, PARTIAL_FILLS)  # the counters whose start is the desk's counts_since
LIMITS = "trading.risk.limit.utilization"
UNACKED = "trading.orders.unacknowledged"
UNACKED_AGE = "trading.orders.oldest_unacknowledged.age"
LOOP_STALL = "trading.eventloop.stall"
LATENCIES: dict[str, str] = {
    "trading.order.submit_to_fill.latency": "submit_to_fill",
    "trading.order.submit_to_ack.latency": "submit_to_ack",
    "trading.order.signal_to_submit.latency": "signal_to_submit",
}
SYMBOL_LATENCY = "trading.order.submit_to_fill.latency"
HEALTH_COUNTERS: dict[str, str] = {
    "tradeobs.agent.exports.failed": "exports_failed",
    "tradeobs.agent.logs.dropped": "logs_dropped",
    "tradeobs.agent.items.dropped": "items_dropped",
    "tradeobs.agent.metric.overflow": "series_overflow",
    "tradeobs.live.frames.coalesced": "frames_coalesced",
    "tradeobs.live.clients.rejected": "clients_rejected",
    "tradeobs.live.clients.timed_out": "clients_timed_out",
}
HEALTH_GAUGES: dict[str, str] = {
    "tradeobs.live.clients": "clients",
    "tradeobs.agent.prometheus.port_busy": "prometheus_port_busy",  # this service's /metrics unserved: its port held
}
PNL = ("trading.pnl.realized", "trading.pnl.unrealized")
FRAME_INSTRUMENTS: tuple[str, ...] = (
    *SYMBOL_GAUGES,
    *SYMBOL_COUNTERS,
    *ACCOUNT_GAUGES,
    AVG_PRICE,
    LAST_TICK,
    OPEN_ORDERS,
    PARTIAL_FILLS,
    LIMITS,
    UNACKED,
    UNACKED_AGE,
    LOOP_STALL,
    *LATENCIES,
    *HEALTH_COUNTERS,
    *HEALTH_GAUGES,
)


merged_quantile = bucket_quantile  # the same estimate the registry's histograms give
_INF = float("inf")


class _Direct:
    """What :meth:`FrameBuilder.build` reads when it reads the registry itself: :class:`Snapshot`'s two readers,
    each number point made only as it is read and dropped once added to its row.

    At 1,000 symbols a frame reads some 11,000 points. Held in a snapshot for the whole build they outlived the
    young-generation garbage collections their own allocations set off, so each tick promoted them to the
    oldest generation, and every few ticks that started a full collection of the process (23-35 ms holding the
    GIL, the trading thread's too). Histogram points come from ``reuse`` (kept between ticks: an unchanged
    series gives the same point again), so they are not new either.
    """

    __slots__ = ("_get", "_offer", "_reuse")

    def __init__(
        self,
        registry: Registry,
        reuse: dict[str, dict[Any, HistogramPoint]],
        offer: Callable[[], None] | None = None,
    ) -> None:
        self._get = registry.get
        self._reuse = reuse
        self._offer = offer

    def numbers(self, name: str) -> Iterator[NumberPoint]:
        inst = self._get(name)
        if inst is None or isinstance(inst, Histogram):
            return iter(())
        points: Iterator[NumberPoint] = inst.points()
        return points if self._offer is None else _offering(points, self._offer)

    def histogram(self, name: str) -> HistogramFamily | None:
        inst = self._get(name)
        if not isinstance(inst, Histogram):
            return None
        return inst.family(self._reuse.setdefault(name, {}), self._offer)


class _Offering:
    """A given snapshot (a worker group's, merged) read as :class:`_Direct` reads the registry: its number points
    with ``offer`` called every 64 of them, so a build from it on a background thread (the group's leader) gives
    the GIL back as often as one from the registry."""

    __slots__ = ("_offer", "_snap")

    def __init__(self, snapshot: Snapshot, offer: Callable[[], None]) -> None:
        self._snap = snapshot
        self._offer = offer

    def numbers(self, name: str) -> Iterator[NumberPoint]:
        return _offering(iter(self._snap.numbers(name)), self._offer)

    def histogram(self, name: str) -> HistogramFamily | None:
        return self._snap.histogram(name)


def _offering(points: Iterator[NumberPoint], offer: Callable[[], None]) -> Iterator[NumberPoint]:
    """``points``, with ``offer`` called every 64 of them (:meth:`FrameBuilder.build` off the event loop)."""
    for n, p in enumerate(points, 1):
        if not n & 63:
            offer()
        yield p


class FrameBuilder:
    """Reads the registry and returns the whole trading state as plain dicts (one per tick)."""

    def __init__(self, registry: Registry, bus: Any = None, trading_day: TradingDay = LOCAL_MIDNIGHT) -> None:
        self.registry = registry
        self.trading_day = trading_day  # when the day's P&L starts (the trading_day_start setting)
        self.bus = bus
        self._cpu_last: tuple[float, float] | None = None
        self._system: dict[str, Any] = {}
        self._system_at = 0.0
        self._reuse: dict[str, dict[Any, HistogramPoint]] = {}  # unchanged latency series are not copied per tick
        self._qcache: dict[tuple[str, str], tuple[tuple[int, int], dict[str, float | None]]] = {}
        self._sums: dict[str, tuple[Sequence[HistogramPoint], list[int]]] = {}  # latency family -> its counts
        # Built from snapshots (a worker group's leader): the rows of the symbols whose series did not change are kept
        self._rows = Rows(SYMBOL_GAUGES, SYMBOL_COUNTERS, AVG_PRICE, POSITION, LAST_TICK, SYMBOL_LATENCY)
        self._without_symbol: dict[str, float] = {}  # the last build's series without a symbol, by row key
        self._orders_at: deque[tuple[float, float, float]] = deque()  # (monotonic, decided, rejected), 1/s
        # The last reject rate's counts: (decided, rejected) within its window, and the window's seconds. The NATS
        # publisher sends them so the fleet gateway recomputes the fleet's rate from counts (a mean of rates is wrong).
        self.reject_counts: tuple[float, float, float] = (0.0, 0.0, 0.0)
        # The counts count from the registry's start (the agent's init); a build from snapshots (a worker group's,
        # merged) from the earliest start of their count series when that is earlier (a worker started before this
        # one, the counts of exited workers).
        self._counts_since: float = registry.start_ns / 1e9
        # Day P&L: the total at the start of the trading day, or at this builder's creation if that was later.
        now = time.time()
        self._day = trading_day.day(now)
        self._day_since = now
        self._day_full = False
        self._day_began: tuple[Any, float] = (None, 0.0)  # (day, its start) for day_pnl = "reported"
        self._built_at: float | None = None  # time.time() of the last build (a day is full if one ran up to midnight)
        # The P&L reported before this builder was made is not the day's: the registry's writes still in the trading
        # journal are applied first (read without them, the P&L of the last 0.2 s before was counted as today's).
        flush = getattr(registry, "flush", None)
        if flush is not None:
            flush()
        self._day_base: float | None = self._total_pnl(registry.snapshot(tuple(PNL), prepare=False))
        # The reject rate's first sample: the orders decided and rejected when this builder was made (the live view
        # is made at start-up, its frames begin with the first client), so the first frame's rate covers what was
        # decided since, as the Prometheus rule's would. Used by a build that reads this registry itself only (a
        # group's leader and the NATS publisher build from snapshots whose totals are not this registry's).
        self._orders_seed: tuple[float, float, float] | None = (
            time.monotonic(),
            *self._decided(_Direct(registry, {})),  # point by point, as a frame reads them
        )

    def build(
        self,
        extra_health: Mapping[str, Any] | None = None,
        working: WorkingOrders | None = None,
        snapshot: Snapshot | None = None,
        offer: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """The whole state from one registry snapshot of the frame's instruments (or from ``snapshot``: in a
        worker group, every worker's snapshot merged), plus ``working`` orders.

        It does not apply pending trading writes itself: the producer runs on the trading event loop and wakes the
        journal's applier instead, so a frame shows what was applied by then. Without ``snapshot`` it reads each
        instrument's points one at a time (:class:`_Direct`); each series is read consistently, as a snapshot's.
        From snapshots it keeps the rows of the symbols whose series did not change (:class:`.rows.Rows`).
        ``offer``, called every few dozen points and symbols, lets a build on a background thread give the GIL
        back to the trading thread (``_internal.gil.Slices.offer``; the live hub builds there at 1,000 symbols).
        """
        snap: Snapshot | _Direct | _Offering
        now = time.time()
        if snapshot is None:
            snap = _Direct(self.registry, self._reuse, offer)
            hists = {name: snap.histogram(name) for name in LATENCIES}
            symbols, md_age = self._walk_rows(snap, hists[SYMBOL_LATENCY], now, offer)
        else:
            symbols, md_age = self._rows.build(snapshot, now, self._quantiles, offer)
            self._without_symbol = self._rows.without_symbol()
            snap = snapshot if offer is None else _Offering(snapshot, offer)
            hists = {name: snap.histogram(name) for name in LATENCIES}
        latency: dict[str, dict[str, float | None]] = {}
        for name, key in LATENCIES.items():
            fam = hists[name]
            if fam is None:
                continue
            if offer is not None:
                offer()
            latency[key] = self._quantiles(name, "", fam.bounds, fam.points, offer)
        account: dict[str, Any] = {}
        for name, key in ACCOUNT_GAUGES.items():
            vals = [p.value for p in snap.numbers(name)]
            if vals:
                # Equity and exposure add up over strategies and venues; drawdown and the kill switch are the worst
                # of them (WORST_OF): two strategies 5% and 10% down were 15%.
                account[key] = max(vals) if key in WORST_OF else sum(vals)
        self._pnl(symbols, now, account)
        seed, self._orders_seed = self._orders_seed, None
        desk = self._desk(snap, symbols, md_age, seed if snapshot is None else None)
        since = self._counts_since
        if snapshot is not None:
            first = min((p.start_ns for name in COUNTS for p in snap.numbers(name)), default=None)
            if first is not None and first / 1e9 < since:
                since = first / 1e9
        desk["counts_since"] = round(since, 3)
        if working is not None:
            desk["working"] = len(working)
            if working.dropped:
                desk["working_dropped"] = working.dropped
        health: dict[str, Any] = {}
        for name, key in (*HEALTH_COUNTERS.items(), *HEALTH_GAUGES.items()):
            health[key] = sum(p.value for p in snap.numbers(name))
        if self.bus is not None:
            health["events_evicted"] = getattr(self.bus, "evicted", 0)
        if extra_health:
            health.update(extra_health)
        return {
            "symbols": symbols,
            "account": account,
            "desk": desk,
            "working": working.frame(WORKING_IN_FRAME) if working is not None else {},
            "latency": latency,
            "health": health,
            "system": self.system(),
        }

    def _walk_rows(
        self, snap: _Direct, fam: HistogramFamily | None, now: float, offer: Callable[[], None] | None
    ) -> tuple[dict[str, dict[str, Any]], float | None]:
        """Per-symbol rows read from the registry, one point at a time (a build from a snapshot keeps its rows
        instead: :class:`.rows.Rows`, which makes each row exactly so); the newest tick's age."""
        symbols: dict[str, dict[str, Any]] = {}
        rest: dict[str, float] = {}  # the series without a symbol, by row key: what the desk totals add
        self._without_symbol = rest

        def row(sym: Any) -> dict[str, Any]:
            key = str(sym)
            r = symbols.get(key)
            if r is None:
                r = symbols[key] = {}
            return r

        for name, key in SYMBOL_GAUGES.items():
            for p in snap.numbers(name):
                sym = p.attributes.get("symbol")
                if sym is not None:
                    r = row(sym)
                    r[key] = p.value if key == "px" else r.get(key, 0) + p.value
        for name, key in SYMBOL_COUNTERS.items():
            for p in snap.numbers(name):
                sym = p.attributes.get("symbol")
                if sym is not None:
                    r = row(sym)
                    r[key] = r.get(key, 0) + p.value
                else:
                    rest[key] = rest.get(key, 0) + p.value
        self._avg_prices(snap, row)
        md_age = self._ticks(snap, now, row)
        if fam is not None:  # SYMBOL_LATENCY's
            groups: dict[str, list[HistogramPoint]] = {}
            for i, hp in enumerate(fam.points):
                sym = hp.attributes.get("symbol")
                if sym is not None:
                    groups.setdefault(str(sym), []).append(hp)
                if offer is not None and not i & 255:
                    offer()
            for i, (sym, group) in enumerate(groups.items()):
                row(sym).update(self._quantiles(SYMBOL_LATENCY, sym, fam.bounds, group))
                if offer is not None and not i & 63:
                    offer()
        return symbols, md_age

    @staticmethod
    def _avg_prices(snap: Any, row: Any) -> None:
        """``avg`` per symbol: one series as reported, unless its position is flat; several (strategies) the cost
        over the quantity when all are on one side (:func:`~tradeobs_agent.metrics.snapshot.entry_price`: none for
        a long and a short, or when all are flat). A flat position has no average entry, whatever it last
        reported."""
        points = iter(snap.numbers(AVG_PRICE))
        first_point = next(points, None)
        if first_point is None:
            return
        qty = {p.key: p.value for p in snap.numbers(POSITION)}
        acc: dict[str, tuple[list[float], list[float | None]]] = {}
        for p in chain((first_point,), points):
            sym = p.attributes.get("symbol")
            if sym is None:
                continue
            a = acc.get(str(sym))
            if a is None:
                acc[str(sym)] = ([p.value], [qty.get(p.key)])
            else:
                a[0].append(p.value)
                a[1].append(qty.get(p.key))
        for sym, (prices, quantities) in acc.items():
            if len(prices) == 1:
                if quantities[0] != 0:  # known to be flat (an avg with no position series is shown as reported)
                    row(sym)["avg"] = prices[0]
            else:
                avg = entry_price(prices, [q or 0.0 for q in quantities])
                if avg is not None:
                    row(sym)["avg"] = exact(avg)

    @staticmethod
    def _ticks(snap: Any, now: float, row: Any) -> float | None:
        """``age`` per symbol (whole seconds: unchanged, so not in a delta, while ticks flow); the newest tick's age."""
        newest: float | None = None
        for p in snap.numbers(LAST_TICK):
            sym = p.attributes.get("symbol")
            if sym is None:
                continue
            t = p.value
            age = int(now - t) if now > t else 0
            r = row(sym)
            old = r.get("age")
            r["age"] = age if old is None else min(old, age)
            if newest is None or t > newest:
                newest = t
        return None if newest is None else round(max(0.0, now - newest), 1)

    def day_from_first_frame(self) -> None:
        """The frames are built from snapshots of other registries too (a worker group's, merged): the day's P&L
        starts at the first frame, not at this registry's total when the builder was made. Against one worker's
        total at its start, two workers whose P&L had not moved showed 4,993,596 of 4,995,000 as today's."""
        self._day_base = None

    def _pnl(self, symbols: Mapping[str, Mapping[str, Any]], now: float, account: dict[str, Any]) -> None:
        built_at, self._built_at = self._built_at, now
        rp = up = 0.0
        seen = False
        for r in symbols.values():
            a = r.get("rpnl")
            b = r.get("upnl")
            if a is not None:
                rp += a
                seen = True
            if b is not None:
                up += b
                seen = True
        if not seen:
            if self._day_base is None:  # no P&L in the group's first frame: the day's starts from 0
                self._day, self._day_since, self._day_base = self.trading_day.day(now), now, 0.0
            return
        total = rp + up
        day = self.trading_day.day(now)
        if self._day_base is None:  # frames of a worker group: the day's P&L starts at the group's first frame
            self._day, self._day_since, self._day_full, self._day_base = day, now, False, total
        elif day < self._day and built_at is not None and built_at - now <= DAY_STEP_BACK:
            # The wall clock stepped back across the day's start (00:00:30 read as 23:59:30): still the same day.
            # Taken as a new day, the P&L since midnight was dropped from "P&L today" and the day started once more
            # at the next midnight, labelled as starting yesterday at 23:59.
            pass
        elif day != self._day:
            # A new trading day: its P&L starts here. It is the whole day's only if a frame was built up to the day's
            # start: frames are built while clients watch, and a first client at 09:00 after a night without one
            # got the P&L since 09:00 shown as "P&L today".
            start = self.trading_day.start(day)
            full = built_at is not None and built_at >= start - DAY_FULL_WITHIN
            self._day, self._day_since, self._day_full, self._day_base = day, now, full, total
        account["pnl"] = exact(total)
        account["rpnl"] = exact(rp)
        account["upnl"] = exact(up)
        if self.trading_day.pnl_reported:
            # day_pnl = "reported": the service resets its P&L when the day starts (a broker's day P&L), so its P&L
            # is the day's. The difference went to minus the previous day's total: the first frame of the day took
            # the P&L before the service's reset as the day's start.
            account["pnl_day"] = exact(total)
            if self._day_began[0] != self._day:  # TradingDay.start() costs a zoneinfo lookup: once a day, not a frame
                self._day_began = (self._day, round(self.trading_day.start(self._day), 3))
            account["day_since"] = self._day_began[1]
            account["day_full"] = True
            account["day_pnl"] = "reported"
        else:
            account["pnl_day"] = exact(total - self._day_base)
            account["day_since"] = round(self._day_since, 3)
            account["day_full"] = self._day_full
        if not self.trading_day.is_local_midnight:  # the page says since when, in the desk's zone
            account["day_start"] = self.trading_day.label
            if self.trading_day.zone:
                account["day_tz"] = self.trading_day.zone

    @staticmethod
    def _total_pnl(snap: Any) -> float:
        return float(sum(p.value for name in PNL for p in snap.numbers(name)))

    @staticmethod
    def _decided(snap: Any) -> tuple[float, float]:
        """(orders decided: submitted + rejected at risk, orders rejected) in ``snap``, as the frame's desk counts."""
        decided = rejected = 0.0
        for p in snap.numbers(SUBMITTED):
            decided += p.value
        for p in snap.numbers(REJECTED):
            rejected += p.value
            if p.attributes.get("stage") == "risk":
                decided += p.value
        return decided, rejected

    def _desk(
        self,
        snap: Any,
        symbols: Mapping[str, Mapping[str, Any]],
        md_age: float | None,
        seed: tuple[float, float, float] | None = None,
    ) -> dict[str, Any]:
        desk: dict[str, Any] = {}
        opened = list(snap.numbers(OPEN_ORDERS))
        if opened:
            desk["open"] = sum(p.value for p in opened)
        # The rows' sums and the series without a symbol: past max_series a counter's new attribute sets go to
        # its overflow series, whose orders belong to no row but are the desk's all the same.
        rest = self._without_symbol
        submitted = float(sum(r.get("ord", 0) for r in symbols.values()) + rest.get("ord", 0))
        filled = sum(r.get("fill", 0) for r in symbols.values()) + rest.get("fill", 0)
        rejected = 0.0
        at_risk = 0.0  # rejected before they were submitted: not in `submitted`
        reasons: dict[str, float] = {}
        for p in snap.numbers(REJECTED):
            rejected += p.value
            if p.attributes.get("stage") == "risk":
                at_risk += p.value
            reason = str(p.attributes.get("reason", ""))
            reasons[reason] = reasons.get(reason, 0) + p.value
        partial = sum(p.value for p in snap.numbers(PARTIAL_FILLS))
        desk["orders"] = submitted
        desk["fills"] = filled + partial
        desk["rejects"] = rejected
        if reasons:
            desk["reasons"] = reasons
        rate, window = self._reject_rate(submitted + at_risk, rejected, seed)
        desk["reject_rate"] = rate
        desk["reject_window"] = window
        limits: dict[str, float] = {}
        points = list(snap.numbers(LIMITS))
        strategies = {p.attributes.get("strategy") for p in points}
        for p in points:
            name = str(p.attributes.get("limit", ""))
            if len(strategies) > 1:
                name = f"{p.attributes.get('strategy')}/{name}"
            v = _r(p.value) or 0.0
            limits[name] = v if name not in limits else max(limits[name], v)  # the worst of the strategy's venues
        if limits:
            desk["limits"] = limits
        if md_age is not None:
            desk["md_age"] = md_age
            desk["stale"] = sum(1 for r in symbols.values() if r.get("age", 0) >= STALE_AFTER)
        self._waiting(snap, desk)
        return desk

    @staticmethod
    def _waiting(snap: Any, desk: dict[str, Any]) -> None:
        """``unacked``, ``unacked_age``, ``stall`` (and ``stall_pid``): what the agent's gauges said at the last
        collection; each only when its gauge has a series."""
        n: float | None = None
        for p in snap.numbers(UNACKED):
            n = p.value if n is None else n + p.value
        if n is not None:
            desk["unacked"] = n
        oldest = max((p.value for p in snap.numbers(UNACKED_AGE)), default=None)
        if oldest is not None:
            desk["unacked_age"] = round(oldest, 1)
        worst: NumberPoint | None = None
        for p in snap.numbers(LOOP_STALL):
            if worst is None or p.value > worst.value:
                worst = p
        if worst is not None:
            desk["stall"] = round(worst.value, 1)
            pid = worst.attributes.get("pid")
            if pid is not None and worst.value > 0:
                desk["stall_pid"] = pid

    def _reject_rate(
        self, decided: float, rejected: float, seed: tuple[float, float, float] | None = None
    ) -> tuple[float | None, float]:
        """Rejected / decided (submitted + rejected at risk) over the last :data:`REJECT_WINDOW` seconds seen
        (sampled once a second; ``seed``: the first sample, taken when the builder was made)."""
        mono = time.monotonic()
        hist = self._orders_at
        if seed is not None and not hist and seed[1] <= decided and seed[2] <= rejected:
            hist.append(seed)
        if not hist or mono - hist[-1][0] >= 1.0:
            hist.append((mono, decided, rejected))
        while len(hist) > 1 and hist[1][0] <= mono - REJECT_WINDOW:
            hist.popleft()
        t0, d0, r0 = hist[0]
        window = round(min(REJECT_WINDOW, mono - t0))
        n = decided - d0
        self.reject_counts = (n, rejected - r0, window)
        return (_r((rejected - r0) / n) if n > 0 else None), window

    def _quantiles(
        self,
        name: str,
        group: str,
        bounds: tuple[float, ...],
        points: Sequence[HistogramPoint],
        offer: Callable[[], None] | None = None,
    ) -> dict[str, float | None]:
        """p50/p99 of the merged ``points``, recomputed only when a series recorded something.

        Counts only grow, so an unchanged ``(series, total count)`` means nothing changed; at
        1,000 symbols most groups are unchanged in a 100 ms tick and cost one ``sum`` each.
        """
        sig = (len(points), sum(map(_OBSERVED, points)))
        cached = self._qcache.get((name, group))
        if cached is not None and cached[0] == sig:
            return cached[1]
        counts = self._counts(name, group, len(bounds) + 1, points)
        if offer is not None:
            offer()
        # The smallest and largest as a running compare from +-inf would find them (a NaN is never either)
        lo = min(chain((_INF,), (p.min for p in points)))
        hi = max(chain((-_INF,), (p.max for p in points)))
        out = {
            "p50": _r(merged_quantile(bounds, counts, lo, hi, 0.5)),
            "p99": _r(merged_quantile(bounds, counts, lo, hi, 0.99)),
        }
        if len(self._qcache) > 100_000:  # symbols come and go; never let the cache grow without bound
            self._qcache.clear()
        self._qcache[(name, group)] = (sig, out)
        return out

    def _counts(self, name: str, group: str, n: int, points: Sequence[HistogramPoint]) -> list[int]:
        """The bucket counts of ``points``, summed bucket by bucket at C speed (whole numbers: in any order, the
        same sums). For a whole family (``group`` ""), the sum is kept: next time, only the points that are not
        the ones at their place last time are taken out and put in (a merged snapshot or the registry's reused
        points keep an unchanged series' point), so a fill costs a few points' counts, not 2,000 series'."""
        kept = self._sums.get(name) if not group else None
        if kept is not None and len(kept[0]) == len(points):
            old, counts = kept
            changed = [i for i, (a, b) in enumerate(zip(points, old, strict=True)) if a is not b]
            if len(changed) * 4 <= len(points):
                for i in changed:
                    counts = list(map(operator.sub, map(operator.add, counts, points[i].counts), old[i].counts))
                self._sums[name] = (points, counts)
                return counts
        counts = [sum(c) for c in zip(*[p.counts for p in points], strict=False)] if points else [0] * n
        if not group:
            self._sums[name] = (points, counts)
        return counts

    def system(self) -> dict[str, Any]:
        """Process CPU % and RSS, refreshed at most once a second (cheap: ``os.times`` and ``/proc``)."""
        now = time.monotonic()
        if now - self._system_at < 1.0 and self._system:
            return self._system
        t = os.times()
        cpu = t.user + t.system
        out: dict[str, Any] = {"pid": os.getpid()}
        if self._cpu_last is not None:
            dt = now - self._cpu_last[0]
            if dt > 0:
                out["cpu_pct"] = round(100.0 * (cpu - self._cpu_last[1]) / dt, 1)
        self._cpu_last = (now, cpu)
        rss = _rss_bytes()
        if rss is not None:
            out["rss_mb"] = round(rss / 1048576, 1)
        self._system, self._system_at = out, now
        return out


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def delta(prev: Mapping[str, Any], cur: Mapping[str, Any]) -> dict[str, Any]:
    """What changed from ``prev`` to ``cur``: per section, only changed keys; symbols only if changed.

    A client applies it by merging section by section (``symbols`` one level deeper). A key that is gone is sent
    as ``None`` (JSON ``null``) at the level it is merged at: a section's key, a symbol, a symbol's field, and in
    the :data:`KEYED` sections (``working``) a row, where a changed row is sent whole. So ``None`` in a delta
    always means "delete this key"; a ``None`` value in a full frame (``desk.reject_rate``, a ``p50`` with
    nothing recorded) means no value, the same as an absent key, and a key that becomes ``None`` is deleted too.

    Only what changed costs anything: a removed symbol is looked for only when fewer of ``prev``'s symbols are
    in ``cur`` than ``prev`` has, a removed field only in a changed row.
    """
    out: dict[str, Any] = {}
    psyms: Mapping[str, Mapping[str, Any]] = prev.get("symbols", {})
    csyms: Mapping[str, Mapping[str, Any]] = cur.get("symbols", {})
    syms: dict[str, Any] = {}
    new = 0
    for sym, row in csyms.items():
        old = psyms.get(sym)
        if old is None:
            syms[sym] = row
            new += 1
        elif old is not row and old != row:  # a row kept from the frame before is the same object
            syms[sym] = changed_fields(old, row)  # a field gone: avg when the position went flat
    if len(psyms) > len(csyms) - new:  # some of prev's symbols are not in cur
        syms.update(dict.fromkeys(s for s in psyms if s not in csyms))
    out["symbols"] = syms
    for section in SECTIONS:
        a: Mapping[str, Any] = prev.get(section, {})
        changed = changed_fields(a, cur.get(section, {}))
        if changed:
            out[section] = changed
    for section in KEYED:
        before: Mapping[str, Any] = prev.get(section, {})
        now: Mapping[str, Any] = cur.get(section, {})
        rows: dict[str, Any] = {k: v for k, v in now.items() if before.get(k) is not v and before.get(k) != v}
        for k in before:
            if k not in now:
                rows[k] = None
        if rows:
            out[section] = rows
    return out


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A row's delta: ``new``'s fields that differ from ``old``'s, and each field ``old`` had and ``new`` has not as
    ``None`` (deleted, see :func:`delta`)."""
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    if not new.keys() >= old.keys():
        changed.update(dict.fromkeys(old.keys() - new.keys()))
    return changed


def select_symbols(symbols: Mapping[str, Mapping[str, Any]], limit: int) -> Iterable[str]:
    """The first ``limit`` symbols in name order (history keeps chart points for these only)."""
    return sorted(symbols)[:limit]
