"""Golden tests: example records -> the expected edXML (valid against our XSD) -> back.

Also: the reverse mapping accepts every VNPT document sample, status commands and events,
and record-level errors. The examples are in mappings/examples/ (see examples_gen.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from connector.edxml import (
    EdocPackage,
    StatusPackage,
    build_package,
    parse_package,
    validate_package,
)
from connector.edxml.model import BusinessDocType, Priority, StatusCode
from connector.mapping import LocalFormat, MappingSet, RecordError
from connector.mapping.forward import Source, parse_record
from connector.mapping.targets import Kind

from .conftest import EXAMPLES, SPOOL, VNPT_SAMPLES
from .examples_gen import FIXED_NOW

_VOLATILE = re.compile(rb"(<edXML:Timestamp>)[^<]*(</edXML:Timestamp>)")


def normalise(data: bytes) -> bytes:
    """Volatile values (trace and status timestamps) replaced by a placeholder."""
    return _VOLATILE.sub(rb"\1TIMESTAMP\2", data)


def _examples() -> list[tuple[str, Path]]:
    out = []
    for fmt in ("qlvb-json", "legacy-xml"):
        for path in sorted((EXAMPLES / fmt).iterdir()):
            if path.suffix in (".json", ".xml") and path.with_suffix(".edxml").exists():
                out.append((fmt, path))
    return out


EXAMPLE_CASES = _examples()
DOCUMENT_CASES = [(f, p) for f, p in EXAMPLE_CASES if "-command-" not in p.stem]


def _map(fmt: LocalFormat, path: Path, mappings: MappingSet) -> EdocPackage | StatusPackage:
    body = path.read_bytes()
    if "-command-" in path.stem:
        return fmt.command_to_status(body, own=mappings.directory.find("SNV"), now=FIXED_NOW)
    return fmt.record_to_package(body, attachments_dir=SPOOL, now=FIXED_NOW)


def test_every_kind_of_example_is_shipped() -> None:
    for fmt in ("qlvb-json", "legacy-xml"):
        stems = {p.stem for p in (EXAMPLES / fmt).iterdir()}
        for kind in ("ordinary", "urgent", "attachments", "reply", "revoke", "replace", "secret"):
            assert any(kind in s for s in stems), (fmt, kind)
    assert len(EXAMPLE_CASES) >= 14


@pytest.mark.parametrize(("fmt_name", "path"), EXAMPLE_CASES,
                         ids=[f"{f}/{p.name}" for f, p in EXAMPLE_CASES])
def test_example_maps_to_the_golden_package(mappings: MappingSet, fmt_name: str,
                                            path: Path) -> None:
    fmt = mappings.get(fmt_name)
    package = build_package(_map(fmt, path, mappings))
    expected = path.with_suffix(".edxml").read_bytes()
    assert normalise(package).decode() == normalise(expected).decode()
    assert validate_package(package) == []


@pytest.mark.parametrize(("fmt_name", "path"), DOCUMENT_CASES,
                         ids=[f"{f}/{p.name}" for f, p in DOCUMENT_CASES])
def test_golden_package_maps_back_to_the_original_fields(
    mappings: MappingSet, fmt_name: str, path: Path, tmp_path: Path
) -> None:
    fmt = mappings.get(fmt_name)
    original = fmt.record_to_package(path.read_bytes(), attachments_dir=SPOOL, now=FIXED_NOW)
    received = parse_package(path.with_suffix(".edxml").read_bytes())
    assert isinstance(received, EdocPackage)
    local = fmt.package_to_record(received)
    assert local.content_type == fmt.content_type
    for name, data in local.files:
        (tmp_path / name).write_bytes(data)
    # The record written back maps to the very same package ...
    again = fmt.record_to_package(local.body, attachments_dir=tmp_path, now=FIXED_NOW)
    assert again == original
    # ... and holds the original's own values at every mapped text/date/number path.
    src = parse_record(fmt.compiled, path.read_bytes(), None)
    back = parse_record(fmt.compiled, local.body, None)
    for name, field in fmt.compiled.document.fields.items():
        if field.path is None or field.target.kind in (Kind.GROUP, Kind.ORG, Kind.ORG_ID):
            continue
        if name == "document_id" or field.default is not None:
            continue  # composed / defaulted when absent from the original
        if _texts(src, field.path):
            assert _texts(back, field.path) == _texts(src, field.path), name


def _texts(source: Source, path: object) -> list[str]:
    return [str(v).strip() for v in source.values(path) if str(v).strip()]  # type: ignore[arg-type]


def test_urgent_examples_carry_priority(mappings: MappingSet) -> None:
    json_pkg = _map(mappings.get("qlvb-json"), EXAMPLES / "qlvb-json" / "02-urgent.json", mappings)
    xml_pkg = _map(mappings.get("legacy-xml"), EXAMPLES / "legacy-xml" / "02-urgent.xml", mappings)
    assert isinstance(json_pkg, EdocPackage) and isinstance(xml_pkg, EdocPackage)
    assert json_pkg.other_info.priority is Priority.VERY_URGENT
    assert xml_pkg.other_info.priority is Priority.FLASH


def test_demo_agencies_a_to_b(mappings: MappingSet) -> None:
    for fmt_name, path in DOCUMENT_CASES:
        pkg = _map(mappings.get(fmt_name), path, mappings)
        assert isinstance(pkg, EdocPackage)
        assert pkg.from_.organ_id == "000.00.31.H12"
        assert "000.00.32.H12" in {o.organ_id for o in pkg.to}
        assert pkg.attachments[0].content_type == "application/pdf"
        assert pkg.attachments[0].data.startswith(b"%PDF-")


def test_business_types_and_reply(mappings: MappingSet) -> None:
    fmt = mappings.get("qlvb-json")
    kinds = {}
    for stem in ("05-revoke", "06-update", "07-replace", "04-reply"):
        pkg = _map(fmt, EXAMPLES / "qlvb-json" / f"{stem}.json", mappings)
        assert isinstance(pkg, EdocPackage)
        kinds[stem] = pkg
    assert kinds["05-revoke"].business_doc_type is BusinessDocType.REVOKE
    assert kinds["06-update"].business_doc_type is BusinessDocType.UPDATE
    assert kinds["07-replace"].business_doc_type is BusinessDocType.REPLACE
    reply = kinds["04-reply"].response_for[0]
    assert reply.organ_id == "000.00.32.H12" and reply.code == "230/STC-HCSN"


def test_several_attachments_main_first(mappings: MappingSet) -> None:
    pkg = _map(mappings.get("qlvb-json"), EXAMPLES / "qlvb-json" / "03-attachments.json",
               mappings)
    assert isinstance(pkg, EdocPackage)
    assert [a.content_id for a in pkg.attachments] == ["1", "2", "3"]
    assert pkg.attachments[0].name == "45-KH-SNV.signed.pdf"
    assert pkg.attachments[1].data == (SPOOL / "45-KH-SNV-phu-luc-1.signed.pdf").read_bytes()


VNPT_DOCS = sorted(VNPT_SAMPLES.glob("edoc_*.edxml")) if VNPT_SAMPLES.is_dir() else []
VNPT_STATUS = sorted(VNPT_SAMPLES.glob("status*.edxml")) if VNPT_SAMPLES.is_dir() else []


@pytest.mark.skipif(not VNPT_DOCS, reason="../shared/interop/vnpt-samples is not present")
@pytest.mark.parametrize("sample", VNPT_DOCS, ids=[p.name for p in VNPT_DOCS])
def test_reverse_accepts_every_vnpt_document_sample(mappings: MappingSet, sample: Path) -> None:
    pkg = parse_package(sample.read_bytes())
    assert isinstance(pkg, EdocPackage)
    for fmt in mappings:
        local = fmt.package_to_record(pkg)
        assert local.files and local.files[0][1] == pkg.attachments[0].data
        source = parse_record(fmt.compiled, local.body, fmt.compiled.document.root)
        subject = fmt.compiled.document.fields["subject"].path
        assert subject is not None and source.values(subject) == [pkg.subject]
        if fmt.compiled.syntax == "json":
            record = json.loads(local.body)
            assert record["so"] == pkg.code.code_number


@pytest.mark.skipif(not VNPT_STATUS, reason="../shared/interop/vnpt-samples is not present")
@pytest.mark.parametrize("sample", VNPT_STATUS, ids=[p.name for p in VNPT_STATUS])
def test_status_samples_become_local_events(mappings: MappingSet, sample: Path) -> None:
    pkg = parse_package(sample.read_bytes())
    assert isinstance(pkg, StatusPackage)
    event = json.loads(mappings.get("qlvb-json").status_to_event(pkg).body)
    assert event["ma_trang_thai"] == pkg.status_code.value
    assert event["van_ban"]["ma_dinh_danh"] == pkg.response_for.document_id
    xml_event = mappings.get("legacy-xml").status_to_event(pkg).body
    assert b"<TrangThaiVanBan>" in xml_event


def _command(**changes: object) -> bytes:
    record = json.loads((EXAMPLES / "qlvb-json" / "20-command-accepted.json").read_text("utf-8"))
    record.update(changes)
    return json.dumps(record, ensure_ascii=False).encode()


def test_command_01_is_refused(mappings: MappingSet) -> None:
    with pytest.raises(RecordError, match=r"01 .* is sent by the connector itself"):
        mappings.get("qlvb-json").command_to_status(_command(ma_trang_thai="01"),
                                                    own=mappings.directory.find("SNV"))


def test_command_13_only_from_the_original_sender(mappings: MappingSet) -> None:
    with pytest.raises(RecordError, match=r"13 .* original sender"):
        mappings.get("qlvb-json").command_to_status(_command(ma_trang_thai="13"),
                                                    own=mappings.directory.find("SNV"))


def test_command_needs_a_reporter(mappings: MappingSet) -> None:
    with pytest.raises(RecordError, match="no reporting organisation"):
        mappings.get("qlvb-json").command_to_status(_command(), own=None)


def test_command_status_codes(mappings: MappingSet) -> None:
    fmt = mappings.get("qlvb-json")
    own = mappings.directory.find("SNV")
    for code in ("02", "03", "04", "05", "06", "15", "16"):
        pkg = fmt.command_to_status(_command(ma_trang_thai=code), own=own, now=FIXED_NOW)
        assert pkg.status_code is StatusCode(code)
        assert validate_package(build_package(pkg)) == []


def test_record_errors_list_every_problem_without_content(mappings: MappingSet) -> None:
    record = json.loads((EXAMPLES / "qlvb-json" / "01-ordinary.json").read_text("utf-8"))
    record["ngay_ban_hanh"] = "02/06/2025"
    record["do_khan"] = "rất gấp"
    record["noi_nhan"] = [{"ma": "KHONG-CO"}]
    record["trich_yeu"] = "x" * 600
    with pytest.raises(RecordError) as info:
        mappings.get("qlvb-json").record_to_package(json.dumps(record).encode())
    error = info.value
    assert error.reason == "record_invalid" and len(error.problems) == 4
    text = str(error)
    assert "promulgation_date (ngay_ban_hanh)" in text and "ISO 8601" in text
    assert "priority (do_khan)" in text and "'rất gấp' is not in code table" in text
    assert "'KHONG-CO' is neither a local code nor an OrganId" in text
    assert "600 characters long; edXML allows at most 500" in text and "x" * 50 not in text


def test_future_promulgation_date_refused(mappings: MappingSet) -> None:
    record = json.loads((EXAMPLES / "qlvb-json" / "01-ordinary.json").read_text("utf-8"))
    record["ngay_ban_hanh"] = "2025-06-30"
    with pytest.raises(RecordError, match="in the future"):
        mappings.get("qlvb-json").record_to_package(json.dumps(record).encode(), now=FIXED_NOW)


def test_record_id_read_from_the_record(mappings: MappingSet) -> None:
    assert mappings.get("qlvb-json").record_id(
        (EXAMPLES / "qlvb-json" / "01-ordinary.json").read_bytes()) == "VBDI-2025-000101"
    assert mappings.get("legacy-xml").record_id(
        (EXAMPLES / "legacy-xml" / "01-ordinary.xml").read_bytes()) == "QLVB-2025-00201"
