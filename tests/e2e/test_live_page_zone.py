"""The live page's clock times are in one zone, named, in real headless Chromium with the browser's clock fixed.

A New York FX desk (``trading_day_start`` "17:00 America/New_York") and a trader whose browser is in London. The
header said "counts since 12:03:11 New York" and "P&L since 17:00 New York", and the blotter's rows beside them were
in the browser's zone, named nowhere: "fill at 14:03" could be London's or New York's. Now the blotter's times (and
the charts' time axes) are in the desk's zone when the frame names one, else the browser's, and the blotter's head
says which ("New York time"). The row saying what the page did not get after an overnight gap said "events from
16:55:00 to 09:10:00": a negative span, or today's; it now has the dates when the two are on different days.

Every instant is a chosen one and the browser's clock is fixed at it (``page.clock``), its zone set
(``timezone_id``): nothing depends on the hour or the zone the tests run at. The instants sit on New York's and
London's midnights, where a day changes in one zone and not in the other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from tests._util import wait_for
from tests.e2e.conftest import LiveProcess, frames_stream

pytestmark = pytest.mark.e2e
LONDON = ZoneInfo("Europe/London")  # the trader's browser
NY = ZoneInfo("America/New_York")  # the desk's trading day
DESK = {"day_start": "17:00 New York", "day_tz": "America/New_York", "day_full": True}


def ts(y: int, mo: int, d: int, h: int, mi: int, s: int, zone: ZoneInfo) -> float:
    return dt.datetime(y, mo, d, h, mi, s, tzinfo=zone).timestamp()


def fill(n: int, at: float) -> dict[str, Any]:
    return {"id": f"b0-{n}", "kind": "fill", "ts": at, "strategy": "mm", "venue": "EBS", "symbol": "EURUSD"} | {
        "side": "buy",
        "qty": 1_000_000,
        "price": 1.0842,
        "leaves": 0,
        "order_id": f"o{n}",
    }


def frame(at: float, account: dict[str, Any]) -> dict[str, Any]:
    return {"type": "full", "seq": 1, "ts": at, "symbols": {}, "working": {}, "desk": {"fills": 2}} | {
        "account": {"pnl": 1.0, "pnl_day": 1.0} | account
    }


def open_page(
    device_page: Callable[..., Any],
    srv: LiveProcess,
    now: float,
    stream: str | Callable[[Any], None],
    histories: list[list[dict[str, Any]]],
    width: int = 1400,
) -> Any:
    """The live page in a London browser whose clock is fixed at ``now``; its stream answered by ``stream`` (the
    body, or a route handler of the test's), its n-th /history by ``histories[n]`` (the last one after that). No
    request reaches the server's own stream or history: a route replaced after the page opened let a reconnect in
    between reach it, and the page showed the server's frames."""
    page = device_page(viewport={"width": width, "height": 1000}, timezone_id="Europe/London", locale="en-US")
    page.clock.set_fixed_time(now)
    asked: list[int] = []

    def history(route: Any) -> None:
        events = histories[min(len(asked), len(histories) - 1)]
        asked.append(1)
        body = {"frames": [], "events": events, "last_id": events[-1]["id"] if events else ""}
        route.fulfill(status=200, headers={"content-type": "application/json"}, body=orjson.dumps(body))

    page.route("**/telemetry/history*", history)
    if callable(stream):
        page.route("**/telemetry/stream*", stream)
    else:
        body = stream
        page.route(
            "**/telemetry/stream*",
            lambda route: route.fulfill(status=200, headers={"content-type": "text/event-stream"}, body=body),
        )
    page.goto(srv.base + "/telemetry/")
    return page


def shown(t: float, zone: ZoneInfo, now: float) -> str:
    """A blotter row's time as the page writes it in ``zone``: with the date ("Dec 6 23:59:55") when ``t`` is on
    another day than ``now`` there (a row from before the desk's midnight read as today's time)."""
    at, today = dt.datetime.fromtimestamp(t, zone), dt.datetime.fromtimestamp(now, zone)
    clock = at.strftime("%H:%M:%S")
    return clock if at.date() == today.date() else f"{at:%b} {at.day} {clock}"


def settle(page: Any, script: str, want: Any) -> None:
    """Waits until ``script`` reads ``want`` on the page; if it never does, says what it read last."""
    seen: list[Any] = [None]

    def matches() -> bool:
        seen[0] = page.evaluate(script)
        return bool(seen[0] == want)

    try:
        wait_for(matches, str(want))
    except AssertionError:
        raise AssertionError(f"expected {want!r}, the page showed {seen[0]!r}") from None


ROWS = """() => [document.getElementById('blotter-zone') && document.getElementById('blotter-zone').textContent,
  Array.from(document.querySelectorAll('#blotter tbody tr[data-id]'), (r) => r.cells[0].textContent)]"""

# Two fills either side of a midnight, the browser's clock fixed a minute after the later one.
MIDNIGHTS = {
    "new-york-midnight": (ts(2026, 12, 6, 23, 59, 55, NY), ts(2026, 12, 7, 0, 0, 5, NY)),
    "london-midnight": (ts(2026, 12, 6, 23, 59, 55, LONDON), ts(2026, 12, 7, 0, 0, 5, LONDON)),
    "london-afternoon": (ts(2026, 12, 7, 14, 3, 0, LONDON), ts(2026, 12, 7, 14, 3, 9, LONDON)),
}


@pytest.mark.parametrize("instants", MIDNIGHTS)
@pytest.mark.parametrize("desk", ["new-york", "none"])
def test_the_blotters_times_are_in_the_zone_the_header_names(
    live_server: Callable[..., LiveProcess], device_page: Callable[..., Any], instants: str, desk: str
) -> None:
    first, second = MIDNIGHTS[instants]
    zone, name, account = (NY, "New York", DESK) if desk == "new-york" else (LONDON, "London", {})
    now = second + 60
    page = open_page(
        device_page, live_server(), now, frames_stream(frame(now, account)), [[fill(1, first), fill(2, second)]]
    )
    want = [name + " time", [shown(t, zone, now) for t in (second, first)]]
    settle(page, ROWS, want)
    title = page.locator("#blotter thead th").first.get_attribute("title")
    assert title is not None and title.startswith(f"times in {'America/New_York' if account else 'Europe/London'}")
    # what a screen reader hears on the header (its description, made from the first title): the same zone
    described = page.evaluate(
        "() => { const th = document.querySelector('#blotter thead th');"
        " const d = document.getElementById(th.getAttribute('aria-describedby')); return d && d.textContent; }"
    )
    assert described == title, (described, title)
    if account:  # the header's "since" in the same zone, named the same
        assert page.locator("#kpi-day-label").inner_text() == "P&L since 17:00 New York"


# (desk zone?, the last frame before the gap, the first event after it, the row's words in the page's zone)
GAPS = {
    # a night away, New York desk: both midnights crossed
    "overnight": (
        True,
        ts(2026, 12, 6, 16, 55, 0, NY),
        ts(2026, 12, 7, 9, 10, 0, NY),
        "Dec 6 16:55:00 to Dec 7 09:10:00",
    ),
    # London's midnight, not New York's: one New York evening, no date (London's 23:50 to 00:20 before)
    "london-midnight-desk": (
        True,
        ts(2026, 12, 6, 23, 50, 0, LONDON),
        ts(2026, 12, 7, 0, 20, 0, LONDON),
        "18:50:00 to 19:20:00",
    ),
    # the same gap without a desk zone: the browser's, across its midnight
    "london-midnight": (
        False,
        ts(2026, 12, 6, 23, 50, 0, LONDON),
        ts(2026, 12, 7, 0, 20, 0, LONDON),
        "Dec 6 23:50:00 to Dec 7 00:20:00",
    ),
    # New York's midnight, not London's (04:50 to 05:20 there)
    "new-york-midnight": (
        True,
        ts(2026, 12, 6, 23, 50, 0, NY),
        ts(2026, 12, 7, 0, 20, 0, NY),
        "Dec 6 23:50:00 to Dec 7 00:20:00",
    ),
    # a gap within one day: times only
    "afternoon": (True, ts(2026, 12, 7, 13, 0, 0, NY), ts(2026, 12, 7, 13, 40, 0, NY), "13:00:00 to 13:40:00"),
}


@pytest.mark.parametrize("case", GAPS)
def test_the_not_received_row_dates_a_gap_across_a_day(
    live_server: Callable[..., LiveProcess], device_page: Callable[..., Any], case: str
) -> None:
    with_desk, since, until, words = GAPS[case]
    zone = NY if with_desk else LONDON
    before, after = fill(1, since - 30), fill(7, until)
    # the last frame before the gap, then the server's reset: it no longer had the events after the page's last id
    stream = frames_stream(frame(since, DESK if with_desk else {})) + 'event: reset\ndata: {"reason": "gap"}\n\n'
    # /history at load has the event before the gap; after the reset, that one and the first one after the gap
    page = open_page(device_page, live_server(), until + 5, stream, [[before], [before, after]], width=390)
    got = """() => { const r = document.querySelector('#blotter tr.gap');
                     return r && [r.cells[0].textContent, r.cells[1].textContent]; }"""
    # the row's own time: of the day of the last frame the page got (the server's day as the page knows it)
    want = [shown(since, zone, since), f"events from {words} not received (the server no longer had them)"]
    settle(page, got, want)
    # on a phone the row is one line, its words whole in the blotter's sideways-scrolling box
    cell = page.locator("#blotter tr.gap td").nth(1)
    assert cell.evaluate("td => td.scrollWidth <= td.clientWidth"), "the row's words cut"


def test_rows_of_a_day_that_ended_while_the_page_was_open_get_their_date(
    live_server: Callable[..., LiveProcess], device_page: Callable[..., Any]
) -> None:
    """The blotter keeps a row's time once written: a page left open over the desk's midnight went on showing the
    evening's fills as times only, under the new day's, each read as today's. When the server's day changes, the rows
    of the day before are written again with their date."""
    evening, midnight = ts(2026, 12, 6, 23, 59, 0, NY), ts(2026, 12, 7, 0, 0, 0, NY)
    phase = {"after": False}

    def stream(route: Any) -> None:
        # before midnight: one frame, then the stream ends and the page reconnects (retry 200 ms) until the test
        # moves the server past midnight, when the next connection's frame is of the new day
        at, seq = (midnight + 30, 2) if phase["after"] else (midnight - 30, 1)
        body = frames_stream(frame(at, DESK) | {"seq": seq}).replace("retry: 600000", "retry: 200", 1)
        route.fulfill(status=200, headers={"content-type": "text/event-stream"}, body=body)

    page = open_page(device_page, live_server(), midnight - 30, stream, [[fill(1, evening)]])
    settle(page, ROWS, ["New York time", ["23:59:00"]])
    phase["after"] = True
    settle(page, ROWS, ["New York time", ["Dec 6 23:59:00"]])


@pytest.mark.parametrize("desk", ["new-york", "none"])
def test_the_charts_time_axes_are_in_the_zone_the_header_names(
    live_server: Callable[..., LiveProcess], device_page: Callable[..., Any], desk: str
) -> None:
    """The charts' time ticks are read in the page's one zone: the desk's (New York) in a London browser, else the
    browser's. Each label is checked against the tick's instant in that zone, computed here."""
    zone, account = (NY, DESK) if desk == "new-york" else (LONDON, {})
    start = ts(2026, 12, 7, 9, 30, 0, NY)
    frames = [frame(start + k, account) | {"seq": k + 1} for k in range(12)]
    page = open_page(device_page, live_server(), start + 12, frames_stream(*frames), [[]])
    axis = "() => { const a = window.__tradeobs.axes['chart-latency:x']; return a ? [a.splits, a.labels] : null; }"
    wait_for(lambda: bool((page.evaluate(axis) or [[], []])[1]), "the latency chart's time ticks")
    splits, labels = page.evaluate(axis)
    pairs = [(s, label) for s, label in zip(splits, labels, strict=True) if label]
    assert pairs, (splits, labels)
    for at, label in pairs:
        assert label == dt.datetime.fromtimestamp(at, zone).strftime("%H:%M:%S"), (at, label, zone)
