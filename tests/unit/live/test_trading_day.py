"""The trading day (``trading_day_start``): when "P&L today" starts, for desks whose day is not the server's.

A New York FX desk's day rolls at 17:00 New York and a Tokyo equities desk's at 09:00 Tokyo, both on hosts whose
clock zone is UTC. The live view's day P&L started at the server process's local midnight: 19:00 or 20:00 in New
York (mid-session), 09:00 in Tokyo (the open). Fixed instants, no sleeping; DST days as New York has them in 2026
(clocks forward 2026-03-08 02:00, back 2026-11-01 02:00).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tradeobs_agent._trading_day import LOCAL_MIDNIGHT, TradingDay
from tradeobs_agent.config import check_argument, resolve_settings
from tradeobs_agent.exceptions import TradeObsConfigError
from tradeobs_agent.live import frames
from tradeobs_agent.live.app import create_app
from tradeobs_agent.live.fleet import FleetView
from tradeobs_agent.live.frames import FrameBuilder
from tradeobs_agent.metrics import Registry

NY = ZoneInfo("America/New_York")
UTC = dt.UTC


def at(zone: dt.tzinfo, *when: int, fold: int = 0) -> float:
    return dt.datetime(*when, tzinfo=zone, fold=fold).timestamp()  # type: ignore[misc]


@pytest.fixture()
def utc_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local zone is UTC (a cloud host's), whatever the machine running the tests says."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


class Clock:
    """``frames.time.time`` at a fixed instant that the test moves."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, t: float) -> None:
        self.t = t
        monkeypatch.setattr(frames.time, "time", lambda: self.t)


# ----------------------------------------------------------------------------- the setting


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("17:00 America/New_York", "17:00 America/New_York"),
        ("  9:00   Asia/Tokyo ", "09:00 Asia/Tokyo"),
        ("17:00", "17:00"),
        ("", ""),
    ],
)
def test_the_setting_reads_a_time_and_a_zone(raw: str, text: str) -> None:
    assert check_argument("trading_day_start", raw) == text


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("25:00 America/New_York", "25:00 is not a time of day"),
        ("17:60", "17:60 is not a time of day"),
        ("17:00 America/NewYork", "'America/NewYork' is not a time zone this machine knows"),
        ("17:00 ../../etc/passwd", "is not a time zone this machine knows"),
        ("5pm", "a time of day HH:MM"),
        ("17:00 America/New_York Asia/Tokyo", "a time of day HH:MM"),
    ],
)
def test_a_bad_value_names_the_setting_the_value_and_what_is_allowed(raw: str, why: str) -> None:
    with pytest.raises(TradeObsConfigError) as err:
        resolve_settings(trading_day_start=raw)
    msg = str(err.value)
    assert "trading_day_start" in msg and repr(raw) in msg and why in msg
    assert "'17:00 America/New_York'" in msg  # what is allowed, by example


def test_a_bad_environment_value_is_reported_and_the_default_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEOBS_TRADING_DAY_START", "24:00 UTC")
    settings, report = resolve_settings()
    assert settings.trading_day_start == ""
    (problem,) = report.problems
    assert "TRADEOBS_TRADING_DAY_START" in str(problem) and "24:00 is not a time of day" in str(problem)


# ----------------------------------------------------------------------------- days and their starts


def test_a_new_york_day_starts_at_17_00_new_york_across_both_dst_changes() -> None:
    day = TradingDay.parse("17:00 America/New_York")
    # The day that starts on the Saturday before the March change is 23 hours long, the November one's 25.
    assert day.start((2026, 3, 7)) == at(UTC, 2026, 3, 7, 22) and day.start((2026, 3, 8)) == at(UTC, 2026, 3, 8, 21)
    assert day.start((2026, 10, 31)) == at(UTC, 2026, 10, 31, 21) and day.start((2026, 11, 1)) == at(
        UTC, 2026, 11, 1, 22
    )
    assert day.day(at(NY, 2026, 3, 8, 16, 59, 59)) == (2026, 3, 7)
    assert day.day(at(NY, 2026, 3, 8, 17)) == (2026, 3, 8)
    assert day.day(at(NY, 2026, 11, 1, 16, 59, 59)) == (2026, 10, 31)
    assert day.day(at(NY, 2026, 11, 1, 17)) == (2026, 11, 1)
    assert day.day(at(UTC, 2026, 11, 2, 0)) == (2026, 11, 1)  # UTC midnight is 19:00 New York: the same day


def test_a_start_time_the_clock_skips_starts_the_day_when_the_clock_jumps_past_it() -> None:
    day = TradingDay.parse("02:30 America/New_York")  # 02:00-03:00 does not exist on 2026-03-08
    jump = at(UTC, 2026, 3, 8, 7)  # 03:00 EDT
    assert day.start((2026, 3, 8)) == jump
    assert day.day(jump - 1) == (2026, 3, 7) and day.day(jump) == (2026, 3, 8)
    assert day.start((2026, 3, 9)) == at(NY, 2026, 3, 9, 2, 30)


def test_a_start_time_the_clock_reads_twice_starts_the_day_at_the_first() -> None:
    day = TradingDay.parse("01:30 America/New_York")  # 01:00-02:00 happens twice on 2026-11-01
    first = at(NY, 2026, 11, 1, 1, 30, fold=0)
    assert first == at(UTC, 2026, 11, 1, 5, 30)  # 01:30 EDT
    assert day.start((2026, 11, 1)) == first
    # 01:15 EST comes after the day started (the clock went back an hour): still the same day, not the one before.
    assert day.day(at(NY, 2026, 11, 1, 1, 15, fold=1)) == (2026, 11, 1)
    assert day.day(at(NY, 2026, 11, 1, 1, 45, fold=1)) == (2026, 11, 1)  # 01:30 again: no second start
    assert day.day(first - 1) == (2026, 10, 31)


def test_tokyo_starts_at_09_00_tokyo_and_the_default_at_the_servers_midnight(utc_host: None) -> None:
    tokyo = TradingDay.parse("09:00 Asia/Tokyo")
    assert tokyo.start((2026, 12, 7)) == at(UTC, 2026, 12, 7, 0) and tokyo.label == "09:00 Tokyo"
    assert tokyo.day(at(UTC, 2026, 12, 6, 23, 59)) == (2026, 12, 6)
    assert LOCAL_MIDNIGHT.start((2026, 12, 7)) == at(UTC, 2026, 12, 7) and TradingDay.parse("") == LOCAL_MIDNIGHT


def test_the_remembered_day_follows_a_change_of_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """:meth:`TradingDay.day` remembers the last day it found (a frame asks every tick); the server's local zone
    read through ``time.localtime`` can change (``TZ`` and ``time.tzset()``), and the remembered day with it."""
    t = at(UTC, 2026, 12, 6, 20)  # 20:00 UTC is 05:00 the next day in Tokyo
    day = TradingDay.parse("")
    try:
        monkeypatch.setenv("TZ", "UTC")
        time.tzset()
        assert day.day(t) == (2026, 12, 6)
        monkeypatch.setenv("TZ", "Asia/Tokyo")
        time.tzset()
        assert day.day(t) == (2026, 12, 7)
    finally:
        monkeypatch.undo()
        time.tzset()


# ----------------------------------------------------------------------------- the live view's day P&L


def _desk(pnl: float = 50.0) -> tuple[Registry, Any]:
    reg = Registry()
    rp = reg.gauge("trading.pnl.realized").bind(symbol="EURUSD")
    rp.set(pnl)
    return reg, rp


@pytest.mark.parametrize(
    ("date", "utc_hour"),
    [((2026, 3, 6), 22), ((2026, 3, 8), 21), ((2026, 6, 15), 21), ((2026, 11, 1), 22), ((2026, 11, 2), 22)],
)
def test_on_a_utc_host_the_new_york_desks_day_pnl_rolls_at_17_00_new_york(
    utc_host: None, monkeypatch: pytest.MonkeyPatch, date: tuple[int, int, int], utc_hour: int
) -> None:
    """Before, it rolled at 00:00 UTC (19:00 or 20:00 New York, mid-session) whatever the desk's day was."""
    boundary = at(NY, *date, 17)
    assert boundary == at(UTC, *date, utc_hour)
    clock = Clock(monkeypatch, boundary - 6 * 3600)
    reg, rp = _desk()
    b = FrameBuilder(reg, trading_day=TradingDay.parse("17:00 America/New_York"))
    rp.set(80.0)
    clock.t = boundary - 0.5  # frames up to 17:00 (a client watching)
    account = b.build()["account"]
    assert account["pnl_day"] == 30.0 and account["day_start"] == "17:00 New York"
    assert account["day_tz"] == "America/New_York"
    clock.t = boundary + 0.1
    account = b.build()["account"]
    assert (
        account["pnl_day"] == 0.0 and account["day_full"] is True and account["day_since"] == round(boundary + 0.1, 3)
    )
    rp.set(95.0)
    clock.t = at(UTC, *date, 23, 59, 59)
    b.build()
    clock.t = at(UTC, *date, 23, 59, 59) + 2  # UTC midnight: the New York day goes on
    account = b.build()["account"]
    assert account["pnl_day"] == 15.0 and account["day_since"] == round(boundary + 0.1, 3)


def test_a_service_that_resets_its_pnl_when_the_day_starts_shows_the_days_pnl(
    utc_host: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bot reporting its broker's day P&L resets it at 17:00 New York, a moment after the day's first frame. With
    the day's P&L taken as a change, that frame's P&L (the previous day's 480) was the day's start: -480 after the
    reset, then -460 for +20 made, the whole day. day_pnl="reported" shows the P&L as reported."""
    boundary = at(NY, 2026, 5, 28, 17)
    day = TradingDay.parse("17:00 America/New_York")
    clock = Clock(monkeypatch, boundary - 3600)
    shown = {}
    for mode in ("change", "reported"):
        clock.t = boundary - 3600
        reg, rp = _desk(400.0)
        b = FrameBuilder(reg, trading_day=day.with_pnl(mode))
        rp.set(480.0)
        clock.t = boundary - 0.05
        b.build()
        clock.t = boundary + 0.05  # the day's first frame
        b.build()
        rp.set(0.0)  # the service's reset, 0.1 s later
        clock.t = boundary + 0.15
        b.build()
        rp.set(20.0)
        clock.t = boundary + 3600
        shown[mode] = b.build()["account"]
    assert shown["change"]["pnl_day"] == -460.0 and "day_pnl" not in shown["change"]
    account = shown["reported"]
    assert account["pnl_day"] == 20.0 and account["pnl"] == 20.0 and account["day_pnl"] == "reported"
    assert account["day_full"] is True and account["day_since"] == round(boundary, 3)
    assert account["day_start"] == "17:00 New York"


def test_the_day_pnl_setting_is_read_from_everywhere_and_a_bad_value_named(monkeypatch: pytest.MonkeyPatch) -> None:
    reg, _ = _desk()
    settings, _ = resolve_settings(day_pnl="reported")
    assert create_app(settings=settings, registry=reg).state.hub._builder.build()["account"]["day_pnl"] == "reported"
    assert "day_pnl" not in create_app(registry=reg, day_pnl="change").state.hub._builder.build()["account"]
    with pytest.raises(TradeObsConfigError, match="day_pnl") as err:
        create_app(registry=reg, day_pnl="daily")
    assert "'daily'" in str(err.value) and "change, reported" in str(err.value)
    monkeypatch.setenv("TRADEOBS_DAY_PNL", "Reported")
    assert resolve_settings()[0].day_pnl == "reported"
    monkeypatch.setenv("TRADEOBS_DAY_PNL", "yes")
    settings, report = resolve_settings()
    (problem,) = report.problems
    assert settings.day_pnl == "change" and "TRADEOBS_DAY_PNL" in str(problem)


def test_on_a_utc_host_the_tokyo_desks_day_pnl_is_the_whole_session(
    utc_host: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """09:00 Tokyo is 00:00 UTC: the old local-midnight day started at the open, which is right by chance; the
    setting says so, and the page says since when: 09:00 Tokyo."""
    open_ = at(ZoneInfo("Asia/Tokyo"), 2026, 12, 7, 9)
    clock = Clock(monkeypatch, open_ - 3600)
    reg, rp = _desk()
    b = FrameBuilder(reg, trading_day=TradingDay.parse("09:00 Asia/Tokyo"))
    b.build()
    clock.t = open_ - 30  # a frame within a minute before the open: the day is full
    b.build()
    clock.t = open_ + 5
    assert b.build()["account"]["pnl_day"] == 0.0
    rp.set(60.0)
    account = b.build()["account"]
    assert account["pnl_day"] == 10.0 and account["day_full"] is True and account["day_start"] == "09:00 Tokyo"


def test_a_clock_stepped_back_across_17_00_new_york_keeps_the_days_pnl(monkeypatch: pytest.MonkeyPatch) -> None:
    """NTP steps the clock back 60 s at 17:00:30 on the November change: the day read 'the day before' again. As
    at midnight (DAY_STEP_BACK), a step of minutes is a step, not the day before."""
    boundary = at(NY, 2026, 11, 1, 17)
    clock = Clock(monkeypatch, boundary - 0.5)
    reg, rp = _desk()
    b = FrameBuilder(reg, trading_day=TradingDay.parse("17:00 America/New_York"))
    b.build()
    clock.t = boundary + 0.1
    b.build()  # the new day starts at 50
    clock.t = boundary + 30
    rp.set(70.0)
    assert b.build()["account"]["pnl_day"] == 20.0
    clock.t = boundary - 30  # stepped back 60 s
    account = b.build()["account"]
    assert (
        account["pnl_day"] == 20.0 and account["day_full"] is True and account["day_since"] == round(boundary + 0.1, 3)
    )
    clock.t = boundary + 1  # 17:00 again: not a new day
    rp.set(75.0)
    assert b.build()["account"]["pnl_day"] == 25.0
    clock.t = at(NY, 2026, 11, 2, 17) + 0.2  # the next 17:00 (25 hours later) is
    account = b.build()["account"]
    assert account["pnl_day"] == 0.0 and account["day_since"] == round(at(NY, 2026, 11, 2, 17) + 0.2, 3)


def test_a_clock_corrected_back_by_hours_across_17_00_restarts_the_day(monkeypatch: pytest.MonkeyPatch) -> None:
    boundary = at(NY, 2026, 3, 8, 17)
    clock = Clock(monkeypatch, boundary + 3 * 3600)
    reg, rp = _desk()
    b = FrameBuilder(reg, trading_day=TradingDay.parse("17:00 America/New_York"))
    b.build()
    rp.set(60.0)
    clock.t = boundary - 3 * 3600
    account = b.build()["account"]
    assert account["pnl_day"] == 0.0 and account["day_since"] == round(boundary - 3 * 3600, 3)


def test_a_worker_groups_merged_frames_roll_at_the_trading_day_too(
    utc_host: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    boundary = at(NY, 2026, 6, 15, 17)
    clock = Clock(monkeypatch, boundary + 10)
    reg, _ = _desk(40.0)
    b = FrameBuilder(reg, trading_day=TradingDay.parse("17:00 America/New_York"))
    b.day_from_first_frame()
    merged = Registry()
    total = merged.gauge("trading.pnl.unrealized").bind(symbol="EURUSD", strategy="a")
    total.set(100.0)
    assert b.build(snapshot=merged.snapshot())["account"]["pnl_day"] == 0.0
    total.set(110.0)
    clock.t = at(UTC, 2026, 6, 16, 0, 0, 1)  # UTC midnight: 20:00 New York, the same day
    account = b.build(snapshot=merged.snapshot())["account"]
    assert account["pnl_day"] == 10.0 and account["day_start"] == "17:00 New York"
    clock.t = at(NY, 2026, 6, 16, 17, 0, 1)
    account = b.build(snapshot=merged.snapshot())["account"]
    assert account["pnl_day"] == 0.0 and account["day_full"] is False  # no frame overnight


def test_the_default_day_is_unchanged_and_says_nothing_new(utc_host: None, monkeypatch: pytest.MonkeyPatch) -> None:
    midnight = at(UTC, 2026, 12, 7)
    clock = Clock(monkeypatch, midnight - 0.5)
    reg, _rp = _desk()
    b = FrameBuilder(reg)
    b.build()
    clock.t = midnight + 0.1
    account = b.build()["account"]
    assert account["pnl_day"] == 0.0 and account["day_full"] is True
    assert "day_start" not in account and "day_tz" not in account


def test_the_live_app_takes_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    reg, _ = _desk()
    settings, _ = resolve_settings(trading_day_start="17:00 America/New_York")
    app = create_app(settings=settings, registry=reg)
    account = app.state.hub._builder.build()["account"]
    assert account["day_start"] == "17:00 New York" and account["day_tz"] == "America/New_York"
    app = create_app(settings=settings, registry=reg, trading_day_start="09:00 Asia/Tokyo")  # an argument wins
    assert app.state.hub._builder.build()["account"]["day_start"] == "09:00 Tokyo"
    with pytest.raises(TradeObsConfigError, match="trading_day_start"):
        create_app(settings=settings, registry=reg, trading_day_start="17:00 New York")


def test_init_takes_the_setting_and_the_live_app_follows_the_agent(tmp_path: Any) -> None:
    import tradeobs_agent

    agent = tradeobs_agent.init(
        trading_day_start="09:00 Asia/Tokyo", day_pnl="reported", otlp=False, prometheus=False, logs=False, live=True
    )
    assert agent.settings.trading_day_start == "09:00 Asia/Tokyo" and agent.settings.day_pnl == "reported"
    reg, _ = _desk()
    app = create_app(registry=reg)  # the running agent's settings
    account = app.state.hub._builder.build()["account"]
    assert account["day_start"] == "09:00 Tokyo" and account["day_pnl"] == "reported"


# ----------------------------------------------------------------------------- the fleet gateway


def _instance(service: str, account: dict[str, Any]) -> dict[str, Any]:
    state = {"symbols": {}, "account": {"pnl": 10.0, "pnl_day": 5.0, "day_since": 100.0, "day_full": True} | account}
    return {"service": service, "instance": service + "-1", "seq": 1, "ts": 100.0, "state": state}


def test_the_fleet_says_when_its_services_days_start_and_when_they_differ() -> None:
    ny = {"day_start": "17:00 New York", "day_tz": "America/New_York"}
    view = FleetView()
    view.update(_instance("fx", ny), received=100.0)
    view.update(_instance("rates", ny), received=100.0)
    account = view.build(now=100.1)["account"]
    assert (account["day_start"], account["day_tz"], account["day_full"]) == (
        "17:00 New York",
        "America/New_York",
        True,
    )
    view.update(_instance("equities", {"day_start": "09:00 Tokyo", "day_tz": "Asia/Tokyo"}), received=100.0)
    account = view.build(now=100.1)["account"]
    assert account["day_start"] == "mixed" and account["day_full"] is False and "day_tz" not in account
    assert account["pnl_day"] == 15.0


def test_a_fleet_of_default_days_has_no_day_start() -> None:
    view = FleetView()
    view.update(_instance("a", {}), received=100.0)
    view.update(_instance("b", {}), received=100.0)
    assert "day_start" not in view.build(now=100.1)["account"]
    view.update(_instance("c", {"day_start": "17:00 New York", "day_tz": "America/New_York"}), received=100.0)
    assert view.build(now=100.1)["account"]["day_start"] == "mixed"  # one at 17:00 New York, two at midnight


def test_a_host_without_a_zone_database_still_knows_the_desks_zone(tmp_path: Any) -> None:
    """Windows, Alpine and distroless images have no /usr/share/zoneinfo: '17:00 America/New_York' was refused there
    ("not a time zone this machine knows") and the desk's day fell back to the server's midnight. tradeobs now depends
    on tzdata, which zoneinfo reads when the host has no database. PYTHONTZPATH="" is such a host: no system path."""
    import subprocess
    import sys

    code = (
        "import zoneinfo; assert zoneinfo.TZPATH == (), zoneinfo.TZPATH\n"
        "from tradeobs_agent.config import resolve_settings\n"
        "settings, report = resolve_settings(trading_day_start='17:00 America/New_York')\n"
        "print(settings.trading_day_start, len(report.problems))\n"
    )
    env = {**os.environ, "PYTHONTZPATH": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "17:00 America/New_York 0", out
