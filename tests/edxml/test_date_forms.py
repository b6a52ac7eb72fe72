"""Dates and timestamps as XML-schema-bound software writes them (xs:date, xs:dateTime: ISO
8601, with or without a zone): read as the same dates, each a warning. PromulgationDate is
needed on receipt, so a hub writing ISO dates with UUID DocumentIds was refused outright.
Generated: every sample x every date-bearing field x every ISO form.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from connector.edxml import check_package
from connector.edxml.xmlsafe import strip_stray_prefix
from tests.samples import sample_params

DATE = re.compile(r"(\d{4})/(\d{2})/(\d{2})")
STAMP = re.compile(r"(\d{4})/(\d{2})/(\d{2}) (\d{2}:\d{2}:\d{2})")
DATE_FORMS = {
    "xs:date": r"\1-\2-\3",
    "xs:dateTime": r"\1-\2-\3T00:00:00",
    "xs:dateTime+07:00": r"\1-\2-\3T00:00:00+07:00",
}
STAMP_FORMS = {
    "xs:dateTime": r"\1-\2-\3T\4",
    "xs:dateTime+07:00": r"\1-\2-\3T\4+07:00",
    "xs:dateTime.fff+07:00": r"\1-\2-\3T\4.000+07:00",
    "space": r"\1-\2-\3 \4",
}
FIELDS = ("PromulgationDate", "DueDate", "Timestamp")


def _rewrite(text: str, field: str, form: str) -> str:
    pattern, forms = (STAMP, STAMP_FORMS) if field == "Timestamp" else (DATE, DATE_FORMS)
    return re.sub(
        rf"(<edXML:{field}>)([^<]*)(</edXML:{field}>)",
        lambda m: m.group(1) + pattern.sub(forms[form], m.group(2)) + m.group(3),
        text,
    )


def _cases() -> list[object]:
    """Every sample x every date-bearing field it has x every form of that field."""
    cases: list[object] = []
    for param in sample_params():
        path = param.values[0]  # type: ignore[attr-defined]
        if path is None:  # no samples: the one skipped parameter says why
            return [pytest.param(None, "", "", marks=param.marks)]  # type: ignore[attr-defined]
        text = path.read_text("utf-8", errors="replace")
        for field in FIELDS:
            if f"<edXML:{field}>" not in text:
                continue
            for form in STAMP_FORMS if field == "Timestamp" else DATE_FORMS:
                cases.append(pytest.param(path, field, form, id=f"{path.name}-{field}-{form}"))
    return cases


@pytest.mark.parametrize(("path", "field", "form"), _cases())
def test_iso_dates_read_as_the_same(path: Path, field: str, form: str) -> None:
    text = strip_stray_prefix(path.read_bytes())[0].decode()
    rewritten = _rewrite(text, field, form)
    if rewritten == text:
        pytest.skip("the sample's value is in another form")
    # A UUID DocumentId: the date must come from PromulgationDate itself.
    rewritten = re.sub(r"(<edXML:DocumentId>)[^<]*,\d{4}/\d{2}/\d{2},[^<]*(</edXML:DocumentId>)",
                       r"\g<1>6f1c2d3e-0000-4000-8000-000000000001\g<2>", rewritten, count=1)
    original = check_package(re.sub(
        r"(<edXML:DocumentId>)[^<]*,\d{4}/\d{2}/\d{2},[^<]*(</edXML:DocumentId>)",
        r"\g<1>6f1c2d3e-0000-4000-8000-000000000001\g<2>", text, count=1).encode())
    result = check_package(rewritten.encode())
    assert result.ok, [str(p) for p in result.problems]
    assert result.package == original.package
    assert any(w.element == field for w in result.warnings), [str(w) for w in result.warnings]
