"""The live page says when orders wait for the venue and when the trading loop is stalled, in real headless Chromium.

Before, ``trading.orders.unacknowledged``, its oldest order's age and ``trading.eventloop.stall`` were in Prometheus,
the alerts and the runbook only: the trader's page said nothing while an order stayed "sent" for a minute or the
loop had stopped. Now the strip has "awaiting venue ack" (how many, the oldest one's age) and "event loop" (on
time, or how late), from the frame's ``desk.unacked``, ``unacked_age`` and ``stall``; past the alerts' limits
(30 s) the value is red, has a sign before it that a screen reader reads as "alert:", says "(over 30 s)" or
"stalled", and its box turns dark red: never colour alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests._util import wait_for
from tests.e2e.conftest import LiveProcess, frames_stream, open_on_stream
from tests.e2e.test_live_page import js

pytestmark = pytest.mark.e2e


def box(page: Any, kpi: str, box_id: str) -> dict[str, Any]:
    """What the page shows in a strip box: text, classes, whether it is hidden, the sign before it (with the words a
    screen reader says for it: ``"⚠︎ " / "alert: "``)."""
    got: dict[str, Any] = js(
        page,
        f"""() => {{ const v = document.getElementById('kpi-{kpi}'), b = document.getElementById('{box_id}');
        return {{text: v.textContent, cls: v.className, alarm: b.classList.contains('alarm'), hidden: b.hidden,
                 sign: getComputedStyle(v, '::before').content}}; }}""",
    )
    return got


def ack(page: Any) -> dict[str, Any]:
    return box(page, "unacked", "kpi-ack")


def loop(page: Any) -> dict[str, Any]:
    return box(page, "stall", "kpi-loop")


def test_a_stuck_order_and_a_stalled_loop_of_the_real_service_show_and_clear(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """The scenario service: its desks' gauges, collected by the hub once a second, on the page as they change."""
    srv = live_server()
    page = browser_page
    page.goto(srv.base + "/telemetry/")
    wait_for(lambda: ack(page)["text"] == "none", "no order waiting")  # the desk's orders were all answered
    assert ack(page)["hidden"] is False and loop(page)["hidden"] is True  # no lag monitor yet: nothing said of it
    srv.post("/test/hang")
    wait_for(lambda: ack(page)["text"].startswith("1 · oldest "), f"the hung order, not {ack(page)}")
    first = srv.snapshot()["desk"]["unacked_age"]
    wait_for(lambda: srv.snapshot()["desk"]["unacked_age"] > first, "its age growing")
    assert ack(page)["cls"] == "kv" and not ack(page)["alarm"]  # under the 30 s limit: not marked

    srv.post("/test/stall")  # a trading loop on its own thread, blocked; the hub's frames go on
    wait_for(lambda: loop(page)["text"].startswith("late "), f"the loop late, not {loop(page)}", limit=30)
    got = loop(page)
    assert got["cls"] == "kv bad" and "⚠" in got["sign"] and '"alert: "' in got["sign"]
    assert srv.snapshot()["desk"]["stall"] >= 1
    srv.post("/test/unstall")
    wait_for(lambda: loop(page)["text"] == "on time", f"on time again, not {loop(page)}", limit=30)
    assert loop(page)["cls"] == "kv"


@pytest.mark.parametrize(
    ("desk", "want_ack", "want_loop"),
    [
        # One process: two orders waiting, the oldest 42 s (over the alert's 30 s), the loop blocked 47 s.
        (
            {"unacked": 2, "unacked_age": 42.0, "stall": 47.3},
            ("2 · oldest 42 s (over 30 s)", True),
            ("stalled 47 s", True),
        ),
        # Under the limits: shown, not marked; the loop late by less than a second is on time.
        ({"unacked": 1, "unacked_age": 12.5, "stall": 0.4}, ("1 · oldest 13 s", False), ("on time", False)),
        # A worker group: the most stalled worker, with its pid.
        (
            {"unacked": 0, "unacked_age": 0.0, "stall": 31.0, "stall_pid": 4102},
            ("none", False),
            ("stalled 31 s · pid 4102", True),
        ),
        # The fleet gateway: the instance.
        (
            {"unacked": 3, "unacked_age": 65.0, "stall": 2.5, "stall_at": "mm/b"},
            ("3 · oldest 1 m 5 s (over 30 s)", True),
            ("late 2.5 s · mm/b", False),
        ),
    ],
)
def test_past_the_limits_the_boxes_say_so_in_text_sign_and_colour(
    live_server: Callable[..., LiveProcess],
    device_page: Callable[..., Any],
    desk: dict[str, Any],
    want_ack: tuple[str, bool],
    want_loop: tuple[str, bool],
) -> None:
    page = device_page(viewport={"width": 1400, "height": 1000}, locale="en-US")
    frame = {"type": "full", "seq": 1, "ts": time.time(), "symbols": {}, "working": {}, "account": {}}
    frame["desk"] = {"orders": 4, "fills": 1, "rejects": 0} | desk
    open_on_stream(page, live_server(), frames_stream(frame))
    wait_for(lambda: ack(page)["text"] == want_ack[0], f"{want_ack[0]}, not {ack(page)}")
    for got, (text, over) in ((ack(page), want_ack), (loop(page), want_loop)):
        assert got["text"] == text and got["hidden"] is False
        assert got["alarm"] is over  # the box dark red past the limit
        marked = got["cls"] == "kv bad"
        assert ("⚠" in got["sign"] and '"alert: "' in got["sign"]) is marked
        if over:  # never colour alone: the sign, and the words
            assert marked and ("over 30 s" in text or text.startswith("stalled"))


def test_without_the_gauges_the_boxes_stay_hidden(
    live_server: Callable[..., LiveProcess], device_page: Callable[..., Any]
) -> None:
    """A service without trading telemetry (or an older agent at the gateway): nothing said, no empty box."""
    page = device_page(viewport={"width": 1400, "height": 1000}, locale="en-US")
    frame = {"type": "full", "seq": 1, "ts": time.time(), "symbols": {}, "working": {}, "account": {}}
    frame["desk"] = {"orders": 4, "fills": 1, "rejects": 0, "counts_since": time.time() - 60}
    open_on_stream(page, live_server(), frames_stream(frame))
    wait_for(lambda: page.locator("#kpi-fills").inner_text() == "1", "the frame applied")
    assert ack(page)["hidden"] is True and loop(page)["hidden"] is True
