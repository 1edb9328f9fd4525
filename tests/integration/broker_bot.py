"""A bot not shaped like the demo, instrumented as docs/metrics.md and docs/logging.md say.

An asyncio strategy places its orders from several tasks at once (``asyncio.gather``); the broker SDK
reads its socket on a thread of its own and calls back there (acks, fills, rejects, cancels), and one
order's acks come from another asyncio task. Prints one JSON line: {order id: trace id, ...}.

    python broker_bot.py        (the agent's settings from the environment: tests/integration/agent_proc.agent_env)
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

import tradeobs_agent

log = tradeobs_agent.get_logger("execution")


class BrokerSDK:
    """A broker client: execution reports arrive as JSON lines on a socket, read by the SDK's own thread."""

    def __init__(self, tt: tradeobs_agent.TradingTelemetry) -> None:
        self.tt = tt
        self.venue_side, self._ours = socket.socketpair()
        self.synced = threading.Event()
        self.reader = threading.Thread(target=self._read, name="broker-socket", daemon=True)
        self.reader.start()

    def send_report(self, **report: Any) -> None:  # what the venue sends
        self.venue_side.sendall((json.dumps(report) + "\n").encode())

    def _read(self) -> None:
        buf = b""
        while True:
            data = self._ours.recv(65536)
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self.on_report(json.loads(line))

    def on_report(self, r: dict[str, Any]) -> None:  # the SDK's callback, on its socket thread
        if r["type"] == "stop":
            self._ours.close()
            raise SystemExit
        if r["type"] == "sync":  # every report before this one is handled (as IB's nextValidId after a reconnect)
            self.synced.set()
            return
        order = self.tt.execution(r["cid"])  # an id this process never signalled: counted by the agent
        with order.scope():
            if r["type"] == "ack":
                order.acked(r["venue_id"])
                log.info("acked %s as %s", r["cid"], r["venue_id"])
            elif r["type"] == "fill":
                order.fill(r["qty"], r["price"], exec_id=r.get("exec_id"), cum_qty=r.get("cum_qty"))
                log.info("fill %s %s @ %s", r["cid"], r["qty"], r["price"])
            elif r["type"] == "reject":
                order.rejected(r["reason"])
                log.info("rejected %s: %s", r["cid"], r["reason"])
            elif r["type"] == "replaced":
                order.replaced(r["new_cid"], qty=r["qty"], price=r["price"])
                log.info("replaced %s by %s", r["cid"], r["new_cid"])
            elif r["type"] == "cancelled":
                order.cancelled(r["reason"])
                log.info("cancelled %s", r["cid"])


async def place(
    tt: tradeobs_agent.TradingTelemetry, broker: BrokerSDK, cid: str | int, qty: float, reports: list[Any]
) -> None:
    order = tt.order_signal(cid, "AAPL", "buy", qty, 100.0, "limit")
    with order.scope():
        order.risk_check(passed=True)
        await asyncio.sleep(0.01)
        order.submitted()
        log.info("sent %s", cid)
    for delay, report in reports:
        await asyncio.sleep(delay)
        report = dict(report)
        broker.send_report(cid=report.pop("cid_", cid), **report)  # "cid_": the report names a replace's new id


async def ack_in_a_task(tt: tradeobs_agent.TradingTelemetry, cid: str) -> None:
    """An SDK that calls back in an asyncio task of its own."""
    await asyncio.sleep(0.05)
    order = tt.order(cid)
    assert order is not None
    with order.scope():
        order.acked("V-task")
        log.info("acked %s in a task", cid)


async def main() -> dict[str, Any]:
    tt = tradeobs_agent.TradingTelemetry(strategy="bot", venue="sock")
    broker = BrokerSDK(tt)
    ack = {"type": "ack", "venue_id": "V"}
    await asyncio.gather(
        place(
            tt,
            broker,
            "partial",
            100,
            [
                (0.05, ack),
                (0.3, {"type": "fill", "qty": 40, "price": 100.02}),
                (0.3, {"type": "fill", "qty": 60, "price": 100.05}),
            ],
        ),
        place(
            tt,
            broker,
            "cxl-race",
            50,
            [
                (0.05, ack),
                (0.1, {"type": "cancelled", "reason": "user"}),
                (0.05, {"type": "fill", "qty": 20, "price": 99.99}),
            ],
        ),
        place(tt, broker, "venue-rej", 10, [(0.05, {"type": "reject", "reason": "no margin"})]),
        place(
            tt,
            broker,
            "dup",
            10,
            [
                (0.05, ack),
                (0.05, {"type": "fill", "qty": 5, "price": 100.0, "exec_id": "E1"}),
                (0.05, {"type": "fill", "qty": 5, "price": 100.0, "exec_id": "E1"}),
                (0.05, {"type": "fill", "qty": 5, "price": 100.3, "exec_id": "E2"}),
            ],
        ),
        place(
            tt,
            broker,
            "amend",
            10,
            [
                (0.05, ack),
                (0.05, {"type": "fill", "qty": 4, "price": 100.0}),
                (0.05, {"type": "replaced", "new_cid": "amend-2", "qty": 15, "price": 100.5}),
                (0.05, {"type": "fill", "qty": 11, "price": 100.5, "cid_": "amend-2"}),
            ],
        ),
        place(  # an integer order id, as Interactive Brokers numbers orders; a resend without exec_id, by its CumQty
            tt,
            broker,
            4242,
            10,
            [
                (0.05, ack),
                (0.05, {"type": "fill", "qty": 5, "price": 100.0, "cum_qty": 5}),
                (0.05, {"type": "fill", "qty": 5, "price": 100.0, "cum_qty": 5}),
                (0.05, {"type": "fill", "qty": 5, "price": 100.1, "cum_qty": 10}),
            ],
        ),
        place(tt, broker, "over", 10, [(0.05, ack), (0.05, {"type": "fill", "qty": 15, "price": 100.1})]),
        place(
            tt,
            broker,
            "bad",
            10,
            [
                (0.05, ack),
                (0.05, {"type": "fill", "qty": 0, "price": 100.0}),
                (0.05, {"type": "fill", "qty": -3, "price": 100.0}),
                (0.05, {"type": "fill", "qty": 3, "price": float("nan")}),
                (0.05, {"type": "fill", "qty": 10, "price": 100.0}),
            ],
        ),
        place(tt, broker, "task-ack", 10, [(0.2, {"type": "fill", "qty": 10, "price": 100.0})]),
        ack_in_a_task(tt, "task-ack"),
        place(tt, broker, "no-ack", 10, []),  # the venue never answers; still open at shutdown
    )
    # Interactive Brokers' way: a status at every change (orderStatus "Submitted" again after the fill's, and one
    # overtaken by the fill), then a reconnect that numbers orders from 1 again: order 7 is another order, and the
    # day's executions are replayed under their order ids (the first order 7's execution names the second).
    await place(
        tt,
        broker,
        7,
        10,
        [
            (0.01, ack),
            (0.01, ack),
            (0.01, {"type": "fill", "qty": 10, "price": 100.0, "exec_id": "S1-E1", "cum_qty": 10}),
            (0.01, ack),
        ],
    )
    broker.send_report(type="sync")
    await asyncio.to_thread(broker.synced.wait, 30)
    first_7 = tt.order(7)  # type: ignore[arg-type]
    assert first_7 is not None and first_7.closed
    await place(
        tt,
        broker,
        7,
        4,
        [
            (0.01, ack),
            (0.01, {"type": "fill", "qty": 10, "price": 100.0, "exec_id": "S1-E1", "cum_qty": 10}),  # the replay
            (0.01, {"type": "fill", "qty": 4, "price": 100.1, "exec_id": "S2-E1", "cum_qty": 4}),
        ],
    )
    # An order the previous run of the bot sent, still working at the venue, taken over as the venue reports it at the
    # connection (4 of 10 filled before the restart); the venue replays that execution, then fills the rest.
    resumed = tt.resume("before-restart", "AAPL", "buy", 10, 100.0, "limit", filled_qty=4, venue_order_id="V-old")
    broker.send_report(cid="before-restart", type="fill", qty=4, price=100.0, exec_id="OLD-E1", cum_qty=4)
    broker.send_report(cid="before-restart", type="fill", qty=6, price=100.1, exec_id="NEW-E1", cum_qty=10)
    broker.send_report(cid="from-yesterday", type="fill", qty=5, price=1.0, exec_id="X-1")
    await asyncio.sleep(0.5)
    ids = {
        "7-first": first_7.trace_id,
        "7": tt.order(7).trace_id,  # type: ignore[arg-type, union-attr]
        "before-restart": resumed.trace_id,
    }
    ids |= {
        cid: tt.order(cid).trace_id
        for cid in ("partial", "cxl-race", "venue-rej", "dup", "4242", "amend", "over", "bad", "task-ack", "no-ack")  # type: ignore[union-attr]
    }
    # One span per order (steps as events on the root): a fill after the cancel comes when the root has ended.
    one_span = tradeobs_agent.TradingTelemetry(strategy="bot-events", venue="sock", child_spans=False)
    late = one_span.order_signal("events-late-fill", "AAPL", "buy", 10, 100.0)
    late.submitted()
    late.cancelled("user")
    await asyncio.to_thread(late.fill, 5, 100.0)  # from another thread, as the broker's
    ids["events-late-fill"] = late.trace_id
    # An order of the same one-span telemetry that the venue acknowledges under its own id and amends: its steps,
    # the replace's new id included, are events on its root span.
    amend = one_span.order_signal("ev-amend", "AAPL", "buy", 10, 100.0)
    with amend.scope():
        amend.risk_check(passed=True)
        amend.submitted()
        log.info("sent ev-amend")
        amend.acked("V-ev-77")
        log.info("acked ev-amend as V-ev-77")
        amend.replaced("ev-amend-2", qty=15, price=100.5)
        log.info("replaced ev-amend by ev-amend-2")
    with one_span.execution("ev-amend-2").scope():  # the fill's report names the new id
        one_span.execution("ev-amend-2").fill(15, 100.5)
        log.info("fill ev-amend-2 15 @ 100.5")
    ids["ev-amend"] = amend.trace_id
    broker.send_report(type="stop")
    broker.reader.join(10)
    return ids


if __name__ == "__main__":
    tradeobs_agent.init()
    ids = asyncio.run(main())
    tradeobs_agent.shutdown()
    print(json.dumps(ids), flush=True)
