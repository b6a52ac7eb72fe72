"""Turning one mapped local value into an edXML value and back (transforms + target type).

Forward: ``run_transforms`` applies a field's transforms in order, then ``convert`` checks
and converts the result to the target's type (text with the hub's length limits, integers,
booleans, Vietnam-time dates, enums, organisations resolved in the directory). Backward:
``to_local`` turns a model value into the local value the record holds. Value problems
raise ``ValueProblem`` with a message that never quotes free text (only codes and dates).
This module must not read or write records.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from typing import TYPE_CHECKING, Any

from connector import timeutil
from connector.edxml.model import Organization
from connector.errors import PermanentError
from connector.mapping import targets as tg
from connector.mapping.transforms import BUILTIN_TABLES
from connector.timeutil import VN_TZ

if TYPE_CHECKING:
    from connector.mapping.directory import Directory
    from connector.mapping.spec import CompiledField

_ORGAN_ID_SHAPE = re.compile(r"^[A-Za-z0-9]{1,5}(\.[A-Za-z0-9]{1,5}){2,6}$")


class ValueProblem(ValueError):
    """One mapped value is unusable; the message says why without quoting document text."""


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def run_transforms(field: CompiledField, value: Any) -> Any:
    for transform in field.transforms:
        try:
            value = transform.forward(value)
        except ValueError as exc:
            raise ValueProblem(f"{transform.spec}: {exc}") from None
    return value


def reverse_transforms(field: CompiledField, value: Any) -> Any:
    for transform in reversed(field.transforms):
        value = transform.reverse(value)
    return value


def convert(target: tg.Target, value: Any, directory: Directory | None) -> Any:
    """A transformed local value as the model value for ``target`` (or ValueProblem)."""
    kind = target.kind
    if kind is tg.Kind.TEXT:
        text = _text(value).strip()
        if target.max_length is not None and len(text) > target.max_length:
            raise ValueProblem(f"is {len(text)} characters long; edXML allows at most "
                               f"{target.max_length}")
        return text
    if kind is tg.Kind.INT:
        if isinstance(value, bool):
            raise ValueProblem("is a boolean, not a number")
        try:
            number = int(_text(value).strip())
        except ValueError:
            raise ValueProblem(f"{_short(value)} is not a whole number") from None
        if number < 0:
            raise ValueProblem(f"{number} is negative")
        return number
    if kind is tg.Kind.BOOL:
        if isinstance(value, bool):
            return value
        try:
            return BUILTIN_TABLES["boolean"].lookup(value) == "true"
        except ValueError:
            raise ValueProblem(f"{_short(value)} is not a yes/no value") from None
    if kind is tg.Kind.DATE:
        return _date(value)
    if kind is tg.Kind.DATETIME:
        return _datetime(value)
    if kind is tg.Kind.ENUM:
        return _enum(target, value)
    if kind is tg.Kind.ORG:
        key = _text(value).strip()
        if directory is None:
            return key
        found = directory.find(key)
        if found is not None:
            return found
        if target.name == "to" and _ORGAN_ID_SHAPE.match(key):
            return Organization(organ_id=key)
        raise ValueProblem(f"{key!r} is neither a local code nor an OrganId in the directory "
                           f"{directory.source}; add an entry for it")
    if kind is tg.Kind.ORG_ID:
        key = _text(value).strip()
        if directory is not None:
            found = directory.find(key)
            if found is not None:
                return found.organ_id
        if not _ORGAN_ID_SHAPE.match(key) or len(key) > 35:
            raise ValueProblem(f"{key!r} is not an OrganId and not a local code in the directory")
        return key
    raise ValueProblem(f"{target.name} cannot hold a single value")  # pragma: no cover


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return timeutil.format_timestamp(value)
    if isinstance(value, dt.date):
        return timeutil.format_date(value)
    if isinstance(value, dict | list):
        raise ValueProblem("is a structure, not a single value (check the path)")
    if not isinstance(value, str | int | float):
        raise ValueProblem("is an XML element with children, not a single value (check the path)")
    return str(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "...'"


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return (value.astimezone(VN_TZ) if value.tzinfo else value).date()
    if isinstance(value, dt.date):
        return value
    text = _text(value).strip()
    try:
        return dt.date.fromisoformat(text) if len(text) == 10 and text[4] == "-" else \
            timeutil.parse_date(text)
    except ValueError:
        raise ValueProblem(f"{_short(value)} is not a date (yyyy/MM/dd or yyyy-MM-dd; add a "
                           "date: transform for other forms)") from None


def _datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(VN_TZ) if value.tzinfo else value.replace(tzinfo=VN_TZ)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), VN_TZ)
    text = _text(value).strip()
    try:
        return timeutil.parse_timestamp(text)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueProblem(f"{_short(value)} is not a date-time (yyyy/MM/dd HH:mm:ss or ISO "
                           "8601; add a date: transform for other forms)") from None
    return parsed.astimezone(VN_TZ) if parsed.tzinfo else parsed.replace(tzinfo=VN_TZ)


def _enum(target: tg.Target, value: Any) -> enum.Enum:
    assert target.enum is not None
    text = _text(value).strip()
    for member in target.enum:
        wire = str(member.value)
        if text == wire or (text.isdigit() and wire.isdigit() and int(text) == int(wire)):
            return member
    raise ValueProblem(f"{_short(value)} is not one of {', '.join(target.enum_values)} (add a "
                       "table: transform to translate local words)")


def to_local(target: tg.Target, value: Any, directory: Directory) -> Any:
    """A model value as the plain value a local record holds (before reverse transforms)."""
    if value is None:
        return None
    if target.kind is tg.Kind.ORG and isinstance(value, Organization):
        return directory.local_code(value.organ_id)
    if target.kind is tg.Kind.ORG_ID:
        return directory.local_code(str(value))
    if isinstance(value, enum.Enum):
        return value.value
    return value


def wire_text(value: Any) -> Any:
    """Dates and times left after reverse transforms are written in the edXML forms."""
    if isinstance(value, dt.datetime):
        return timeutil.format_timestamp(value)
    if isinstance(value, dt.date):
        return timeutil.format_date(value)
    return value


def matches_table_value(target: tg.Target, wire: str) -> bool:
    """Whether a code table's wire value is acceptable for ``target`` (load-time check)."""
    try:
        convert(target, wire, None)
    except ValueProblem:
        return False
    return True


class RecordError(PermanentError):
    """A record cannot be mapped; ``problems`` lists every field that failed."""

    def __init__(self, problems: list[str], *, record_id: str = "", mapping: str = "",
                 reason: str = "record_invalid") -> None:
        self.problems = tuple(problems)
        who = f"record {record_id!r}" if record_id else "the record"
        via = f" (mapping {mapping!r})" if mapping else ""
        head = f"{who}{via} cannot be mapped: "
        super().__init__(head + "; ".join(self.problems), reason=reason, stage="mapping")
