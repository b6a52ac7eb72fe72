"""Hostile record contents (spool or AMQP alike): what the mapping reads from a record.

Families: a duplicated key at every place of a JSON record (the classification first: one
reader sees "Tối mật", Python's dict the last value); the classification carried where the
mapping does not read it (attributes, child elements) or where it says it may be
(``classification.also``); every bound at limit−1, limit, limit+1 (record size, one text
value, files per record, claim-check file size); every special file type named as a claim
check; nesting deep enough to exhaust a recursive parser. Invariant: a verdict with a
reason code (never a traceback, never a hang), and never "sent" for a possibly secret record.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connector.errors import PermanentError
from connector.local.base import RecordLimits
from connector.mapping import LocalFormat, MappingSet, load_format, load_mappings
from connector.mapping.classification import ClassificationRefused
from tests.mapping.conftest import DIRECTORY_FILE, EXAMPLES, MAPPINGS

pytestmark = pytest.mark.timeout(60)

PDF = b"%PDF-1.4 hostile test\n%%EOF\n"


@pytest.fixture(scope="module")
def mappings() -> MappingSet:
    return load_mappings(MAPPINGS, DIRECTORY_FILE)


@pytest.fixture(scope="module")
def json_format(mappings: MappingSet) -> LocalFormat:
    return mappings.get("qlvb-json")


@pytest.fixture(scope="module")
def xml_format(mappings: MappingSet) -> LocalFormat:
    return mappings.get("legacy-xml")


def _record() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / "qlvb-json" / "01-ordinary.json").read_text())
    return data


def _refusal(fmt: LocalFormat, body: bytes, **kwargs: Any) -> PermanentError | None:
    try:
        fmt.record_to_package(body, **kwargs)
    except PermanentError as exc:
        return exc
    return None


# ---------------------------------------------------------------------------- duplicate keys
def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every object key in a JSON value."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append((*prefix, key))
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _with_duplicate(record: dict[str, Any], path: tuple[Any, ...], first: Any) -> bytes:
    """The record's JSON text with the key at ``path`` written twice (``first`` first)."""
    marker = "__DUPLICATE_MARKER__"
    copied = copy.deepcopy(record)
    parent = copied
    for step in path[:-1]:
        parent = parent[step]
    items = list(parent.items())
    parent.clear()
    for key, value in items:
        if key == path[-1]:
            parent[marker] = first
        parent[key] = value
    text = json.dumps(copied, ensure_ascii=False)
    return text.replace(json.dumps(marker), json.dumps(path[-1], ensure_ascii=False)).encode()


RECORD_KEYS = _paths(_record())


@pytest.mark.parametrize("path", RECORD_KEYS, ids=[".".join(map(str, p)) for p in RECORD_KEYS])
def test_a_duplicated_key_anywhere_is_refused(json_format: LocalFormat,
                                              path: tuple[Any, ...]) -> None:
    body = _with_duplicate(_record(), path, "Tối mật")
    refusal = _refusal(json_format, body)
    assert refusal is not None and refusal.reason == "record_malformed"
    assert "repeats the key" in refusal.message


@pytest.mark.parametrize("first, last", [("Tối mật", "Thường"), ("Thường", "Tối mật"),
                                         ("Mật", ""), (None, "Thường"), ("Thường", "Thường")])
def test_a_duplicated_classification_is_never_last_one_wins(
        json_format: LocalFormat, first: Any, last: Any) -> None:
    record = _record()
    record["do_mat"] = last
    refusal = _refusal(json_format, _with_duplicate(record, ("do_mat",), first))
    assert refusal is not None and refusal.reason == "record_malformed"


# ---------------------------------------------------------------------------- classification
def _xml(classification: str) -> bytes:
    text = (EXAMPLES / "legacy-xml" / "01-ordinary.xml").read_text("utf-8")
    return text.replace("<DoMat>BT</DoMat>", classification).encode()


HIDDEN = ['<DoMat Ma="Mat"/>', '<DoMat value="Tối mật"></DoMat>', '<DoMat Ma="BT"/>',
          "<DoMat><Ma>Mat</Ma></DoMat>", '<DoMat Ma="Mat">  </DoMat>']


@pytest.mark.parametrize("element", HIDDEN)
def test_a_classification_the_mapping_cannot_read_is_refused(
        xml_format: LocalFormat, element: str) -> None:
    with pytest.raises(ClassificationRefused) as refused:
        xml_format.record_to_package(_xml(element))
    assert refused.value.reason == "classification_unknown"


@pytest.fixture(scope="module")
def xml_with_attribute(tmp_path_factory: pytest.TempPathFactory) -> LocalFormat:
    text = (MAPPINGS / "legacy-xml.yaml").read_text("utf-8")
    text = text.replace("  field: DoMat\n", "  field: DoMat\n  also: [DoMat/@Ma]\n", 1)
    path = tmp_path_factory.mktemp("mapping") / "legacy-xml.yaml"
    path.write_text(text, "utf-8")
    return load_format(path, DIRECTORY_FILE)


@pytest.mark.parametrize("element, reason", [
    ('<DoMat Ma="Mat"/>', "secret_document"),
    ('<DoMat Ma="Tối mật"/>', "secret_document"),
    ('<DoMat Ma="BT">Mật</DoMat>', "secret_document"),
    ('<DoMat Ma="Mật">BT</DoMat>', "secret_document"),
    ('<DoMat Ma="TM"/>', "classification_unknown"),
    ('<DoMat Ma="BT"/>', None),
    ("<DoMat>BT</DoMat>", None),
])
def test_the_classification_is_read_wherever_the_mapping_says(
        xml_with_attribute: LocalFormat, element: str, reason: str | None) -> None:
    refusal = _refusal(xml_with_attribute, _xml(element))
    if reason is None:
        assert refusal is None or refusal.stage != "classification"
    else:
        assert refusal is not None and refusal.reason == reason


# ---------------------------------------------------------------------------- bounds
def _verdict(fmt: LocalFormat, body: bytes, limits: RecordLimits,
             spool: Path | None = None) -> str:
    refusal = _refusal(fmt, body, limits=limits, attachments_dir=spool)
    return "ok" if refusal is None else f"{refusal.reason}: {refusal.message}"


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_record_size_at_the_limit(json_format: LocalFormat, delta: int) -> None:
    body = json.dumps(_record(), ensure_ascii=False).encode()
    limits = RecordLimits(max_record_bytes=len(body) - delta)
    verdict = _verdict(json_format, body, limits)
    assert verdict.startswith("record_malformed") == (delta > 0), verdict


@pytest.mark.parametrize("delta", [-1, 0, 1])
@pytest.mark.parametrize("syntax", ["json", "xml"])
def test_one_text_value_at_the_limit(json_format: LocalFormat, xml_format: LocalFormat,
                                     syntax: str, delta: int) -> None:
    limit = 1000
    subject = "Ư" * (limit + delta)
    if syntax == "json":
        record = _record()
        record["trich_yeu"] = subject
        fmt, body = json_format, json.dumps(record, ensure_ascii=False).encode()
    else:
        text = (EXAMPLES / "legacy-xml" / "01-ordinary.xml").read_text("utf-8")
        start, end = text.index("<TrichYeu>") + 10, text.index("</TrichYeu>")
        fmt, body = xml_format, (text[:start] + subject + text[end:]).encode()
    verdict = _verdict(fmt, body, RecordLimits(max_text_chars=limit))
    assert ("max_text_chars" in verdict) == (delta > 0), verdict


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_files_per_record_at_the_limit(json_format: LocalFormat, delta: int) -> None:
    limit = 4
    record = _record()
    inline = base64.b64encode(PDF).decode()
    record["tep_dinh_kem"] = [
        {"ten_tep": f"phu-luc-{i}.pdf", "loai_tep": "application/pdf",
         "noi_dung_base64": inline} for i in range(limit + delta)]
    body = json.dumps(record, ensure_ascii=False).encode()
    verdict = _verdict(json_format, body, RecordLimits(max_attachments=limit))
    assert ("max_attachments" in verdict) == (delta > 0), verdict


def _with_claim_check(name: str) -> bytes:
    record = _record()
    record["tep_dinh_kem"] = [{"ten_tep": "phu-luc.pdf", "loai_tep": "application/pdf",
                               "tep_spool": name}]
    return json.dumps(record, ensure_ascii=False).encode()


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_claim_check_file_size_at_the_limit(json_format: LocalFormat, tmp_path: Path,
                                            delta: int) -> None:
    limit = 4096
    (tmp_path / "big.pdf").write_bytes(PDF + b"x" * (limit + delta - len(PDF)))
    verdict = _verdict(json_format, _with_claim_check("big.pdf"),
                       RecordLimits(max_file_bytes=limit), tmp_path)
    assert ("byte limit" in verdict) == (delta > 0), verdict


def _device(path: Path) -> None:
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # like /dev/zero
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")


def _link_to_fifo(path: Path) -> None:
    os.mkfifo(path.with_name("pipe"))
    path.symlink_to(path.with_name("pipe"))


SPECIAL: dict[str, Callable[[Path], None]] = {
    "fifo": os.mkfifo,
    "folder": Path.mkdir,
    "device": _device,
    "link-out": lambda p: p.symlink_to("/etc/passwd"),
    "link-to-fifo": _link_to_fifo,
    "dangling": lambda p: p.symlink_to(p.with_name("nowhere")),
}


@pytest.mark.parametrize("kind", sorted(SPECIAL))
def test_a_special_file_as_claim_check_is_refused_without_blocking(
        json_format: LocalFormat, tmp_path: Path, kind: str) -> None:
    SPECIAL[kind](tmp_path / "special.pdf")
    started = time.monotonic()
    verdict = _verdict(json_format, _with_claim_check("special.pdf"), RecordLimits(), tmp_path)
    assert time.monotonic() - started < 5
    assert verdict.startswith("record_invalid"), verdict


# ---------------------------------------------------------------------------- nesting
@pytest.mark.parametrize("depth", [100, 1_000, 100_000])
def test_deep_json_is_refused_as_malformed(json_format: LocalFormat, depth: int) -> None:
    record = _record()
    text = json.dumps(record, ensure_ascii=False)[:-1] + ', "x": ' + "[" * depth + "]" * depth
    verdict = _verdict(json_format, (text + "}").encode(), RecordLimits())
    if depth >= 100_000:
        assert verdict.startswith("record_malformed"), verdict
    else:
        assert not verdict.startswith("internal"), verdict


@pytest.mark.parametrize("depth", [100, 300, 10_000])
def test_deep_xml_is_refused_or_read_never_a_crash(xml_format: LocalFormat, depth: int) -> None:
    text = (EXAMPLES / "legacy-xml" / "01-ordinary.xml").read_text("utf-8")
    deep = "<a>" * depth + "</a>" * depth
    body = text.replace("</VanBanDi>", deep + "</VanBanDi>").encode()
    verdict = _verdict(xml_format, body, RecordLimits())
    if depth > 256:
        assert verdict.startswith("record_malformed"), verdict


def test_a_300_mb_claim_check_file_costs_no_memory(json_format: LocalFormat,
                                                   tmp_path: Path) -> None:
    import tracemalloc

    with open(tmp_path / "huge.pdf", "wb") as handle:
        handle.truncate(300 * 1024 * 1024)  # sparse: no disk used
    tracemalloc.start()
    try:
        verdict = _verdict(json_format, _with_claim_check("huge.pdf"), RecordLimits(), tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "byte limit" in verdict
    assert peak < 16 * 1024 * 1024  # the mapping's own work; the file is never read
