"""Vietnam time and the date/time formats of the edXML wire.

Formats: dates ``yyyy/MM/dd``; timestamps ``yyyy/MM/dd HH:mm:ss`` in Vietnam time (UTC+7,
no DST). Parsing accepts the three forms seen in real traffic. This module only converts;
it must not know about packages.
"""

from __future__ import annotations

import datetime as dt

VN_TZ = dt.timezone(dt.timedelta(hours=7), "ICT")

DATE_FORMAT = "%Y/%m/%d"
TIMESTAMP_FORMAT = "%Y/%m/%d %H:%M:%S"
_TOLERATED_TIMESTAMP_FORMATS = (TIMESTAMP_FORMAT, "%d/%m/%Y %H:%M:%S", DATE_FORMAT)
_TOLERATED_DATE_FORMATS = (DATE_FORMAT, TIMESTAMP_FORMAT, "%d/%m/%Y %H:%M:%S", "%d/%m/%Y")


def now_vn() -> dt.datetime:
    """The current time in Vietnam, to the second."""
    return dt.datetime.now(VN_TZ).replace(microsecond=0)


def format_date(value: dt.date) -> str:
    return value.strftime(DATE_FORMAT)


def format_timestamp(value: dt.datetime) -> str:
    """Format as Vietnam wall-clock time; aware values are converted, naive ones taken as VN."""
    if value.tzinfo is not None:
        value = value.astimezone(VN_TZ)
    return value.strftime(TIMESTAMP_FORMAT)


def parse_date(text: str) -> dt.date:
    """Parse a date in any tolerated form; raises ValueError naming the accepted forms."""
    cleaned = text.strip()
    for fmt in _TOLERATED_DATE_FORMATS:
        try:
            return dt.datetime.strptime(cleaned, fmt).date()
        except ValueError:
            continue
    raise ValueError(
        f"{text!r} is not a date in yyyy/MM/dd, yyyy/MM/dd HH:mm:ss or dd/MM/yyyy HH:mm:ss"
    )


def parse_timestamp(text: str) -> dt.datetime:
    """Parse a wire timestamp (any tolerated form) into an aware Vietnam-time datetime."""
    cleaned = text.strip()
    for fmt in _TOLERATED_TIMESTAMP_FORMATS:
        try:
            return dt.datetime.strptime(cleaned, fmt).replace(tzinfo=VN_TZ)
        except ValueError:
            continue
    raise ValueError(
        f"{text!r} is not a timestamp in yyyy/MM/dd HH:mm:ss, dd/MM/yyyy HH:mm:ss or yyyy/MM/dd"
    )
