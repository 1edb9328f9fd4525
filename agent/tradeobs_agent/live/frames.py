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
realized/unrealized P&L, ``ord``/``fill``/``rej`` order counts,
``p50``/``p99`` submit-to-fill latency in seconds.
"""

from __future__ import annotations

import operator
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..metrics import HistogramPoint, Registry, bucket_quantile

__all__ = ["FrameBuilder", "delta", "merged_quantile"]

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
}
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
HEALTH_GAUGES: dict[str, str] = {"tradeobs.live.clients": "clients"}
FRAME_INSTRUMENTS: tuple[str, ...] = (
    *SYMBOL_GAUGES,
    *SYMBOL_COUNTERS,
    *ACCOUNT_GAUGES,
    *LATENCIES,
    *HEALTH_COUNTERS,
    *HEALTH_GAUGES,
)


merged_quantile = bucket_quantile  # the same estimate the registry's histograms give


class _Merge:
    __slots__ = ("counts", "hi", "lo")

    def __init__(self, n: int) -> None:
        self.counts = [0] * n
        self.lo = float("inf")
        self.hi = float("-inf")

    def add(self, counts: Sequence[int], lo: float, hi: float) -> None:
        self.counts = list(map(operator.add, self.counts, counts))
        if lo < self.lo:
            self.lo = lo
        if hi > self.hi:
            self.hi = hi


def _r(v: float | None) -> float | None:
    """Round for the wire: 6 significant digits are plenty for a chart and keep frames small."""
    if v is None:
        return None
    return float(f"{v:.6g}")


class FrameBuilder:
    """Reads the registry and returns the whole trading state as plain dicts (one per tick)."""

    def __init__(self, registry: Registry, bus: Any = None) -> None:
        self.registry = registry
        self.bus = bus
        self._cpu_last: tuple[float, float] | None = None
        self._system: dict[str, Any] = {}
        self._system_at = 0.0
        self._qcache: dict[tuple[str, str], tuple[tuple[int, int], dict[str, float | None]]] = {}

    def build(self, extra_health: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The whole state from one registry snapshot of the frame's instruments.

        The snapshot does not apply pending trading writes itself (``prepare=False``): the producer runs on the
        trading event loop and wakes the journal's applier instead, so a frame shows what was applied by then.
        """
        snap = self.registry.snapshot(FRAME_INSTRUMENTS, prepare=False)
        symbols: dict[str, dict[str, Any]] = {}

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
        latency: dict[str, dict[str, float | None]] = {}
        for name, key in LATENCIES.items():
            fam = snap.histogram(name)
            if fam is None:
                continue
            latency[key] = self._quantiles(name, "", fam.bounds, fam.points)
            if name == SYMBOL_LATENCY:
                groups: dict[str, list[HistogramPoint]] = {}
                for hp in fam.points:
                    sym = hp.attributes.get("symbol")
                    if sym is not None:
                        groups.setdefault(str(sym), []).append(hp)
                for sym, group in groups.items():
                    row(sym).update(self._quantiles(name, sym, fam.bounds, group))
        account: dict[str, Any] = {}
        for name, key in ACCOUNT_GAUGES.items():
            vals = [p.value for p in snap.numbers(name)]
            if vals:
                account[key] = sum(vals) if key != "kill_switch" else max(vals)
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
            "latency": latency,
            "health": health,
            "system": self.system(),
        }

    def _quantiles(
        self, name: str, group: str, bounds: tuple[float, ...], points: Sequence[HistogramPoint]
    ) -> dict[str, float | None]:
        """p50/p99 of the merged ``points``, recomputed only when a series recorded something.

        Counts only grow, so an unchanged ``(series, total count)`` means nothing changed; at
        1,000 symbols most groups are unchanged in a 100 ms tick and cost one ``sum`` each.
        """
        sig = (len(points), sum(p.observed for p in points))
        cached = self._qcache.get((name, group))
        if cached is not None and cached[0] == sig:
            return cached[1]
        m = _Merge(len(bounds) + 1)
        for p in points:
            m.add(p.counts, p.min, p.max)
        out = {
            "p50": _r(merged_quantile(bounds, m.counts, m.lo, m.hi, 0.5)),
            "p99": _r(merged_quantile(bounds, m.counts, m.lo, m.hi, 0.99)),
        }
        if len(self._qcache) > 100_000:  # symbols come and go; never let the cache grow without bound
            self._qcache.clear()
        self._qcache[(name, group)] = (sig, out)
        return out

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

    A client applies it by merging section by section (``symbols`` one level deeper).
    Symbols that disappeared are not signalled; the next periodic full frame drops them.
    """
    out: dict[str, Any] = {}
    psyms: Mapping[str, Mapping[str, Any]] = prev.get("symbols", {})
    syms: dict[str, Any] = {}
    for sym, row in cur.get("symbols", {}).items():
        old = psyms.get(sym)
        if old is None:
            syms[sym] = row
        elif old != row:
            syms[sym] = {k: v for k, v in row.items() if old.get(k) != v}
    out["symbols"] = syms
    for section in ("account", "latency", "health", "system"):
        a: Mapping[str, Any] = prev.get(section, {})
        changed = {k: v for k, v in cur.get(section, {}).items() if a.get(k) != v}
        if changed:
            out[section] = changed
    return out


def select_symbols(symbols: Mapping[str, Mapping[str, Any]], limit: int) -> Iterable[str]:
    """The first ``limit`` symbols in name order (history keeps chart points for these only)."""
    return sorted(symbols)[:limit]
