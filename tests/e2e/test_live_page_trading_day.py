"""The day P&L's label in real headless Chromium, for desks whose trading day is not the server's local day.

A New York FX desk (``TRADEOBS_TRADING_DAY_START="17:00 America/New_York"``) on a host whose zone is UTC, and a
trader whose browser is in London: the label says since when in the desk's zone ("P&L since 17:00 New York", or
the later time the live view started, in New York time), not in the browser's or the server's. Before, it said
"P&L today" or "P&L since HH:MM" in the browser's time, for a day that started at the server's midnight.
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
NY = ZoneInfo("America/New_York")


def label(page: Any) -> str:
    return str(page.locator("#kpi-day-label").inner_text())


def test_a_utc_server_with_a_new_york_day_labels_the_day_pnl_in_new_york_time(
    live_server: Callable[..., LiveProcess], device_page: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "UTC")  # the cloud host's zone (the server process inherits the environment)
    monkeypatch.setenv("TRADEOBS_TRADING_DAY_START", "17:00 America/New_York")
    srv = live_server()
    page = device_page(viewport={"width": 1400, "height": 1000}, timezone_id="Europe/London")  # the trader's
    page.goto(srv.base + "/telemetry/")
    wait_for(lambda: page.evaluate("window.__tradeobs && window.__tradeobs.frames") >= 5, "5 frames")
    a = srv.snapshot()["account"]
    assert (a["day_start"], a["day_tz"]) == ("17:00 New York", "America/New_York")

    def expected() -> str:
        # The live view started now, not at 17:00 (unless a frame was built up to it): since when, in New York
        # time. Read from the server's state at each try, not once: a run across 17:00 New York starts a new day
        # (then "since 17:00"), and the page follows a frame later.
        a = srv.snapshot()["account"]
        since = "17:00" if a["day_full"] else dt.datetime.fromtimestamp(a["day_since"], NY).strftime("%H:%M")
        return f"P&L since {since} New York"

    seen: list[tuple[str, str]] = []

    def matches() -> bool:
        seen.append((expected(), label(page)))
        return seen[-1][0] == seen[-1][1]

    try:
        wait_for(matches, "the label to say since when the server's day started, in New York time")
    except AssertionError:
        raise AssertionError(f"expected {seen[-1][0]!r}, the page showed {seen[-1][1]!r}") from None
    title = page.locator("#kpi-day-label").get_attribute("title")
    assert title == "the trading day starts at 17:00 New York (America/New_York)"


@pytest.mark.parametrize(
    ("account", "shown"),
    [
        # A whole day: its start, as configured.
        ({"day_full": True, "day_start": "09:00 Tokyo", "day_tz": "Asia/Tokyo"}, "P&L since 09:00 Tokyo"),
        # A day that started later (the live view started at 10:30 New York, the day after the March change):
        # New York's 10:30 EDT, not the browser's 14:30 in London (still GMT then) nor the server's.
        (
            {"day_full": False, "day_start": "17:00 New York", "day_tz": "America/New_York"}
            | {"day_since": dt.datetime(2026, 3, 9, 10, 30, tzinfo=NY).timestamp()},
            "P&L since 10:30 New York",
        ),
        # A fleet whose services' days start at different times: no one day's P&L.
        ({"day_full": False, "day_start": "mixed"}, "P&L (day starts differ)"),
        # The default (the server's local midnight), as before.
        ({"day_full": True, "day_since": 1.0}, "P&L today"),
    ],
)
def test_the_label_says_since_when_in_the_desks_zone(
    live_server: Callable[..., LiveProcess],
    device_page: Callable[..., Any],
    account: dict[str, Any],
    shown: str,
) -> None:
    page = device_page(viewport={"width": 1400, "height": 1000}, timezone_id="Europe/London")
    frame = {"type": "full", "seq": 1, "ts": time.time(), "symbols": {}, "desk": {}, "working": {}}
    frame["account"] = {"pnl": 12.5, "pnl_day": 2.5, "day_since": 100.0} | account
    open_on_stream(page, live_server(), frames_stream(frame))
    wait_for(lambda: label(page) == shown, f"{shown!r}, not {label(page)!r}")
