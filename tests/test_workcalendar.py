"""R6's working-day calendar: Vietnam's public holidays, this year's swaps, the weekend."""

from __future__ import annotations

import datetime as dt

import pytest

from connector.timeutil import VN_TZ
from connector.workcalendar import WorkingCalendar

D = dt.date
VIETNAM = WorkingCalendar.of()


def deadline(calendar: WorkingCalendar, signed: dt.date) -> dt.datetime:
    return dt.datetime.fromtimestamp(calendar.send_deadline(signed), VN_TZ)


@pytest.mark.parametrize("day", [D(2027, 2, d) for d in range(4, 11)])
def test_tet_2027_is_not_worked(day: dt.date) -> None:
    """Tết Đinh Mùi: 29 tháng Chạp (4/2) to mùng 5 (10/2)."""
    assert not VIETNAM.is_working_day(day)
    assert VIETNAM.why_not_working(day) not in (None, "weekend")


@pytest.mark.parametrize(
    ("signed", "expected"),
    [
        (D(2027, 2, 3), D(2027, 2, 11)),  # the Wednesday before Tết -> Thursday after it
        (D(2027, 2, 5), D(2027, 2, 11)),  # signed during Tết
        (D(2027, 2, 10), D(2027, 2, 11)),  # mùng 5 -> the first day back
        (D(2027, 4, 15), D(2027, 4, 19)),  # Giỗ Tổ Hùng Vương (Fri 16/4) -> Monday
        (D(2026, 4, 29), D(2026, 5, 4)),  # 30/4 and 1/5 -> Monday
        (D(2026, 11, 18), D(2026, 11, 19)),  # an ordinary Wednesday -> Thursday
        (D(2026, 11, 20), D(2026, 11, 23)),  # Friday -> Monday
    ],
)
def test_deadline_is_the_next_working_morning(signed: dt.date, expected: dt.date) -> None:
    assert deadline(VIETNAM, signed) == dt.datetime.combine(expected, dt.time(12), VN_TZ)


def test_a_swapped_saturday_the_calendar_knows_is_worked() -> None:
    """2026: Monday 31/8 off (bridging to Quốc khánh), worked on Saturday 22/8 instead."""
    assert VIETNAM.is_working_day(D(2026, 8, 22))
    assert not VIETNAM.is_working_day(D(2026, 8, 31))
    assert deadline(VIETNAM, D(2026, 8, 21)).date() == D(2026, 8, 22)  # Friday -> Saturday
    assert deadline(VIETNAM, D(2026, 8, 28)).date() == D(2026, 9, 3)  # over 31/8, 1/9, 2/9


def test_configured_swap_moves_a_day_off_to_a_saturday() -> None:
    """This year's decision not yet in the package: Thursday 11/2/2027 off, Saturday 20/2 worked."""
    swapped = WorkingCalendar.of(days_off=[D(2027, 2, 11)], working_days=[D(2027, 2, 20)])
    assert deadline(swapped, D(2027, 2, 3)).date() == D(2027, 2, 12)
    assert deadline(swapped, D(2027, 2, 19)).date() == D(2027, 2, 20)  # Friday -> Saturday
    assert swapped.why_not_working(D(2027, 2, 11)) == "day off (configuration)"
    assert deadline(VIETNAM, D(2027, 2, 19)).date() == D(2027, 2, 22)  # unswapped: Monday


def test_a_day_cannot_be_both_off_and_worked() -> None:
    with pytest.raises(ValueError, match="2027-02-20"):
        WorkingCalendar.of(days_off=[D(2027, 2, 20)], working_days=[D(2027, 2, 20)])


def test_without_public_holidays_only_the_weekend_and_configured_days_count() -> None:
    plain = WorkingCalendar.of(public_holidays=False, days_off=[D(2026, 5, 1)])
    assert plain.is_working_day(D(2027, 2, 8))  # Tết Monday: worked without the calendar
    assert not plain.is_working_day(D(2026, 5, 1))
    assert not plain.is_working_day(D(2026, 8, 22))  # the library's swap is not applied


def test_weekend_and_cut_off_come_from_the_configuration() -> None:
    six_days = WorkingCalendar.of(weekend=[7], next_morning_until=dt.time(10, 30))
    assert deadline(six_days, D(2026, 11, 20)) == dt.datetime(2026, 11, 21, 10, 30, tzinfo=VN_TZ)


@pytest.mark.parametrize("calendar", [VIETNAM, WorkingCalendar.of(weekend=[5, 6, 7])],
                         ids=["vietnam", "long-weekend"])
def test_every_day_of_two_years_gets_the_first_working_day_after_it(
    calendar: WorkingCalendar,
) -> None:
    day = D(2026, 1, 1)
    while day < D(2028, 1, 1):
        due = deadline(calendar, day)
        assert due.time() == dt.time(12) and due.date() > day
        assert calendar.is_working_day(due.date())
        between = day + dt.timedelta(days=1)
        while between < due.date():
            assert not calendar.is_working_day(between), (day, between)
            between += dt.timedelta(days=1)
        day += dt.timedelta(days=1)
