"""The R2 gate: every spelling of a secret class is refused before anything is packaged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.errors import PermanentError
from connector.mapping import ClassificationRefused, MappingSet, load_format
from connector.mapping.classification import Classification, check, classify

from .conftest import DIRECTORY_FILE, EXAMPLES, MAPPINGS

SECRET = {
    Classification.MAT: [
        "Mật", "mật", "MẬT", "MAT", "mat", "Mat", " Mật ", "mât", "Độ mật: Mật", "Văn bản mật",
        "Confidential", "CONFIDENTIAL", "bí mật nhà nước", "Bi mat", "M\u0061\u0323\u0302t",
        "Mật (hạn chế)",
    ],
    Classification.TOI_MAT: [
        "Tối mật", "tối mật", "TỐI MẬT", "TOI MAT", "toi mat", "tối-mật", "toi_mat", "ToiMat",
        "TOIMAT", "Toi.Mat", "Secret", "SECRET", "Độ mật: Tối mật", "tôi mât",
    ],
    Classification.TUYET_MAT: [
        "Tuyệt mật", "tuyệt mật", "TUYỆT MẬT", "TUYET MAT", "tuyet_mat", "tuyet-mat", "TuyetMat",
        "Top secret", "TOP SECRET", "top_secret", "Top-Secret", "Tuyệt Mật (A)",
    ],
}
PUBLIC = ["Thường", "thuong", "THUONG", "", "   ", "none", "None", "0", 0, None, "Không mật",
          "khong mat", "Không", "Bình thường", "public", "Unclassified", "Độ mật: Thường"]
UNKNOWN = ["restricted", "1", 2, "TM", "A", "Hạn chế", "NOT SECRET", "xyz", ["Mật"],
           "maybe secret?"]


@pytest.mark.parametrize(("cls", "value"), [(c, v) for c, vs in SECRET.items() for v in vs])
def test_every_secret_spelling_is_classified(cls: Classification, value: str) -> None:
    assert classify(value) is cls


@pytest.mark.parametrize("value", PUBLIC)
def test_not_classified_values_pass(value: object) -> None:
    assert classify(value) is Classification.PUBLIC
    assert check(value, field="do_mat", record_id="r", present=True) is Classification.PUBLIC


@pytest.mark.parametrize("value", UNKNOWN)
def test_unknown_values_are_refused_fail_closed(value: object) -> None:
    with pytest.raises(ClassificationRefused) as info:
        check(value, field="do_mat", record_id="r1", present=True)
    assert info.value.reason == "classification_unknown"
    assert "do_mat" in str(info.value) and "classification.values" in str(info.value)


def _record(mappings: MappingSet, do_mat: object) -> bytes:
    record = json.loads((EXAMPLES / "qlvb-json" / "01-ordinary.json").read_text("utf-8"))
    record["do_mat"] = do_mat
    return json.dumps(record, ensure_ascii=False).encode()


@pytest.mark.parametrize(("cls", "value"), [(c, v) for c, vs in SECRET.items() for v in vs])
def test_secret_records_refused_naming_field_and_class_never_content(
    mappings: MappingSet, cls: Classification, value: str
) -> None:
    fmt = mappings.get("qlvb-json")
    with pytest.raises(ClassificationRefused) as info:
        fmt.record_to_package(_record(mappings, value), attachments_dir=None)
    error = info.value
    assert isinstance(error, PermanentError)
    assert error.reason == "secret_document" and error.classification is cls
    assert error.field == "do_mat"
    message = str(error)
    assert "'do_mat'" in message and cls.label in message and "R2" in message
    assert "biên chế" not in message and "VBDI-2025-000101" in message


def test_gate_runs_before_mapping(mappings: MappingSet) -> None:
    # A secret record that is otherwise broken is refused as secret, not as broken.
    body = json.dumps({"id": "x1", "do_mat": "Tuyệt mật"}).encode()
    with pytest.raises(ClassificationRefused) as info:
        mappings.get("qlvb-json").record_to_package(body)
    assert info.value.reason == "secret_document"


def test_secret_xml_record_refused(mappings: MappingSet) -> None:
    body = (EXAMPLES / "legacy-xml" / "08-secret.xml").read_bytes()
    with pytest.raises(ClassificationRefused) as info:
        mappings.get("legacy-xml").record_to_package(body)
    assert info.value.classification is Classification.MAT
    assert "'DoMat'" in str(info.value)
    assert "bí mật nhà nước" not in str(info.value)


def test_missing_classification_field_is_refused(mappings: MappingSet) -> None:
    record = json.loads(_record(mappings, "Thường"))
    del record["do_mat"]
    with pytest.raises(ClassificationRefused) as info:
        mappings.get("qlvb-json").record_to_package(json.dumps(record).encode())
    assert info.value.reason == "classification_missing"


def test_long_unknown_value_is_not_echoed(mappings: MappingSet) -> None:
    secret_text = "Nội dung dài của văn bản không được lộ ra trong thông báo lỗi"
    with pytest.raises(ClassificationRefused) as info:
        mappings.get("qlvb-json").record_to_package(_record(mappings, secret_text))
    assert secret_text not in str(info.value) and "not shown" in str(info.value)


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = (MAPPINGS / "qlvb-json.yaml").read_text("utf-8")
    assert old in text
    path = tmp_path / "variant.yaml"
    path.write_text(text.replace(old, new, 1), "utf-8")
    return path


def test_never_secret_statement_lets_records_without_field_pass(tmp_path: Path) -> None:
    path = _variant(tmp_path, "  field: do_mat                 # độ mật: Thường / Mật / Tối mật "
                    "/ Tuyệt mật\n  values:\n    \"Không mật\": thuong\n",
                    "  never_secret: the citizen-services portal only publishes ordinary "
                    "documents\n")
    fmt = load_format(path, DIRECTORY_FILE)
    record = json.loads((EXAMPLES / "qlvb-json" / "01-ordinary.json").read_text("utf-8"))
    del record["do_mat"]
    pkg = fmt.record_to_package(json.dumps(record).encode())
    assert pkg.code.code_number == "101"


def test_mapping_codes_extend_the_gate(tmp_path: Path) -> None:
    path = _variant(tmp_path, '    "Không mật": thuong\n',
                    '    "Không mật": thuong\n    "9": tuyet_mat\n    "N": thuong\n')
    fmt = load_format(path, DIRECTORY_FILE)
    assert fmt.classify(_record_bytes("N")) is Classification.PUBLIC
    with pytest.raises(ClassificationRefused) as info:
        fmt.classify(_record_bytes("9"))
    assert info.value.classification is Classification.TUYET_MAT


def test_absent_means_public_is_explicit(tmp_path: Path) -> None:
    path = _variant(tmp_path, '    "Không mật": thuong\n',
                    '    "Không mật": thuong\n  absent_means_public: true\n')
    fmt = load_format(path, DIRECTORY_FILE)
    record = json.loads(_record_bytes("x"))
    del record["do_mat"]
    assert fmt.classify(json.dumps(record).encode()) is Classification.PUBLIC


def _record_bytes(do_mat: str) -> bytes:
    record = json.loads((EXAMPLES / "qlvb-json" / "01-ordinary.json").read_text("utf-8"))
    record["do_mat"] = do_mat
    return json.dumps(record, ensure_ascii=False).encode()
