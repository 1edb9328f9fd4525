"""A trading service in a fresh process, for the end-to-end tests and benchmarks/freshness.py.

    python tests/integration/agent_workload.py orders      # known orders, fills, rejects, one log line
    python tests/integration/agent_workload.py freshness   # a gauge set on command (tradeobs agent)
    python tests/integration/agent_workload.py freshness-sdk  # the same gauge through the raw OTel SDK
    python tests/integration/agent_workload.py alerts      # steady orders; faults on command (alert tests)
    python tests/integration/agent_workload.py tiers       # batches of mixed orders on command (collector tiers)
    python tests/integration/agent_workload.py incident    # venues X and Y; one slow, losing fill on command
    python tests/integration/agent_workload.py desk        # strategies x venues in one process; risk faults
    python tests/integration/agent_workload.py crypto      # a crypto market maker: CRYPTO_* names and prices

Configuration comes from the environment exactly as in a deployed service
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``TRADEOBS_SERVICE_NAME``,
``TRADEOBS_METRIC_EXPORT_INTERVAL``, ...); the harness in ``agent_proc.py`` sets it.

Protocol (line based, so the parent can drive it): the script writes one line
``E2E {json}`` on stdout when its scenario has run (order ids, trace ids, ...),
then reads commands from stdin, one JSON object per line, and answers each with
one ``E2E {json}`` line:

    {"cmd": "set", "value": 12.5}   set the freshness gauge -> {"t0": <epoch seconds when set>}
    {"cmd": "flush"}                force_flush everything   -> {"ok": true}
    {"cmd": "stop"} or EOF          shut down, exit 0        -> {"ok": <shutdown result>}

The ``alerts`` scenario trades continuously from the start (healthy: no rejects,
10 ms fills) and also takes:

    {"cmd": "trade", "rate": 2, "reject_ratio": 0.5, "fill_latency": 1.5}   change the flow -> {"t0": ...}
    {"cmd": "kill_switch", "engaged": true}                                 -> {"t0": ...}  (and logs a warning)
    {"cmd": "pnl", "realized": -5000, "unrealized": 0}                      AAPL's P&L -> {"t0": ...}
    {"cmd": "limit", "limit": "position", "ratio": 1.0}                     tt.limit_utilization -> {"t0": ...}
    {"cmd": "breach", "limit": "position", "symbol": "AAPL"}                tt.breach -> {"t0": ...}
    {"cmd": "block_loop", "seconds": 0.3}   block its asyncio loop that long each second -> {"t0": ...}
    {"cmd": "gaps", "skip": 1}              skip that many sequence numbers at each tick -> {"t0": ...}
    {"cmd": "no_ack", "every": 5}           every 5th order sent is never acknowledged nor filled (a venue that
                                            loses it; 0: all answered again) -> {"t0": ...}
    {"cmd": "hang_loop"}                    block its asyncio loop for good (until stop) -> {"t0": ...}

It also runs an asyncio loop watched by ``tt.event_loop_lag_monitor()`` (not blocked until told) and ticks
MSFT twice a second with a sequence number (no gap until told).

It stays alive until told to stop, so scrapes keep seeing its series and the
tests decide when the process (and its last export) ends.

The ``incident`` scenario trades continuously on two venues, ``X`` and ``Y`` (10 ms fills, each with a log line
in the order's scope), and on command places one order on ``venue`` whose fill comes ``seconds`` late at an
adverse ``fill_price`` (the order that lost money), answering once it is filled and flushed:

    {"cmd": "slow_fill", "venue": "X", "seconds": 2.0, "fill_price": 191.5}
        -> {"order_id", "trace_id", "service_instance_id", "t0", "t1"}

The ``desk`` scenario is one process of several strategies on several venues (``DESK_BOOKS``: one
``TradingTelemetry`` each), each trading twice a second (acknowledged, filled at once); on command, on one book:

    {"cmd": "overfill", "strategy": "arb", "venue": "X", "symbol": "MSFT"}   an order of 10 filled 15 -> {"t0": ...}
    {"cmd": "breach", "strategy": "mm", "venue": "Y", "limit": "position", "symbol": "AAPL"}  tt.breach -> {"t0": ...}
    {"cmd": "reject_burst", "strategy": "mm", "venue": "X", "n": 30, "seconds": 2.0, "reason": "session_not_open"}
        n orders submitted and rejected by the venue, spread over ``seconds`` -> {"t0": ..., "t1": ...}

The ``tiers`` scenario places orders only on command, paced at ``rate`` per second, and answers
with every order's trace id and kind (see ``TIER_KINDS``) once all of them are done and flushed:

    {"cmd": "orders", "n": 500, "rate": 50, "slow_s": 0.4, "prefix": "t"}  -> {"orders": [...], "logs": [...]}
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

# Known workload for the metrics/traces tests. Step latencies are lower bounds
# (time.sleep never returns early), so the buckets below them must stay empty.
AAPL_BUY_FILLS = 7
MSFT_SELL_FILLS = 3  # each in two partial fills: 40 + 60
SUBMIT_TO_FILL_SLEEP = 0.03  # seconds between submit and the first fill
REJECTS = (("TSLA", "buy", "limit_position", "risk"), ("TSLA", "buy", "price_out_of_band", "venue"))
STRATEGY = "e2e"
VENUE = "paper"
LOG_MESSAGE = "order %s filled inside span"
SPAN_LOG_MESSAGE = "request %s handled inside span"


# The ``crypto`` scenario: a market maker's names (a space and an ampersand, a dot, '/', ':', '_') and values (prices
# of a few millionths and of 98,000, quantities of 0.00012345 and 1.5e9), filled orders of each symbol, one log line.
CRYPTO_STRATEGY = "mm & hedge"
CRYPTO_VENUE = "okx.swap"
# symbol -> (price, signed quantity of its one filled order, fill price)
CRYPTO_ORDERS: dict[str, tuple[float, float, float]] = {
    "BTC/USDT": (98000.5, 0.00012345, 98000.6),
    "1000PEPEUSDT": (0.00000123, -1.5e9, 0.00000122),
    "BTC-27DEC26-100000-C": (0.0512, 2.5, 0.0513),
    "SOL:USDC": (187.2, -3.75, 187.19),
    "btc_jpy": (14800000.0, 0.001, 14800500.0),
}
CRYPTO_LOG_MESSAGE = "mm order %s on %s filled"


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write("E2E " + json.dumps(obj) + "\n")
    sys.stdout.flush()


def run_orders() -> dict[str, Any]:
    import tradeobs_agent
    from tradeobs_agent import TradingTelemetry

    agent = tradeobs_agent.init()
    tt = TradingTelemetry(strategy=STRATEGY, venue=VENUE)
    orders: list[dict[str, Any]] = []

    def one(oid: str, symbol: str, side: str, parts: tuple[float, ...], price: float) -> None:
        o = tt.order_signal(oid, symbol, side, sum(parts), price=price, order_type="limit")
        o.risk_check(passed=True)
        o.submitted()
        o.acked(f"V-{oid}")
        time.sleep(SUBMIT_TO_FILL_SLEEP)
        for q in parts:
            o.fill(q, price)
        root_span_id = f"{o.span.get_span_context().span_id:016x}"
        orders.append({"order_id": oid, "trace_id": o.trace_id, "span_id": root_span_id, "symbol": symbol,
                       "side": side, "fills": len(parts)})  # fmt: skip

    for i in range(AAPL_BUY_FILLS):
        one(f"aapl-{i}", "AAPL", "buy", (100.0,), 190.0 + i)
    for i in range(MSFT_SELL_FILLS):
        one(f"msft-{i}", "MSFT", "sell", (40.0, 60.0), 410.0 + i)
    for i, (symbol, side, reason, where) in enumerate(REJECTS):
        o = tt.order_signal(f"rej-{i}", symbol, side, 10, price=250.0, order_type="limit")
        if where == "risk":
            o.risk_check(passed=False, reason=reason)
        else:
            o.risk_check(passed=True)
            o.submitted()
            o.rejected(reason)
        orders.append({"order_id": o.client_order_id, "trace_id": o.trace_id, "reason": reason})

    # Two log records inside a span of our own, each with a correlation id: one names no order (on the span's
    # trace), one names the order aapl-0 (on the order's trace: the order wins, docs/logging.md).
    log = tradeobs_agent.get_logger("execution")
    with agent.tracer("e2e").start_as_current_span("e2e.log_parent") as span:
        ctx = span.get_span_context()
        with tradeobs_agent.correlate(request_id="r-1"):
            log.info(SPAN_LOG_MESSAGE, "r-1", extra={"symbol": "AAPL"})
        with tradeobs_agent.correlate(order_id="aapl-0"):
            log.info(LOG_MESSAGE, "aapl-0", extra={"symbol": "AAPL"})
    agent.force_flush()
    return {
        "orders": orders,
        "log": {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"},
        "service_instance_id": agent.instance_id,
    }


class _Freshness:
    """The gauge the freshness measurements set: tradeobs registry, or a raw OTel SDK gauge."""

    def __init__(self, sdk: bool) -> None:
        self.sdk = sdk
        self._set: Any
        if sdk:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
            from opentelemetry.sdk.resources import Resource

            interval_ms = float(os.environ.get("TRADEOBS_METRIC_EXPORT_INTERVAL", "10")) * 1000
            reader = PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"], insecure=True),
                export_interval_millis=interval_ms,
            )
            resource = Resource.create({"service.name": os.environ["TRADEOBS_SERVICE_NAME"]})
            self.provider: Any = MeterProvider(resource=resource, metric_readers=[reader])
            gauge = self.provider.get_meter("e2e").create_gauge("e2e.freshness", description="freshness marker")
            self._set = gauge.set
        else:
            import tradeobs_agent

            if not tradeobs_agent.is_initialized():
                tradeobs_agent.init()
            self._set = tradeobs_agent.gauge("e2e.freshness", description="freshness marker").bind().set

    def set(self, value: float) -> float:
        t0 = time.time()
        self._set(value)
        return t0

    def flush(self) -> bool:
        import tradeobs_agent

        if self.sdk:
            return bool(self.provider.force_flush())
        agent = tradeobs_agent.get_agent()
        return agent.force_flush() if agent is not None else False

    def stop(self) -> bool:
        import tradeobs_agent

        if self.sdk:
            self.provider.shutdown()
            return True
        return tradeobs_agent.shutdown()


class _Trader:
    """Orders at ``rate`` per second on a thread, a share of them rejected, fills after ``fill_latency`` s."""

    def __init__(self) -> None:
        import threading

        import tradeobs_agent
        from tradeobs_agent import TradingTelemetry

        tradeobs_agent.init()
        # WORKLOAD_ORDER_TTL: the open book's order_ttl (test_alert_unacked.py lets the unanswered orders expire)
        ttl = float(os.environ.get("WORKLOAD_ORDER_TTL", "300"))
        self.tt = TradingTelemetry(strategy=STRATEGY, venue=VENUE, order_ttl=ttl)
        self.rate, self.reject_ratio, self.fill_latency = 2.0, 0.0, 0.01
        self.no_ack_every = 0  # every n-th order sent gets no answer from the "venue" (0: none)
        self._stop = threading.Event()
        self._seq = 0
        self._thread = threading.Thread(target=self._run, name="trader", daemon=True)
        self._thread.start()
        self.block_s, self.skip = 0.0, 0
        self._aloop: Any = None  # the asyncio loop, once running
        self._loop = threading.Thread(target=self._run_loop, name="trader-loop", daemon=True)
        self._loop.start()
        self._ticks = threading.Thread(target=self._run_ticks, name="trader-ticks", daemon=True)
        self._ticks.start()

    def _run_loop(self) -> None:
        import asyncio

        async def main() -> None:
            self._aloop = asyncio.get_running_loop()
            self.tt.event_loop_lag_monitor()
            while not self._stop.is_set():
                await asyncio.sleep(1.0)
                if self.block_s:
                    time.sleep(self.block_s)  # a blocking call on the loop: its tasks wait as long

        asyncio.run(main())

    def _run_ticks(self) -> None:
        seq = 0
        while not self._stop.wait(0.5):
            seq += 1 + self.skip
            self.tt.tick("MSFT", 410.0, seq=seq)

    def _run(self) -> None:
        import threading

        credit = 0.0
        while not self._stop.wait(0.05):
            credit += self.rate * 0.05
            while credit >= 1.0:
                credit -= 1.0
                self._seq += 1
                o = self.tt.order_signal(f"a-{self._seq}", "AAPL", "buy", 10, price=190.0, order_type="limit")
                o.risk_check(passed=True)
                o.submitted()
                if int(self._seq * self.reject_ratio) > int((self._seq - 1) * self.reject_ratio):  # every 1/ratio-th
                    o.rejected("price_out_of_band")
                    continue
                if self.no_ack_every and self._seq % self.no_ack_every == 0:
                    continue  # the venue never answers this one: no ack, no fill
                o.acked(f"V-{self._seq}")
                threading.Timer(self.fill_latency, o.fill, args=(10, 190.0)).start()

    def set(self, cmd: dict[str, Any]) -> float:
        t0 = time.time()
        self.rate = float(cmd.get("rate", self.rate))
        self.reject_ratio = float(cmd.get("reject_ratio", self.reject_ratio))
        self.fill_latency = float(cmd.get("fill_latency", self.fill_latency))
        return t0

    def kill_switch(self, engaged: bool) -> float:
        import tradeobs_agent

        t0 = time.time()
        self.tt.kill_switch(engaged, "alert test")
        tradeobs_agent.get_logger("risk").warning("kill switch engaged=%s", engaged)
        return t0

    def pnl(self, cmd: dict[str, Any]) -> float:
        t0 = time.time()
        self.tt.pnl("AAPL", float(cmd["realized"]), float(cmd.get("unrealized", 0.0)))
        return t0

    def limit(self, cmd: dict[str, Any]) -> float:
        t0 = time.time()
        self.tt.limit_utilization(str(cmd["limit"]), float(cmd["ratio"]))
        return t0

    def breach(self, cmd: dict[str, Any]) -> float:
        t0 = time.time()
        self.tt.breach(str(cmd["limit"]), cmd.get("symbol"))
        return t0

    def faults(self, cmd: dict[str, Any]) -> float:
        t0 = time.time()
        self.block_s = float(cmd.get("seconds", self.block_s))
        self.skip = int(cmd.get("skip", self.skip))
        self.no_ack_every = int(cmd.get("every", self.no_ack_every))
        return t0

    def hang_loop(self) -> float:
        """A sync call that never returns, run on the loop now: blocked until stop(). The process goes on exporting
        (its other threads run); the ticks, from their own thread, go on too."""
        t0 = time.time()
        self._aloop.call_soon_threadsafe(self._stop.wait)
        return t0

    def stop(self) -> bool:
        import tradeobs_agent

        self._stop.set()
        for t in (self._thread, self._loop, self._ticks):
            t.join(5)
        return tradeobs_agent.shutdown()


# The collector-tier tests' order mix, by index modulo len(TIER_KINDS): what the gateway's tail
# sampler must keep (error, reject_risk, reject_venue, kill_switch, slow) and plain fills it samples.
TIER_KINDS = ("error", "reject_risk", "reject_venue", "kill_switch", "slow") + ("fill",) * 15
TIER_LOG_EVERY = 10  # one log line inside every 10th order's scope


def _tier_orders(tt: Any, log: Any, n: int, rate: float, slow_s: float, prefix: str) -> dict[str, Any]:
    import threading

    orders: list[dict[str, Any]] = []
    logs: list[dict[str, Any]] = []
    timers: list[threading.Timer] = []
    t0 = time.monotonic()
    for i in range(n):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        kind = TIER_KINDS[i % len(TIER_KINDS)]
        oid = f"{prefix}-{i}"
        o = tt.order_signal(oid, "AAPL", "buy", 10, price=190.0, order_type="limit")
        if kind == "reject_risk":
            o.risk_check(passed=False, reason="limit_position")
        elif kind == "kill_switch":
            o.risk_check(passed=False, reason="kill_switch")
        else:
            o.risk_check(passed=True)
            o.submitted()
            if kind == "reject_venue":
                o.rejected("price_out_of_band")
            elif kind == "slow":
                # The venue slow to answer: the ack (then the fill) slow_s after the submit.
                def ack_and_fill(o: Any = o, oid: str = oid) -> None:
                    o.acked(f"V-{oid}")
                    o.fill(10, 190.0)

                timer = threading.Timer(slow_s, ack_and_fill)
                timer.start()
                timers.append(timer)
            else:
                o.acked(f"V-{oid}")
                if kind == "error":
                    o.error(RuntimeError("venue session dropped"))
                o.fill(10, 190.0)
        if i % TIER_LOG_EVERY == 0:
            with o.scope():
                log.info("tier order %s (%s)", oid, kind)
            logs.append({"order_id": oid, "trace_id": o.trace_id})
        orders.append({"order_id": oid, "kind": kind, "trace_id": o.trace_id, "t": time.time()})
    for timer in timers:
        timer.join()
    return {"orders": orders, "logs": logs}


def run_tiers() -> int:
    import tradeobs_agent
    from tradeobs_agent import TradingTelemetry

    agent = tradeobs_agent.init()
    tt = TradingTelemetry(strategy=STRATEGY, venue=VENUE)
    log = tradeobs_agent.get_logger("execution")
    emit({"ready": True, "pid": os.getpid(), "service_instance_id": agent.instance_id})
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        if cmd["cmd"] == "orders":
            result = _tier_orders(
                tt, log, int(cmd["n"]), float(cmd.get("rate", 100)), float(cmd.get("slow_s", 0.4)), cmd["prefix"]
            )
            result["flushed"] = agent.force_flush()
            emit(result)
        elif cmd["cmd"] == "flush":
            emit({"ok": agent.force_flush()})
        elif cmd["cmd"] == "stop":
            break
        else:
            emit({"error": f"unknown command {cmd!r}"})
    emit({"ok": tradeobs_agent.shutdown()})
    return 0


def run_alerts() -> int:
    trader = _Trader()
    emit({"ready": True, "pid": os.getpid()})
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        if cmd["cmd"] == "trade":
            emit({"t0": trader.set(cmd)})
        elif cmd["cmd"] == "kill_switch":
            emit({"t0": trader.kill_switch(bool(cmd["engaged"]))})
        elif cmd["cmd"] == "pnl":
            emit({"t0": trader.pnl(cmd)})
        elif cmd["cmd"] == "limit":
            emit({"t0": trader.limit(cmd)})
        elif cmd["cmd"] == "breach":
            emit({"t0": trader.breach(cmd)})
        elif cmd["cmd"] in ("block_loop", "gaps", "no_ack"):
            emit({"t0": trader.faults(cmd)})
        elif cmd["cmd"] == "hang_loop":
            emit({"t0": trader.hang_loop()})
        elif cmd["cmd"] == "stop":
            break
        else:
            emit({"error": f"unknown command {cmd!r}"})
    emit({"ok": trader.stop()})
    return 0


INCIDENT_VENUES = ("X", "Y")
INCIDENT_PRICE = 190.0


def run_incident() -> int:
    import threading

    import tradeobs_agent
    from tradeobs_agent import TradingTelemetry

    agent = tradeobs_agent.init()
    log = tradeobs_agent.get_logger("execution")
    venues = {v: TradingTelemetry(strategy=STRATEGY, venue=v) for v in INCIDENT_VENUES}
    stop = threading.Event()

    def order(venue: str, oid: str, delay: float, fill_price: float) -> Any:
        o = venues[venue].order_signal(oid, "AAPL", "buy", 10, price=INCIDENT_PRICE, order_type="limit")
        o.risk_check(passed=True)
        o.submitted()
        o.acked(f"V-{oid}")
        time.sleep(delay)
        with o.scope():
            log.warning("fill of %s on venue %s at %s", oid, venue, fill_price)
        o.fill(10, fill_price)
        return o

    def trade() -> None:
        seq = 0
        while not stop.wait(0.25):
            seq += 1
            for v in INCIDENT_VENUES:
                order(v, f"{v.lower()}-{seq}", 0.01, INCIDENT_PRICE)

    thread = threading.Thread(target=trade, name="trader", daemon=True)
    thread.start()
    emit({"ready": True, "pid": os.getpid(), "service_instance_id": agent.instance_id})
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        if cmd["cmd"] == "slow_fill":
            t0 = time.time()
            o = order(cmd["venue"], "slow-1", float(cmd["seconds"]), float(cmd["fill_price"]))
            t1 = time.time()
            emit({"order_id": o.client_order_id, "trace_id": o.trace_id, "service_instance_id": agent.instance_id,
                  "t0": t0, "t1": t1, "flushed": agent.force_flush()})  # fmt: skip
        elif cmd["cmd"] == "stop":
            break
        else:
            emit({"error": f"unknown command {cmd!r}"})
    stop.set()
    thread.join(5)
    emit({"ok": tradeobs_agent.shutdown()})
    return 0


DESK_BOOKS = (("mm", "X"), ("mm", "Y"), ("arb", "X"))


def run_desk() -> int:
    import threading

    import tradeobs_agent
    from tradeobs_agent import TradingTelemetry

    tradeobs_agent.init()
    books = {(s, v): TradingTelemetry(strategy=s, venue=v) for s, v in DESK_BOOKS}
    stop = threading.Event()
    lock = threading.Lock()
    seq = [0]

    def next_id(prefix: str) -> str:
        with lock:
            seq[0] += 1
            return f"{prefix}-{seq[0]}"

    def trade() -> None:
        while not stop.wait(0.5):
            for (s, v), tt in books.items():
                o = tt.order_signal(next_id(f"{s}-{v}"), "AAPL", "buy", 10, price=190.0, order_type="limit")
                o.risk_check(passed=True)
                o.submitted()
                o.acked(f"V-{o.client_order_id}")
                o.fill(10, 190.0)

    thread = threading.Thread(target=trade, name="trader", daemon=True)
    thread.start()
    emit({"ready": True, "pid": os.getpid()})
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        t0 = time.time()
        if cmd["cmd"] == "stop":
            break
        tt = books.get((cmd.get("strategy"), cmd.get("venue")))
        if tt is None:
            emit({"error": f"no book {cmd.get('strategy')!r} on {cmd.get('venue')!r}; books: {DESK_BOOKS}"})
        elif cmd["cmd"] == "overfill":
            o = tt.order_signal(next_id("over"), cmd["symbol"], "sell", 10, price=190.0, order_type="limit")
            o.risk_check(passed=True)
            o.submitted()
            o.acked("V-over")
            o.fill(15, 190.0)  # 15 of a 10-lot
            emit({"t0": t0})
        elif cmd["cmd"] == "breach":
            tt.breach(str(cmd["limit"]), cmd.get("symbol"))
            emit({"t0": t0})
        elif cmd["cmd"] == "reject_burst":
            n, seconds = int(cmd["n"]), float(cmd["seconds"])
            for _ in range(n):
                o = tt.order_signal(next_id("burst"), "AAPL", "buy", 10, price=190.0, order_type="limit")
                o.risk_check(passed=True)
                o.submitted()
                o.rejected(str(cmd["reason"]))
                time.sleep(seconds / n)
            emit({"t0": t0, "t1": time.time()})
        else:
            emit({"error": f"unknown command {cmd!r}"})
    stop.set()
    thread.join(5)
    emit({"ok": tradeobs_agent.shutdown()})
    return 0


def run_crypto() -> dict[str, Any]:
    import tradeobs_agent
    from tradeobs_agent import TradingTelemetry

    agent = tradeobs_agent.init()
    tt = TradingTelemetry(strategy=CRYPTO_STRATEGY, venue=CRYPTO_VENUE)
    log = tradeobs_agent.get_logger("execution")
    orders = []
    for i, (symbol, (price, qty, fill)) in enumerate(CRYPTO_ORDERS.items()):
        tt.tick(symbol, price)
        oid = f"mm-{i}"
        o = tt.order_signal(oid, symbol, "buy" if qty > 0 else "sell", abs(qty), price=price, order_type="limit")
        o.risk_check(passed=True)
        o.submitted()
        o.acked(f"V-{oid}")
        time.sleep(SUBMIT_TO_FILL_SLEEP)  # an order span over the drill-down's default "slow" (10 ms)
        o.fill(abs(qty), fill, expected_price=price)
        with o.scope():
            log.info(CRYPTO_LOG_MESSAGE, oid, symbol, extra={"symbol": symbol, "qty": abs(qty), "price": fill})
        tt.position(symbol, qty, fill, avg_price=fill)
        tt.pnl(symbol, 0.0, 0.0)
        orders.append({"order_id": oid, "trace_id": o.trace_id, "symbol": symbol})
    agent.force_flush()
    return {"orders": orders}


def main(argv: list[str]) -> int:
    scenario = argv[1] if len(argv) > 1 else "orders"
    if scenario == "alerts":
        return run_alerts()
    if scenario == "desk":
        return run_desk()
    if scenario == "tiers":
        return run_tiers()
    if scenario == "incident":
        return run_incident()
    if scenario in ("orders", "crypto"):
        result = run_orders() if scenario == "orders" else run_crypto()
        fresh = _Freshness(sdk=False)  # the agent is already up: this only binds the gauge
    elif scenario in ("freshness", "freshness-sdk"):
        fresh = _Freshness(sdk=scenario == "freshness-sdk")
        result = {}
    else:
        print(f"unknown scenario {scenario!r}", file=sys.stderr)
        return 2
    emit({"ready": True, "pid": os.getpid(), **result})
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        if cmd["cmd"] == "set":
            emit({"t0": fresh.set(float(cmd["value"]))})
        elif cmd["cmd"] == "flush":
            emit({"ok": fresh.flush()})
        elif cmd["cmd"] == "stop":
            break
        else:
            emit({"error": f"unknown command {cmd!r}"})
    emit({"ok": fresh.stop()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
