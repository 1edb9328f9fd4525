"""A small trading service for the browser tests: the live app at /telemetry, fed through the real trading layer.

    python tests/e2e/live_server.py PORT [--symbols N] [--agent none|default|failing] [--grafana URL]
                                         [--kill-switch on|off|none] [--full-every SECONDS] [--workers] [--hz HZ]

Two desks (``TradingTelemetry``: strategy ``momentum`` on ``alpaca-paper``, ``meanrev`` on ``ib-paper``)
trade a scenario a trader's page must show: long, short and flat positions with average entry prices,
losses in the thousands, resting (working) orders, a partial fill, fills with slippage, rejects by risk
and by the venue (one with a long reason), a cancel, risk limits in use (one over), a kill switch
state, and one symbol whose market data stops (stale). Then it keeps ticking every symbol (but the
stale one) at 10 Hz and fills an order every 0.5 s.

``POST /test/clock?step=-60`` steps this process's wall clock (``time.time``) by that many seconds.
``POST /test/drop`` ends every live stream while the server stays up (a network drop, as the browser sees it).
``POST /test/freeze`` stops the feed (no ticks, no orders), so the state settles and the page can be compared
with ``/snapshot``; it answers once the hub has built two frames after the feed's last step was applied, with the
second's ``seq``: a page that has applied that frame shows the held state (a page running behind may still apply
frames built before the freeze, seconds after it). ``POST /test/resume`` starts it again. ``GET /test/info`` says
what the scenario holds.
``POST /test/flatten`` closes AAPL in both desks (both report an average entry, so the row has none left) while a
third desk, ``hedge``, which reports no average, holds 25: the row keeps a position and loses its ``avg``.
``POST /test/burst?n=N`` sends N orders, each filled at once (an order and a fill event each), as fast as the
trading layer takes them: a busy stretch of the day, more events than a client holds or the server keeps.
``GET /test/held`` lists the ids of every event the server holds (its ring), read without /history;
``GET /test/stats`` the hub's counters, its clients and ``evicted_upto`` (the newest id its ring has let go).
``POST /test/hang`` sends an order the venue never answers (AAPL, momentum): it waits for an ack for good.
``POST /test/stall`` starts a trading loop on a thread of its own with the lag monitor and blocks it (a hung sync
call) until ``POST /test/unstall``: the hub, on the server's loop, goes on and its frames say how late that loop is.
``POST /test/hostile`` starts a third desk whose names carry markup and JavaScript (:data:`HOSTILE`: its strategy,
venue, symbols, order ids, a limit, reject reasons) and names that are also JavaScript's own property names
(``__proto__``, ``constructor``), and publishes an event whose data has the keys the page once kept its own
state in (``_html``, ``_clock``, ``_n``); each payload, if it ever ran, would set ``window.__pwned``.
``POST /test/crypto`` starts a crypto market maker's desk (strategy ``mm & hedge`` on ``binance-futures``,
:data:`CRYPTO`): symbols with ``/``, ``:``, ``_``, ``-`` and lower case, prices from 0.0000000015 to 14,800,000,
quantities of 0.00012345 and 1.5e9 and dust of 3e-9 and -4e-9, a working order and a fill at PEPE's price; its
symbols tick with the others from then on, each moving in its last digits (PEPE by 0.00000001).
``--full-every`` sets how often the stream sends a full frame instead of a delta (the hub's default: 5 s); ``--hz``
the frames per second (``live_hz``; 10 here).
``--roll LISTED:PER_S[:PREFIX]`` adds symbols that come and go, as a desk whose instruments are listed, delisted and
rolled all day: ``LISTED`` of them at any time (``ROLL0000000`` on, or ``PREFIX0000000``), ``PER_S`` delisted a
second, each replaced by a new one (:class:`RollFrames`: rows added to each frame the hub builds, so the hub's
deltas say ``null`` for each one gone, as for a worker's symbols). ``--orders-per-step K`` sends K more orders a
step (10 steps a second), each filled at once: an order and a fill event each, a busy desk's blotter; with
``--contract-strategies`` a fill event each, of a strategy per contract (``mm:C000123``, a new one each second).
``--workers`` builds the frames as a worker group's leader does, from this process's snapshot merged with
those of other workers (:class:`Workers`): ``POST /test/worker?symbols=A,B`` starts one that alone trades
those symbols (it answers the worker's id), ``POST /test/worker/exit?id=N`` makes it exit, which takes its
symbols out of the frame (``null`` in the next delta). (The merge is the leader's, ``metrics.merge``, without the
workers' files: every worker is in this process. Its hub is not the agent's, so not for ``--agent``.)
``--agent default`` runs ``tradeobs_agent.init()`` as a service would with no collector (export
``not_configured``); ``--agent failing`` points OTLP at a closed port (export ``failing``).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route

import tradeobs_agent
import tradeobs_agent.events
from tradeobs_agent import live
from tradeobs_agent.demo.market import symbols as demo_symbols
from tradeobs_agent.live.frames import FRAME_INSTRUMENTS, FrameBuilder
from tradeobs_agent.metrics import Part, Registry, get_registry, merge
from tradeobs_agent.trading import TradingTelemetry
from tradeobs_agent.trading._journal import get_journal

LONG_REASON = (
    "venue rejected: order would cross the limit-up/limit-down band for this instrument during the "
    "volatility auction (code 7021); retry after the auction or reprice inside the band"
)
STALE = "XOM"
# What a careless or hostile service may name things: markup, a script, a javascript: URL, a right-to-left override,
# and JavaScript's own property names (a page that keeps them as keys of a plain object breaks or is polluted).
HOSTILE = {
    "img": "<img src=x onerror=\"window.__pwned=(window.__pwned||[]).concat('img')\">",
    "script": "\"><script>window.__pwned=(window.__pwned||[]).concat('script')</script>",
    "url": "javascript:window.__pwned=['url']",
    "rtl": "AAPL\u202egnp.exe",
    "proto": "__proto__",
    "ctor": "constructor",
}
RTL_ORDER = "ord-rtl-1"
# A crypto desk's symbols (spot, perpetual, a Deribit option, a 1000x contract, a pair by ':' and a lower-case one)
# and prices: the smallest a few billionths (BABYDOGE), the largest 14.8 million (BTC in yen).
CRYPTO_DESK = ("mm & hedge", "binance-futures")
CRYPTO: dict[str, float] = {
    "BTC/USDT": 98000.5,
    "ETH-PERP": 3456.78,
    "BTC-27DEC26-100000-C": 0.0512,
    "1000PEPEUSDT": 0.00000123,
    "BABYDOGE/USDT": 0.0000000015,
    "SOL:USDC": 187.2,
    "btc_jpy": 14800000.0,
}
# per crypto symbol: (position, average entry price)
CRYPTO_BOOK: dict[str, tuple[float, float]] = {
    "BTC/USDT": (0.00012345, 97950.25),
    "1000PEPEUSDT": (-1.5e9, 0.00000125),
    "BABYDOGE/USDT": (2.5e12, 0.0000000014),
    "SOL:USDC": (0.000000003, 187.0),  # dust, long and short: a venue's rounding, a fee paid in the coin
    "ETH-PERP": (-0.000000004, 3450.0),
}
# per symbol: (desk index, position, realized P&L); the rest of the symbols get small positions
BOOK: dict[str, tuple[int, float, float]] = {
    "AAPL": (0, 300, -2345.67),
    "MSFT": (1, -150, 812.5),
    "NVDA": (0, 0, -4100.0),
    "AMZN": (1, 75, 0.0),
    "GOOG": (0, -420, -9876.54),
    "META": (1, 60, 150.25),
    "TSLA": (0, 1200, 2500.0),
    "JPM": (1, -80, -310.0),
    "V": (0, 0, 0.0),
    "XOM": (1, 500, -1500.0),
}


class Workers:
    """The other workers of a group, in this process: each a ``TradingTelemetry`` on a registry of its own that
    alone trades its symbols (a tick and a position each step, gauges only). A worker that exits is kept as the
    group's leader keeps one (``Part(live=False)``: its counters still count, its gauges no longer do), so its
    symbols leave the frame."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.live: dict[int, tuple[Registry, TradingTelemetry, list[str]]] = {}
        self.exited: list[Part] = []
        self.next_id = 2  # a worker's id is its pid in the merge; 1 is this process

    def start(self, syms: list[str]) -> int:
        reg = Registry()
        tt = TradingTelemetry(strategy="worker", venue="ib-paper", registry=reg)
        with self.lock:
            wid = self.next_id
            self.next_id += 1
            self.live[wid] = (reg, tt, syms)
        self.step()
        return wid

    def exit(self, wid: int) -> None:
        with self.lock:
            reg, tt, _ = self.live.pop(wid)
        tt.close()
        with self.lock:
            self.exited.append(Part(reg.snapshot(FRAME_INSTRUMENTS, prepare=False), wid, False))

    def step(self) -> None:
        with self.lock:
            workers = list(self.live.values())
        now = time.time()
        for _, tt, syms in workers:
            for i, s in enumerate(syms):
                px = 100.0 + i + (now % 60) / 100  # moves every step
                tt.tick(s, px, exchange_ts=now - 0.002)
                tt.position(s, 10.0, px, 100.0 + i)

    def snapshot(self, own: Registry) -> Any:
        """What the group's leader builds a frame from: every worker's snapshot merged, this process first."""
        parts = [Part(own.snapshot(FRAME_INSTRUMENTS, prepare=False), 1, True)]
        with self.lock:
            parts += [
                Part(reg.snapshot(FRAME_INSTRUMENTS, prepare=False), w, True) for w, (reg, _, _) in self.live.items()
            ]
            parts += self.exited
        return merge(parts, FRAME_INSTRUMENTS)


class LeaderFrames(FrameBuilder):
    """The hub's frames from :meth:`Workers.snapshot` (``FrameBuilder.build(snapshot=...)``, as the leader's)."""

    def __init__(self, workers: Workers) -> None:
        super().__init__(get_registry())
        self.workers = workers

    def build(self, extra_health: Any = None, working: Any = None, snapshot: Any = None, offer: Any = None) -> Any:
        if snapshot is None:
            snapshot = self.workers.snapshot(self.registry)
        return super().build(extra_health, working, snapshot, offer)


class RollFrames(FrameBuilder):
    """The hub's frames, with ``listed`` symbols more that roll: from ``per_s`` seconds' start on, ``per_s`` a second
    are delisted and as many new ones listed (``ROLL0000000``, ``ROLL0000001``, ...). Each row has what the trading
    layer's rows have (price, position, P&L, counts, age); its price moves every frame."""

    def __init__(self, listed: int, per_s: float, prefix: str = "ROLL") -> None:
        super().__init__(get_registry())
        self.listed, self.per_s, self.prefix, self.t0 = listed, per_s, prefix or "ROLL", time.monotonic()

    def build(self, extra_health: Any = None, working: Any = None, snapshot: Any = None, offer: Any = None) -> Any:
        state = super().build(extra_health, working, snapshot, offer)
        elapsed = time.monotonic() - self.t0
        first, wave = int(elapsed * self.per_s), math.sin(elapsed)
        syms = state["symbols"]
        for k in range(first, first + self.listed):
            px = round(50 + k % 397 + wave, 2)
            pos = float(k % 7 - 3) * 10
            syms[f"{self.prefix}{k:07d}"] = {
                "px": px, "pos": pos, "avg": 50 + k % 397, "ntl": pos * px, "rpnl": float(k % 5 - 2) * 10,
                "upnl": round(pos * wave, 2), "ord": k % 4, "fill": k % 3, "rej": 0, "age": 0,
            }  # fmt: skip
        return state


class Scenario:
    def __init__(
        self, n: int, kill: str, seed: int = 7, orders_per_step: int = 0, contract_strategies: bool = False
    ) -> None:
        self.rng = random.Random(seed)
        self.orders_per_step, self.contract_strategies = orders_per_step, contract_strategies
        self.desks = [
            TradingTelemetry(strategy="momentum", venue="alpaca-paper"),
            TradingTelemetry(strategy="meanrev", venue="ib-paper"),
        ]
        self.syms = demo_symbols(n)
        self.px = {s: round(50 + self.rng.random() * 400, 2) for s in self.syms}
        self.book = {
            s: BOOK.get(s, (i % 2, float((i % 7 - 3) * 10), float((i % 5 - 2) * 100))) for i, s in enumerate(self.syms)
        }
        self.avg = {s: round(self.px[s] * (1 + self.rng.uniform(-0.02, 0.02)), 4) for s in self.syms}
        self.kill = kill
        self.frozen = threading.Event()
        self.stepping = threading.Lock()  # held through a step: the freeze waits for the one under way
        self.stop = threading.Event()
        self.n = 0
        self.bursts = 0
        self.working: list[str] = []
        self.workers = Workers()
        self.hostile_desk: TradingTelemetry | None = None
        self.hostile_names: list[str] = []
        self.crypto_desk: TradingTelemetry | None = None
        self.crypto_px: dict[str, float] = {}

    def desk(self, sym: str) -> TradingTelemetry:
        return self.desks[self.book[sym][0]]

    def setup(self) -> None:
        for s in self.syms:
            self.desk(s).tick(s, self.px[s], exchange_ts=time.time() - 0.002)
        self.state()
        momentum, meanrev = self.desks
        momentum.limit_utilization("position", 0.42)
        momentum.limit_utilization("gross_notional", 0.87)
        meanrev.limit_utilization("drawdown", 1.04)
        meanrev.limit_utilization("position", 0.12)
        if self.kill != "none":
            momentum.kill_switch(self.kill == "on", "max_drawdown" if self.kill == "on" else "start")
        # working (resting) orders: sent and acknowledged, never filled
        for i, (sym, side, qty, price) in enumerate(
            [("AAPL", "buy", 100, 189.5), ("MSFT", "sell", 250, None), ("TSLA", "buy", 40, 240.25)]
        ):
            d = momentum if i != 1 else meanrev
            oid = f"rest-{i + 1}"
            o = d.order_signal(oid, sym, side, qty, price, order_type="limit" if price else "market")
            o.risk_check(passed=True)
            o.submitted()
            o.acked(f"V-R{i + 1}")
            self.working.append(oid)
        # a partial fill that keeps its order working
        o = meanrev.order_signal("part-1", "META", "buy", 100, self.px["META"], order_type="limit")
        o.risk_check(passed=True)
        o.submitted()
        o.acked("V-P1")
        o.fill(40, self.px["META"] * 1.0003, expected_price=self.px["META"])
        self.working.append("part-1")
        # rejects: by risk, and by the venue with a long reason; a cancel
        o = momentum.order_signal("risk-1", "NVDA", "buy", 5000, self.px["NVDA"])
        o.risk_check(passed=False, reason="limit_position", checks={"position": 1.3})
        o = meanrev.order_signal("venue-1", "JPM", "sell", 80, self.px["JPM"])
        o.risk_check(passed=True)
        o.submitted()
        o.rejected(LONG_REASON)
        o = momentum.order_signal("cxl-1", "GOOG", "sell", 30, self.px["GOOG"], order_type="limit")
        o.risk_check(passed=True)
        o.submitted()
        o.acked("V-C1")
        o.cancelled("user")

    def state(self) -> None:
        for s in self.syms:
            _, qty, realized = self.book[s]
            d = self.desk(s)
            d.position(s, qty, self.px[s], self.avg[s])
            d.pnl(s, realized, qty * (self.px[s] - self.avg[s]))
        for i, d in enumerate(self.desks):
            d.account(1_000_000 + 2500 * (i - 1) + sum(self.book[s][2] for s in self.syms if self.book[s][0] == i))

    def step(self) -> None:
        self.n += 1
        self.workers.step()
        now = time.time()
        if self.hostile_desk is not None:
            for i, s in enumerate(self.hostile_names):
                self.hostile_desk.tick(s, round(10.0 + i + self.rng.gauss(0, 0.01), 4), exchange_ts=now - 0.002)
        if self.crypto_desk is not None:
            for s, p in CRYPTO.items():  # a walk in the last digits: 1000PEPEUSDT moves by 0.00000001
                q = self.crypto_px[s] = max(p / 2, self.crypto_px[s] + p / 123 * self.rng.choice((-1, 0, 1)))
                self.crypto_desk.tick(s, q, exchange_ts=now - 0.002)
                qty, avg = CRYPTO_BOOK.get(s, (0.0, q))
                self.crypto_desk.position(s, qty, q, avg)
                self.crypto_desk.pnl(s, 0.0, qty * (q - avg))
        for s in self.syms:
            if s == STALE and self.n > 5:
                continue
            self.px[s] = round(self.px[s] * math.exp(self.rng.gauss(0, 0.0008)), 4)
            self.desk(s).tick(s, self.px[s], exchange_ts=now - 0.002)
        self.state()
        if self.n % 5 == 0:  # an order every 0.5 s, filled with a little slippage
            sym = self.syms[(self.n // 5) % len(self.syms)]
            side = "buy" if self.n % 10 else "sell"
            d = self.desk(sym)
            oid = f"o-{self.n}"
            o = d.order_signal(oid, sym, side, 10, self.px[sym])
            o.risk_check(passed=True)
            o.submitted()
            o.acked(f"V{self.n}")
            slip = 1 + (0.0002 if side == "buy" else -0.0002)
            o.fill(10, round(self.px[sym] * slip, 4), expected_price=self.px[sym])
        for i in range(self.orders_per_step):  # a busy desk: more orders, each filled at once
            sym = self.syms[(self.n + i) % len(self.syms)]
            if self.contract_strategies:  # a strategy per contract, a new one each second: its fills, as events
                tradeobs_agent.events.publish(
                    "fill", strategy=f"mm:C{self.n // 10:06d}", venue="deribit", symbol=sym, side="buy", qty=5,
                    price=self.px[sym], order_id=f"k-{self.n}-{i}", leaves=0,
                )  # fmt: skip
                continue
            o = self.desk(sym).order_signal(f"k-{self.n}-{i}", sym, "sell" if i % 2 else "buy", 5, self.px[sym])
            o.risk_check(passed=True)
            o.submitted()
            o.fill(5, self.px[sym], expected_price=self.px[sym])
        if self.n % 50 == 25:
            sym = self.syms[self.n % len(self.syms)]
            o = self.desk(sym).order_signal(f"r-{self.n}", sym, "buy", 10, self.px[sym])
            o.risk_check(passed=True)
            o.submitted()
            o.rejected("price_out_of_band")

    def burst(self, n: int) -> None:
        """``n`` orders filled at once, between two steps (each an ``order`` and a ``fill`` event)."""
        with self.stepping:
            for i in range(n):
                self.bursts += 1
                sym = self.syms[i % len(self.syms)]
                o = self.desk(sym).order_signal(f"b-{self.bursts}", sym, "buy", 1, self.px[sym])
                o.risk_check(passed=True)
                o.submitted()
                o.fill(1, self.px[sym], expected_price=self.px[sym])
            get_journal().flush()

    def flatten(self, sym: str = "AAPL") -> None:
        desk, _, realized = self.book[sym]
        self.book[sym] = (desk, 0.0, realized)
        for d in self.desks:
            d.position(sym, 0.0, self.px[sym], self.avg[sym])
        self.hedge = TradingTelemetry(strategy="hedge", venue="ib-paper")
        self.hedge.position(sym, 25.0, self.px[sym])  # no average entry reported

    def hostile(self) -> None:
        """A desk named by an attacker (see the module docstring); its symbols tick with the others from now on."""
        h = HOSTILE
        desk = TradingTelemetry(strategy=h["img"], venue=h["script"])
        names = [h["img"], h["script"], h["url"], h["rtl"], h["proto"], h["ctor"]]
        for i, s in enumerate(names):
            desk.tick(s, 10.0 + i)
            desk.position(s, 5.0 * (i + 1), 10.0 + i, 9.5 + i)
            desk.pnl(s, 1.0 + i, -2.0 - i)
        desk.limit_utilization(h["img"], 0.5)
        desk.limit_utilization(h["proto"], 0.25)
        o = desk.order_signal(h["img"], h["script"], "buy", 10, 10.0, order_type=h["script"])
        o.risk_check(passed=False, reason=h["img"])
        for oid in (h["proto"], h["ctor"], "w-" + h["script"]):  # working orders keyed by these ids
            o = desk.order_signal(oid, h["proto"], "buy", 10, 10.0)
            o.risk_check(passed=True)
            o.submitted()
        o = desk.order_signal("v-" + h["img"], h["ctor"], "sell", 10, 10.0)
        o.risk_check(passed=True)
        o.submitted()
        o.rejected(h["script"])
        o = desk.order_signal(RTL_ORDER, h["rtl"], "buy", 10, 10.0)  # a reason with an override, the order id after it
        o.risk_check(passed=False, reason=h["rtl"])
        tradeobs_agent.events.publish(
            "alert", message=h["img"], _html=h["img"], _clock=h["script"], _n=10**12, strategy=h["proto"]
        )
        self.hostile_desk, self.hostile_names = desk, names

    def crypto(self) -> None:
        """The crypto desk (see the module docstring): its symbols tick with the others from now on."""
        desk = TradingTelemetry(strategy=CRYPTO_DESK[0], venue=CRYPTO_DESK[1])
        for s, p in CRYPTO.items():
            desk.tick(s, p)
            qty, avg = CRYPTO_BOOK.get(s, (0.0, p))
            desk.position(s, qty, p, avg)
            desk.pnl(s, 0.0, qty * (p - avg))
        o = desk.order_signal("mm-1", "BTC/USDT", "buy", 0.00012345, 97000.5, order_type="limit")
        o.risk_check(passed=True)
        o.submitted()
        o.acked("B-1")
        o = desk.order_signal("mm-2", "1000PEPEUSDT", "sell", 1.5e9, 0.00000123, order_type="limit")
        o.risk_check(passed=True)
        o.submitted()
        o.acked("B-2")
        o.fill(1.5e9, 0.00000122, expected_price=0.00000123)
        self.crypto_px = dict(CRYPTO)
        self.crypto_desk = desk

    def run(self) -> None:
        while not self.stop.wait(0.1):
            with self.stepping:
                if not self.frozen.is_set():
                    self.step()

    def settle(self) -> None:
        """After ``frozen`` is set: the step under way has ended and every trading call of it is applied."""
        with self.stepping:
            get_journal().flush()


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--symbols", type=int, default=12)
    ap.add_argument("--agent", choices=("none", "default", "failing"), default="none")
    ap.add_argument("--grafana", default="")
    ap.add_argument("--kill-switch", choices=("on", "off", "none"), default="off")
    ap.add_argument("--full-every", type=float, default=5.0)
    ap.add_argument("--hz", type=float, default=10.0)  # frames per second (live_hz)
    ap.add_argument("--workers", action="store_true")
    # Trade nothing until POST /test/start: a restarted service whose first frames list no symbol yet.
    ap.add_argument("--idle-start", action="store_true")
    ap.add_argument("--event-buffer", type=int, default=2048)  # events kept for a client resuming (event_buffer)
    ap.add_argument("--max-clients", type=int, default=None)  # stream clients at once (live_max_clients)
    ap.add_argument("--roll", default="")  # LISTED:PER_S symbols that come and go (RollFrames)
    ap.add_argument("--orders-per-step", type=int, default=0)  # more orders (and fills) a step: a busy blotter
    ap.add_argument("--contract-strategies", action="store_true")  # those orders' fills: a strategy per contract
    args = ap.parse_args()
    if args.agent != "none":
        kw: dict[str, Any] = {
            "service_name": "e2e-desk",
            "prometheus": tradeobs_agent.PrometheusOptions(port=0),
            "logs": False,
        }
        if args.agent == "failing":
            kw["otlp"] = tradeobs_agent.OtlpOptions(endpoint=f"http://127.0.0.1:{_dead_port()}", timeout=0.5)
            kw["metrics"] = tradeobs_agent.MetricsOptions(export_interval=0.5)
        tradeobs_agent.init(**kw)
    scenario = Scenario(
        args.symbols,
        args.kill_switch,
        orders_per_step=args.orders_per_step,
        contract_strategies=args.contract_strategies,
    )
    app_kw: dict[str, Any] = {
        "token": "",
        "cors_origins": (),
        "grafana_url": args.grafana,
        "max_clients": args.max_clients,
        "event_buffer": args.event_buffer,
    }
    if args.workers or args.roll:
        roll = args.roll.split(":")  # LISTED[:PER_S[:PREFIX]]
        per_s, prefix = float(roll[1]) if len(roll) > 1 else 0.0, roll[2] if len(roll) > 2 else ""
        builder = LeaderFrames(scenario.workers) if args.workers else RollFrames(int(roll[0]), per_s, prefix)
        own = live.LiveHub(hz=args.hz, full_every=args.full_every, builder=builder, event_buffer=args.event_buffer)
        telemetry = live.create_app(hub=own, **{k: v for k, v in app_kw.items() if k not in ("event_buffer",)})
    else:
        telemetry = live.create_app(hz=args.hz, full_every=args.full_every, **app_kw)
    hub = telemetry.state.hub

    def begin() -> None:
        scenario.setup()
        threading.Thread(target=scenario.run, daemon=True).start()

    async def start(request: Request) -> PlainTextResponse:
        begin()
        return PlainTextResponse("started")

    async def drop(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(hub.disconnect_all()))

    async def freeze(request: Request) -> PlainTextResponse:
        scenario.frozen.set()
        await asyncio.to_thread(scenario.settle)
        # Two frames on: the first may have been begun before the settle (built off the loop), the second was not.
        seq = hub.snapshot()["seq"]
        for _ in range(2):
            while (now := hub.snapshot()["seq"]) == seq:
                await asyncio.sleep(0.2 / args.hz)
            seq = now
        return PlainTextResponse(str(seq))

    async def resume(request: Request) -> PlainTextResponse:
        scenario.frozen.clear()
        return PlainTextResponse("running")

    async def burst(request: Request) -> PlainTextResponse:
        await asyncio.to_thread(scenario.burst, int(request.query_params["n"]))
        return PlainTextResponse("sent")

    async def flatten(request: Request) -> PlainTextResponse:
        scenario.flatten()
        return PlainTextResponse("flat")

    async def worker(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(scenario.workers.start(request.query_params["symbols"].split(","))))

    async def worker_exit(request: Request) -> PlainTextResponse:
        scenario.workers.exit(int(request.query_params["id"]))
        return PlainTextResponse("exited")

    async def hostile(request: Request) -> PlainTextResponse:
        scenario.hostile()
        return PlainTextResponse("hostile")

    async def crypto(request: Request) -> PlainTextResponse:
        with scenario.stepping:
            scenario.crypto()
        return PlainTextResponse("crypto")

    async def hang(request: Request) -> PlainTextResponse:
        # An order sent to the venue that never answers (a hung venue gateway, a lost message): never acked.
        o = scenario.desks[0].order_signal("hung-1", "AAPL", "buy", 10, 189.0, order_type="limit")
        o.risk_check(passed=True)
        o.submitted()
        return PlainTextResponse("sent")

    stall_release = threading.Event()

    async def stall(request: Request) -> PlainTextResponse:
        # A trading loop of its own thread, watched by the lag monitor, then blocked by a sync call until released.
        desk, blocked = scenario.desks[0], threading.Event()

        async def trading_loop() -> None:
            desk.event_loop_lag_monitor(interval=0.1)
            await asyncio.sleep(0.3)  # on time a few wake-ups
            blocked.set()
            stall_release.wait()  # time.sleep in a coroutine, a hung sync call: the loop stops
            await asyncio.Event().wait()  # on time again, until the process exits (a daemon thread)

        threading.Thread(target=asyncio.run, args=(trading_loop(),), name="trading-loop", daemon=True).start()
        blocked.wait(10)
        return PlainTextResponse("stalled")

    async def unstall(request: Request) -> PlainTextResponse:
        stall_release.set()
        return PlainTextResponse("released")

    real_time, offset = time.time, [0.0]

    def stepped_time() -> float:
        return real_time() + offset[0]

    async def clock(request: Request) -> PlainTextResponse:
        # The wall clock stepped (NTP, an operator): every time.time() of this process from now on, the hub's too.
        offset[0] += float(request.query_params["step"])
        time.time = stepped_time
        return PlainTextResponse(str(offset[0]))

    async def held(request: Request) -> JSONResponse:
        # The ids of every event the hub's ring holds, read from the ring itself (not through /history).
        with hub._lock:
            return JSONResponse([p["id"] for _, _, p in hub._events])

    async def stats(request: Request) -> JSONResponse:
        # evicted_upto: the newest id the ring has let go, the hub's own test for a resume's gap (ids are shared by
        # frames and events, so an oldest held id past a page's last id does not yet say an event after it is gone)
        with hub._lock:
            return JSONResponse({**hub.stats, "clients": hub.clients, "evicted_upto": hub._evicted_upto})

    async def info(request: Request) -> JSONResponse:
        return JSONResponse(
            {"symbols": scenario.syms, "stale": STALE, "working": scenario.working, "long_reason": LONG_REASON}
        )

    app = Starlette(
        routes=[
            Route("/test/drop", drop, methods=["POST"]),
            Route("/test/freeze", freeze, methods=["POST"]),
            Route("/test/resume", resume, methods=["POST"]),
            Route("/test/flatten", flatten, methods=["POST"]),
            Route("/test/burst", burst, methods=["POST"]),
            Route("/test/worker", worker, methods=["POST"]),
            Route("/test/worker/exit", worker_exit, methods=["POST"]),
            Route("/test/hostile", hostile, methods=["POST"]),
            Route("/test/crypto", crypto, methods=["POST"]),
            Route("/test/info", info),
            Route("/test/stats", stats),
            Route("/test/held", held),
            Route("/test/hang", hang, methods=["POST"]),
            Route("/test/stall", stall, methods=["POST"]),
            Route("/test/unstall", unstall, methods=["POST"]),
            Route("/test/clock", clock, methods=["POST"]),
            Route("/test/start", start, methods=["POST"]),
            Mount("/telemetry", telemetry),
        ]
    )
    if not args.idle_start:
        begin()
    try:
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, lifespan="off")
    finally:
        scenario.stop.set()
        if args.agent != "none":
            tradeobs_agent.shutdown()


if __name__ == "__main__":
    main()
