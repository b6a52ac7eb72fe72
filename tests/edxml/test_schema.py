"""Our XSDs: strict on what we emit; check_package locates problems in the input."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.edxml import build_package, check_package, validate_package
from tests.edxml.factories import edoc, status
from tests.samples import sample_params


def test_emitted_packages_validate() -> None:
    assert validate_package(build_package(edoc())) == []
    assert validate_package(build_package(status())) == []


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (b"<edXML:Priority>1<", b"<edXML:Priority>7<", "Priority"),
        (b"<edXML:StatusCode>01<", b"<edXML:StatusCode>07<", "StatusCode"),
        (b"<edXML:Type>1<", b"<edXML:Type>5<", "Type"),
        (b"<edXML:Email>snv@camau.gov.vn<", b"<edXML:Email>not-an-address<", "Email"),
        (b"<edXML:BussinessDocType>0<", b"<edXML:BussinessDocType>9<", "BussinessDocType"),
        (b"<edXML:SteeringType>1<", b"<edXML:SteeringType>4<", "SteeringType"),
    ],
)
def test_strict_schema_refuses_bad_values(old: bytes, new: bytes, words: str) -> None:
    data = build_package(status() if b"StatusCode" in old else edoc())
    assert old in data
    problems = validate_package(data.replace(old, new))
    assert problems, "expected a schema problem"
    assert any(words in str(p) and p.line for p in problems)


def test_strict_validation_refuses_other_child_order_but_check_normalises() -> None:
    data = build_package(status()).decode()
    start = data.index("<edXML:StaffInfo>")
    end = data.index("</edXML:StaffInfo>") + len("</edXML:StaffInfo>")
    moved = (data[:start] + data[end:]).replace(
        "<edXML:Timestamp>", data[start:end] + "<edXML:Timestamp>"
    )
    assert validate_package(moved.encode())
    result = check_package(moved.encode())
    assert result.ok, result.problems
    assert any("not in QCVN's order" in str(w) for w in result.warnings)


@pytest.mark.parametrize("path", sample_params())
def test_samples_accepted_by_check(path: Path) -> None:
    result = check_package(path.read_bytes())
    assert result.ok, [str(p) for p in result.problems]


def test_check_reports_original_line_for_normalised_problem() -> None:
    data = build_package(edoc(subject="S" * 600))
    result = check_package(data)
    assert result.ok  # received: an over-long Subject is a warning, not a refusal
    (problem,) = [p for p in result.warnings if "Subject" in str(p)]
    assert problem.line is not None
    assert data.decode().splitlines()[problem.line - 1].strip().startswith("<edXML:Subject>")
