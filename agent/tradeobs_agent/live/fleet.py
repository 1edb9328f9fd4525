"""The fleet view: the latest frame of every instance, merged into one live state, per service and strategy.

>>> view = FleetView()
>>> view.update({"service": "risk", "instance": "a", "seq": 1, "ts": 1.0,
...              "state": {"symbols": {"AAPL": {"pos": 100}}, "account": {"equity": 10.0}}}, received=1.0)
True
>>> state = view.build(now=1.0)
>>> state["symbols"]["AAPL"]["pos"], state["account"]["equity"], state["services"]["risk"]["instances"]
(100, 10.0, 1)

The gateway (:mod:`.gateway`) feeds it the frames agents publish (:mod:`.nats`) and its hub calls
:meth:`FleetView.build` once per tick, exactly where an agent's hub reads its registry, so the frame has the
same sections as an agent's (``symbols``, ``account``, ``desk``, ``working``, ``latency``, ``health``, ``system``)
plus two:

* ``services``: one row per ``service.name``: instances (and how many are stale), orders, fills, rejects,
  equity, P&L, worst drawdown, kill switch, submit-to-fill p50/p99, NATS drops, age of the newest frame;
* ``strategies``: one row per ``service/strategy``: orders, fills, rejects, P&L, notional, equity,
  drawdown, kill switch.

How values merge over instances (and the top-level sections are fleet totals):

* counts, positions, notional, P&L (total, realized, unrealized, today's), exposure (gross, net), equity and health
  counters add up; ``px`` is the newest instance's; ``drawdown`` is the worst (max) and ``kill_switch`` is engaged
  if any instance's is; ``account.day_since`` is the latest instance's (``day_full`` if every one's is full);
  ``day_start``/``day_tz`` (their ``trading_day_start``) are the instances' when they agree, else ``day_start`` is
  ``"mixed"`` (and ``day_full`` false: the sum is no one day's P&L);
* per symbol, ``avg`` is the instances' ``avg`` weighted by their |position| over strategies (cost over quantity,
  as an agent weighs its strategies and its workers; one instance's as reported; none when instances hold the symbol
  on both sides) and ``age`` is the freshest;
* ``desk``: open orders, orders, fills, rejects (and by reason), working orders add up; ``counts_since`` is the
  earliest instance's (no order before it is counted) and ``counts_since_last`` the latest one's when an instance
  started counting later (a second or more: its orders before then are not in the sums); the 5-minute reject rate is
  recomputed from the instances' window counts (rejected / decided over the fleet, decided = submitted + rejected
  at risk as in the agent's own rate; ``reject_window`` the longest
  instance window); risk ``limits`` are keyed ``service/strategy/limit`` (the worst instance of a service);
  ``md_age`` is the worst (max) and ``stale`` counts the union of the instances' stale symbols; orders waiting
  for the venue (``unacked``) add up, and their oldest age (``unacked_age``) and the event loop's ``stall`` are the
  worst instance's (``stall_at``: its ``service/instance`` while it is above 0);
* ``working``: the union of the instances' working orders, keyed ``service/instance/order id`` (``id`` and ``sv``
  in the row name the order and its service), the oldest :data:`.frames.WORKING_IN_FRAME`;
* latency quantiles are exact: agents publish each latency histogram's merged bucket counts and the
  view adds the buckets before interpolating (instances with other bucket bounds are left out and
  counted in ``health.latency_unmerged``). A symbol traded in several instances shows the highest
  of their per-symbol p50/p99 (an upper bound: per-symbol buckets are not published, to keep frames small);
* an instance whose newest frame is older than ``stale_after`` counts as stale (still in the totals, with
  its last state); past ``expire_after`` it leaves the view;
* ``health.clients``, ``frames_coalesced``, ``clients_rejected`` and ``clients_timed_out`` are the gateway's
  own (its stream's clients), and ``health.gateway`` has its NATS counters; the other health keys add up the
  instances'.

Deltas (:func:`fleet_delta`) are an agent frame's deltas (so whatever is gone, a working order, a symbol of an
instance that expired, a field, is sent as ``null``) plus, for ``services`` and ``strategies``, what ``symbols``
gets (a new row whole, a changed row's changed fields and each field it lost as ``null``) and each removed row as
``null``.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Mapping
from typing import Any, TypeGuard

from ..metrics import Registry, bucket_quantile
from ..metrics.snapshot import entry_price
from .frames import STALE_AFTER, WORKING_IN_FRAME, WORST_OF, FrameBuilder, changed_fields, delta
from .hub import _clean
from .rows import exact

__all__ = ["KEYED", "FleetView", "fleet_delta"]

KEYED = ("services", "strategies")
_OWN_HEALTH = ("clients", "frames_coalesced", "clients_rejected", "clients_timed_out")
_SUM_SYMBOL = ("pos", "ntl", "rpnl", "upnl", "ord", "fill", "rej")
_STRATEGY_KEYS = ("ord", "fill", "rej", "rpnl", "upnl", "ntl", "equity", "drawdown", "kill_switch")
_SUM_ACCOUNT = ("pnl_day", "gross", "net")  # fleet totals only (services rows keep what they had)
_SUM_DESK = ("open", "orders", "fills", "rejects", "working", "working_dropped", "unacked")
_WORST_DESK = ("unacked_age", "stall")  # the oldest unacknowledged order, the most stalled loop: any instance's


def _num(v: Any) -> TypeGuard[int | float]:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _r(v: float | None) -> float | None:
    return None if v is None else float(f"{v:.6g}")


def _tidy(section: dict[str, Any]) -> dict[str, Any]:
    """Sums of floats without their binary noise (10.900000000000002 -> 10.9), in place (:func:`.rows.exact`)."""
    for k, v in section.items():
        if isinstance(v, float):
            section[k] = exact(v)
    return section


class _Hist:
    """Bucket counts added over instances, for one latency (the first instance's bounds are the fleet's)."""

    __slots__ = ("bounds", "counts", "hi", "lo", "skipped")

    def __init__(self) -> None:
        self.bounds: tuple[float, ...] | None = None
        self.counts: list[int] = []
        self.lo, self.hi = float("inf"), float("-inf")
        self.skipped = 0

    def add(self, h: Any) -> None:
        try:
            bounds, counts, lo, hi = tuple(h[0]), h[1], float(h[2]), float(h[3])
        except (TypeError, ValueError, IndexError, KeyError):
            self.skipped += 1
            return
        if self.bounds is None:
            self.bounds, self.counts = bounds, [0] * (len(bounds) + 1)
        if bounds != self.bounds or len(counts) != len(self.counts):
            self.skipped += 1
            return
        self.counts = [a + int(b) for a, b in zip(self.counts, counts, strict=True)]
        self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)

    def quantiles(self) -> dict[str, float | None]:
        if self.bounds is None:
            return {"p50": None, "p99": None}
        b, c = self.bounds, self.counts
        return {
            "p50": _r(bucket_quantile(b, c, self.lo, self.hi, 0.5)),
            "p99": _r(bucket_quantile(b, c, self.lo, self.hi, 0.99)),
        }


class _Instance:
    __slots__ = ("frame", "received", "seq", "service", "ts")

    def __init__(self, frame: Mapping[str, Any], received: float, wall: float) -> None:
        self.frame = frame
        self.received = received  # on the clock ages are measured with (time.monotonic(), unless the caller's)
        self.seq = frame.get("seq", 0)
        self.ts = frame.get("ts", wall)
        self.service = str(frame.get("service", "?"))


class FleetView:
    """The newest frame per ``(service, instance)`` and their merge. One thread (the server's event loop)."""

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        stale_after: float = 5.0,
        expire_after: float = 60.0,
        max_instances: int = 10_000,
    ) -> None:
        if stale_after <= 0 or expire_after < stale_after or max_instances < 1:
            raise ValueError(
                f"need 0 < stale_after <= expire_after and max_instances >= 1, got {stale_after!r}, "
                f"{expire_after!r}, {max_instances!r}"
            )
        self.stale_after, self.expire_after, self.max_instances = stale_after, expire_after, max_instances
        self._instances: dict[tuple[str, str], _Instance] = {}
        self._new_ts: float | None = None
        self.data_ts: float | None = None  # publish time of the oldest frame first shown by the last build()
        self.frames = 0
        self.ignored = 0
        self.ages: list[float] = []  # per build with new frames: how old the oldest was (the gateway drains it)
        self.gateway: dict[str, Any] = {}  # the gateway's own health, shown as health.gateway
        self._system = FrameBuilder(registry if registry is not None else Registry())

    def update(self, frame: Mapping[str, Any], received: float | None = None) -> bool:
        """Keep ``frame`` if it is the newest of its instance; False (counted) if it is older or malformed."""
        if not isinstance(frame, Mapping) or not isinstance(frame.get("state"), Mapping):
            self.ignored += 1
            return False
        key = (str(frame.get("service", "?")), str(frame.get("instance", "?")))
        old = self._instances.get(key)
        if old is None and len(self._instances) >= self.max_instances:  # bounded: a new one waits for room
            self.ignored += 1
            return False
        seq = frame.get("seq", 0)
        if old is not None and _num(seq) and _num(old.seq) and seq <= old.seq:
            return False  # the same frame again (a consumer re-subscribed)
        # Ages (stale, expired) on the monotonic clock: on the wall clock, a gateway's clock stepped back 10 minutes
        # showed an instance that had stopped as live for 10 more minutes, and one stepped forward showed every
        # instance stale at once. ``received`` given: the caller's clock, for both.
        wall = time.time() if received is None else received
        inst = _Instance(frame, time.monotonic() if received is None else received, wall)
        self._instances[key] = inst
        self.frames += 1
        ts = inst.ts if _num(inst.ts) else wall
        self._new_ts = ts if self._new_ts is None else min(self._new_ts, ts)
        return True

    @staticmethod
    def delta(prev: Mapping[str, Any], cur: Mapping[str, Any]) -> dict[str, Any]:
        """The hub sends this instead of an agent frame's delta (see :func:`fleet_delta`)."""
        return fleet_delta(prev, cur)

    def complete(self, since: float, now: float | None = None) -> bool:
        """Whether every live (not stale) instance has sent a frame stamped at or after ``since`` (the agents' wall
        clock); ``now`` on the clock of ``update``'s ``received`` (default: the monotonic clock)."""
        if now is None:
            now = time.monotonic()
        fresh = [i for i in self._instances.values() if now - i.received <= self.stale_after]
        return bool(fresh) and all(_num(i.ts) and i.ts >= since for i in fresh)

    @property
    def instances(self) -> int:
        return len(self._instances)

    def build(self, extra_health: Mapping[str, Any] | None = None, *_: Any, now: float | None = None) -> dict[str, Any]:
        """The merged state (the same sections as an agent's frame, plus ``services`` and ``strategies``)."""
        wall = time.time() if now is None else now  # against the agents' frame times
        now = time.monotonic() if now is None else now  # against ``received``: ages
        for key in [k for k, i in self._instances.items() if now - i.received > self.expire_after]:
            del self._instances[key]
        if self._new_ts is not None:
            self.data_ts, self._new_ts = self._new_ts, None
            if len(self.ages) < 1000:
                self.ages.append(wall - self.data_ts)
        symbols: dict[str, dict[str, Any]] = {}
        sym_src: dict[str, tuple[float, int]] = {}  # symbol -> (ts of its px, instances with it)
        account: dict[str, Any] = {}
        day_starts: set[tuple[Any, Any]] = set()  # (day_start, day_tz) of each instance with a day P&L
        health: dict[str, Any] = {}
        latency: dict[str, _Hist] = {}
        services: dict[str, dict[str, Any]] = {}
        svc_lat: dict[str, _Hist] = {}
        strategies: dict[str, dict[str, Any]] = {}
        desk = _Desk()
        avg: dict[str, tuple[list[float], list[float]]] = {}  # symbol -> each instance's avg and signed weight
        stale = 0
        exports: set[str] = set()
        for (svc, iid), inst in sorted(self._instances.items()):
            f = inst.frame
            st: Mapping[str, Any] = f["state"]
            is_stale = now - inst.received > self.stale_after
            stale += is_stale
            srow = services.setdefault(svc, {"instances": 0, "stale": 0, "age": None})
            srow["instances"] += 1
            srow["stale"] += is_stale
            age = max(0, int(now - inst.received))
            srow["age"] = age if srow["age"] is None else min(srow["age"], age)
            gross = _mapping(_mapping(f.get("desk")).get("gross"))
            self._merge_symbols(symbols, sym_src, _mapping(st.get("symbols")), inst.ts, avg, gross, desk.stale)
            desk.add(svc, iid, f, st)
            for row in _mapping(st.get("symbols")).values():
                for k in ("ord", "fill", "rej", "rpnl", "upnl"):
                    if _num(_mapping(row).get(k)):
                        srow[k] = srow.get(k, 0) + row[k]
            for target in (account, srow):
                _merge_account(target, _mapping(st.get("account")))
            _merge_day(account, _mapping(st.get("account")), day_starts)
            for k, v in _mapping(st.get("health")).items():
                if _num(v):
                    health[k] = health.get(k, 0) + v
                elif k == "export" and isinstance(v, str):
                    exports.add(v)
            pub = _mapping(f.get("pub"))
            dropped = sum(v for k, v in pub.items() if k.startswith("dropped") and _num(v))
            srow["dropped"] = srow.get("dropped", 0) + dropped
            for k, h in _mapping(f.get("hist")).items():
                latency.setdefault(str(k), _Hist()).add(h)
                if k == "submit_to_fill":
                    svc_lat.setdefault(svc, _Hist()).add(h)
            for strategy, row in _mapping(f.get("strategies")).items():
                name = f"{svc}/{strategy}"
                out = strategies.setdefault(name, {"service": svc, "strategy": str(strategy)})
                _merge_account(out, {k: v for k, v in _mapping(row).items() if k in _STRATEGY_KEYS}, add_all=True)
        for svc, h in svc_lat.items():
            services[svc].update(h.quantiles())
        for sym, (prices, weights) in avg.items():
            if len(prices) == 1:
                symbols[sym]["avg"] = prices[0]
            else:
                entry = entry_price(prices, weights)
                if entry is not None:
                    symbols[sym]["avg"] = exact(entry)
        for rows in (symbols, services, strategies):
            for row in rows.values():
                _tidy(row)
        _day_start(account, day_starts)
        _tidy(account)
        health.update(
            services=len(services),
            instances=len(self._instances),
            stale=stale,
            latency_unmerged=sum(h.skipped for h in latency.values()),
            export=_worst_export(exports),
        )
        if extra_health:
            health.update({k: v for k, v in extra_health.items() if k != "export"})
        for k in _OWN_HEALTH:  # the page's "live clients" etc. are this gateway's, not the agents' own streams'
            if k in self.gateway:
                health[k] = self.gateway[k]
        health["gateway"] = dict(self.gateway)
        return {
            "symbols": symbols,
            "account": account,
            "desk": desk.section(),
            "working": desk.working(),
            "latency": {k: h.quantiles() for k, h in latency.items()},
            "health": health,
            "system": self._system.system(),
            "services": services,
            "strategies": strategies,
        }

    @staticmethod
    def _merge_symbols(
        out: dict[str, dict[str, Any]],
        src: dict[str, tuple[float, int]],
        symbols: Mapping[str, Any],
        ts: Any,
        avg: dict[str, tuple[list[float], list[float]]],
        gross: Mapping[str, Any],
        stale: set[str],
    ) -> None:
        """One instance's symbols into the fleet's; its ``avg`` into ``avg`` (symbol -> each instance's avg and
        weight: its |position| over strategies, the publisher's ``gross``, else |net position|, signed as its
        position, which :func:`~tradeobs_agent.metrics.snapshot.entry_price` weighs as :class:`.frames.FrameBuilder`
        weighs strategies); its stale symbols into ``stale``."""
        t = float(ts) if _num(ts) else 0.0
        for sym, row in symbols.items():
            row = _mapping(row)
            sym = str(sym)
            cur = out.setdefault(sym, {})
            seen_ts, count = src.get(sym, (float("-inf"), 0))
            src[sym] = (max(seen_ts, t), count + 1)
            for k, v in row.items():
                if not _num(v):
                    continue
                if k == "px":
                    if t >= seen_ts:
                        cur[k] = v
                elif k in _SUM_SYMBOL:
                    cur[k] = cur.get(k, 0) + v
                elif k in ("p50", "p99"):  # an upper bound when several instances trade the symbol
                    cur[k] = v if cur.get(k) is None else max(cur[k], v)
                elif k == "age":  # the freshest feed of the symbol; stale for the fleet if stale in any instance
                    cur[k] = v if k not in cur else min(cur[k], v)
                    if v >= STALE_AFTER:
                        stale.add(sym)
                elif k == "avg":  # an instance's avg: its strategies are on one side, the side of its position
                    pos = row.get("pos", 0)
                    w = gross.get(sym)
                    if not _num(w):
                        w = pos
                    w = abs(float(w)) if _num(w) else 0.0
                    prices, weights = avg.setdefault(sym, ([], []))
                    prices.append(v)
                    weights.append(-w if _num(pos) and pos < 0 else w)
            if "avg" not in row:
                # strategies of this instance long and short: |position| over them is past |net position|, and the
                # fleet's symbol has no average entry either, as one agent with all of them would show none
                g, pos = gross.get(sym), row.get("pos", 0)
                if _num(g) and _num(pos) and abs(g) > abs(pos) * (1 + 1e-9):
                    prices, weights = avg.setdefault(sym, ([], []))
                    prices += (0.0, 0.0)
                    weights += (1.0, -1.0)  # both sides: entry_price says none


def _mapping(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _merge_account(out: dict[str, Any], account: Mapping[str, Any], add_all: bool = False) -> None:
    for k, v in account.items():
        if not _num(v):
            continue
        if k in WORST_OF:
            out[k] = v if k not in out else max(out[k], v)
        elif add_all or k in ("equity", "rpnl", "upnl", "pnl"):
            out[k] = out.get(k, 0) + v


def _merge_day(out: dict[str, Any], account: Mapping[str, Any], starts: set[tuple[Any, Any]]) -> None:
    """Day P&L and exposure add up; ``day_since`` is the latest instance's start (the sum covers at least that),
    ``day_full`` only if every instance's day P&L is the whole day's; ``starts`` gathers when their days start."""
    if "pnl_day" in account:
        starts.add((account.get("day_start"), account.get("day_tz")))
    for k in _SUM_ACCOUNT:
        v = account.get(k)
        if _num(v):
            out[k] = out.get(k, 0) + v
    since = account.get("day_since")
    if _num(since):
        out["day_since"] = since if "day_since" not in out else max(out["day_since"], since)
    full = account.get("day_full")
    if isinstance(full, bool):
        out["day_full"] = full and out.get("day_full", True)


def _day_start(account: dict[str, Any], starts: set[tuple[Any, Any]]) -> None:
    """The instances' trading day start (``trading_day_start``: ``day_start``, ``day_tz``) when they agree. Where
    they do not (one service at 17:00 New York, one at its server's midnight) the sum of their day P&L is no one
    day's: ``day_start`` is ``"mixed"`` and the day is not said to be full."""
    if len(starts) == 1:
        start, tz = next(iter(starts))
        if isinstance(start, str):
            account["day_start"] = start
        if isinstance(tz, str):
            account["day_tz"] = tz
    elif len(starts) > 1:
        account["day_start"] = "mixed"
        account["day_full"] = False


class _Desk:
    """The ``desk`` section and the ``working`` orders of the fleet, added up instance by instance.

    Counts and rejects by reason add up; the reject rate is the fleet's rejected / decided (submitted + rejected at
    risk) within the instances' windows (their counts, published as ``desk.rw``: a mean of rates would weigh a quiet
    instance like a busy one);
    risk limits are keyed ``service/strategy/limit`` (the worst instance's use when a service runs several); market
    data age is the worst (max) and stale symbols the union of each instance's stale ones; working orders are keyed
    ``service/instance/order id`` (client order ids of two processes may be equal), the oldest
    :data:`.frames.WORKING_IN_FRAME` of them, each with ``id`` (the order's own id) and ``sv`` (its service).
    """

    __slots__ = (
        "counts",
        "limits",
        "md_age",
        "orders",
        "reasons",
        "rw",
        "rw_seen",
        "since",
        "stale",
        "worst",
        "worst_at",
    )

    def __init__(self) -> None:
        self.counts: dict[str, float] = {}
        self.reasons: dict[str, float] = {}
        self.limits: dict[str, float] = {}
        self.rw = [0.0, 0.0, 0.0]  # decided, rejected within the windows; the longest window
        self.rw_seen = False
        self.md_age: float | None = None
        self.stale: set[str] = set()  # filled by FleetView._merge_symbols
        self.orders: list[tuple[float, str, str, str, Any]] = []
        self.since: list[float] = []  # the instances' counts_since
        self.worst: dict[str, float] = {}  # _WORST_DESK: the worst instance's
        self.worst_at: dict[str, str] = {}  # ... and which one (service/instance)

    def add(self, svc: str, inst: str, frame: Mapping[str, Any], state: Mapping[str, Any]) -> None:
        d = _mapping(state.get("desk"))
        extra = _mapping(frame.get("desk"))
        for k in _SUM_DESK:
            v = d.get(k)
            if _num(v):
                self.counts[k] = self.counts.get(k, 0) + v
        for reason, v in _mapping(d.get("reasons")).items():
            if _num(v):
                self.reasons[str(reason)] = self.reasons.get(str(reason), 0) + v
        since = d.get("counts_since")
        if _num(since):
            self.since.append(since)
        rw = extra.get("rw")
        if isinstance(rw, list | tuple) and len(rw) == 3 and all(_num(x) for x in rw):
            self.rw_seen = True
            self.rw[0] += rw[0]
            self.rw[1] += rw[1]
            self.rw[2] = max(self.rw[2], rw[2])
        limits = extra.get("limits")
        for name, v in _mapping(limits if isinstance(limits, Mapping) else d.get("limits")).items():
            if _num(v):
                key = f"{svc}/{name}"
                self.limits[key] = v if key not in self.limits else max(self.limits[key], v)
        md_age = d.get("md_age")
        if _num(md_age):
            self.md_age = md_age if self.md_age is None else max(self.md_age, md_age)
        for k in _WORST_DESK:
            v = d.get(k)
            if _num(v) and (k not in self.worst or v > self.worst[k]):
                self.worst[k] = v
                self.worst_at[k] = f"{svc}/{inst}"
        orders = self.orders  # (sent at, service, instance, id, row): rows are copied only once selected
        for oid, row in _mapping(state.get("working")).items():
            t = row.get("t") if isinstance(row, dict) else None  # a dict (parsed JSON); not the slower ABC check
            orders.append((t if _num(t) else 0.0, svc, inst, str(oid), row))

    def section(self) -> dict[str, Any]:
        out: dict[str, Any] = _tidy(dict(self.counts))
        if self.reasons:
            out["reasons"] = _tidy(self.reasons)
        if self.since:
            out["counts_since"] = min(self.since)
            if max(self.since) - out["counts_since"] >= 1.0:
                out["counts_since_last"] = max(self.since)
        if self.rw_seen:
            decided, rejected, window = self.rw
            out["reject_rate"] = _r(rejected / decided) if decided > 0 else None
            out["reject_window"] = window
        if self.limits:
            out["limits"] = {k: _r(v) for k, v in sorted(self.limits.items())}
        if self.md_age is not None:
            out["md_age"] = self.md_age
            out["stale"] = len(self.stale)
        out.update(self.worst)
        if self.worst.get("stall", 0) > 0:
            out["stall_at"] = self.worst_at["stall"]
        return out

    def working(self) -> dict[str, dict[str, Any]]:
        orders = self.orders
        if len(orders) > WORKING_IN_FRAME:
            orders = heapq.nsmallest(WORKING_IN_FRAME, orders, key=lambda o: o[:4])
        else:
            orders.sort(key=lambda o: o[:4])
        return {f"{svc}/{inst}/{oid}": {**row, "id": oid, "sv": svc} for _, svc, inst, oid, row in orders}


def _worst_export(states: set[str]) -> str:
    """One word for the instances' export states: ``failing`` if any fails, the common one, or ``mixed``."""
    if "failing" in states:
        return "failing"
    if len(states) == 1:
        return next(iter(states))
    return "mixed" if states else "none"


def fleet_delta(prev: Mapping[str, Any], cur: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`.frames.delta`, plus the keyed sections as ``symbols`` are sent (a new row whole, a changed row's
    changed fields and each field it lost as ``None``), and a removed row as ``None``."""
    out = delta(prev, cur)
    for section in KEYED:
        before: Mapping[str, Any] = prev.get(section, {})
        now: Mapping[str, Any] = cur.get(section, {})
        rows: dict[str, Any] = {}
        for k, row in now.items():
            old = before.get(k)
            if old is None:
                rows[k] = row
            elif old != row:
                rows[k] = changed_fields(old, row)  # a field gone: null, as in a symbol's row
        rows.update({k: None for k in before if k not in now})
        if rows:
            out[section] = rows
    return out


def clean_event(payload: Any) -> dict[str, Any] | None:
    """An event from NATS as the stream sends it: a dict without secret-looking keys (``None`` if not a dict)."""
    return _clean(payload) if isinstance(payload, Mapping) else None
