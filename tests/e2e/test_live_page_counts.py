"""The live page says since when its order, fill and reject counts count, in real headless Chromium.

The counts are the running process's since it started (a worker group's since its first worker started, the fleet
gateway's since its first instance started), while Grafana's are the day's. A trader comparing the page with the
broker's blotter at 15:00, after a restart at noon, read the page's fills as the day's: only the P&L said "since".
Now the fills' label says "fills since 12:03:11" and the positions' head "counts since 12:03:11" (text on the page,
so a screen reader reads it; the tables of counts have it as their description), from the frame's
``desk.counts_since``; after a restart, the new process's start.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests._util import wait_for
from tests.e2e.conftest import LiveProcess, frames_stream, open_on_stream

pytestmark = pytest.mark.e2e
LONDON = ZoneInfo("Europe/London")  # the trader's browser
NY = ZoneInfo("America/New_York")


def shown(page: Any) -> tuple[str, str]:
    return str(page.locator("#kpi-fills-label").inner_text()), str(page.locator("#counts-since").inner_text())


def at(ts: float, zone: ZoneInfo = LONDON) -> str:
    return dt.datetime.fromtimestamp(ts, zone).strftime("%H:%M:%S")


def test_the_counts_say_since_the_process_started_and_a_restart_moves_it(
    live_server: Callable[..., LiveProcess], device_page: Callable[..., Any]
) -> None:
    srv = live_server()
    page = device_page(viewport={"width": 1400, "height": 1000}, timezone_id="Europe/London", locale="en-US")
    first = srv.snapshot()["desk"]["counts_since"]
    assert first <= time.time()
    # The browser's "today" is the start's own (the label has no date): on the real clock, a start at 23:59:58 London
    # read after midnight was rightly shown as "Dec 7 23:59:58" (reproduced under faketime, the run crossing 00:00 UTC)
    page.clock.set_fixed_time(first)
    page.goto(srv.base + "/telemetry/")
    wait_for(lambda: page.evaluate("window.__tradeobs && window.__tradeobs.frames") >= 3, "3 frames")
    want = (f"fills since {at(first)}", f"counts since {at(first)}")
    wait_for(lambda: shown(page) == want, f"{want}, not {shown(page)}")
    # a screen reader reads it with the tables of counts: their accessible description is that text
    for table in ("reasons", "strategies", "services"):
        assert page.locator(f"#{table}").get_attribute("aria-describedby") == "counts-since"
    assert page.locator("#h-positions").inner_text().endswith(f"counts since {at(first)}")  # the positions' name
    assert "after a restart they count from there" in str(page.locator("#counts-since").get_attribute("title"))

    time.sleep(1.1)  # the restarted process's start is a later second than the first one's (what is compared)
    srv.kill()
    srv.start()  # the same port: the page reconnects by itself
    second = srv.snapshot()["desk"]["counts_since"]
    assert second > first + 1
    page.clock.set_fixed_time(second)  # the new start's day, as above (the restart may fall after midnight)
    want = (f"fills since {at(second)}", f"counts since {at(second)}")
    wait_for(lambda: shown(page) == want, f"after the restart {want}, not {shown(page)}", limit=60)


def scenario(case: str, now: dt.datetime) -> tuple[dict[str, Any], dict[str, Any], tuple[str, str]]:
    """The frame's desk and account fields and the two labels the page should show, at the browser's ``now``.

    Computed from the one instant the browser's clock is fixed at: times taken when the file was collected made a
    full run crossing New York's midnight (05:00 UTC) fail on a label the page rightly dated ("Dec 6 12:03:11")."""
    noon = now.astimezone(LONDON).replace(hour=12, minute=3, second=11, microsecond=0)
    if case == "restarted":  # one process, restarted at 12:03:11 (the browser's time)
        return {"counts_since": noon.timestamp()}, {}, ("fills since 12:03:11", "counts since 12:03:11")
    if case == "new-york":  # a desk with a trading day in New York: in New York's time, as the P&L's label
        ny_noon = now.astimezone(NY).replace(hour=12, minute=3, second=11, microsecond=0)  # New York's own today
        return (
            {"counts_since": ny_noon.timestamp()},
            {"day_start": "17:00 New York", "day_tz": "America/New_York"},
            ("fills since 12:03:11 New York", "counts since 12:03:11 New York"),
        )
    if case == "fleet":  # the first instance since 09:00:02, one started at 12:03:11 has no morning in the sums
        nine = noon.replace(hour=9, minute=0, second=2)
        return (
            {"counts_since": nine.timestamp(), "counts_since_last": noon.timestamp()},
            {},
            ("fills since 09:00:02", "counts since 09:00:02, one instance since 12:03:11"),
        )
    assert case == "days-ago"  # a process up for days: the date too
    ago = (noon - dt.timedelta(days=5)).replace(hour=9, minute=30, second=5)
    day = f"{ago:%b %-d}"
    return {"counts_since": ago.timestamp()}, {}, (f"fills since {day} 09:30:05", f"counts since {day} 09:30:05")


# London's and New York's midnights: the dates each zone's "today" changes at, where a label gains or loses its date
CLOCKS = {
    "now": None,
    "london-0001": dt.datetime(2026, 12, 7, 0, 0, 1, tzinfo=LONDON),
    "ny-0001": dt.datetime(2026, 12, 7, 0, 0, 1, tzinfo=NY),
    "ny-2359": dt.datetime(2026, 12, 6, 23, 59, 50, tzinfo=NY),
}


@pytest.mark.parametrize("clock", CLOCKS)
@pytest.mark.parametrize("case", ["restarted", "new-york", "fleet", "days-ago"])
def test_the_counts_label_says_since_when_from_the_frame(
    live_server: Callable[..., LiveProcess], device_page: Callable[..., Any], case: str, clock: str
) -> None:
    now = CLOCKS[clock] or dt.datetime.now(LONDON)
    desk, account, want = scenario(case, now)
    page = device_page(viewport={"width": 1400, "height": 1000}, timezone_id="Europe/London", locale="en-US")
    page.clock.set_fixed_time(now)  # the page's "today" is the one the scenario was computed for
    frame = {"type": "full", "seq": 1, "ts": time.time(), "symbols": {}, "working": {}}
    frame["desk"] = {"orders": 40, "fills": 38, "rejects": 2} | desk
    frame["account"] = {"pnl": 12.5, "pnl_day": 2.5, "day_since": 100.0} | account
    if "counts_since_last" in desk:
        frame["services"] = {"alpha": {"instances": 1}, "beta": {"instances": 1}}
    open_on_stream(page, live_server(), frames_stream(frame))
    wait_for(lambda: shown(page) == want, f"{want}, not {shown(page)}")
