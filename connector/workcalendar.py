"""Vietnam's working days, for rule R6 (send the day of signing, at the latest the next
working morning).

A day is decided in this order:

1. ``working_days`` from the configuration: make-up working days (a Saturday worked to
   pay for a bridge holiday) — working;
2. ``days_off`` from the configuration: swapped days off the government announces each
   year, and any local closure — not working;
3. the public holidays of the ``holidays`` package's Vietnam calendar (Tết by the lunar
   calendar, Giỗ Tổ Hùng Vương, 30/4, 1/5, Quốc khánh, their observed days, and the swaps
   it already knows) — not working; its make-up working Saturdays — working;
4. otherwise the configured weekend (ISO weekdays, default Saturday and Sunday).

Years are computed on first use and cached (thread-safe). This module only answers date
questions; it must not know about packages.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import holidays

from connector.timeutil import VN_TZ


@dataclass(frozen=True)
class _Year:
    days_off: frozenset[dt.date]
    working_days: frozenset[dt.date]
    names: dict[dt.date, str]


class _VietnamHolidays:
    """The ``holidays`` package's Vietnam calendar, one year at a time, cached."""

    def __init__(self) -> None:
        self._years: dict[int, _Year] = {}
        self._lock = threading.Lock()

    def year(self, year: int) -> _Year:
        found = self._years.get(year)
        if found is not None:
            return found
        with self._lock:
            found = self._years.get(year)
            if found is None:
                calendar = holidays.country_holidays("VN", years=year)
                found = _Year(
                    days_off=frozenset(calendar),
                    working_days=frozenset(
                        d for d in calendar.weekend_workdays if d.year == year
                    ),
                    names={d: str(name) for d, name in calendar.items()},
                )
                self._years[year] = found
            return found


_VIETNAM = _VietnamHolidays()


@dataclass(frozen=True)
class WorkingCalendar:
    weekend: frozenset[int] = frozenset({6, 7})  # ISO weekdays
    days_off: frozenset[dt.date] = frozenset()
    working_days: frozenset[dt.date] = frozenset()
    public_holidays: bool = True  # the Vietnam calendar of the ``holidays`` package
    next_morning_until: dt.time = dt.time(12, 0)

    @classmethod
    def of(
        cls,
        *,
        weekend: Iterable[int] = (6, 7),
        days_off: Iterable[dt.date] = (),
        working_days: Iterable[dt.date] = (),
        public_holidays: bool = True,
        next_morning_until: dt.time = dt.time(12, 0),
    ) -> WorkingCalendar:
        off, working = frozenset(days_off), frozenset(working_days)
        both = sorted(off & working)
        if both:
            raise ValueError(
                f"{', '.join(d.isoformat() for d in both)}: both a day off and a working day"
            )
        return cls(frozenset(weekend), off, working, public_holidays, next_morning_until)

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.working_days:
            return True
        if day in self.days_off:
            return False
        if self.public_holidays:
            year = _VIETNAM.year(day.year)
            if day in year.days_off:
                return False
            if day in year.working_days:
                return True
        return day.isoweekday() not in self.weekend

    def why_not_working(self, day: dt.date) -> str | None:
        """A short reason a day is not worked (for operators and tests); None if worked."""
        if self.is_working_day(day):
            return None
        if day in self.days_off:
            return "day off (configuration)"
        if self.public_holidays:
            name = _VIETNAM.year(day.year).names.get(day)
            if name:
                return name
        return "weekend"

    def next_working_day(self, after: dt.date) -> dt.date:
        """The first working day strictly after ``after`` (bounded: a year at most)."""
        day = after + dt.timedelta(days=1)
        for _ in range(366):
            if self.is_working_day(day):
                return day
            day += dt.timedelta(days=1)
        raise ValueError(f"no working day within a year after {after.isoformat()}")

    def send_deadline(self, signed_on: dt.date) -> float:
        """R6: the next working morning after the signing day, ``next_morning_until`` VN time."""
        day = self.next_working_day(signed_on)
        return dt.datetime.combine(day, self.next_morning_until, tzinfo=VN_TZ).timestamp()
