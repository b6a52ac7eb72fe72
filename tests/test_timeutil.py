"""Vietnam time and the edXML wire formats."""

from __future__ import annotations

import datetime as dt

import pytest

from connector import timeutil
from connector.timeutil import VN_TZ


def test_timestamps_are_written_in_vietnam_time() -> None:
    utc = dt.datetime(2026, 11, 24, 22, 30, 5, tzinfo=dt.UTC)
    assert timeutil.format_timestamp(utc) == "2026/11/25 05:30:05"
    naive = dt.datetime(2026, 1, 2, 3, 4, 5)
    assert timeutil.format_timestamp(naive) == "2026/01/02 03:04:05"  # naive is taken as VN
    assert timeutil.format_date(dt.date(2026, 1, 2)) == "2026/01/02"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026/11/25 05:30:05", dt.datetime(2026, 11, 25, 5, 30, 5, tzinfo=VN_TZ)),
        ("25/11/2026 05:30:05", dt.datetime(2026, 11, 25, 5, 30, 5, tzinfo=VN_TZ)),
        (" 2026/11/25 ", dt.datetime(2026, 11, 25, tzinfo=VN_TZ)),
    ],
)
def test_three_timestamp_forms(text: str, expected: dt.datetime) -> None:
    assert timeutil.parse_timestamp(text) == expected


@pytest.mark.parametrize("text", ["2026-11-25", "25.11.2026", "2026/13/01", ""])
def test_unknown_forms_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="yyyy/MM/dd"):
        timeutil.parse_date(text)


def test_now_is_vietnam_time_to_the_second() -> None:
    now = timeutil.now_vn()
    assert now.utcoffset() == dt.timedelta(hours=7) and now.microsecond == 0
