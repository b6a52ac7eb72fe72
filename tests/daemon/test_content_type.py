"""The record's content type is honoured: it picks the mapping of its syntax when the record
names none, and a record declared in the other syntax than its mapping reads is refused with
a reason (never parsed as what it is not)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.daemon.adapters import MappingAdapter
from connector.edxml.model import Organization
from connector.errors import PermanentError
from connector.local.base import LocalRecord
from connector.mapping import load_mappings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def adapter() -> MappingAdapter:
    mappings = load_mappings(
        REPO / "mappings", REPO / "config" / "directory.yaml", default="qlvb-json"
    )
    return MappingAdapter(mappings, Organization("000.00.31.H12", organ_name="Sở Nội vụ"))


def record(content_type: str, mapping: str | None = None) -> LocalRecord:
    return LocalRecord(record_id="r-1", body=b"{}", content_type=content_type, mapping=mapping)


def test_a_record_naming_no_mapping_goes_to_the_mapping_of_its_syntax(
    adapter: MappingAdapter,
) -> None:
    assert adapter._format_of(record("application/xml")).name == "legacy-xml"
    assert adapter._format_of(record("application/json")).name == "qlvb-json"
    assert adapter._format_of(record("application/json; charset=utf-8")).name == "qlvb-json"
    assert adapter._format_of(record("application/octet-stream")).name == "qlvb-json"


def test_a_record_declared_in_the_other_syntax_is_refused_with_a_reason(
    adapter: MappingAdapter,
) -> None:
    with pytest.raises(PermanentError) as refused:
        adapter._format_of(record("application/xml", mapping="qlvb-json"))
    assert refused.value.reason == "content_type_mismatch"
    assert "declared application/xml" in refused.value.message and "qlvb-json" in refused.value.message
    assert adapter._format_of(record("application/xml", mapping="legacy-xml")).name == "legacy-xml"
