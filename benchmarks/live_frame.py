"""What one live tick costs at 1,000 symbols: building the state, serializing it, and the frames' sizes.

    python benchmarks/live_frame.py [--symbols 1000] [--ticks 200] [--rounds 3] [--before f6a41fa]

The registry holds what a desk trading every symbol reports through ``TradingTelemetry``: per symbol a price,
position, notional, realized and unrealized P&L, average entry price and last-tick time (gauges), orders
submitted and filled (counters, two sides each) and submit-to-fill, submit-to-ack and signal-to-submit latency
histograms (two sides each); per strategy exposure, equity, drawdown, open orders, risk limits. Each tick moves
100 prices (and their ticks' times) and records 20 fills, then builds the state (``FrameBuilder.build``) and
serializes the full frame and the delta (orjson), as the producer does once per tick. It also counts the full
(oldest-generation) garbage collections during the ticks and their length: each holds the GIL, so every thread
of the process, the trading one too, waits for it.

The peer is the same measurement on the package of ``--before`` (``git archive`` of that revision, before
issue 15), in the same run: each round runs both, in fresh processes, one after the other. It uses only
``FrameBuilder(registry).build()`` and ``delta``, which both have. Prints the median and p99 time per tick
(over all rounds) and the frame sizes; not a test.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import time
from typing import Any

from _trees import before_and_now


class Desk:
    """The registry above at ``symbols`` symbols, and :meth:`move`: one tick's 100 prices and 20 fills."""

    def __init__(self, symbols: int, registry: Any = None) -> None:
        from tradeobs_agent.metrics import Registry
        from tradeobs_agent.trading.instruments import SPECS

        self.rng = random.Random(1)
        self.reg = reg = registry if registry is not None else Registry(max_series=100_000)
        # The aggregation TradingTelemetry declares (multi-process mode merges so). A tree older than aggregations
        # (the peer of ``--before``, e.g. the default f6a41fa) has none: its gauges are made as it made them.
        aggregations = hasattr(SPECS[0], "aggregation")
        agg = {spec.name: spec.aggregation for spec in SPECS if spec.kind == "gauge"} if aggregations else {}

        def gauge(name: str) -> Any:  # (a gauge a tree's SPECS do not have yet: summed, the default)
            return reg.gauge(name, aggregation=agg.get(name, "sum")) if aggregations else reg.gauge(name)

        self.syms = [f"S{i:04d}" for i in range(symbols)]
        self.g = {n: gauge(n) for n in (
            "trading.marketdata.price", "trading.position.quantity", "trading.position.notional",
            "trading.pnl.realized", "trading.pnl.unrealized", "trading.position.avg_price",
            "trading.marketdata.last_tick",
        )}  # fmt: skip
        self.sub, self.fil = reg.counter("trading.orders.submitted"), reg.counter("trading.orders.filled")
        self.lat = [
            reg.histogram(n, unit="s")
            for n in (
                "trading.order.submit_to_fill.latency",
                "trading.order.submit_to_ack.latency",
                "trading.order.signal_to_submit.latency",
            )
        ]
        self.px: dict[str, float] = {}
        for s in self.syms:
            self._series(s)
        for name, v in (("trading.exposure.gross", 4e7), ("trading.exposure.net", 1e6), ("trading.equity", 1e6),
                        ("trading.drawdown", 0.01), ("trading.orders.open", 12)):  # fmt: skip
            gauge(name).bind(strategy="momentum").set(v)
        gauge("trading.risk.limit.utilization").bind(strategy="momentum", limit="position").set(0.4)
        # Orders waiting for the venue (two venues) and the loop's stall, as TradingTelemetry sets them at collection
        for venue, n, age in (("X", 3, 12.5), ("Y", 0, 0.0)):
            gauge("trading.orders.unacknowledged").bind(strategy="momentum", venue=venue).set(n)
            gauge("trading.orders.oldest_unacknowledged.age").bind(strategy="momentum", venue=venue).set(age)
        gauge("trading.eventloop.stall").bind().set(0.0)

    def _series(self, s: str) -> None:
        """Every series of symbol ``s``: a price, its tick time, a position and P&L, orders and latency per side."""
        rng, px, g = self.rng, self.px, self.g
        px[s] = 50 + rng.random() * 400
        g["trading.marketdata.price"].bind(symbol=s).set(px[s])
        g["trading.marketdata.last_tick"].bind(symbol=s).set(time.time())
        for name, v in (
            ("trading.position.quantity", 100.0),
            ("trading.position.notional", 100 * px[s]),
            ("trading.pnl.realized", rng.gauss(0, 500)),
            ("trading.pnl.unrealized", rng.gauss(0, 500)),
            ("trading.position.avg_price", px[s] * 0.99),
        ):
            g[name].bind(symbol=s, strategy="momentum").set(v)
        for side in ("buy", "sell"):
            self.sub.bind(symbol=s, side=side).add(3)
            self.fil.bind(symbol=s, side=side).add(2)
            for h in self.lat:
                h.bind(symbol=s, side=side).record(rng.lognormvariate(-5, 0.5))

    def grow(self) -> None:
        """One more symbol (a desk that starts trading a name: 16 new series, so a new layout in multi-process
        mode), moved from then on like the others."""
        s = f"N{len(self.syms):05d}-{os.getpid()}"
        self.syms.append(s)
        self._series(s)

    def move(self) -> None:
        rng, px, g, syms, t = self.rng, self.px, self.g, self.syms, time.time()
        for s in rng.sample(syms, min(100, len(syms))):
            px[s] *= 1 + rng.gauss(0, 0.0005)
            g["trading.marketdata.price"].bind(symbol=s).set(px[s])
            g["trading.marketdata.last_tick"].bind(symbol=s).set(t)
        for s in rng.sample(syms, min(20, len(syms))):
            side = rng.choice(("buy", "sell"))
            self.sub.bind(symbol=s, side=side).add(1)
            self.fil.bind(symbol=s, side=side).add(1)
            self.lat[0].bind(symbol=s, side=side).record(rng.lognormvariate(-5, 0.5))


def measure(symbols: int, ticks: int) -> dict[str, Any]:
    """One process: the registry above, ``ticks`` ticks; per-tick times (s) and frame sizes (bytes)."""
    import orjson

    from tradeobs_agent.live.frames import FrameBuilder, delta

    desk = Desk(symbols)
    reg = desk.reg
    builder = FrameBuilder(reg)
    prev = builder.build()
    times, full, deltas = [], [], []
    gcs: list[float] = []
    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                gcs.append(time.perf_counter() - started[0])

    gc.collect()
    gc.callbacks.append(on_gc)
    for _ in range(ticks):
        t = time.time()
        desk.move()
        t0 = time.perf_counter()
        state = builder.build()
        full_json = orjson.dumps({"type": "full", "seq": 1, "ts": t, **state})
        delta_json = orjson.dumps({"type": "delta", "seq": 2, "ts": t, **delta(prev, state)})
        times.append(time.perf_counter() - t0)
        full.append(len(full_json))
        deltas.append(len(delta_json))
        prev = state
        time.sleep(0.01)
    gc.callbacks.remove(on_gc)
    return {"times": times, "full": full, "delta": deltas, "gcs": gcs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=1000)
    ap.add_argument("--ticks", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--before", default="f6a41fa", help="git revision of the peer (default: %(default)s)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.symbols, args.ticks)))
        return
    results = before_and_now(
        __file__, args.before, args.rounds, ["--symbols", str(args.symbols), "--ticks", str(args.ticks)]
    )
    print(
        f"Live tick at {args.symbols:,} symbols (100 prices moved and 20 fills per tick), "
        f"{args.rounds} x {args.ticks} ticks per tree, {os.cpu_count()} CPUs"
    )
    print("| tree | build + serialize p50 ms | p99 ms | full frame KB | delta KB | full GCs / 100 ticks | longest ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    p50 = {}
    for name in ("before", "now"):
        times = sorted(t for r in results[name] for t in r["times"])
        full = [x for r in results[name] for x in r["full"]]
        deltas = [x for r in results[name] for x in r["delta"]]
        p50[name] = statistics.median(times)
        gcs = [x for r in results[name] for x in r.get("gcs", ())]
        label = f"before ({args.before})" if name == "before" else "now"
        print(
            f"| {label} | {p50[name] * 1000:.1f} | {times[int(0.99 * len(times))] * 1000:.1f} "
            f"| {statistics.median(full) / 1000:.0f} | {statistics.median(deltas) / 1000:.1f} "
            f"| {100 * len(gcs) / len(times):.1f} | {max(gcs, default=0) * 1000:.0f} |"
        )
    print(f"Tick time, now / before: {p50['now'] / p50['before']:.2f}x")


if __name__ == "__main__":
    main()
