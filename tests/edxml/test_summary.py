"""``peek``: routing facts from untrusted bytes, without crashing on any of them."""

from __future__ import annotations

import pytest

from connector.edxml import build_package, peek
from connector.edxml.problems import EdxmlError
from tests.edxml.factories import edoc, status


def test_edoc_routing_facts() -> None:
    summary = peek(build_package(edoc()))
    assert summary.kind == "edoc"
    assert summary.from_organ_id == "000.00.31.H12"
    assert summary.to_organ_ids == ("000.00.32.H12",)
    assert summary.document_id == "000.00.31.H12,2026/11/20,123/SNV-VP"
    assert summary.priority == 1


def test_status_goes_back_to_the_documents_sender() -> None:
    summary = peek(build_package(status()))
    assert summary.kind == "status" and summary.status_code == "01"
    assert summary.to_organ_ids == ("000.00.31.H12",)
    assert summary.response_for_organ_id == "000.00.31.H12"


@pytest.mark.parametrize("value", ["²", "٣", "abc", "-1", ""])
def test_odd_numbers_never_crash(value: str) -> None:
    text = build_package(edoc()).decode()
    text = text.replace("<edXML:BussinessDocType>0<", f"<edXML:BussinessDocType>{value}<")
    text = text.replace("<edXML:Priority>1<", f"<edXML:Priority>{value}<")
    summary = peek(text.encode())
    assert summary.business_doc_type == 0 and 0 <= summary.priority <= 3


def test_priority_four_counts_as_three() -> None:
    data = build_package(edoc()).replace(b"<edXML:Priority>1<", b"<edXML:Priority>4<")
    assert peek(data).priority == 3


@pytest.mark.parametrize(
    ("old", "reason"),
    [
        (
            b"<edXML:DocumentId>000.00.31.H12,2026/11/20,123/SNV-VP</edXML:DocumentId>",
            "missing_field",
        ),
        (b"<edXML:OrganId>000.00.32.H12</edXML:OrganId>", "missing_field"),
    ],
)
def test_missing_routing_facts_are_named(old: bytes, reason: str) -> None:
    data = build_package(edoc())
    assert old in data
    with pytest.raises(EdxmlError) as caught:
        peek(data.replace(old, b"", 1))
    assert caught.value.reason == reason
