"""The live page left open all day, in real headless Chromium: what it holds stays at its caps, whatever came and went.

A trader opens the page in the morning and leaves it open (a crypto desk: all week). Each test feeds it a fixed amount
of input, a day's churn in a few seconds, and counts what it holds: events, ids, filter options, symbols, chart rings,
charts, DOM elements and event listeners (never times or heap bytes: CI machines are loaded). The long version, with
the heap and the time per frame over half an hour: ``benchmarks/live_page_day.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from tests._util import wait_for
from tests.e2e.conftest import LiveProcess
from tests.e2e.test_live_page import js

pytestmark = pytest.mark.e2e
HELD = 5500  # the events the page keeps at most (MAX_EVENTS and the 500 it lets go at once)


def event_stream(first: int, n: int, strategy: Callable[[int], str], venue: Callable[[int], str]) -> str:
    """Server-sent events: a full frame (first only), then ``n`` fills numbered from ``first``."""
    out = []
    if first == 0:
        frame = {"type": "full", "seq": 0, "ts": time.time(), "symbols": {}, "desk": {}, "working": {}, "account": {}}
        out.append(f"id: b0-0\nevent: frame\ndata: {orjson.dumps(frame).decode()}\n\n")
    now = time.time()
    for i in range(first, first + n):
        ev = {"kind": "fill", "ts": now, "strategy": strategy(i), "venue": venue(i), "symbol": "AAPL", "side": "buy"}
        ev |= {"qty": 1, "price": 190.5, "order_id": f"o-{i}"}
        out.append(f"id: b0-{i + 1}\nevent: event\ndata: {orjson.dumps(ev).decode()}\n\n")
    return "".join(out)


def options(page: Any, select: str) -> list[str]:
    return list(js(page, f"[...document.querySelectorAll('#{select} option')].map(o => o.value).filter(v => v)"))


@pytest.fixture()
def day_page(browser_page: Any, live_server: Callable[..., LiveProcess]) -> Iterator[tuple[Any, list[str]]]:
    """The page on a stream answered by the test: each request takes the next of ``bodies`` (an empty stream when
    there is none); the page asks again 100 ms after each ends, from its last id, as after a proxy's timeout."""
    bodies: list[str] = []

    def answer(route: Any) -> None:
        body = "retry: 100\n\n" + (bodies.pop(0) if bodies else "")
        route.fulfill(status=200, headers={"content-type": "text/event-stream"}, body=body)

    srv = live_server("--idle-start")  # the page and /config; the stream and /history are the test's
    browser_page.route("**/telemetry/stream*", answer)
    browser_page.route("**/telemetry/history*", lambda route: route.fulfill(json={"events": [], "frames": []}))
    browser_page.goto(srv.base + "/telemetry/")
    yield browser_page, bodies


def test_the_blotter_filters_offer_the_strategies_and_venues_of_the_events_held(day_page: Any) -> None:
    """A desk whose strategies are per contract (``mm:BTC-27DEC26-...``, listed, expired, rolled): 12,000 fills of
    3,000 strategies on 300 venues. The page holds the newest 5,500 events; its filters offered every strategy and
    venue of the day (3,000 and 300 options, for events long gone, growing all day). Now the names of the events it
    holds, the newest first among them; a name chosen in the filter stays while chosen, and goes when the filter
    moves off it."""
    page, bodies = day_page
    strategy, venue = (lambda i: f"strat-{i // 4:04d}"), (lambda i: f"venue-{i // 40:03d}")
    bodies += [event_stream(0, 6000, strategy, venue), event_stream(6000, 6000, strategy, venue)]
    wait_for(lambda: js(page, "window.__tradeobs && window.__tradeobs.events") == 12000, "12,000 events", limit=60)
    ids = js(page, "window.__tradeobs.eventIds")
    held = int(ids[-1].split("-")[1]) - int(ids[0].split("-")[1]) + 1  # the events the page holds, newest last
    assert 5000 <= held <= HELD, held
    first = 12000 - HELD  # the oldest event the page may hold
    want_strats = {strategy(i) for i in range(first, 12000)}
    got = options(page, "f-strategy")
    assert len(got) <= len(want_strats) and strategy(11999) in got and strategy(0) not in got, (len(got), got[:3])
    got = options(page, "f-venue")
    assert len(got) <= len({venue(i) for i in range(first, 12000)}) and venue(0) not in got, (len(got), got[:3])

    # A strategy chosen in the filter keeps its option while its events go; moving the filter off it removes it.
    chosen = options(page, "f-strategy")[0]
    page.locator("#f-strategy").select_option(chosen)
    bodies.append(event_stream(12000, 6000, strategy, venue))
    wait_for(lambda: js(page, "window.__tradeobs.events") == 18000, "6,000 events more", limit=60)
    assert chosen in options(page, "f-strategy")
    page.locator("#f-strategy").select_option("")
    wait_for(lambda: chosen not in options(page, "f-strategy"), f"{chosen} gone from the filter")
    assert len(options(page, "f-strategy")) <= len({strategy(i) for i in range(18000 - HELD, 18000)})


def counts(page: Any, cdp: Any) -> dict[str, int]:
    """What the page holds after a garbage collection: its own structures, its elements, its event listeners."""
    cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    got: dict[str, int] = js(page, "window.__tradeobs.sizes()")
    got["listeners"] = int(metrics["JSEventListeners"])
    got["elements"] = js(page, "document.getElementsByTagName('*').length")
    got["state"] = js(page, "Object.keys(window.__tradeobs.state.symbols).length")
    got["picker"] = js(page, "document.querySelectorAll('#sym-list option').length")
    return got


def test_symbols_rolling_all_day_leave_the_page_at_its_caps(
    live_server: Callable[..., LiveProcess], browser_page: Any
) -> None:
    """200 symbols listed at any time, 50 a second delisted and replaced (a desk of options and futures, a day's
    rolls in seconds), at 20 frames a second. After 1,000 symbols have come and gone the
    page holds what it held after the first 200 rolled: a picker entry, a state row and two chart rings per symbol
    listed now, three charts, the same event listeners and about the same elements (the events' caps: above)."""
    srv = live_server("--roll", "200:50", "--hz", "20")
    page = browser_page
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.goto(srv.base + "/telemetry/")
    listed = 12 + 200  # the scenario's symbols and the rolling ones

    def rolled_past(n: int) -> bool:  # the oldest rolling symbol on the page is ROLL{n} or later
        syms = js(page, "Object.keys((window.__tradeobs.state || {symbols: {}}).symbols).filter(s => /^ROLL/.test(s))")
        return bool(syms) and min(int(s[4:]) for s in syms) >= n

    wait_for(lambda: rolled_past(200), "the first 200 rolled", limit=120)
    early = counts(page, cdp)
    wait_for(lambda: rolled_past(1200), "1,000 more rolled", limit=180)
    late = counts(page, cdp)
    for got in (early, late):
        assert got["symbols"] == got["symSet"] == got["state"] == got["picker"] == listed, got
        assert got["rings"] == got["pnlRings"] == listed and got["lower"] <= listed, got
        assert got["charts"] == 3 and got["selected"] == 6, got
        assert got["events"] <= HELD and got["seen"] <= HELD and got["ids"] <= HELD and got["matched"] <= HELD, got
        assert got["strategies"] <= 3 and got["venues"] <= 3, got
    assert late["listeners"] == early["listeners"], (early, late)
    assert abs(late["elements"] - early["elements"]) <= 60, (early, late)  # rows in view; nothing per symbol gone


def test_a_filtered_blotter_shows_only_events_the_page_still_holds(day_page: Any) -> None:
    """With the strategy filter on all day, the blotter kept the filtered events the page had let go: 6,100 fills
    of two strategies, "a" chosen after the first 100, showed 2,600 of a's ("2600 events of 5100") while the page held
    the newest 5,100 events, of which 2,550 are a's: a's rows the page had let go stayed in the filtered rows until
    the filter changed. Now the rows are of the events held."""
    page, bodies = day_page
    strategy, venue = (lambda i: "ab"[i % 2]), (lambda i: "v")
    bodies.append(event_stream(0, 100, strategy, venue))
    wait_for(lambda: js(page, "window.__tradeobs && window.__tradeobs.events") == 100, "100 events")
    page.locator("#f-strategy").select_option("a")
    bodies.append(event_stream(100, 6000, strategy, venue))
    wait_for(lambda: js(page, "window.__tradeobs.events") == 6100, "6,100 events", limit=60)
    n = held_after(6100)  # 5,098: at 5,501 held the page goes back to the newest 5,000 (at 5,501 and 6,002 received)
    want = f"{sum(1 for i in range(6100 - n, 6100) if strategy(i) == 'a')} events of {n}"
    wait_for(lambda: page.locator("#blotter-note").inner_text() == want, f"{want!r}, not {note(page)!r}")


def held_after(received: int, keep: int = 5000, step: int = 500) -> int:
    """The events the page holds after ``received``: the newest ``keep``, trimmed back to them once ``step`` more came
    (live.js's MAX_EVENTS and TRIM_STEP)."""
    held = 0
    for _ in range(received):
        held += 1
        if held > keep + step:
            held = keep
    return held


def note(page: Any) -> str:
    return str(page.locator("#blotter-note").inner_text())
