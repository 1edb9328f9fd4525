"""The trading day: when a desk's day starts, as the ``trading_day_start`` setting says ("17:00 America/New_York").

>>> ny = TradingDay.parse("17:00 America/New_York")
>>> ny.text, ny.label
('17:00 America/New_York', '17:00 New York')
>>> ny.day(1_780_000_000.0)  # 2026-05-28 16:26:40 New York: still the day that started on the 27th at 17:00
(2026, 5, 27)
>>> ny.day(1_780_000_000.0 + 3600)  # 17:26:40: the day that started at 17:00 on the 28th
(2026, 5, 28)

A day is named by the date on which it starts, in its zone. It starts at the first instant the zone's clock reads
the start time or later on that date: on a date whose clock skips the start time (a DST gap: 02:30 on the
March change in New York), when the clock jumps past it (03:00); on a date whose clock reads it twice (01:30 on
the November change), at the first time. Without a zone the server's local time is the zone, as the C library
reads it (``time.localtime``/``time.mktime``, the ``TZ`` variable): with the start ``00:00`` that is the server's
local midnight, the default and what tradeobs always did.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import time
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LOCAL_MIDNIGHT", "TradingDay"]

Day = tuple[int, int, int]
_FORM = re.compile(r"^\s*(\d{1,2}):(\d{2})(?:\s+(\S+))?\s*$")
ALLOWED = (
    "a time of day HH:MM (00:00 to 23:59), optionally followed by an IANA time zone name such as "
    "'17:00 America/New_York' or '09:00 Asia/Tokyo' (without a zone: the server's local time)"
)


@dataclass(frozen=True)
class TradingDay:
    """When each trading day starts: ``hour``:``minute`` in ``zone`` (an IANA name; empty: the server's local time).

    :meth:`day` names the day an instant belongs to; :meth:`start` is when a day starts (seconds since the epoch).
    """

    hour: int = 0
    minute: int = 0
    zone: str = ""
    # The day_pnl setting: "reported" when the service's P&L is the day's already (it resets it at the day's start).
    pnl_reported: bool = False
    # The last day :meth:`day` found: (zone key, its start, the next day's start, the day). A frame asks every tick;
    # computed each time it cost 47-63 us (zoneinfo, mktime), a hit costs two comparisons.
    _last: list[Any] = field(default_factory=lambda: [None], init=False, repr=False, compare=False, hash=False)

    @classmethod
    def parse(cls, raw: object) -> TradingDay:
        """``"HH:MM"`` or ``"HH:MM Area/City"``; an empty string is the default (the server's local midnight).
        Raises ``ValueError`` saying what is allowed (and which part was wrong)."""
        if not isinstance(raw, str):
            raise ValueError(ALLOWED)
        if not raw.strip():
            return LOCAL_MIDNIGHT
        m = _FORM.match(raw)
        if m is None:
            raise ValueError(ALLOWED)
        hour, minute, zone = int(m.group(1)), int(m.group(2)), m.group(3) or ""
        if hour > 23 or minute > 59:
            raise ValueError(f"{ALLOWED}; {m.group(1)}:{m.group(2)} is not a time of day")
        if zone:
            try:
                zoneinfo.ZoneInfo(zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"{ALLOWED}; {zone!r} is not a time zone this machine knows (names as in "
                    "zoneinfo.available_timezones(): the system's zone database, or the tzdata package)"
                ) from None
        return cls(hour, minute, zone)

    def with_pnl(self, day_pnl: str) -> TradingDay:
        """This day with the ``day_pnl`` setting: ``"change"`` (the P&L minus its value at the day's start) or
        ``"reported"`` (the P&L as reported: the service resets it at the day's start)."""
        return TradingDay(self.hour, self.minute, self.zone, pnl_reported=day_pnl == "reported")

    @property
    def text(self) -> str:
        """The setting's canonical form: ``"17:00 America/New_York"``, ``"00:00"``."""
        return f"{self.hour:02d}:{self.minute:02d}" + (f" {self.zone}" if self.zone else "")

    @property
    def label(self) -> str:
        """How a person reads it: ``"17:00 New York"`` (the zone's last part, underscores as spaces)."""
        place = self.zone.rsplit("/", 1)[-1].replace("_", " ") if self.zone else ""
        return f"{self.hour:02d}:{self.minute:02d}" + (f" {place}" if place else "")

    @property
    def is_local_midnight(self) -> bool:
        return not self.zone and self.hour == 0 and self.minute == 0

    def day(self, t: float) -> Day:
        """The trading day instant ``t`` belongs to: the date (in the day's zone) on which that day started."""
        key = self.zone or (time.tzname, time.timezone)  # the local zone changes with TZ and time.tzset()
        last = self._last[0]
        if last is not None and last[0] == key and last[1] <= t < last[2]:
            return last[3]  # type: ignore[no-any-return]
        day = self._find(t)
        nxt = _dt.date(*day) + _dt.timedelta(days=1)
        self._last[0] = (key, self.start(day), self.start((nxt.year, nxt.month, nxt.day)), day)
        return day

    def _find(self, t: float) -> Day:
        if self.zone:
            d = _dt.datetime.fromtimestamp(t, zoneinfo.ZoneInfo(self.zone)).date()
        else:
            d = _dt.date(*time.localtime(t)[:3])
        if t < self.start((d.year, d.month, d.day)):
            d -= _dt.timedelta(days=1)
        return (d.year, d.month, d.day)

    def start(self, day: Day) -> float:
        """When trading day ``day`` starts: the first instant its zone's clock reads the start time or later on that
        date (the first of two, on a date whose clock reads it twice)."""
        if not self.zone:
            return time.mktime((*day, self.hour, self.minute, 0, 0, 0, -1))
        tz = zoneinfo.ZoneInfo(self.zone)
        wall = _dt.datetime(*day, self.hour, self.minute)
        first = wall.replace(tzinfo=tz, fold=0).timestamp()
        if _wall(first, tz) == wall:
            return first  # it exists (the first of two where it happens twice: fold 0)
        # In a gap: fold 0 reads the time with the offset before the change (later), fold 1 with the one after
        # (earlier); the clock jumps past it in between. The first whole second whose clock reads it or later:
        lo = math.floor(wall.replace(tzinfo=tz, fold=1).timestamp())
        hi = math.ceil(first)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _wall(mid, tz) >= wall:
                hi = mid
            else:
                lo = mid
        return float(hi)


def _wall(t: float, tz: _dt.tzinfo) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(t, tz).replace(tzinfo=None)


LOCAL_MIDNIGHT = TradingDay()
"""The default: the server's local midnight (``time.localtime``), as before the setting existed."""
