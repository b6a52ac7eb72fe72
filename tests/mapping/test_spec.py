"""Broken mapping files: each kind of mistake gets a precise, actionable error with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.errors import ConfigurationError
from connector.mapping import MappingFileError, load_mappings
from connector.mapping.spec import compile_mapping

from .conftest import DIRECTORY_FILE, MAPPINGS

JSON_MAPPING = (MAPPINGS / "qlvb-json.yaml").read_text("utf-8")
XML_MAPPING = (MAPPINGS / "legacy-xml.yaml").read_text("utf-8")


def _broken(tmp_path: Path, old: str, new: str, base: str = JSON_MAPPING) -> MappingFileError:
    assert old in base, old
    text = base.replace(old, new, 1)
    path = tmp_path / "broken.yaml"
    path.write_text(text, "utf-8")
    with pytest.raises(MappingFileError) as info:
        compile_mapping(path)
    assert isinstance(info.value, ConfigurationError)
    assert info.value.reason == "mapping_invalid"
    return info.value


def _line_of(text: str, needle: str) -> int:
    """The line of the needle's last line (where the reported key is)."""
    return text[: text.index(needle) + len(needle)].count("\n") + 1


# (name, old, new, expected message part, expected hint part, line needle in the new text)
CASES = [
    ("unknown top-level key", "tables:\n", "tabels:\n", "unknown key 'tabels'",
     "did you mean 'tables'", "tabels:"),
    ("unknown key in a field", "subject: {path: trich_yeu, transform: [trim], required: true}",
     "subject: {path: trich_yeu, transform: [trim], requird: true}", "unknown key 'requird'",
     "did you mean 'required'", "subject:"),
    ("unknown edXML field", "    content: {path: noi_dung", "    contnet: {path: noi_dung",
     "'contnet' is not an edXML field", "did you mean 'content'", "contnet:"),
    ("bad JSON path", "code_number: {path: so,", "code_number: {path: so..x,",
     "bad JSON path 'so..x'", "dotted path", "code_number:"),
    ("path with slash in dotted form", "signer_position: nguoi_ky.chuc_vu",
     "signer_position: nguoi_ky/chuc_vu", "may not contain '/'", "JSON pointer",
     "signer_position:"),
    ("unknown transform", 'due_date: {path: han_xu_ly, transform: ["date:iso"]}',
     'due_date: {path: han_xu_ly, transform: ["dat:iso"]}', "unknown transform 'dat:iso'",
     "fix the transform", "due_date:"),
    ("bad date pattern", 'due_date: {path: han_xu_ly, transform: ["date:iso"]}',
     'due_date: {path: han_xu_ly, transform: ["date:dd/MM/yyyy Q"]}', "unknown letter 'Q'",
     "fix the transform", "due_date:"),
    ("unknown code table", 'transform: ["table:priority"]', 'transform: ["table:urgency"]',
     "no code table 'urgency'", "fix the transform", "priority:"),
    ("missing required edXML field",
     "    subject: {path: trich_yeu, transform: [trim], required: true}\n", "",
     "required edXML field 'subject' is not mapped", "map it from a record field",
     "  fields:"),
    ("missing code", "    code_notation: {path: ky_hieu, transform: [trim], required: true}\n", "",
     "'code' or 'code_notation' is not mapped", "map it", "  fields:"),
    ("no classification", "  field: do_mat ", "  fieldx: do_mat ", "unknown key 'fieldx'",
     "allowed here", "fieldx:"),
    ("classification neither field nor statement",
     'classification:\n  field: do_mat                 # độ mật: Thường / Mật / Tối mật / Tuyệt '
     'mật\n  values:\n    "Không mật": thuong\n', "classification:\n  values: {}\n",
     "say either 'field:'", "rules R2", "classification:"),
    ("secret spelling declared public", '"Không mật": thuong', '"Tối mật": thuong',
     "'Tối mật' means a secret class", "secret spellings are always refused", '"Tối mật"'),
    ("unknown key inline", "    steering_type: {path: chi_dao", "    steering_type: {x: 1, path: chi_dao",
     "unknown key 'x'", "allowed here", "    steering_type: {x"),
    ("group without file data", "        data: noi_dung_base64\n        file: tep_spool\n"
     "    attachments:", "    attachments:", "main_document needs 'data'", "map one or both",
     "path: van_ban_chinh\n      fields:"),
    ("YAML syntax error", "document:\n  constants:", "document:\n constants:\n   - [",
     "not valid YAML", "fix the YAML syntax", None),
    ("duplicate key", "    content: {path: noi_dung, transform: [trim]}\n",
     "    content: {path: noi_dung, transform: [trim]}\n    content: noi_dung\n",
     "key 'content' appears twice", "keep only one", "    content: noi_dung"),
    ("unsupported version", "mapping: 1\n", "mapping: 2\n", "unsupported mapping format version",
     "mapping: 1", "mapping: 2"),
    ("record id missing", "  id: id ", "  idx: id ", "required key 'id' is missing",
     "idempotency key", "record:"),
]


@pytest.mark.parametrize(("name", "old", "new", "message", "hint", "needle"), CASES,
                         ids=[c[0] for c in CASES])
def test_broken_mapping_file_is_reported_precisely(
    tmp_path: Path, name: str, old: str, new: str, message: str, hint: str, needle: str | None
) -> None:
    error = _broken(tmp_path, old, new)
    text = str(error)
    assert message in text, text
    assert hint in text, text
    assert "broken.yaml:" in text
    if needle is not None:
        expected_line = _line_of(JSON_MAPPING.replace(old, new, 1), needle)
        lines = {i.line for i in error.issues}
        assert expected_line in lines, (expected_line, [str(i) for i in error.issues])


def test_bad_const_for_an_enum_target(tmp_path: Path) -> None:
    error = _broken(tmp_path,
                    '    steering_type: {path: chi_dao, transform: ["table:steering_type"]}',
                    "    steering_type: {const: 7}")
    assert "is not one of 1, 2, 3" in str(error)


def test_code_table_must_fit_its_field(tmp_path: Path) -> None:
    error = _broken(tmp_path, 'transform: ["table:steering_type"]',
                    'transform: ["table:priority"]')
    assert "code table 'priority' gives '0', '4'" in str(error)
    assert "not valid for steering_type" in str(error)


XML_CASES = [
    ("xpath with predicate", "subject: {path: TrichYeu,", "subject: {path: 'TrichYeu[1]',",
     "not a plain element or attribute name"),
    ("absolute xpath", "place: {path: NoiBanHanh,", "place: {path: //NoiBanHanh,",
     "relative to the record's root"),
    ("undeclared namespace prefix", "content: {path: NoiDung,", "content: {path: x:NoiDung,",
     "prefix 'x' is not declared"),
    ("attribute not last", "signer_position: NguoiKy/@ChucVu",
     "signer_position: NguoiKy/@ChucVu/Ten", "must be the last step"),
    ("xml without root", "  root: VanBanDi\n", "", "document.root is required"),
]


@pytest.mark.parametrize(("name", "old", "new", "message"), XML_CASES,
                         ids=[c[0] for c in XML_CASES])
def test_broken_xml_mapping(tmp_path: Path, name: str, old: str, new: str, message: str) -> None:
    error = _broken(tmp_path, old, new, base=XML_MAPPING)
    assert message in str(error)
    assert all(i.line is not None for i in error.issues)


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    text = JSON_MAPPING.replace('["table:priority"]', '["table:nope"]').replace(
        "code_number: {path: so,", "code_number: {path: '',")
    path = tmp_path / "two.yaml"
    path.write_text(text, "utf-8")
    with pytest.raises(MappingFileError) as info:
        compile_mapping(path)
    assert len(info.value.issues) == 2


def test_duplicate_mapping_names_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(JSON_MAPPING, "utf-8")
    (tmp_path / "b.yaml").write_text(JSON_MAPPING, "utf-8")
    with pytest.raises(MappingFileError) as info:
        load_mappings(tmp_path, DIRECTORY_FILE)
    assert "also used by" in str(info.value)


def test_shipped_mappings_load(tmp_path: Path) -> None:
    names = {f.name for f in load_mappings(MAPPINGS, DIRECTORY_FILE)}
    assert names == {"qlvb-json", "legacy-xml"}
