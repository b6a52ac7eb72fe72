"""Multi-entry zip attachments on receipt: every entry held to the rules, within bounds.

Families: every executable format as an entry (alone, beside good files, nested, renamed);
PDFs inside zips held to R4 and their seals judged for sender binding (a seal of C inside a
package from A); entries named PDF that are not; entries at limit-1, limit and limit+1 of the
entry count and nesting depth; a zip bomb; an encrypted entry; an unreadable archive; office
documents (zips themselves) pass; entry names are escaped in what is said about them.
"""

from __future__ import annotations

import io
import itertools
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from connector.edxml.model import Attachment
from connector.trust.content import check_attachments
from connector.trust.origin import OriginPolicy, Refusal, XmlFacts, decide
from connector.trust.pdf_policy import PdfPolicy
from connector.trust.pki import DemoPki
from connector.trust.truststore import TrustStore
from connector.trust.zip_entries import DEFAULT_ZIP_LIMITS
from tests.hostile.test_trust_content import EXECUTABLES
from tests.hostile.trust_kit import A_ID, Kit, three_agency_pki


def zipped(*entries: tuple[str, bytes], encrypted: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    raw = bytearray(buffer.getvalue())
    if encrypted:  # zipfile cannot write encrypted entries: set the flag in both headers
        local = zipfile.ZipFile(io.BytesIO(bytes(raw))).getinfo(encrypted).header_offset
        raw[local + 6] |= 0x1  # general purpose flags of the local header
        central = raw.find(encrypted.encode(), raw.find(b"PK\x01\x02")) - 46
        raw[central + 8] |= 0x1  # ... and of its central directory entry
    return bytes(raw)


DOCX = zipped(("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w:document/>"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    return three_agency_pki(Path(tmp_path_factory.mktemp("three-agencies")) / "pki")


@pytest.fixture(scope="module")
def kit(pki: DemoPki) -> Kit:
    return Kit(pki)


@pytest.fixture(scope="module")
def trust(pki: DemoPki) -> TrustStore:
    return TrustStore.from_dirs(pki.trust_dir, pki.crl_dir)


def _annex_reason(kit: Kit, trust: TrustStore, data: bytes,
                  declared: str = "application/zip") -> str | None:
    main = Attachment("1", "cong-van.signed.pdf", "application/pdf", kit.main_pdf("seal:A"))
    annex = Attachment("2", "phu-luc.zip", declared, data)
    checks = check_attachments((main, annex), "1", trust, PdfPolicy())
    return checks.items[1].reason


WRAPPINGS: dict[str, Callable[[str, bytes], bytes]] = {
    "alone": lambda name, data: zipped((name, data), ("b.txt", b"x")),
    "beside good files": lambda name, data: zipped(
        ("a.txt", b"a"), (name, data), ("c.xml", b"<c/>")),
    "in a nested zip": lambda name, data: zipped(
        ("a.txt", b"a"), ("inner.zip", zipped((name, data), ("z", b"z")))),
    "in a docx in a zip": lambda name, data: zipped(
        ("a.txt", b"a"), ("d.docx", zipped(("[Content_Types].xml", b"<T/>"), (name, data)))),
}


@pytest.mark.parametrize("declared", ["application/zip", "application/octet-stream",
                                      "application/vnd.openxmlformats-officedocument."
                                      "wordprocessingml.document"])
def test_an_executable_inside_a_zip_is_refused(kit: Kit, trust: TrustStore, declared: str
                                               ) -> None:
    wrong = []
    for (what, exe), (how, wrap), name in itertools.product(
        EXECUTABLES.items(), WRAPPINGS.items(), ("setup.exe", "phu-luc.pdf", "readme.txt")
    ):
        got = _annex_reason(kit, trust, wrap(name, exe), declared)
        if got != "executable_content":
            wrong.append(f"{what} named {name} {how}: {got}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("how", sorted(WRAPPINGS))
def test_pdfs_inside_a_zip_are_held_to_r4(kit: Kit, trust: TrustStore, how: str) -> None:
    wrap = WRAPPINGS[how]
    assert _annex_reason(kit, trust, wrap("pl.pdf", kit.annex_pdf("seal:A"))) is None
    assert _annex_reason(kit, trust, wrap("pl.pdf", kit.annex_pdf("none"))) == (
        "organisation_signature_missing")
    assert _annex_reason(kit, trust, wrap("pl.pdf", b"not a pdf")) == "content_type_mismatch"
    assert _annex_reason(kit, trust, wrap("pl.bin", kit.annex_pdf("none"))) == (
        "organisation_signature_missing")


@pytest.mark.parametrize("how", sorted(WRAPPINGS))
def test_a_seal_of_another_organisation_inside_a_zip_is_judged(
    kit: Kit, trust: TrustStore, how: str
) -> None:
    main = Attachment("1", "cong-van.signed.pdf", "application/pdf", kit.main_pdf("seal:A"))
    annex = Attachment("2", "phu-luc.zip", "application/zip",
                       WRAPPINGS[how]("pl.pdf", kit.annex_pdf("seal:C")))
    checks = check_attachments((main, annex), "1", trust, PdfPolicy())
    with pytest.raises(Refusal) as refused:
        decide(OriginPolicy(), kind="edoc", claimed=A_ID, xml=XmlFacts(False, True),
               checks=checks)
    assert refused.value.reason == "seal_organisation_mismatch"


def test_office_documents_and_plain_zips_pass(kit: Kit, trust: TrustStore) -> None:
    assert _annex_reason(kit, trust, DOCX, "application/msword") is None
    assert _annex_reason(kit, trust, zipped(("a.txt", b"a"), ("b/c.xml", b"<c/>"))) is None


def _many(count: int) -> bytes:
    return zipped(*((f"f{i}.txt", b"x") for i in range(count)))


def _nested(depth: int) -> bytes:
    data = zipped(("leaf.txt", b"x"), ("other.txt", b"y"))
    for _ in range(depth - 1):
        data = zipped(("inner.zip", data), ("other.txt", b"y"))
    return data


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_entry_count_and_nesting_at_their_limits(kit: Kit, trust: TrustStore, offset: int
                                                 ) -> None:
    over = offset > 0
    got = _annex_reason(kit, trust, _many(DEFAULT_ZIP_LIMITS.entries + offset))
    assert got == ("attachment_zip_too_many" if over else None)
    got = _annex_reason(kit, trust, _nested(DEFAULT_ZIP_LIMITS.depth + offset))
    assert got == ("attachment_zip_nested" if over else None)


def test_bombs_encrypted_and_broken_zips_are_refused(kit: Kit, trust: TrustStore) -> None:
    bomb = zipped(("a.txt", b"a"), ("big.bin", b"\x00" * (DEFAULT_ZIP_LIMITS.total_bytes + 1)))
    assert _annex_reason(kit, trust, bomb) == "attachment_zip_bomb"
    ratio = zipped(("a.txt", b"a"), ("big.bin", b"\x00" * 2_000_000))  # ~2 kB -> 2 MB
    assert _annex_reason(kit, trust, ratio) == "attachment_zip_bomb"
    locked = zipped(("a.txt", b"a"), ("secret.exe", b"x"), encrypted="secret.exe")
    assert _annex_reason(kit, trust, locked) == "attachment_zip_encrypted"
    assert _annex_reason(kit, trust, b"PK\x03\x04" + b"\x00" * 40) == "attachment_bad_zip"


def test_entry_names_are_escaped_in_what_is_said(kit: Kit, trust: TrustStore) -> None:
    name = "a\r\nFAKE LOG LINE\u202e.txt"
    main = Attachment("1", "cong-van.signed.pdf", "application/pdf", kit.main_pdf("seal:A"))
    annex = Attachment("2", "p.zip", "application/zip", zipped((name, EXECUTABLES["PE"]),
                                                               ("b", b"b")))
    item = check_attachments((main, annex), "1", trust, PdfPolicy()).items[1]
    for text in (item.note, item.problem or ""):
        assert "\r" not in text and "\n" not in text and "\u202e" not in text


def _corrupt(method: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        archive.writestr("a.txt", b"hello world " * 100)
        archive.writestr("b.txt", b"x" * 50)
    raw = bytearray(buffer.getvalue())
    for index in range(40, 50):  # inside the first entry's compressed stream
        raw[index] ^= 0xFF
    return bytes(raw)


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA],
                         ids=["deflate", "bzip2", "lzma"])
def test_a_corrupt_compressed_entry_is_refused_not_crashed(
    kit: Kit, trust: TrustStore, method: int
) -> None:
    assert _annex_reason(kit, trust, _corrupt(method)) == "attachment_bad_zip"


def test_every_zip_and_damaged_pdf_refusal_has_its_own_words_in_a_02() -> None:
    from connector.daemon import statuses

    codes = ("attachment_bad_zip", "attachment_zip_encrypted", "attachment_zip_bomb",
             "attachment_zip_too_many", "attachment_zip_nested", "pdf_unreadable")
    generic = statuses.rejection_text("not_a_known_code").split(": ", 1)[1]
    for code in codes:
        text = statuses.rejection_text(code)
        assert f"({code})" in text and not text.endswith(generic), code
